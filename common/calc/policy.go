package calc

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/selector"
)

// profile is a Profile resource (or the memory of one that local endpoints list but that does not exist).
type profile struct {
	name    string
	exists  bool
	labels  map[string]string
	ilabels labels // labels, interned
	ingress []api.Rule
	egress  []api.Rule
	users   int // local endpoints listing it
	// compiled is set while users > 0.
	compiled *dpmodel.Profile
	refs     []string
}

// tier is a Tier resource's order and default action.
type tier struct {
	order         *float64
	defaultAction dpmodel.Action
}

// policy is one NetworkPolicy or GlobalNetworkPolicy.
type policy struct {
	key       string
	id        dpmodel.PolicyID
	what      string // for problems: `NetworkPolicy "ns/name"`
	namespace string
	order     *float64
	ingress   bool
	egress    bool
	inRules   []api.Rule
	outRules  []api.Rule
	// sel is the full selection: the selector with the namespace and service-account restrictions; nil
	// when it does not parse (selErr says why) and the policy then selects nothing.
	sel                         *selector.Selector
	selErr                      string
	always                      bool // AssumeNeededOnEveryNode
	untracked, preDNAT, forward bool

	matched  map[string]struct{}
	active   bool
	compiled *dpmodel.Policy
	refs     []string
}

func floatPtr(f *float64) *float64 {
	if f == nil {
		return nil
	}
	v := *f
	return &v
}

func policyTypes(types []api.PolicyType, in, out []api.Rule) (ingress, egress bool) {
	if len(types) == 0 {
		types = api.InferPolicyTypes(len(in) > 0, len(out) > 0)
	}
	return slices.Contains(types, api.PolicyTypeIngress), slices.Contains(types, api.PolicyTypeEgress)
}

func tierName(t string) string {
	if t == "" {
		return api.DefaultTierName
	}
	return t
}

// joinSelectors ANDs selector texts; each must parse on its own.
func joinSelectors(parts ...string) (*selector.Selector, error) {
	var terms []string
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			continue
		}
		s, err := selector.Parse(p)
		if err != nil {
			return nil, err
		}
		terms = append(terms, "("+s.String()+")")
	}
	if len(terms) == 0 {
		return selector.Parse("all()")
	}
	return selector.Parse(strings.Join(terms, " && "))
}

func prefixed(text, prefix string, allTo, globalTo *selector.Selector) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", nil
	}
	s, err := selector.Parse(text)
	if err != nil {
		return "", err
	}
	return s.PrefixLabels(prefix, allTo, globalTo).String(), nil
}

var (
	selHasNamespace = mustParse("has(" + api.LabelNamespace + ")")
	selNoNamespace  = mustParse("!has(" + api.LabelNamespace + ")")
)

func nsEquals(ns string) string {
	return api.LabelNamespace + " == " + quote(ns)
}

func quote(v string) string {
	if strings.Contains(v, "'") {
		return `"` + v + `"`
	}
	return "'" + v + "'"
}

func newNetworkPolicy(p *api.NetworkPolicy) *policy {
	kind := "NetworkPolicy"
	if strings.HasPrefix(p.Name, api.K8sNetworkPolicyNamePrefix) {
		kind = "KubernetesNetworkPolicy"
	}
	pol := &policy{
		key:       "np/" + p.Namespace + "/" + p.Name,
		id:        dpmodel.PolicyID{Tier: tierName(p.Spec.Tier), Kind: kind, Namespace: p.Namespace, Name: p.Name},
		what:      fmt.Sprintf("NetworkPolicy %q in namespace %q", p.Name, p.Namespace),
		namespace: p.Namespace,
		order:     floatPtr(p.Spec.Order),
		inRules:   p.Spec.Ingress, outRules: p.Spec.Egress,
		always: slices.Contains(p.Spec.PerformanceHints, api.PerfHintAssumeNeededOnEveryNode),
	}
	pol.ingress, pol.egress = policyTypes(p.Spec.Types, p.Spec.Ingress, p.Spec.Egress)
	sa, err := prefixed(p.Spec.ServiceAccountSelector, api.LabelPrefixServiceAccount, nil, nil)
	if err != nil {
		pol.selErr = "spec.serviceAccountSelector: " + err.Error()
		return pol
	}
	sel, err := joinSelectors(p.Spec.Selector, nsEquals(p.Namespace), sa)
	if err != nil {
		pol.selErr = "spec.selector: " + err.Error()
		return pol
	}
	pol.sel = sel
	return pol
}

