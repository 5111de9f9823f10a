package api

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// K8sNetworkPolicyOrder is the order of policies converted from Kubernetes NetworkPolicy.
const K8sNetworkPolicyOrder = 1000

// ConvertK8sNetworkPolicy converts a Kubernetes NetworkPolicy into the namespaced NetworkPolicy that
// enforces it, with Calico's semantics:
//
//   - Name "knp.default.<name>" (Calico's name for Kubernetes policies before v3.32, still what calicoctl
//     shows; the prefix keeps them apart from user policies of the same name), same namespace, tier
//     "default", order 1000.
//   - Selector "projectcalico.org/orchestrator == 'k8s'" AND-ed with the podSelector: matchLabels become
//     "k == 'v'" (sorted by key), In "k in { 'a', 'b' }", NotIn "k not in { ... }", Exists "has(k)",
//     DoesNotExist "! has(k)".
//   - Types from policyTypes; when none are given, Ingress, plus Egress if the policy has egress rules (as
//     Kubernetes defines). Rules of a direction not in the types are ignored, as Kubernetes ignores them.
//     An Ingress type with no ingress rules denies all ingress; a rule with no peers and no ports
//     ("ingress: [{}]") allows everything.
//   - Every rule is Allow; a Kubernetes rule becomes one rule per (peer × protocol). A pod-selector peer
//     becomes a selector (confined to the policy's namespace), a namespaceSelector peer a rule
//     namespaceSelector (empty → "all()"), both become both, an ipBlock becomes nets and notNets (except).
//     Ports are grouped by protocol (missing protocol → TCP); numeric ports and endPort ranges are merged
//     into sorted, non-overlapping ranges, named ports are kept by name; a protocol listed without a port
//     matches all its ports.
//
// A Kubernetes rule that cannot be converted (for example an invalid ipBlock or label selector operator)
// is dropped and reported in the warnings: dropping an allow rule can only allow less. An error is
// returned only when the policy itself cannot be converted safely (nil, no name, or an invalid
// podSelector, which would otherwise widen the policy to every pod).
func ConvertK8sNetworkPolicy(np *networkingv1.NetworkPolicy) (*NetworkPolicy, []string, error) {
	if np == nil {
		return nil, nil, errors.New("converting Kubernetes NetworkPolicy: policy is nil")
	}
	if np.Name == "" {
		return nil, nil, errors.New("converting Kubernetes NetworkPolicy: metadata.name is missing")
	}
	sel, err := k8sSelectorToCalico(&np.Spec.PodSelector, true)
	if err != nil {
		return nil, nil, fmt.Errorf("converting Kubernetes NetworkPolicy %s/%s: spec.podSelector: %w", np.Namespace, np.Name, err)
	}
	out := NewNetworkPolicy()
	out.Name = K8sNetworkPolicyNamePrefix + np.Name
	out.Namespace = np.Namespace
	out.ResourceVersion = np.ResourceVersion
	out.CreationTimestamp = np.CreationTimestamp
	out.Spec.Tier = DefaultTierName
	out.Spec.Order = ptr(float64(K8sNetworkPolicyOrder))
	out.Spec.Selector = sel

	ingress, egress := false, false
	if len(np.Spec.PolicyTypes) == 0 {
		ingress, egress = true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		default:
			return nil, nil, fmt.Errorf("converting Kubernetes NetworkPolicy %s/%s: spec.policyTypes: %q is not Ingress or Egress", np.Namespace, np.Name, t)
		}
	}
	var warnings []string
	if ingress {
		out.Spec.Types = append(out.Spec.Types, PolicyTypeIngress)
		out.Spec.Ingress = []Rule{}
		for i, r := range np.Spec.Ingress {
			rules, err := k8sRuleToCalico(r.From, r.Ports, true)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("ingress rule %d dropped: %v", i+1, err))
				continue
			}
			out.Spec.Ingress = append(out.Spec.Ingress, rules...)
		}
		if len(out.Spec.Ingress) == 0 {
			out.Spec.Ingress = nil
		}
	}
	if egress {
		out.Spec.Types = append(out.Spec.Types, PolicyTypeEgress)
		for i, r := range np.Spec.Egress {
			rules, err := k8sRuleToCalico(r.To, r.Ports, false)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("egress rule %d dropped: %v", i+1, err))
				continue
			}
			out.Spec.Egress = append(out.Spec.Egress, rules...)
		}
	}
	return out, warnings, nil
}

