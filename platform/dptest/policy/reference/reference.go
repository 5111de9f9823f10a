// Package reference is the conformance suite's reference evaluator: it decides whether a flow between
// two pods is allowed directly from the resources, with Kubernetes NetworkPolicy and
// projectcalico.org/v3 semantics, without the calculation (common/calc) or the dataplane model
// (common/dpmodel): a test enforces that it imports neither. The suite checks every expected matrix of
// its data file against it, so the expectations are not just what common/calc happens to compute.
//
// It is deliberately naive: every question is answered by scanning every resource.
package reference

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/selector"
)

// Port is a named container port.
type Port struct {
	Name     string
	Protocol string // TCP, UDP, SCTP
	Port     int
}

// Pod is a pod of the model.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	IP              netip.Addr
	ServiceAccount  string
	Ports           []Port
	// Profiles are the profiles the pod's endpoint lists (kns.<ns>, ksa.<ns>.<sa>, and any others).
	Profiles []string
}

// Cluster is every resource that decides flows.
type Cluster struct {
	Namespaces      map[string]map[string]string // name → labels
	ServiceAccounts map[string]map[string]string // "<ns>/<name>" → labels
	Pods            []*Pod
	Tiers           []*api.Tier
	Policies        []*api.NetworkPolicy
	GlobalPolicies  []*api.GlobalNetworkPolicy
	K8sPolicies     []*networkingv1.NetworkPolicy
	NetworkSets     []*api.NetworkSet
	GlobalSets      []*api.GlobalNetworkSet
	HostEndpoints   []*api.HostEndpoint
	// Profiles are explicit profiles; kns.<ns> (allow all) and ksa.<ns>.<sa> (no rules) are implied by
	// Namespaces and ServiceAccounts.
	Profiles []*api.Profile
}

// Flow is one packet: the source and destination pods, protocol ("TCP", "UDP", "SCTP", "ICMP"), the
// destination port (or ICMP type and code).
type Flow struct {
	Src, Dst           *Pod
	Protocol           string
	Port               int
	ICMPType, ICMPCode int
	SrcPort            int
}

// Allowed reports whether the flow is allowed: egress at the source and ingress at the destination.
func (c *Cluster) Allowed(f Flow) bool {
	return c.side(f.Src, f, false) && c.side(f.Dst, f, true)
}

// peer is something a rule can match: a pod, a network set, a host endpoint.
type peer struct {
	labels     map[string]string // as selectors see them
	nsLabels   map[string]string // the namespace's labels (nil when not namespaced)
	namespaced bool
	namespace  string
	sa         string
	saLabels   map[string]string
	nets       []netip.Prefix
	ports      []Port
	isPod      bool
}

func (c *Cluster) nsLabels(ns string) map[string]string {
	l := map[string]string{}
	for k, v := range c.Namespaces[ns] {
		l[k] = v
	}
	l["projectcalico.org/name"] = ns
	return l
}

func (c *Cluster) saLabels(ns, sa string) map[string]string {
	l := map[string]string{}
	for k, v := range c.ServiceAccounts[ns+"/"+sa] {
		l[k] = v
	}
	l["projectcalico.org/name"] = sa
	return l
}

// podPeer builds what Calico selectors see of a pod: its labels, the computed ones, and its namespace's
// and service account's labels under pcns. and pcsa.
func (c *Cluster) podPeer(p *Pod) peer {
	l := map[string]string{}
	for k, v := range c.nsLabels(p.Namespace) {
		l["pcns."+k] = v
	}
	if p.ServiceAccount != "" {
		for k, v := range c.saLabels(p.Namespace, p.ServiceAccount) {
			l["pcsa."+k] = v
		}
	}
	for _, name := range p.Profiles {
		if pr := c.profile(name); pr != nil && !strings.HasPrefix(name, "kns.") && !strings.HasPrefix(name, "ksa.") {
			for k, v := range pr.Spec.LabelsToApply {
				if _, ok := l[k]; !ok {
					l[k] = v
				}
			}
		}
	}
	for k, v := range p.Labels {
		l[k] = v
	}
	l["projectcalico.org/namespace"] = p.Namespace
	l["projectcalico.org/orchestrator"] = "k8s"
	if p.ServiceAccount != "" {
		l["projectcalico.org/serviceaccount"] = p.ServiceAccount
	}
	var saL map[string]string
	if p.ServiceAccount != "" {
		saL = c.saLabels(p.Namespace, p.ServiceAccount)
	}
	return peer{labels: l, nsLabels: c.nsLabels(p.Namespace), namespaced: true, namespace: p.Namespace, sa: p.ServiceAccount,
		saLabels: saL, nets: []netip.Prefix{netip.PrefixFrom(p.IP, 32)}, ports: p.Ports, isPod: true}
}

