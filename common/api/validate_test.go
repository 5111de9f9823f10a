package api

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pool(name, cidr string, mut ...func(*IPPoolSpec)) *IPPool {
	p := NewIPPool()
	p.Name = name
	p.Spec.CIDR = cidr
	for _, m := range mut {
		m(&p.Spec)
	}
	return p
}

func gnp(name string, mut ...func(*GlobalNetworkPolicySpec)) *GlobalNetworkPolicy {
	p := NewGlobalNetworkPolicy()
	p.Name = name
	for _, m := range mut {
		m(&p.Spec)
	}
	return p
}

func np(ns, name string, mut ...func(*NetworkPolicySpec)) *NetworkPolicy {
	p := NewNetworkPolicy()
	p.Name, p.Namespace = name, ns
	for _, m := range mut {
		m(&p.Spec)
	}
	return p
}

// ingressRule builds a GNP with a single ingress rule.
func ingressRule(r Rule) *GlobalNetworkPolicy {
	return gnp("p", func(s *GlobalNetworkPolicySpec) { s.Ingress = []Rule{r} })
}

func ports(ps ...Port) []Port { return ps }

func TestValidate(t *testing.T) {
	tcp, udp, icmp, icmp6 := NewProtocol("TCP"), NewProtocol("udp"), NewProtocol("ICMP"), NewProtocol("ICMPv6")
	manyNets := make([]string, 257)
	for i := range manyNets {
		manyNets[i] = fmt.Sprintf("10.0.%d.%d/32", i/256, i%256)
	}
	manyPorts := make([]Port, 51)
	for i := range manyPorts {
		manyPorts[i] = SinglePort(uint16(1000 + i))
	}
	tests := []struct {
		name string
		obj  Resource
		want string // "" = valid
	}{
		// --- metadata ---
		{"valid pool", pool("ok-pool", "10.0.0.0/16"), ""},
		{"missing name", pool("", "10.0.0.0/16"), `IPPool "": metadata.name: must be set`},
		{"upper-case name", pool("Bad_Pool", "10.0.0.0/16"), `IPPool "Bad_Pool": metadata.name: "Bad_Pool" is not a valid name: ` + nameRule},
		{"name too long", pool(strings.Repeat("a", 254), "10.0.0.0/16"), `IPPool "` + strings.Repeat("a", 254) + `": metadata.name: "` + strings.Repeat("a", 254) + `" is not a valid name: ` + nameRule},
		{"namespace on cluster kind", func() Resource { p := pool("p", "10.0.0.0/16"); p.Namespace = "x"; return p }(), `IPPool "x/p": metadata.namespace: must be empty: IPPool is not namespaced`},
		{"bad namespace", np("Bad.NS", "p"), `NetworkPolicy "Bad.NS/p": metadata.namespace: "Bad.NS" is not a valid namespace: must consist of lower-case letters, digits and '-', start and end with a letter or digit, and be at most 63 characters`},
		{"namespaced without namespace is fine", np("", "p"), ""},
		{"bad label key", func() Resource { p := pool("p", "10.0.0.0/16"); p.Labels = map[string]string{"bad key": "v"}; return p }(),
			`IPPool "p": metadata.labels: key "bad key" is invalid: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`},
		{"bad label value", func() Resource { p := pool("p", "10.0.0.0/16"); p.Labels = map[string]string{"app": "-x"}; return p }(),
			`IPPool "p": metadata.labels[app]: value "-x" is invalid: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
		{"good labels", func() Resource {
			p := pool("p", "10.0.0.0/16")
			p.Labels = map[string]string{"app": "web", "example.com/tier": "", "k": "v.1_2-3"}
			return p
		}(), ""},

		// --- IPPool ---
		{"v6 pool", pool("p6", "fd00::/48"), ""},
		{"bad cidr", pool("p", "10.0.0.0/33"), `IPPool "p": spec.cidr: "10.0.0.0/33" is not a valid CIDR`},
		{"missing cidr", pool("p", ""), `IPPool "p": spec.cidr: must be set`},
		{"host bits", pool("p", "10.0.0.1/16"), `IPPool "p": spec.cidr: "10.0.0.1/16" has host bits set; use "10.0.0.0/16"`},
		{"v6 host bits", pool("p", "fd00::1/64"), `IPPool "p": spec.cidr: "fd00::1/64" has host bits set; use "fd00::/64"`},
		{"blockSize 33", pool("bad-pool", "10.0.0.0/16", func(s *IPPoolSpec) { s.BlockSize = 33 }), `IPPool "bad-pool": spec.blockSize: 33 is out of range 20-32 for IPv4`},
		{"blockSize 19", pool("p", "10.0.0.0/8", func(s *IPPoolSpec) { s.BlockSize = 19 }), `IPPool "p": spec.blockSize: 19 is out of range 20-32 for IPv4`},
		{"blockSize 20 and 32", pool("p", "10.0.0.0/8", func(s *IPPoolSpec) { s.BlockSize = 20 }), ""},
		{"blockSize 32", pool("p", "10.0.0.0/24", func(s *IPPoolSpec) { s.BlockSize = 32 }), ""},
		{"v6 blockSize 115", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.BlockSize = 115 }), `IPPool "p": spec.blockSize: 115 is out of range 116-128 for IPv6`},
		{"v6 blockSize 26", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.BlockSize = 26 }), `IPPool "p": spec.blockSize: 26 is out of range 116-128 for IPv6`},
		{"v6 blockSize 128", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.BlockSize = 128 }), ""},
		{"pool smaller than a block", pool("p", "10.0.0.0/28"), `IPPool "p": spec.cidr: prefix /28 is smaller than one block (blockSize 26); use a prefix of /26 or shorter`},
		{"link-local pool", pool("p", "169.254.0.0/16"), `IPPool "p": spec.cidr: "169.254.0.0/16" overlaps the link-local range 169.254.0.0/16`},
		{"v6 link-local pool", pool("p", "fe80::/64"), `IPPool "p": spec.cidr: "fe80::/64" overlaps the link-local range fe80::/10`},
		{"ipip always", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.IPIPMode = EncapAlways }), ""},
		{"vxlan crosssubnet", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.VXLANMode = EncapCrossSubnet }), ""},
		{"bad ipip mode", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.IPIPMode = "Sometimes" }), `IPPool "p": spec.ipipMode: "Sometimes" is not one of Never, Always, CrossSubnet`},
		{"bad vxlan mode (case)", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.VXLANMode = "always" }), `IPPool "p": spec.vxlanMode: "always" is not one of Never, Always, CrossSubnet`},
		{"ipip on v6", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.IPIPMode = EncapAlways }), `IPPool "p": spec.ipipMode: IPIP is not supported on IPv6 pools; use vxlanMode or Never`},
		{"vxlan on v6", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.VXLANMode = EncapAlways }), ""},
		{"ipip and vxlan", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.IPIPMode, s.VXLANMode = EncapAlways, EncapCrossSubnet }),
			`IPPool "p": spec.ipipMode: "Always" cannot be combined with vxlanMode "CrossSubnet"; enable one encapsulation per pool`},
		{"ipip never and vxlan", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.IPIPMode, s.VXLANMode = EncapNever, EncapAlways }), ""},
		{"bad nodeSelector", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.NodeSelector = "os ==" }), `IPPool "p": spec.nodeSelector: "os ==" is not a valid selector: at position 5: `},
		{"good selectors", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.NodeSelector, s.NamespaceSelector = "kubernetes.io/os == 'linux'", "all()" }), ""},
		{"bad allowed use", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{"Pods"} }), `IPPool "p": spec.allowedUses[0]: "Pods" is not one of Workload, Tunnel, LoadBalancer`},
		{"LB with workload", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{"LoadBalancer", "Workload"} }), `IPPool "p": spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel`},
		{"LB with encap", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.AllowedUses, s.VXLANMode = []IPPoolAllowedUse{"LoadBalancer"}, EncapAlways }), `IPPool "p": spec.allowedUses: LoadBalancer pools cannot use IPIP or VXLAN encapsulation`},
		{"bad assignment mode", pool("p", "10.0.0.0/16", func(s *IPPoolSpec) { s.AssignmentMode = ptr(AssignmentMode("Auto")) }), `IPPool "p": spec.assignmentMode: "Auto" is not one of Automatic, Manual`},
		{"several pool errors", pool("p", "fd00::/48", func(s *IPPoolSpec) { s.BlockSize, s.IPIPMode = 64, EncapAlways }),
			`IPPool "p": spec.blockSize: 64 is out of range 116-128 for IPv6; spec.ipipMode: IPIP is not supported on IPv6 pools; use vxlanMode or Never`},
		{"defaulted pool is valid", func() Resource { p := pool("p", "10.0.0.0/16"); SetDefaults(p); return p }(), ""},

		// --- policy ---
		{"valid gnp", gnp("allow-dns", func(s *GlobalNetworkPolicySpec) {
			s.Order = ptr(100.0)
			s.Selector = "all()"
			s.Types = []PolicyType{PolicyTypeEgress}
			s.Egress = []Rule{{Action: Allow, Protocol: udp, Destination: EntityRule{Ports: ports(SinglePort(53)), Selector: "k8s-app == 'kube-dns'", NamespaceSelector: "projectcalico.org/name == 'kube-system'"}}}
		}), ""},
		{"policy name with dots", gnp("default.allow-dns"), ""},
		{"knp name", np("prod", "knp.default.allow"), ""},
		{"bad policy name", np("prod", "Allow Web"), `NetworkPolicy "prod/Allow Web": metadata.name: "Allow Web" is not a valid name: ` + nameRule},
		{"bad tier", gnp("p", func(s *GlobalNetworkPolicySpec) { s.Tier = "sec.ops" }), `GlobalNetworkPolicy "p": spec.tier: "sec.ops" is not a valid tier name: must consist of lower-case letters, digits and '-', start and end with a letter or digit, and be at most 63 characters`},
		{"order NaN", gnp("p", func(s *GlobalNetworkPolicySpec) { s.Order = ptr(math.NaN()) }), `GlobalNetworkPolicy "p": spec.order: must be a finite number`},
		{"negative order is fine", gnp("p", func(s *GlobalNetworkPolicySpec) { s.Order = ptr(-5.0) }), ""},
		{"bad policy selector", np("prod", "p", func(s *NetworkPolicySpec) { s.Selector = "app in {'a'" }), `NetworkPolicy "prod/p": spec.selector: "app in {'a'" is not a valid selector: at position 11: `},
		{"bad sa selector", np("prod", "p", func(s *NetworkPolicySpec) { s.ServiceAccountSelector = "&&" }), `NetworkPolicy "prod/p": spec.serviceAccountSelector: "&&" is not a valid selector: at position 0: `},
		{"bad gnp namespaceSelector", gnp("p", func(s *GlobalNetworkPolicySpec) { s.NamespaceSelector = "has(" }), `GlobalNetworkPolicy "p": spec.namespaceSelector: "has(" is not a valid selector: at position 4: `},
		{"bad type", gnp("p", func(s *GlobalNetworkPolicySpec) { s.Types = []PolicyType{"ingress"} }), `GlobalNetworkPolicy "p": spec.types[0]: "ingress" is not one of Ingress, Egress`},
		{"duplicate type", gnp("p", func(s *GlobalNetworkPolicySpec) { s.Types = []PolicyType{"Egress", "Egress"} }), `GlobalNetworkPolicy "p": spec.types[1]: "Egress" is listed twice`},
		{"egress rules without Egress type are accepted (and not enforced), as in Calico", np("prod", "p", func(s *NetworkPolicySpec) {
			s.Types = []PolicyType{PolicyTypeIngress}
			s.Egress = []Rule{{Action: Allow}}
		}), ""},
		{"ingress rules without Ingress type are accepted (and not enforced), as in Calico", gnp("p", func(s *GlobalNetworkPolicySpec) {
			s.Types = []PolicyType{PolicyTypeEgress}
			s.Ingress = []Rule{{Action: Deny}}
		}), ""},
		{"too many rules", np("prod", "p", func(s *NetworkPolicySpec) {
			s.Ingress = make([]Rule, 1025)
			for i := range s.Ingress {
				s.Ingress[i].Action = Allow
			}
		}),
			`NetworkPolicy "prod/p": spec.ingress: has 1025 rules, at most 1024 are allowed`},
		{"bad hint", gnp("p", func(s *GlobalNetworkPolicySpec) { s.PerformanceHints = []PolicyPerformanceHint{"Fast"} }), `GlobalNetworkPolicy "p": spec.performanceHints[0]: "Fast" is not one of AssumeNeededOnEveryNode`},
		{"preDNAT and doNotTrack", gnp("p", func(s *GlobalNetworkPolicySpec) { s.PreDNAT, s.DoNotTrack, s.ApplyOnForward = true, true, true }), `GlobalNetworkPolicy "p": spec.preDNAT: preDNAT and doNotTrack cannot both be true`},
		{"preDNAT without applyOnForward", gnp("p", func(s *GlobalNetworkPolicySpec) { s.PreDNAT = true }), `GlobalNetworkPolicy "p": spec.applyOnForward: must be true when preDNAT or doNotTrack is true`},
		{"preDNAT with egress", gnp("p", func(s *GlobalNetworkPolicySpec) {
			s.PreDNAT, s.ApplyOnForward = true, true
			s.Egress = []Rule{{Action: Allow}}
		}), `GlobalNetworkPolicy "p": spec.preDNAT: a preDNAT policy applies to ingress only; remove its egress rules and the Egress type`},
		{"doNotTrack ok", gnp("p", func(s *GlobalNetworkPolicySpec) { s.DoNotTrack, s.ApplyOnForward = true, true }), ""},

		// --- rules ---
		{"missing action", ingressRule(Rule{}), `GlobalNetworkPolicy "p": spec.ingress[0].action: must be set to one of Allow, Deny, Log, Pass`},
		{"bad action", ingressRule(Rule{Action: "Accept"}), `GlobalNetworkPolicy "p": spec.ingress[0].action: "Accept" is not one of Allow, Deny, Log, Pass`},
		{"lower-case action", ingressRule(Rule{Action: "allow"}), `GlobalNetworkPolicy "p": spec.ingress[0].action: "allow" is not one of Allow, Deny, Log, Pass`},
		{"all actions", gnp("p", func(s *GlobalNetworkPolicySpec) {
			s.Ingress = []Rule{{Action: Allow}, {Action: Deny}, {Action: Log}, {Action: Pass}}
		}), ""},
		{"bad ipVersion", ingressRule(Rule{Action: Allow, IPVersion: ptr(5)}), `GlobalNetworkPolicy "p": spec.ingress[0].ipVersion: 5 is not 4 or 6`},
		{"bad protocol name", ingressRule(Rule{Action: Allow, Protocol: NewProtocol("HTTP")}), `GlobalNetworkPolicy "p": spec.ingress[0].protocol: "HTTP" is not a protocol; use one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255`},
		{"mixed-case protocol", ingressRule(Rule{Action: Allow, Protocol: NewProtocol("Tcp")}), `GlobalNetworkPolicy "p": spec.ingress[0].protocol: "Tcp" is not a protocol; use one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255`},
		{"protocol names", gnp("p", func(s *GlobalNetworkPolicySpec) {
			for _, n := range []string{"TCP", "tcp", "UDP", "udp", "ICMP", "icmp", "ICMPv6", "icmpv6", "SCTP", "sctp", "UDPLite", "udplite", "1", "255"} {
				s.Ingress = append(s.Ingress, Rule{Action: Allow, Protocol: NewProtocol(n)})
			}
		}), ""},
		{"protocol 0", ingressRule(Rule{Action: Allow, Protocol: &Protocol{}}), `GlobalNetworkPolicy "p": spec.ingress[0].protocol: protocol number 0 is out of range 1-255`},
		{"bad notProtocol", ingressRule(Rule{Action: Allow, NotProtocol: NewProtocol("ip")}), `GlobalNetworkPolicy "p": spec.ingress[0].notProtocol: "ip" is not a protocol; use one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255`},
		{"icmp ok", ingressRule(Rule{Action: Allow, Protocol: icmp, ICMP: &ICMPFields{Type: ptr(8), Code: ptr(0)}}), ""},
		{"icmp type only", ingressRule(Rule{Action: Allow, Protocol: icmp6, ICMP: &ICMPFields{Type: ptr(128)}}), ""},
		{"icmp numbered protocol", ingressRule(Rule{Action: Allow, Protocol: NewProtocol("1"), ICMP: &ICMPFields{Type: ptr(3)}}), ""},
		{"icmp type 255", ingressRule(Rule{Action: Allow, Protocol: icmp, ICMP: &ICMPFields{Type: ptr(255)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp.type: 255 is out of range 0-254`},
		{"icmp code 256", ingressRule(Rule{Action: Allow, Protocol: icmp, ICMP: &ICMPFields{Type: ptr(3), Code: ptr(256)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp.code: 256 is out of range 0-255`},
		{"icmp code without type", ingressRule(Rule{Action: Allow, Protocol: icmp, ICMP: &ICMPFields{Code: ptr(1)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp.code: needs type to be set too`},
		{"icmp without protocol", ingressRule(Rule{Action: Allow, ICMP: &ICMPFields{Type: ptr(8)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp: ICMP matches need protocol ICMP or ICMPv6`},
		{"icmp with tcp", ingressRule(Rule{Action: Allow, Protocol: tcp, NotICMP: &ICMPFields{Type: ptr(8)}}), `GlobalNetworkPolicy "p": spec.ingress[0].notICMP: ICMP matches need protocol ICMP or ICMPv6`},
		{"icmp with ipVersion 6", ingressRule(Rule{Action: Allow, IPVersion: ptr(6), Protocol: icmp, ICMP: &ICMPFields{Type: ptr(8)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp: protocol ICMP does not match ipVersion 6; use ICMPv6`},
		{"icmpv6 with ipVersion 4", ingressRule(Rule{Action: Allow, IPVersion: ptr(4), Protocol: icmp6, ICMP: &ICMPFields{Type: ptr(128)}}), `GlobalNetworkPolicy "p": spec.ingress[0].icmp: protocol ICMPv6 does not match ipVersion 4; use ICMP`},
		{"ports with tcp", ingressRule(Rule{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: ports(SinglePort(80), PortRange(8000, 8080), NamedPort("http"))}}), ""},
		{"ports with protocol number 17", ingressRule(Rule{Action: Allow, Protocol: NewProtocol("17"), Destination: EntityRule{NotPorts: ports(SinglePort(53))}}), ""},
		{"ports without protocol", ingressRule(Rule{Action: Allow, Destination: EntityRule{Ports: ports(SinglePort(80))}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.ports: ports need protocol TCP, UDP or SCTP`},
		{"ports with icmp", ingressRule(Rule{Action: Allow, Protocol: icmp, Source: EntityRule{NotPorts: ports(SinglePort(80))}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.notPorts: ports need protocol TCP, UDP or SCTP`},
		{"too many ports", ingressRule(Rule{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: manyPorts}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.ports: has 51 entries, at most 50 are allowed`},
		{"reversed range", ingressRule(Rule{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: ports(PortRange(90, 80))}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.ports[0]: range "90:80" has min greater than max`},
		{"bad port name", ingressRule(Rule{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: ports(SinglePort(1), NamedPort("Web_Port"))}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.ports[1]: "Web_Port" is not a valid port name: ` + portNameRule},
		{"port name too long", ingressRule(Rule{Action: Allow, Protocol: tcp, Destination: EntityRule{Ports: ports(NamedPort("a-very-long-port-name"))}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.ports[0]: "a-very-long-port-name" is not a valid port name: ` + portNameRule},
		{"nets ok", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: []string{"10.0.0.0/8", "192.168.1.1"}, NotNets: []string{"10.1.0.0/16"}}}), ""},
		{"v6 nets ok", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: []string{"fd00::/64"}}, Destination: EntityRule{NotNets: []string{"fd00::1"}}}), ""},
		{"mixed families in one list", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: []string{"10.0.0.0/8", "fd00::/64"}}}),
			`GlobalNetworkPolicy "p": spec.ingress[0].source.nets: rule contains both IPv4 and IPv6 CIDRs; write one rule per IP version`},
		{"mixed families across source and destination", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: []string{"10.0.0.0/8"}}, Destination: EntityRule{NotNets: []string{"fd00::/64"}}}),
			`GlobalNetworkPolicy "p": spec.ingress[0].destination.notNets: rule contains both IPv4 and IPv6 CIDRs; write one rule per IP version`},
		{"catch-all notNets", ingressRule(Rule{Action: Allow, Destination: EntityRule{NotNets: []string{"0.0.0.0/0"}}}),
			`GlobalNetworkPolicy "p": spec.ingress[0].destination.notNets[0]: "0.0.0.0/0" is a catch-all CIDR: negated, it matches no traffic`},
		{"felix Verbose log level", &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: FelixConfigurationSpec{LogSeverityScreen: "Verbose", LogSeverityFile: "debug"}},
			`FelixConfiguration "default": spec.logSeverityScreen: "Verbose" is not one of Trace, Debug, Info, Warning, Error, Fatal`},
		{"workload endpoint name must match", &WorkloadEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "n1-k8s-web-eth0", Namespace: "prod"},
			Spec: WorkloadEndpointSpec{Orchestrator: "k8s", Node: "n1", Pod: "web-0", Endpoint: "eth0"}},
			`WorkloadEndpoint "prod/n1-k8s-web-eth0": metadata.name: "n1-k8s-web-eth0" does not match spec.node, spec.orchestrator, spec.pod and spec.endpoint: expected "n1-k8s-web--0-eth0"`},
		{"bad net", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: []string{"10.0.0.0/8", "10.0.0.300/32"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.nets[1]: "10.0.0.300/32" is not a valid CIDR or IP address`},
		{"bad notNet", ingressRule(Rule{Action: Allow, Destination: EntityRule{NotNets: []string{"any"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.notNets[0]: "any" is not a valid CIDR or IP address`},
		{"too many nets", ingressRule(Rule{Action: Allow, Source: EntityRule{Nets: manyNets}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.nets: has 257 entries, at most 256 are allowed`},
		{"net version mismatch", ingressRule(Rule{Action: Allow, IPVersion: ptr(4), Source: EntityRule{Nets: []string{"fd00::/64"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.nets[0]: "fd00::/64" is IPv6 but the rule's ipVersion is 4`},
		{"net version mismatch v6", ingressRule(Rule{Action: Allow, IPVersion: ptr(6), Destination: EntityRule{NotNets: []string{"10.0.0.0/8"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.notNets[0]: "10.0.0.0/8" is IPv4 but the rule's ipVersion is 6`},
		{"bad rule selector", ingressRule(Rule{Action: Allow, Source: EntityRule{Selector: "role = 'db'"}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.selector: "role = 'db'" is not a valid selector: at position 5: `},
		{"bad notSelector", ingressRule(Rule{Action: Allow, Source: EntityRule{NotSelector: "!"}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.notSelector: "!" is not a valid selector: at position 1: `},
		{"bad rule namespaceSelector", ingressRule(Rule{Action: Allow, Source: EntityRule{NamespaceSelector: "a ==="}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.namespaceSelector: "a ===" is not a valid selector: at position 4: `},
		{"global() namespaceSelector", ingressRule(Rule{Action: Allow, Source: EntityRule{NamespaceSelector: "global()"}}), ""},
		{"service accounts", ingressRule(Rule{Action: Allow, Source: EntityRule{ServiceAccounts: &ServiceAccountMatch{Names: []string{"api", "Bad_SA"}, Selector: "team == 'x'"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.serviceAccounts.names[1]: "Bad_SA" is not a valid service account name: ` + nameRule},
		{"bad sa selector in rule", ingressRule(Rule{Action: Allow, Source: EntityRule{ServiceAccounts: &ServiceAccountMatch{Selector: "(x"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].source.serviceAccounts.selector: "(x" is not a valid selector: at position 2: `},
		{"services ok", np("prod", "p", func(s *NetworkPolicySpec) {
			s.Egress = []Rule{{Action: Allow, Destination: EntityRule{Services: &ServiceMatch{Name: "kubernetes", Namespace: "default"}}}}
		}), ""},
		{"services with selector", ingressRule(Rule{Action: Allow, Destination: EntityRule{Selector: "all()", Services: &ServiceMatch{Name: "db"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.services: cannot be combined with nets, notNets, selector, notSelector, namespaceSelector or serviceAccounts`},
		{"services without name", ingressRule(Rule{Action: Allow, Destination: EntityRule{Services: &ServiceMatch{Namespace: "x"}}}), `GlobalNetworkPolicy "p": spec.ingress[0].destination.services.name: must be set`},
		{"second rule, egress", gnp("p", func(s *GlobalNetworkPolicySpec) {
			s.Egress = []Rule{{Action: Allow}, {Action: Allow, Protocol: udp, Destination: EntityRule{Ports: ports(PortRange(2, 1))}}}
		}), `GlobalNetworkPolicy "p": spec.egress[1].destination.ports[0]: range "2:1" has min greater than max`},

		// --- tier, sets, profile, endpoints ---
		{"tier ok", &Tier{ObjectMeta: metav1.ObjectMeta{Name: "security"}, Spec: TierSpec{Order: ptr(100.0), DefaultAction: ptr(Pass)}}, ""},
		{"tier bad action", &Tier{ObjectMeta: metav1.ObjectMeta{Name: "security"}, Spec: TierSpec{DefaultAction: ptr(Allow)}}, `Tier "security": spec.defaultAction: "Allow" is not one of Deny, Pass`},
		{"networkset", &NetworkSet{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "prod"}, Spec: NetworkSetSpec{Nets: []string{"1.2.3.4", "10.0.0.0/8", "2001:db8::/32"}}}, ""},
		{"networkset bad", &GlobalNetworkSet{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: GlobalNetworkSetSpec{Nets: []string{"1.2.3"}}}, `GlobalNetworkSet "ext": spec.nets[0]: "1.2.3" is not a valid CIDR or IP address`},
		{"profile", &Profile{ObjectMeta: metav1.ObjectMeta{Name: "kns.prod"}, Spec: ProfileSpec{Ingress: []Rule{{Action: Allow}}, LabelsToApply: map[string]string{"pcns.projectcalico.org/name": "prod"}}}, ""},
		{"profile bad rule", &Profile{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: ProfileSpec{Egress: []Rule{{Action: "Drop"}}}}, `Profile "x": spec.egress[0].action: "Drop" is not one of Allow, Deny, Log, Pass`},
		{"hep ok", &HostEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "n1-eth0"}, Spec: HostEndpointSpec{Node: "n1", InterfaceName: "eth0", ExpectedIPs: []string{"10.0.0.1"},
			Ports: []EndpointPort{{Name: "ssh", Protocol: ProtocolFromString("TCP"), Port: 22}}}}, ""},
		{"hep missing", &HostEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "h"}}, `HostEndpoint "h": spec.node: must be set; spec: set interfaceName ("*" for all interfaces) or expectedIPs`},
		{"hep bad port", &HostEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Spec: HostEndpointSpec{Node: "n", InterfaceName: "*", ExpectedIPs: []string{"x"},
			Ports: []EndpointPort{{Name: "p", Protocol: ProtocolFromString("ICMP")}}}},
			`HostEndpoint "h": spec.expectedIPs[0]: "x" is not a valid IP address; spec.ports[0].protocol: "ICMP" is not one of TCP, UDP, SCTP; spec.ports[0].port: must be set (1-65535)`},
		{"wep ok", &WorkloadEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "node1-k8s-web-eth0", Namespace: "prod"}, Spec: WorkloadEndpointSpec{
			Orchestrator: "k8s", Node: "node1", Pod: "web", Endpoint: "eth0", InterfaceName: "cali12345", IPNetworks: []string{"10.0.0.5/32", "fd00::5/128"},
			IPNATs: []IPNAT{{InternalIP: "10.0.0.5", ExternalIP: "1.2.3.4"}}, MAC: "ee:ee:ee:ee:ee:ee", Profiles: []string{"kns.prod"},
			Ports: []WorkloadEndpointPort{{Name: "http", Protocol: ProtocolFromString("TCP"), Port: 80}}}}, ""},
		{"wep bad", &WorkloadEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "prod"}, Spec: WorkloadEndpointSpec{
			IPNetworks: []string{"10.0.0.5/40"}, MAC: "zz", IPNATs: []IPNAT{{InternalIP: "10.0.0.5"}}, AllowSpoofedSourcePrefixes: []string{"nope"}}},
			`WorkloadEndpoint "prod/w": spec.ipNetworks[0]: "10.0.0.5/40" is not a valid CIDR or IP address; spec.ipNATs[0].externalIP: must be set; spec.mac: "zz" is not a valid MAC address; spec.allowSpoofedSourcePrefixes[0]: "nope" is not a valid CIDR or IP address`},

		// --- BGP ---
		{"bgp peer ok", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{NodeSelector: "rack == 'a'", PeerIP: "10.0.0.254", ASNumber: 64513}}, ""},
		{"bgp peer with port", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "[fd00::1]:1179", ASNumber: 64513}}, ""},
		{"bgp peer v4 port", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.1:179", ASNumber: 64513}}, ""},
		{"bgp peer selector", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "rr"}, Spec: BGPPeerSpec{PeerSelector: "has(route-reflector)"}}, ""},
		{"bgp peer bad ip", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.256", ASNumber: 1}}, `BGPPeer "tor": spec.peerIP: "10.0.0.256" is not an IP address, "<IPv4>:<port>" or "[<IPv6>]:<port>"`},
		{"bgp peer v6 without brackets and port", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "fd00::1:179x", ASNumber: 1}}, `BGPPeer "tor": spec.peerIP: "fd00::1:179x" is not an IP address, "<IPv4>:<port>" or "[<IPv6>]:<port>"`},
		{"bgp peer no AS", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.1"}}, `BGPPeer "tor": spec.asNumber: must be set (1-4294967295) when peerIP is set`},
		{"bgp peer node and nodeSelector", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: BGPPeerSpec{Node: "n1", NodeSelector: "all()", PeerSelector: "all()"}}, `BGPPeer "x": spec.nodeSelector: cannot be combined with node; use one of them`},
		{"bgp peer ip and selector", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 1, PeerSelector: "all()"}}, `BGPPeer "x": spec.peerSelector: cannot be combined with peerIP; use one of them`},
		{"bgp peer bad enums", &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: BGPPeerSpec{PeerSelector: "all()", SourceAddress: "Node", NextHopMode: ptr(NextHopMode("Other")), LocalASNumber: NewASNumber(0)}},
			`BGPPeer "x": spec.localASNumber: 0 is out of range 1-4294967295; spec.sourceAddress: "Node" is not one of UseNodeIP, None; spec.nextHopMode: "Other" is not one of Auto, Self, Keep`},
		{"bgp config ok", &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{ASNumber: NewASNumber(4200000000),
			ServiceClusterIPs: []ServiceClusterIPBlock{{CIDR: "10.96.0.0/12"}}, Communities: []Community{{Name: "c1", Value: "64512:100"}, {Name: "large", Value: "1:2:3"}},
			PrefixAdvertisements: []PrefixAdvertisement{{CIDR: "10.0.0.0/16", Communities: []string{"c1", "65000:1"}}}}}, ""},
		{"bgp config AS 0", &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{ASNumber: NewASNumber(0)}}, `BGPConfiguration "default": spec.asNumber: 0 is out of range 1-4294967295`},
		{"bgp config bad community", &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{Communities: []Community{{Name: "c", Value: "70000:1"}},
			PrefixAdvertisements: []PrefixAdvertisement{{CIDR: "10.0.0.0/16", Communities: []string{"nope"}}}, ServiceExternalIPs: []ServiceExternalIPBlock{{CIDR: "x"}}}},
			`BGPConfiguration "default": spec.serviceExternalIPs[0].cidr[0]: "x" is not a valid CIDR or IP address; spec.communities[0].value: "70000:1" is not a community: use "<0-65535>:<0-65535>" or "<0-4294967295>:<0-4294967295>:<0-4294967295>"; spec.prefixAdvertisements[0].communities[0]: "nope" is neither a community defined in spec.communities nor a community value`},

		// --- Felix ---
		{"felix ok", &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.n1"}, Spec: FelixConfigurationSpec{VXLANPort: ptr(8472), VXLANVNI: ptr(1),
			FailsafeInboundHostPorts: &[]ProtoPort{{Protocol: "tcp", Port: 22, Net: "10.0.0.0/8"}}}}, ""},
		{"felix bad", &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: FelixConfigurationSpec{VXLANPort: ptr(70000), VXLANVNI: ptr(1 << 24),
			VXLANMTU: ptr(-1), FailsafeOutboundHostPorts: &[]ProtoPort{{Protocol: "ICMP", Port: 1}}, NATPortRange: ptr(NamedPort("x")),
			RouteTableRanges: []RouteTableIDRange{{Min: 10, Max: 5}}}},
			`FelixConfiguration "default": spec.vxlanPort: 70000 is out of range 1-65535; spec.vxlanVNI: 16777216 is out of range 1-16777215; spec.vxlanMTU: -1 must not be negative (0 means detect); spec.routeTableRanges[0]: 10-5 is not a range within 1-4294967295 with min <= max; spec.failsafeOutboundHostPorts[0].protocol: "ICMP" is not one of TCP, UDP, SCTP; spec.natPortRange: "x" is not a port range "min:max" with min <= max`},

		// --- Node ---
		{"node ok", &Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: NodeSpec{BGP: &NodeBGPSpec{IPv4Address: "10.0.0.5/24", IPv6Address: "fd00::5/64", ASNumber: NewASNumber(64512),
			IPv4IPIPTunnelAddr: "192.168.0.1", RouteReflectorClusterID: "224.0.0.1"}, IPv4VXLANTunnelAddr: "192.168.0.2", VXLANTunnelMACAddr: "66:aa:bb:cc:dd:ee",
			Addresses: []NodeAddress{{Address: "10.0.0.5", Type: "InternalIP"}}, OrchRefs: []OrchRef{{NodeName: "n1", Orchestrator: "k8s"}}}}, ""},
		{"node bad", &Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: NodeSpec{BGP: &NodeBGPSpec{IPv4Address: "fd00::5/64", IPv6Address: "x"},
			IPv4VXLANTunnelAddr: "fd00::1", VXLANTunnelMACAddr: "66:aa", OrchRefs: []OrchRef{{NodeName: "n1"}}}},
			`Node "n1": spec.bgp.ipv4Address: "fd00::5/64" is not an IPv4 address; spec.bgp.ipv6Address: "x" is not a valid IP address or CIDR; spec.ipv4VXLANTunnelAddr: "fd00::1" is not an IPv4 address; spec.vxlanTunnelMACAddr: "66:aa" is not a valid MAC address; spec.orchRefs[0].orchestrator: must be set`},

		// --- IPAM ---
		{"block ok", &IPAMBlock{ObjectMeta: metav1.ObjectMeta{Name: "10-0-0-0-30"}, Spec: IPAMBlockSpec{CIDR: "10.0.0.0/30", Affinity: ptr("host:n1"),
			Allocations: []*int{ptr(0), nil, nil, nil}, Unallocated: []int{1, 2, 3}, Attributes: []AllocationAttribute{{}}}}, ""},
		{"block bad", &IPAMBlock{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: IPAMBlockSpec{CIDR: "10.0.0.0/30", Affinity: ptr("node:n1"),
			Allocations: []*int{ptr(1), nil}, Unallocated: []int{4}}},
			`IPAMBlock "b": spec.affinity: "node:n1" is not "host:<node>" or "virtual:<name>"; spec.allocations: has 2 entries; the block 10.0.0.0/30 has 4 addresses; spec.allocations[0]: attribute index 1 is out of range 0--1; spec.unallocated[0]: ordinal 4 is out of range 0-3`},
		{"block host bits", &IPAMBlock{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: IPAMBlockSpec{CIDR: "10.0.0.1/26"}}, `IPAMBlock "b": spec.cidr: "10.0.0.1/26" has host bits set; use "10.0.0.0/26"`},
		{"affinity ok", &BlockAffinity{ObjectMeta: metav1.ObjectMeta{Name: "n1-10-0-0-0-26"}, Spec: BlockAffinitySpec{State: "confirmed", Node: "n1", Type: "host", CIDR: "10.0.0.0/26", Deleted: "false"}}, ""},
		{"affinity bad", &BlockAffinity{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: BlockAffinitySpec{State: "Confirmed", Type: "pod", CIDR: "10.0.0.0/26", Deleted: "yes"}},
			`BlockAffinity "a": spec.state: "Confirmed" is not one of pending, confirmed, pendingDeletion; spec.node: must be set; spec.type: "pod" is not one of host, virtual; spec.deleted: "yes" is not "true" or "false"`},
		{"affinity no state", &BlockAffinity{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: BlockAffinitySpec{Node: "n", CIDR: "10.0.0.0/26"}}, `BlockAffinity "a": spec.state: must be set to one of pending, confirmed, pendingDeletion`},
		{"handle", &IPAMHandle{ObjectMeta: metav1.ObjectMeta{Name: "h"}}, `IPAMHandle "h": spec.handleID: must be set`},
		{"ipam config ok", &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: IPAMConfigSpec{StrictAffinity: true, MaxBlocksPerHost: 4, IPCooldownSeconds: ptr(1200)}}, ""},
		{"ipam config maxBlocks without strict", &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: IPAMConfigSpec{MaxBlocksPerHost: 4}}, `IPAMConfiguration "default": spec.maxBlocksPerHost: 4 needs strictAffinity: true`},
		{"ipam config cooldown", &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: IPAMConfigSpec{IPCooldownSeconds: ptr(1201), MaxBlocksPerHost: -1}},
			`IPAMConfiguration "default": spec.maxBlocksPerHost: -1 must not be negative; spec.ipCooldownSeconds: 1201 is out of range 0-1200`},
		{"ipam config name", &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, `IPAMConfiguration "mine": metadata.name: "mine" is not allowed: IPAMConfiguration is a singleton named "default"`},
		{"reservation", &IPReservation{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: IPReservationSpec{ReservedCIDRs: []string{"10.0.0.1", "10.0.1.0/24", "bad"}}},
			`IPReservation "r": spec.reservedCIDRs[0]: "10.0.0.1" is an IP address, not a CIDR; write "10.0.0.1/32" to reserve one address; spec.reservedCIDRs[2]: "bad" is not a valid CIDR`},
		{"kcc", &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: KubeControllersConfigurationSpec{HealthChecks: "On",
			Controllers: ControllersConfig{Node: &NodeControllerConfig{SyncLabels: "Enabled", HostEndpoint: &AutoHostEndpointConfig{AutoCreate: "yes"}}}}},
			`KubeControllersConfiguration "default": spec.healthChecks: "On" is not one of Enabled, Disabled; spec.controllers.node.hostEndpoint.autoCreate: "yes" is not one of Enabled, Disabled`},
		{"cluster information", &ClusterInformation{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: ClusterInformationSpec{DatastoreReady: ptr(true)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.obj)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() returned %T, want *ValidationError", err)
			}
			got := err.Error()
			// Selector messages end with the selector package's own wording; compare up to it.
			if strings.HasSuffix(tt.want, "at position ") || strings.HasSuffix(tt.want, ": ") {
				if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "; ") {
					t.Fatalf("Validate() =\n%s\nwant prefix\n%s", got, tt.want)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorFields(t *testing.T) {
	err := Validate(pool("bad-pool", "10.0.0.1/16", func(s *IPPoolSpec) { s.IPIPMode = "x" }))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %T", err)
	}
	want := &ValidationError{Kind: "IPPool", Name: "bad-pool", Errors: []FieldError{
		{Field: "spec.cidr", Reason: `"10.0.0.1/16" has host bits set; use "10.0.0.0/16"`},
		{Field: "spec.ipipMode", Reason: `"x" is not one of Never, Always, CrossSubnet`},
	}}
	if diff := cmp.Diff(want, ve); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestValidateUnregistered(t *testing.T) {
	type notAKind struct{ IPPool }
	if err := Validate(&notAKind{}); err == nil || !strings.Contains(err.Error(), "is not a registered kind") {
		t.Errorf("Validate(unregistered) = %v", err)
	}
}

func TestParsePeerIP(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"10.0.0.1", "10.0.0.1:0"},
		{"10.0.0.1:1179", "10.0.0.1:1179"},
		{"fd00::1", "[fd00::1]:0"},
		{"[fd00::1]:179", "[fd00::1]:179"},
	}
	for _, tt := range tests {
		got, err := ParsePeerIP(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParsePeerIP(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "10.0.0.1:0", "10.0.0.1:99999", "[fd00::1]"} {
		if _, err := ParsePeerIP(bad); err == nil {
			t.Errorf("ParsePeerIP(%q) succeeded", bad)
		}
	}
}