func newGlobalNetworkPolicy(p *api.GlobalNetworkPolicy) *policy {
	pol := &policy{
		key:     "gnp//" + p.Name,
		id:      dpmodel.PolicyID{Tier: tierName(p.Spec.Tier), Kind: "GlobalNetworkPolicy", Name: p.Name},
		what:    fmt.Sprintf("GlobalNetworkPolicy %q", p.Name),
		order:   floatPtr(p.Spec.Order),
		inRules: p.Spec.Ingress, outRules: p.Spec.Egress,
		always:    slices.Contains(p.Spec.PerformanceHints, api.PerfHintAssumeNeededOnEveryNode),
		untracked: p.Spec.DoNotTrack, preDNAT: p.Spec.PreDNAT, forward: p.Spec.ApplyOnForward,
	}
	pol.ingress, pol.egress = policyTypes(p.Spec.Types, p.Spec.Ingress, p.Spec.Egress)
	sa, err := prefixed(p.Spec.ServiceAccountSelector, api.LabelPrefixServiceAccount, nil, nil)
	if err != nil {
		pol.selErr = "spec.serviceAccountSelector: " + err.Error()
		return pol
	}
	ns, err := prefixed(p.Spec.NamespaceSelector, api.LabelPrefixNamespace, selHasNamespace, selNoNamespace)
	if err != nil {
		pol.selErr = "spec.namespaceSelector: " + err.Error()
		return pol
	}
	sel, err := joinSelectors(p.Spec.Selector, ns, sa)
	if err != nil {
		pol.selErr = "spec.selector: " + err.Error()
		return pol
	}
	pol.sel = sel
	return pol
}

// setPolicy adds, replaces (p != nil) or removes a policy.
func (c *Calculator) setPolicy(key string, p *policy) {
	if old := c.policies[key]; old != nil {
		c.polIdx.remove(key) // reports every match ended: endpoints are marked dirty
		c.deactivate(old)
		delete(c.policies, key)
		delete(c.policyByID, old.id)
		c.seq.dirtyPolicy(old.id)
	}
	c.setProblem("pol:"+key, "", "")
	if p == nil {
		return
	}
	p.matched = map[string]struct{}{}
	c.policies[key] = p
	c.policyByID[p.id] = p
	if p.sel == nil {
		c.setProblem("pol:"+key, p.what, p.selErr+"; the policy selects nothing until it is fixed")
		return
	}
	c.polIdx.add(key, p.sel)
	if p.always {
		c.activate(p)
	}
}

// onPolicyMatch is the policy selector index's callback: policy key starts or stops selecting the local
// endpoint e.
func (c *Calculator) onPolicyMatch(key string, e *entity, on bool) {
	p := c.policies[key]
	eps := c.epPolicies[e.key]
	if on {
		if _, had := p.matched[e.key]; had {
			return
		}
		p.matched[e.key] = struct{}{}
		if eps == nil {
			eps = map[string]struct{}{}
			c.epPolicies[e.key] = eps
		}
		eps[key] = struct{}{}
		c.activate(p)
	} else {
		delete(p.matched, e.key)
		delete(eps, key)
		if len(eps) == 0 {
			delete(c.epPolicies, e.key)
		}
		if len(p.matched) == 0 && !p.always {
			c.deactivate(p)
		}
	}
	c.seq.dirtyEndpoint(e.key)
}

// activate compiles the policy's rules, referencing their IP sets, when it becomes needed on this node.
func (c *Calculator) activate(p *policy) {
	if p.active {
		return
	}
	p.active = true
	in, inSets, err1 := c.compileRules(p.id.String(), p.namespace, p.inRules, "inbound")
	out, outSets, err2 := c.compileRules(p.id.String(), p.namespace, p.outRules, "outbound")
	if err := cmp.Or(err1, err2); err != nil {
		reason := err.Error()
		p.compiled = &dpmodel.Policy{Invalid: true, Reason: reason,
			Inbound:  []dpmodel.Rule{{Action: dpmodel.Deny, ID: p.id.String() + "/inbound/invalid"}},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Deny, ID: p.id.String() + "/outbound/invalid"}}}
		c.setProblem("pol:"+p.key, p.what, reason+"; the endpoints it selects deny all traffic until it is fixed")
	} else {
		p.compiled = &dpmodel.Policy{Inbound: in, Outbound: out, Untracked: p.untracked, PreDNAT: p.preDNAT, ApplyOnForward: p.forward}
		p.refs = slices.Concat(inSets, outSets)
		for _, s := range p.refs {
			c.refIPSet(s)
		}
	}
	c.seq.dirtyPolicy(p.id)
}