// peersAt returns every entity owning address a.
func (c *Cluster) peersAt(a netip.Addr) []peer {
	var out []peer
	for _, p := range c.Pods {
		if p.IP == a {
			out = append(out, c.podPeer(p))
		}
	}
	for _, s := range c.NetworkSets {
		nets := parseNets(s.Spec.Nets)
		if containsAny(nets, a) {
			l := map[string]string{}
			for k, v := range c.nsLabels(s.Namespace) {
				l["pcns."+k] = v
			}
			for k, v := range s.Labels {
				l[k] = v
			}
			l["projectcalico.org/namespace"] = s.Namespace
			out = append(out, peer{labels: l, nsLabels: c.nsLabels(s.Namespace), namespaced: true, namespace: s.Namespace, nets: nets})
		}
	}
	for _, s := range c.GlobalSets {
		nets := parseNets(s.Spec.Nets)
		if containsAny(nets, a) {
			out = append(out, peer{labels: copyMap(s.Labels), nets: nets})
		}
	}
	for _, h := range c.HostEndpoints {
		nets := parseNets(h.Spec.ExpectedIPs)
		if containsAny(nets, a) {
			var ports []Port
			for _, p := range h.Spec.Ports {
				ports = append(ports, Port{Name: p.Name, Protocol: strings.ToUpper(p.Protocol.String()), Port: int(p.Port)})
			}
			out = append(out, peer{labels: copyMap(h.Labels), nets: nets, ports: ports})
		}
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func parseNets(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

func containsAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func (c *Cluster) profile(name string) *api.Profile {
	for _, p := range c.Profiles {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// applicable is one policy that applies to an endpoint in a direction.
type applicable struct {
	tier      string
	tierOrder float64
	tierKnown bool
	order     float64
	name      string
	namespace string
	kind      string
	decide    func(f Flow, ingress bool) string // "Allow", "Deny", "Pass" or "" (no rule decided)
}

func orderOf(o *float64) float64 {
	if o == nil {
		return math.Inf(1)
	}
	return *o
}

func (c *Cluster) tier(name string) (order float64, pass, known bool) {
	for _, t := range c.Tiers {
		if t.Name == name {
			return orderOf(t.Spec.Order), t.Spec.DefaultAction != nil && *t.Spec.DefaultAction == api.Pass, true
		}
	}
	switch name {
	case "default":
		return 1_000_000, false, true
	case "kube-admin":
		return 1_000, true, true
	case "kube-baseline":
		return 10_000_000, true, true
	}
	return math.Inf(1), false, false
}

func match(sel string, l map[string]string) bool {
	s, err := selector.Parse(sel)
	if err != nil {
		return false
	}
	return s.Evaluate(l)
}

func hasType(types []api.PolicyType, in, out []api.Rule, ingress bool) bool {
	if len(types) == 0 {
		if ingress {
			return len(in) > 0 || len(out) == 0
		}
		return len(out) > 0
	}
	want := api.PolicyTypeEgress
	if ingress {
		want = api.PolicyTypeIngress
	}
	return slices.Contains(types, want)
}

// side decides the ingress (at ep = destination) or egress (at ep = source) side.
func (c *Cluster) side(ep *Pod, f Flow, ingress bool) bool {
	me := c.podPeer(ep)
	var pols []applicable
	for _, p := range c.Policies {
		if p.Namespace != ep.Namespace || !hasType(p.Spec.Types, p.Spec.Ingress, p.Spec.Egress, ingress) {
			continue
		}
		if p.Spec.Selector != "" && !match(p.Spec.Selector, me.labels) {
			continue
		}
		if p.Spec.ServiceAccountSelector != "" && (me.sa == "" || !match(p.Spec.ServiceAccountSelector, me.saLabels)) {
			continue
		}
		p := p
		kind := "NetworkPolicy"
		if strings.HasPrefix(p.Name, "knp.default.") {
			kind = "KubernetesNetworkPolicy"
		}
		pols = append(pols, applicable{tier: cmp.Or(p.Spec.Tier, "default"), order: orderOf(p.Spec.Order), name: p.Name,
			namespace: p.Namespace, kind: kind, decide: func(f Flow, ingress bool) string {
				return c.calicoRules(p.Namespace, pick(ingress, p.Spec.Ingress, p.Spec.Egress), f, ingress)
			}})
	}
	for _, p := range c.GlobalPolicies {
		if p.Spec.DoNotTrack || p.Spec.PreDNAT || !hasType(p.Spec.Types, p.Spec.Ingress, p.Spec.Egress, ingress) {
			continue
		}
		if p.Spec.Selector != "" && !match(p.Spec.Selector, me.labels) {
			continue
		}
		if ns := p.Spec.NamespaceSelector; ns != "" && !c.nsSelectorMatches(ns, me) {
			continue
		}
		if p.Spec.ServiceAccountSelector != "" && (me.sa == "" || !match(p.Spec.ServiceAccountSelector, me.saLabels)) {
			continue
		}
		p := p
		pols = append(pols, applicable{tier: cmp.Or(p.Spec.Tier, "default"), order: orderOf(p.Spec.Order), name: p.Name,
			kind: "GlobalNetworkPolicy", decide: func(f Flow, ingress bool) string {
				return c.calicoRules("", pick(ingress, p.Spec.Ingress, p.Spec.Egress), f, ingress)
			}})
	}
	for _, p := range c.K8sPolicies {
		if p.Namespace != ep.Namespace || !k8sHasType(p, ingress) || !k8sSelects(&p.Spec.PodSelector, ep.Labels) {
			continue
		}
		p := p
		pols = append(pols, applicable{tier: "default", order: 1000, name: "knp.default." + p.Name, namespace: p.Namespace,
			kind: "KubernetesNetworkPolicy", decide: func(f Flow, ingress bool) string { return c.k8sRules(p, f, ingress) }})
	}
	for i := range pols {
		pols[i].tierOrder, _, pols[i].tierKnown = c.tier(pols[i].tier)
	}
	slices.SortFunc(pols, func(a, b applicable) int {
		if a.tierKnown != b.tierKnown {
			if a.tierKnown {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.tierOrder, b.tierOrder), strings.Compare(a.tier, b.tier), cmp.Compare(a.order, b.order),
			strings.Compare(a.name, b.name), strings.Compare(a.namespace, b.namespace), strings.Compare(a.kind, b.kind))
	})
	for i := 0; i < len(pols); {
		t := pols[i].tier
		decided := ""
		j := i
		for ; j < len(pols) && pols[j].tier == t; j++ {
			if decided != "" {
				continue
			}
			decided = pols[j].decide(f, ingress)
		}
		i = j
		switch decided {
		case "Allow":
			return true
		case "Deny":
			return false
		case "Pass":
			continue
		}
		if _, pass, _ := c.tier(t); !pass {
			return false
		}
	}
	for _, name := range ep.Profiles {
		switch {
		case strings.HasPrefix(name, "kns."):
			if _, ok := c.Namespaces[strings.TrimPrefix(name, "kns.")]; ok {
				return true // namespace profiles allow everything
			}
			return false
		case strings.HasPrefix(name, "ksa."):
			continue // service account profiles have no rules
		}
		pr := c.profile(name)
		if pr == nil {
			return false
		}
		switch c.calicoRules("", pick(ingress, pr.Spec.Ingress, pr.Spec.Egress), f, ingress) {
		case "Allow":
			return true
		case "Deny":
			return false
		}
	}
	return false
}

func pick[T any](ingress bool, in, out T) T {
	if ingress {
		return in
	}
	return out
}

// nsSelectorMatches evaluates a namespace selector against an entity's namespace: all() is any
// namespaced entity, global() any entity that is not namespaced, anything else the namespace's labels.
func (c *Cluster) nsSelectorMatches(sel string, p peer) bool {
	switch strings.TrimSpace(sel) {
	case "all()":
		return p.namespaced
	case "global()":
		return !p.namespaced
	}
	return match(sel, p.nsLabels)
}

var protoNums = map[string]int{"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "SCTP": 132, "UDPLITE": 136}

func protoNum(p *api.Protocol) int {
	if p.Name == "" {
		return int(p.Number)
	}
	return protoNums[strings.ToUpper(p.Name)]
}

// calicoRules runs Calico rules; ns is the policy's namespace ("" for global policies and profiles).
func (c *Cluster) calicoRules(ns string, rules []api.Rule, f Flow, ingress bool) string {
	for i := range rules {
		r := &rules[i]
		if !c.calicoRuleMatches(ns, r, f) {
			continue
		}
		if r.Action == api.Log {
			continue
		}
		return string(r.Action)
	}
	return ""
}

func (c *Cluster) calicoRuleMatches(ns string, r *api.Rule, f Flow) bool {
	fp := protoNums[f.Protocol]
	if r.Protocol != nil && protoNum(r.Protocol) != fp {
		return false
	}
	if r.NotProtocol != nil && protoNum(r.NotProtocol) == fp {
		return false
	}
	if r.ICMP != nil && r.ICMP.Type != nil {
		if f.Protocol != "ICMP" || *r.ICMP.Type != f.ICMPType || (r.ICMP.Code != nil && *r.ICMP.Code != f.ICMPCode) {
			return false
		}
	}
	if r.NotICMP != nil && r.NotICMP.Type != nil && f.Protocol == "ICMP" &&
		*r.NotICMP.Type == f.ICMPType && (r.NotICMP.Code == nil || *r.NotICMP.Code == f.ICMPCode) {
		return false
	}
	if r.IPVersion != nil && *r.IPVersion != 4 {
		return false // the model is IPv4
	}
	return c.entityMatches(ns, &r.Source, f.Src.IP, f.SrcPort, f.Protocol) &&
		c.entityMatches(ns, &r.Destination, f.Dst.IP, f.Port, f.Protocol)
}

// entityMatches decides one side of a Calico rule for address a and port.
func (c *Cluster) entityMatches(ns string, e *api.EntityRule, a netip.Addr, port int, proto string) bool {
	if len(e.Nets) > 0 && !containsAny(parseNets(e.Nets), a) {
		return false
	}
	if containsAny(parseNets(e.NotNets), a) {
		return false
	}
	hasSA := e.ServiceAccounts != nil && (len(e.ServiceAccounts.Names) > 0 || e.ServiceAccounts.Selector != "")
	restrictNS := e.NamespaceSelector != "" || (ns != "" && (e.Selector != "" || e.NotSelector != "" || hasSA))
	positive := restrictNS || e.Selector != "" || hasSA
	// ok says whether entity p satisfies the positive part (namespace, selector, service accounts).
	ok := func(p peer) bool {
		if e.NamespaceSelector != "" {
			if !c.nsSelectorMatches(e.NamespaceSelector, p) {
				return false
			}
		} else if restrictNS && p.namespace != ns {
			return false
		}
		if e.Selector != "" && !match(e.Selector, p.labels) {
			return false
		}
		if hasSA {
			if p.sa == "" {
				return false
			}
			if len(e.ServiceAccounts.Names) > 0 && !slices.Contains(e.ServiceAccounts.Names, p.sa) {
				return false
			}
			if e.ServiceAccounts.Selector != "" && !match(e.ServiceAccounts.Selector, p.saLabels) {
				return false
			}
		}
		return true
	}
	peers := c.peersAt(a)
	if positive && !slices.ContainsFunc(peers, ok) {
		return false
	}
	if e.NotSelector != "" && slices.ContainsFunc(peers, func(p peer) bool { return match(e.NotSelector, p.labels) }) {
		return false
	}
	portOK := func(list []api.Port) bool {
		for _, pt := range list {
			if pt.IsNamed() {
				for _, p := range peers {
					if positive && !ok(p) {
						continue
					}
					for _, np := range p.ports {
						if np.Name == pt.PortName && np.Protocol == proto && np.Port == port {
							return true
						}
					}
				}
				continue
			}
			if port >= int(pt.MinPort) && port <= int(pt.MaxPort) {
				return true
			}
		}
		return false
	}
	portProto := proto == "TCP" || proto == "UDP" || proto == "SCTP"
	if len(e.Ports) > 0 && (!portProto || !portOK(e.Ports)) {
		return false
	}
	if len(e.NotPorts) > 0 && portProto && portOK(e.NotPorts) {
		return false
	}
	return true
}

// ---- Kubernetes NetworkPolicy, natively ----

func k8sHasType(p *networkingv1.NetworkPolicy, ingress bool) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return ingress || len(p.Spec.Egress) > 0
	}
	want := networkingv1.PolicyTypeEgress
	if ingress {
		want = networkingv1.PolicyTypeIngress
	}
	return slices.Contains(p.Spec.PolicyTypes, want)
}

func k8sSelects(ls *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// k8sRules returns "Allow" when a rule of the policy allows the flow in that direction, else "".
func (c *Cluster) k8sRules(p *networkingv1.NetworkPolicy, f Flow, ingress bool) string {
	if ingress {
		for _, r := range p.Spec.Ingress {
			if c.k8sPeers(p.Namespace, r.From, f.Src) && k8sPorts(r.Ports, f, f.Dst) {
				return "Allow"
			}
		}
		return ""
	}
	for _, r := range p.Spec.Egress {
		if c.k8sPeers(p.Namespace, r.To, f.Dst) && k8sPorts(r.Ports, f, f.Dst) {
			return "Allow"
		}
	}
	return ""
}

func (c *Cluster) k8sPeers(ns string, peers []networkingv1.NetworkPolicyPeer, other *Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pr := range peers {
		switch {
		case pr.IPBlock != nil:
			cidr, err := netip.ParsePrefix(pr.IPBlock.CIDR)
			if err != nil || !cidr.Contains(other.IP) {
				continue
			}
			if containsAny(parseNets(pr.IPBlock.Except), other.IP) {
				continue
			}
			return true
		case pr.NamespaceSelector != nil:
			if !k8sSelects(pr.NamespaceSelector, c.Namespaces[other.Namespace]) {
				continue
			}
			if pr.PodSelector != nil && !k8sSelects(pr.PodSelector, other.Labels) {
				continue
			}
			return true
		case pr.PodSelector != nil:
			if other.Namespace == ns && k8sSelects(pr.PodSelector, other.Labels) {
				return true
			}
		}
	}
	return false
}

func k8sPorts(ports []networkingv1.NetworkPolicyPort, f Flow, dst *Pod) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := "TCP"
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if proto != f.Protocol {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.StrVal != "":
			for _, cp := range dst.Ports {
				if cp.Name == p.Port.StrVal && cp.Protocol == proto && cp.Port == f.Port {
					return true
				}
			}
		default:
			hi := p.Port.IntVal
			if p.EndPort != nil {
				hi = *p.EndPort
			}
			if f.Port >= int(p.Port.IntVal) && f.Port <= int(hi) {
				return true
			}
		}
	}
	return false
}
