package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tortie-net/tortie/common/selector"
)

const orch = "projectcalico.org/orchestrator == 'k8s'"

func knp(spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: "prod"}, Spec: spec}
}

func wantNP(mut func(*NetworkPolicySpec)) *NetworkPolicy {
	p := NewNetworkPolicy()
	p.Name, p.Namespace = "knp.default.test", "prod"
	p.Spec = NetworkPolicySpec{Tier: "default", Order: ptr(1000.0), Selector: orch, Types: []PolicyType{PolicyTypeIngress}}
	mut(&p.Spec)
	return p
}

func k8sPort(proto corev1.Protocol, port any, end ...int32) networkingv1.NetworkPolicyPort {
	np := networkingv1.NetworkPolicyPort{}
	if proto != "" {
		np.Protocol = &proto
	}
	switch v := port.(type) {
	case int:
		p := intstr.FromInt32(int32(v))
		np.Port = &p
	case string:
		p := intstr.FromString(v)
		np.Port = &p
	}
	if len(end) > 0 {
		np.EndPort = &end[0]
	}
	return np
}

func TestConvertK8sNetworkPolicy(t *testing.T) {
	tcp, udp, sctp := NewProtocol("TCP"), NewProtocol("UDP"), NewProtocol("SCTP")
	podPeer := func(l map[string]string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: l}}
	}
	tests := []struct {
		name     string
		in       networkingv1.NetworkPolicySpec
		want     *NetworkPolicy
		warnings []string
	}{
		{
			name: "empty pod selector, no rules: deny all ingress",
			in:   networkingv1.NetworkPolicySpec{},
			want: wantNP(func(s *NetworkPolicySpec) {}),
		},
		{
			name: "explicit Ingress type with empty ingress list: deny all",
			in:   networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}, Ingress: []networkingv1.NetworkPolicyIngressRule{}},
			want: wantNP(func(s *NetworkPolicySpec) {}),
		},
		{
			name: "ingress: [{}] allows all",
			in:   networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
			want: wantNP(func(s *NetworkPolicySpec) { s.Ingress = []Rule{{Action: Allow}} }),
		},
		{
			name: "match labels sorted, expressions in order",
			in: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{
				MatchLabels: map[string]string{"tier": "web", "app": "shop"},
				MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod", "staging"}},
					{Key: "canary", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}},
					{Key: "team", Operator: metav1.LabelSelectorOpExists},
					{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
				},
			}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Selector = orch + " && app == 'shop' && tier == 'web' && env in { 'prod', 'staging' } && canary not in { 'true' } && has(team) && ! has(legacy)"
			}),
		},
		{
			name: "pod peer with ports, missing protocol is TCP",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{podPeer(map[string]string{"role": "fe"})},
				Ports: []networkingv1.NetworkPolicyPort{k8sPort("", 80), k8sPort("", 443)},
			}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Protocol: tcp, Source: EntityRule{Selector: orch + " && role == 'fe'"},
					Destination: EntityRule{Ports: []Port{SinglePort(80), SinglePort(443)}}}}
			}),
		},
		{
			name: "one rule per peer x protocol; ports merged; named ports kept",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{podPeer(map[string]string{"a": "1"}), podPeer(map[string]string{"b": "2"})},
				Ports: []networkingv1.NetworkPolicyPort{
					k8sPort("TCP", 81), k8sPort("UDP", 53), k8sPort("TCP", 80), k8sPort("TCP", "http"),
					k8sPort("TCP", 82, 90), k8sPort("TCP", 85, 100), k8sPort("TCP", 200), k8sPort("TCP", "http"),
				},
			}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				tcpPorts := []Port{PortRange(80, 100), SinglePort(200), NamedPort("http")}
				s.Ingress = []Rule{
					{Action: Allow, Protocol: tcp, Source: EntityRule{Selector: orch + " && a == '1'"}, Destination: EntityRule{Ports: tcpPorts}},
					{Action: Allow, Protocol: udp, Source: EntityRule{Selector: orch + " && a == '1'"}, Destination: EntityRule{Ports: []Port{SinglePort(53)}}},
					{Action: Allow, Protocol: tcp, Source: EntityRule{Selector: orch + " && b == '2'"}, Destination: EntityRule{Ports: tcpPorts}},
					{Action: Allow, Protocol: udp, Source: EntityRule{Selector: orch + " && b == '2'"}, Destination: EntityRule{Ports: []Port{SinglePort(53)}}},
				}
			}),
		},
		{
			name: "protocol without port matches all its ports",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{k8sPort("UDP", nil), k8sPort("UDP", 53), k8sPort("SCTP", 9000)},
			}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Protocol: udp}, {Action: Allow, Protocol: sctp, Destination: EntityRule{Ports: []Port{SinglePort(9000)}}}}
			}),
		},
		{
			name: "namespace selector only; empty means all()",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ops"}}},
			}}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{
					{Action: Allow, Source: EntityRule{NamespaceSelector: "all()"}},
					{Action: Allow, Source: EntityRule{NamespaceSelector: "team == 'ops'"}},
				}
			}),
		},
		{
			name: "pod and namespace selector together",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector:       &metav1.LabelSelector{},
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "In", Values: []string{"prod"}}}},
			}}}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Source: EntityRule{Selector: orch, NamespaceSelector: "env in { 'prod' }"}}}
			}),
		},
		{
			name: "ipBlock with except",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				IPBlock: &networkingv1.IPBlock{CIDR: "172.17.0.0/16", Except: []string{"172.17.1.0/24", "172.17.2.0/24"}},
			}}}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Source: EntityRule{Nets: []string{"172.17.0.0/16"}, NotNets: []string{"172.17.1.0/24", "172.17.2.0/24"}}}}
			}),
		},
		{
			name: "no policyTypes with egress rules: Ingress and Egress",
			in: networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
				Ports: []networkingv1.NetworkPolicyPort{k8sPort("UDP", 53), k8sPort("TCP", 53)},
			}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Types = []PolicyType{PolicyTypeIngress, PolicyTypeEgress}
				s.Egress = []Rule{
					{Action: Allow, Protocol: udp, Destination: EntityRule{Nets: []string{"10.0.0.0/8"}, Ports: []Port{SinglePort(53)}}},
					{Action: Allow, Protocol: tcp, Destination: EntityRule{Nets: []string{"10.0.0.0/8"}, Ports: []Port{SinglePort(53)}}},
				}
			}),
		},
		{
			name: "egress only",
			in: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{podPeer(map[string]string{"app": "db"})}}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Types = []PolicyType{PolicyTypeEgress}
				s.Egress = []Rule{{Action: Allow, Destination: EntityRule{Selector: orch + " && app == 'db'"}}}
			}),
		},
		{
			name: "egress type with no rules: deny all egress",
			in:   networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}},
			want: wantNP(func(s *NetworkPolicySpec) { s.Types = []PolicyType{PolicyTypeIngress, PolicyTypeEgress} }),
		},
		{
			name: "ingress rules ignored when policyTypes is Egress only",
			in: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
			want: wantNP(func(s *NetworkPolicySpec) { s.Types = []PolicyType{PolicyTypeEgress} }),
		},
		{
			name: "unconvertible rules dropped with warnings",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"x"}}}}},
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Gt"}}}}}},
				{Ports: []networkingv1.NetworkPolicyPort{k8sPort("ICMP", 1)}},
				{Ports: []networkingv1.NetworkPolicyPort{k8sPort("TCP", 90, 80)}},
				{Ports: []networkingv1.NetworkPolicyPort{k8sPort("TCP", "http", 90)}},
				{From: []networkingv1.NetworkPolicyPeer{{}}},
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}, PodSelector: &metav1.LabelSelector{}}}},
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "In"}}}}}},
				{Ports: []networkingv1.NetworkPolicyPort{k8sPort("TCP", 0)}},
				{Ports: []networkingv1.NetworkPolicyPort{k8sPort("TCP", 8080)}},
			}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: []Port{SinglePort(8080)}}}}
			}),
			warnings: []string{
				`ingress rule 1 dropped: peer 1: ipBlock.except "x" is not a valid CIDR`,
				`ingress rule 2 dropped: peer 1: podSelector: operator "Gt" on "a" is not one of In, NotIn, Exists, DoesNotExist`,
				`ingress rule 3 dropped: port 1: protocol "ICMP" is not TCP, UDP or SCTP`,
				`ingress rule 4 dropped: port 1: range 90-80 is not within 1-65535 with port <= endPort`,
				`ingress rule 5 dropped: port 1: endPort cannot be used with the named port "http"`,
				`ingress rule 6 dropped: peer 1: a peer needs podSelector, namespaceSelector or ipBlock`,
				`ingress rule 7 dropped: peer 1: ipBlock cannot be combined with podSelector or namespaceSelector`,
				`ingress rule 8 dropped: peer 1: namespaceSelector: operator In on "a" needs values`,
				`ingress rule 9 dropped: port 1: 0 is out of range 1-65535`,
			},
		},
		{
			name: "all ingress rules dropped leaves deny-all, not allow-all",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "bad"}}}},
			}},
			want:     wantNP(func(s *NetworkPolicySpec) {}),
			warnings: []string{`ingress rule 1 dropped: peer 1: ipBlock.cidr "bad" is not a valid CIDR`},
		},
		{
			name: "ipBlock host bits are masked; IPv6",
			in: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				IPBlock: &networkingv1.IPBlock{CIDR: "fd00::1/64", Except: []string{"fd00::/80"}},
			}}}}},
			want: wantNP(func(s *NetworkPolicySpec) {
				s.Ingress = []Rule{{Action: Allow, Source: EntityRule{Nets: []string{"fd00::/64"}, NotNets: []string{"fd00::/80"}}}}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := ConvertK8sNetworkPolicy(knp(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("policy mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			// Every converted policy is valid and its selectors parse.
			if err := Validate(got); err != nil {
				t.Errorf("Validate(converted) = %v", err)
			}
			if _, err := selector.Parse(got.Spec.Selector); err != nil {
				t.Errorf("selector %q: %v", got.Spec.Selector, err)
			}
		})
	}
}

func TestConvertK8sNetworkPolicySelectorSemantics(t *testing.T) {
	pol, _, err := ConvertK8sNetworkPolicy(knp(networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "NotIn", Values: []string{"dev"}}},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	sel := selector.MustParse(pol.Spec.Selector)
	tests := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{LabelOrchestrator: "k8s", "app": "web"}, true},
		{map[string]string{LabelOrchestrator: "k8s", "app": "web", "env": "prod"}, true},
		{map[string]string{LabelOrchestrator: "k8s", "app": "web", "env": "dev"}, false},
		{map[string]string{"app": "web"}, false}, // not a pod
		{map[string]string{LabelOrchestrator: "k8s", "app": "db"}, false},
	}
	for _, tt := range tests {
		if got := sel.Evaluate(tt.labels); got != tt.want {
			t.Errorf("Evaluate(%v) = %v, want %v", tt.labels, got, tt.want)
		}
	}
}