func (c *Calculator) deactivate(p *policy) {
	if !p.active {
		return
	}
	p.active = false
	for _, s := range p.refs {
		c.derefIPSet(s)
	}
	p.refs, p.compiled = nil, nil
	c.seq.dirtyPolicy(p.id)
}

// ---- tiers ----

func (c *Calculator) setTier(name string, t *api.Tier) {
	if t == nil {
		delete(c.tiers, name)
	} else {
		da := dpmodel.Deny
		if t.Spec.DefaultAction != nil && *t.Spec.DefaultAction == api.Pass {
			da = dpmodel.Pass
		}
		c.tiers[name] = &tier{order: floatPtr(t.Spec.Order), defaultAction: da}
	}
	// Tier order and default actions are part of every local endpoint's update; there are few.
	for k := range c.endpoints {
		c.seq.dirtyEndpoint(k)
	}
}

// tierInfo returns a tier's order and default action, with the built-in tiers' defaults when the Tier
// resource is absent. valid is false for a tier that does not exist (it sorts last).
func (c *Calculator) tierInfo(name string) (order float64, da dpmodel.Action, valid bool) {
	if t := c.tiers[name]; t != nil {
		if t.order == nil {
			return math.Inf(1), t.defaultAction, true
		}
		return *t.order, t.defaultAction, true
	}
	switch name {
	case api.DefaultTierName:
		return api.DefaultTierOrder, dpmodel.Deny, true
	case api.KubeAdminTierName:
		return api.KubeAdminTierOrder, dpmodel.Pass, true
	case api.KubeBaselineTierName:
		return api.KubeBaselineTierOrder, dpmodel.Pass, true
	}
	return math.Inf(1), dpmodel.Deny, false
}

// ---- profiles ----

func (c *Calculator) setProfile(name string, p *api.Profile) {
	pr := c.profiles[name]
	if pr == nil {
		if p == nil {
			return
		}
		pr = &profile{name: name}
		c.profiles[name] = pr
	}
	oldLabels, oldExists, oldIn, oldOut := pr.labels, pr.exists, pr.ingress, pr.egress
	if p == nil {
		pr.exists, pr.labels, pr.ingress, pr.egress = false, nil, nil, nil
	} else {
		pr.exists, pr.labels, pr.ingress, pr.egress = true, p.Spec.LabelsToApply, p.Spec.Ingress, p.Spec.Egress
	}
	if !maps.Equal(oldLabels, pr.labels) {
		pr.ilabels = labelsFromMap(pr.labels)
		c.reparentKids(name)
	}
	rulesChanged := oldExists != pr.exists || !reflect.DeepEqual(oldIn, pr.ingress) || !reflect.DeepEqual(oldOut, pr.egress)
	if pr.users > 0 && rulesChanged {
		c.uncompileProfile(pr)
		c.compileProfile(pr)
	}
	if !pr.exists && pr.users == 0 {
		delete(c.profiles, name)
	}
}

// refProfiles sets the profiles a local endpoint lists (nil: none), keeping the users counts.
func (c *Calculator) refProfiles(le *localEndpoint, names []string) {
	for _, n := range names {
		pr := c.profiles[n]
		if pr == nil {
			pr = &profile{name: n}
			c.profiles[n] = pr
		}
		pr.users++
		if pr.users == 1 {
			c.compileProfile(pr)
		}
	}
	for _, n := range le.profiles {
		pr := c.profiles[n]
		pr.users--
		if pr.users == 0 {
			c.uncompileProfile(pr)
			if !pr.exists {
				delete(c.profiles, n)
			}
		}
	}
	le.profiles = slices.Clone(names)
}