// k8sRuleToCalico converts one Kubernetes rule into Allow rules, one per (peer × protocol).
func k8sRuleToCalico(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ingress bool) ([]Rule, error) {
	entities := []EntityRule{{}}
	if len(peers) > 0 {
		entities = entities[:0]
		for i := range peers {
			e, err := k8sPeerToCalico(&peers[i])
			if err != nil {
				return nil, fmt.Errorf("peer %d: %w", i+1, err)
			}
			entities = append(entities, e)
		}
	}
	groups, err := k8sPortsToCalico(ports)
	if err != nil {
		return nil, err
	}
	var rules []Rule
	for _, peer := range entities {
		for _, g := range groups {
			r := Rule{Action: Allow}
			if g.protocol != "" {
				r.Protocol = NewProtocol(g.protocol)
			}
			// Copy so that no two rules share a slice.
			e := *peer.DeepCopy()
			if ingress {
				r.Source = e
				r.Destination = EntityRule{Ports: slices.Clone(g.ports)}
			} else {
				e.Ports = slices.Clone(g.ports)
				r.Destination = e
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func k8sPeerToCalico(p *networkingv1.NetworkPolicyPeer) (EntityRule, error) {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return EntityRule{}, errors.New("ipBlock cannot be combined with podSelector or namespaceSelector")
		}
		cidr, err := netip.ParsePrefix(p.IPBlock.CIDR)
		if err != nil {
			return EntityRule{}, fmt.Errorf("ipBlock.cidr %q is not a valid CIDR", p.IPBlock.CIDR)
		}
		e := EntityRule{Nets: []string{cidr.Masked().String()}}
		for _, ex := range p.IPBlock.Except {
			exp, err := netip.ParsePrefix(ex)
			if err != nil {
				return EntityRule{}, fmt.Errorf("ipBlock.except %q is not a valid CIDR", ex)
			}
			e.NotNets = append(e.NotNets, exp.Masked().String())
		}
		return e, nil
	}
	var e EntityRule
	if p.PodSelector != nil {
		s, err := k8sSelectorToCalico(p.PodSelector, true)
		if err != nil {
			return EntityRule{}, fmt.Errorf("podSelector: %w", err)
		}
		e.Selector = s
	}
	if p.NamespaceSelector != nil {
		s, err := k8sSelectorToCalico(p.NamespaceSelector, false)
		if err != nil {
			return EntityRule{}, fmt.Errorf("namespaceSelector: %w", err)
		}
		e.NamespaceSelector = s
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return EntityRule{}, errors.New("a peer needs podSelector, namespaceSelector or ipBlock")
	}
	return e, nil
}

// k8sSelectorToCalico turns a label selector into a selector expression. Pod selectors are AND-ed with
// the orchestrator label so that they match pods only; an empty namespace selector is all().
func k8sSelectorToCalico(s *metav1.LabelSelector, pod bool) (string, error) {
	var terms []string
	if pod {
		terms = append(terms, LabelOrchestrator+" == '"+OrchestratorKubernetes+"'")
	}
	for _, k := range sortedKeys(s.MatchLabels) {
		terms = append(terms, fmt.Sprintf("%s == %s", k, quoteSelectorValue(s.MatchLabels[k])))
	}
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				return "", fmt.Errorf("operator %s on %q needs values", e.Operator, e.Key)
			}
			vals := make([]string, len(e.Values))
			for i, v := range e.Values {
				vals[i] = quoteSelectorValue(v)
			}
			op := "in"
			if e.Operator == metav1.LabelSelectorOpNotIn {
				op = "not in"
			}
			terms = append(terms, fmt.Sprintf("%s %s { %s }", e.Key, op, strings.Join(vals, ", ")))
		case metav1.LabelSelectorOpExists:
			terms = append(terms, fmt.Sprintf("has(%s)", e.Key))
		case metav1.LabelSelectorOpDoesNotExist:
			terms = append(terms, fmt.Sprintf("! has(%s)", e.Key))
		default:
			return "", fmt.Errorf("operator %q on %q is not one of In, NotIn, Exists, DoesNotExist", e.Operator, e.Key)
		}
	}
	if len(terms) == 0 {
		return "all()", nil
	}
	return strings.Join(terms, " && "), nil
}