func TestConvertK8sNetworkPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		in   *networkingv1.NetworkPolicy
		want string
	}{
		{"nil", nil, "converting Kubernetes NetworkPolicy: policy is nil"},
		{"no name", &networkingv1.NetworkPolicy{}, "converting Kubernetes NetworkPolicy: metadata.name is missing"},
		{"bad pod selector", knp(networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Exist"}}}}),
			`converting Kubernetes NetworkPolicy prod/test: spec.podSelector: operator "Exist" on "a" is not one of In, NotIn, Exists, DoesNotExist`},
		{"bad policy type", knp(networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"ingress"}}),
			`converting Kubernetes NetworkPolicy prod/test: spec.policyTypes: "ingress" is not Ingress or Egress`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ConvertK8sNetworkPolicy(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConvertK8sNetworkPolicyMetadata(t *testing.T) {
	in := knp(networkingv1.NetworkPolicySpec{})
	in.ResourceVersion = "42"
	in.Labels = map[string]string{"x": "y"}
	got, _, err := ConvertK8sNetworkPolicy(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "knp.default.test" || got.Namespace != "prod" || got.ResourceVersion != "42" || got.APIVersion != APIVersion || got.Kind != KindNetworkPolicy {
		t.Errorf("metadata = %+v %+v", got.TypeMeta, got.ObjectMeta)
	}
}