func (c *Calculator) compileProfile(pr *profile) {
	id := "profile:" + pr.name
	if !pr.exists {
		// Calico fails closed on a profile an endpoint lists that does not exist.
		pr.compiled = &dpmodel.Profile{
			Inbound:  []dpmodel.Rule{{Action: dpmodel.Deny, ID: pr.name + "/inbound/missing"}},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Deny, ID: pr.name + "/outbound/missing"}},
		}
		c.setProblem(id, fmt.Sprintf("Profile %q", pr.name), "listed by a local endpoint but does not exist; its endpoints deny all traffic")
		c.seq.dirtyProfile(pr.name)
		return
	}
	c.setProblem(id, "", "")
	in, inSets, err1 := c.compileRules(pr.name, "", pr.ingress, "inbound")
	out, outSets, err2 := c.compileRules(pr.name, "", pr.egress, "outbound")
	if err := cmp.Or(err1, err2); err != nil {
		pr.compiled = &dpmodel.Profile{
			Inbound:  []dpmodel.Rule{{Action: dpmodel.Deny, ID: pr.name + "/inbound/invalid"}},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Deny, ID: pr.name + "/outbound/invalid"}},
		}
		c.setProblem(id, fmt.Sprintf("Profile %q", pr.name), err.Error()+"; its endpoints deny all traffic until it is fixed")
	} else {
		pr.compiled = &dpmodel.Profile{Inbound: in, Outbound: out}
		pr.refs = slices.Concat(inSets, outSets)
		for _, s := range pr.refs {
			c.refIPSet(s)
		}
	}
	c.seq.dirtyProfile(pr.name)
}

func (c *Calculator) uncompileProfile(pr *profile) {
	for _, s := range pr.refs {
		c.derefIPSet(s)
	}
	pr.refs, pr.compiled = nil, nil
	c.setProblem("profile:"+pr.name, "", "")
	c.seq.dirtyProfile(pr.name)
}

// ---- local endpoints ----

// localEndpoint is one of this node's endpoints as last received.
type localEndpoint struct {
	key      string
	wep      *api.WorkloadEndpoint
	hep      *api.HostEndpoint
	profiles []string
}

type sortedPolicy struct {
	p         *policy
	tierOrder float64
	tierValid bool
	order     float64
}

// endpointTiers builds the ordered tiers of a local endpoint from the policies selecting it: tiers by
// (valid, order with nil last, name), policies by (order with nil last, name, namespace, kind). filter
// chooses the policies of one list (normal, untracked, pre-DNAT, forward).
func (c *Calculator) endpointTiers(key string, filter func(*policy) bool) []dpmodel.TierInfo {
	var ps []sortedPolicy
	for pk := range c.epPolicies[key] {
		p := c.policies[pk]
		if p == nil || !p.active || !filter(p) {
			continue
		}
		to, _, valid := c.tierInfo(p.id.Tier)
		o := math.Inf(1)
		if p.order != nil {
			o = *p.order
		}
		ps = append(ps, sortedPolicy{p: p, tierOrder: to, tierValid: valid, order: o})
	}
	slices.SortFunc(ps, func(a, b sortedPolicy) int {
		if a.tierValid != b.tierValid {
			if a.tierValid {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.tierOrder, b.tierOrder), strings.Compare(a.p.id.Tier, b.p.id.Tier),
			cmp.Compare(a.order, b.order), strings.Compare(a.p.id.Name, b.p.id.Name),
			strings.Compare(a.p.id.Namespace, b.p.id.Namespace), strings.Compare(a.p.id.Kind, b.p.id.Kind))
	})
	var out []dpmodel.TierInfo
	for _, sp := range ps {
		if len(out) == 0 || out[len(out)-1].Name != sp.p.id.Tier {
			_, da, _ := c.tierInfo(sp.p.id.Tier)
			out = append(out, dpmodel.TierInfo{Name: sp.p.id.Tier, DefaultAction: da})
		}
		t := &out[len(out)-1]
		if sp.p.ingress {
			t.Ingress = append(t.Ingress, sp.p.id)
		}
		if sp.p.egress {
			t.Egress = append(t.Egress, sp.p.id)
		}
	}
	return out
}

func isNormal(p *policy) bool    { return !p.untracked && !p.preDNAT }
func isUntracked(p *policy) bool { return p.untracked }
func isPreDNAT(p *policy) bool   { return p.preDNAT && !p.untracked }
func isForward(p *policy) bool   { return p.forward && !p.untracked && !p.preDNAT }