func quoteSelectorValue(v string) string {
	if strings.Contains(v, "'") {
		return `"` + v + `"`
	}
	return "'" + v + "'"
}

type portGroup struct {
	protocol string // "" = any protocol (no ports given)
	ports    []Port
}

// k8sPortsToCalico groups ports by protocol in order of first appearance, merging numeric ranges.
func k8sPortsToCalico(ports []networkingv1.NetworkPolicyPort) ([]portGroup, error) {
	if len(ports) == 0 {
		return []portGroup{{}}, nil
	}
	type acc struct {
		all   bool
		nums  []Port
		names []string
	}
	var order []string
	byProto := map[string]*acc{}
	for i, p := range ports {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		switch proto {
		case string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP):
		default:
			return nil, fmt.Errorf("port %d: protocol %q is not TCP, UDP or SCTP", i+1, proto)
		}
		a := byProto[proto]
		if a == nil {
			a = &acc{}
			byProto[proto] = a
			order = append(order, proto)
		}
		switch {
		case p.Port == nil:
			if p.EndPort != nil {
				return nil, fmt.Errorf("port %d: endPort needs port", i+1)
			}
			a.all = true
		case p.Port.Type == intstr.String:
			if p.EndPort != nil {
				return nil, fmt.Errorf("port %d: endPort cannot be used with the named port %q", i+1, p.Port.StrVal)
			}
			if !slices.Contains(a.names, p.Port.StrVal) {
				a.names = append(a.names, p.Port.StrVal)
			}
		default:
			lo := p.Port.IntVal
			hi := lo
			if p.EndPort != nil {
				hi = *p.EndPort
			}
			if lo < 1 || lo > 65535 || hi < lo || hi > 65535 {
				if p.EndPort != nil {
					return nil, fmt.Errorf("port %d: range %d-%d is not within 1-65535 with port <= endPort", i+1, lo, hi)
				}
				return nil, fmt.Errorf("port %d: %d is out of range 1-65535", i+1, lo)
			}
			a.nums = append(a.nums, PortRange(uint16(lo), uint16(hi)))
		}
	}
	groups := make([]portGroup, 0, len(order))
	for _, proto := range order {
		a := byProto[proto]
		g := portGroup{protocol: proto}
		if !a.all {
			g.ports = mergePortRanges(a.nums)
			for _, n := range a.names {
				g.ports = append(g.ports, NamedPort(n))
			}
		}
		groups = append(groups, g)
	}
	return groups, nil
}

// mergePortRanges sorts numeric port ranges and merges overlapping and adjacent ones.
func mergePortRanges(ports []Port) []Port {
	if len(ports) == 0 {
		return nil
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].MinPort != ports[j].MinPort {
			return ports[i].MinPort < ports[j].MinPort
		}
		return ports[i].MaxPort < ports[j].MaxPort
	})
	out := []Port{ports[0]}
	for _, p := range ports[1:] {
		last := &out[len(out)-1]
		if uint32(p.MinPort) <= uint32(last.MaxPort)+1 {
			if p.MaxPort > last.MaxPort {
				last.MaxPort = p.MaxPort
			}
			continue
		}
		out = append(out, p)
	}
	return out
}
