package dpeval

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// Packet is the first packet of a flow.
type Packet struct {
	Src, Dst         netip.Addr
	Protocol         uint8
	SrcPort, DstPort uint16
	// ICMPType and ICMPCode are read for ICMP (1) and ICMPv6 (58) packets.
	ICMPType, ICMPCode uint8
}

func (p Packet) String() string {
	if p.Protocol == 1 || p.Protocol == 58 {
		return fmt.Sprintf("%s -> %s %s type %d code %d", p.Src, p.Dst, dpmodel.ProtoName(p.Protocol), p.ICMPType, p.ICMPCode)
	}
	return fmt.Sprintf("%s:%d -> %s:%d %s", p.Src, p.SrcPort, p.Dst, p.DstPort, dpmodel.ProtoName(p.Protocol))
}

// Direction is the side of an endpoint a packet crosses.
type Direction int

const (
	// Ingress: the packet enters the endpoint (it is the destination).
	Ingress Direction = iota + 1
	// Egress: the packet leaves the endpoint (it is the source).
	Egress
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// Step is one policy or profile consulted, and what it did.
type Step struct {
	// Tier is the tier's name; empty for a profile.
	Tier string `json:"tier,omitempty"`
	// Policy is the policy's ID (dpmodel.PolicyID.String()) or the profile's name.
	Policy string `json:"policy"`
	// Profile is true for a profile.
	Profile bool `json:"profile,omitempty"`
	// Rule is the index of the rule that decided or passed (-1: none matched).
	Rule int `json:"rule"`
	// RuleID is that rule's ID.
	RuleID string `json:"ruleID,omitempty"`
	// Action is what the rule did ("Allow", "Deny", "Pass"); empty when no rule matched.
	Action string `json:"action,omitempty"`
	// Logged lists the Log rules that matched on the way.
	Logged []int `json:"logged,omitempty"`
	// Invalid is set for a policy the calculation could not compile.
	Invalid string `json:"invalid,omitempty"`
}

// Result is one side's verdict and how it was reached.
type Result struct {
	Verdict dpmodel.Action `json:"-"`
	// Decision says what decided: "rule", "tier-default", "profile", "no-profile-matched", "not-local".
	Decision string `json:"decidedBy"`
	// Tier is the tier whose rule or default action decided (empty otherwise).
	Tier string `json:"tier,omitempty"`
	// Steps lists every policy and profile consulted, in order.
	Steps []Step `json:"steps"`
}

// Evaluate decides one direction for a packet at an endpoint with the given tiers and profiles.
func Evaluate(s *dpmodel.State, tiers []dpmodel.TierInfo, profiles []string, dir Direction, p Packet) Result {
	var res Result
	for _, t := range tiers {
		ids := t.Ingress
		if dir == Egress {
			ids = t.Egress
		}
		if len(ids) == 0 {
			continue
		}
		passed := false
		for _, id := range ids {
			pol, ok := s.Policies[id]
			step := Step{Tier: t.Name, Policy: id.String(), Rule: -1}
			if !ok {
				// Contract breach: an endpoint lists a policy the state lacks. Fail closed.
				step.Invalid = "policy missing from the dataplane state"
				step.Action = "Deny"
				res.Steps = append(res.Steps, step)
				return res.decide(dpmodel.Deny, "rule", t.Name)
			}
			if pol.Invalid {
				step.Invalid = pol.Reason
			}
			rules := pol.Inbound
			if dir == Egress {
				rules = pol.Outbound
			}
			act, _ := evalRules(s, rules, p, &step)
			res.Steps = append(res.Steps, step)
			if act == dpmodel.Allow || act == dpmodel.Deny {
				return res.decide(act, "rule", t.Name)
			}
			if act == dpmodel.Pass {
				passed = true
				break
			}
		}
		if passed {
			continue
		}
		if t.DefaultAction == dpmodel.Pass {
			continue
		}
		return res.decide(dpmodel.Deny, "tier-default", t.Name)
	}
	for _, name := range profiles {
		pr, ok := s.Profiles[name]
		step := Step{Policy: name, Profile: true, Rule: -1}
		if !ok {
			step.Invalid = "profile missing from the dataplane state"
			step.Action = "Deny"
			res.Steps = append(res.Steps, step)
			return res.decide(dpmodel.Deny, "profile", "")
		}
		rules := pr.Inbound
		if dir == Egress {
			rules = pr.Outbound
		}
		act, _ := evalRules(s, rules, p, &step)
		res.Steps = append(res.Steps, step)
		if act == dpmodel.Allow || act == dpmodel.Deny {
			return res.decide(act, "profile", "")
		}
	}
	return res.decide(dpmodel.Deny, "no-profile-matched", "")
}

func (r Result) decide(a dpmodel.Action, how, tier string) Result {
	r.Verdict, r.Decision, r.Tier = a, how, tier
	return r
}

// evalRules runs rules in order; it returns the deciding action (Allow, Deny, Pass) and its index, or
// 0 and -1 when none decided.
func evalRules(s *dpmodel.State, rules []dpmodel.Rule, p Packet, step *Step) (dpmodel.Action, int) {
	for i := range rules {
		r := &rules[i]
		if !Matches(s, r, p) {
			continue
		}
		if r.Action == dpmodel.Log {
			step.Logged = append(step.Logged, i)
			continue
		}
		step.Rule, step.RuleID, step.Action = i, r.ID, r.Action.String()
		return r.Action, i
	}
	return 0, -1
}

// Matches reports whether rule r matches packet p, reading IP sets from s. A set that does not exist
// matches nothing.
func Matches(s *dpmodel.State, r *dpmodel.Rule, p Packet) bool {
	if r.IPVersion == 4 && !p.Src.Is4() || r.IPVersion == 6 && !p.Src.Is6() {
		return false
	}
	if r.Protocol != 0 && r.Protocol != p.Protocol {
		return false
	}
	if r.NotProtocol != 0 && r.NotProtocol == p.Protocol {
		return false
	}
	isICMP := p.Protocol == 1 || p.Protocol == 58
	if r.ICMP != nil && (!isICMP || !icmpMatch(r.ICMP, p)) {
		return false
	}
	if r.NotICMP != nil && isICMP && icmpMatch(r.NotICMP, p) {
		return false
	}
	return side(s, p.Src, p.Protocol, p.SrcPort, r.SrcNets, r.NotSrcNets, r.SrcIPSetIDs, r.NotSrcIPSetIDs,
		r.SrcPorts, r.NotSrcPorts, r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs) &&
		side(s, p.Dst, p.Protocol, p.DstPort, r.DstNets, r.NotDstNets, r.DstIPSetIDs, r.NotDstIPSetIDs,
			r.DstPorts, r.NotDstPorts, r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs)
}

func icmpMatch(m *dpmodel.ICMPMatch, p Packet) bool {
	return m.Type == p.ICMPType && (m.Code == nil || *m.Code == p.ICMPCode)
}

func side(s *dpmodel.State, a netip.Addr, proto uint8, port uint16, nets, notNets []netip.Prefix, sets, notSets []string,
	ports, notPorts []dpmodel.PortRange, named, notNamed []string) bool {
	if len(nets) > 0 && !slices.ContainsFunc(nets, func(n netip.Prefix) bool { return n.Contains(a) }) {
		return false
	}
	if slices.ContainsFunc(notNets, func(n netip.Prefix) bool { return n.Contains(a) }) {
		return false
	}
	for _, id := range sets {
		if !inNetSet(s, id, a) {
			return false
		}
	}
	for _, id := range notSets {
		if inNetSet(s, id, a) {
			return false
		}
	}
	hasPorts := proto == 6 || proto == 17 || proto == 132
	if len(ports) > 0 || len(named) > 0 {
		ok := hasPorts && (slices.ContainsFunc(ports, func(r dpmodel.PortRange) bool { return r.Contains(port) }) ||
			slices.ContainsFunc(named, func(id string) bool { return inPortSet(s, id, a, proto, port) }))
		if !ok {
			return false
		}
	}
	if hasPorts && (slices.ContainsFunc(notPorts, func(r dpmodel.PortRange) bool { return r.Contains(port) }) ||
		slices.ContainsFunc(notNamed, func(id string) bool { return inPortSet(s, id, a, proto, port) })) {
		return false
	}
	return true
}

func inNetSet(s *dpmodel.State, id string, a netip.Addr) bool {
	set, ok := s.IPSets[id]
	if !ok {
		return false
	}
	for _, m := range set.Members {
		if m.Net.Contains(a) {
			return true
		}
	}
	return false
}

func inPortSet(s *dpmodel.State, id string, a netip.Addr, proto uint8, port uint16) bool {
	set, ok := s.IPSets[id]
	if !ok {
		return false
	}
	for _, m := range set.Members {
		if m.Net.Contains(a) && m.Protocol == proto && m.Port == port {
			return true
		}
	}
	return false
}

// EndpointAt finds the local endpoint of s that owns address a: a workload endpoint with a in its
// addresses, else a host endpoint with a among its expected IPs.
func EndpointAt(s *dpmodel.State, a netip.Addr) (tiers []dpmodel.TierInfo, profiles []string, name string, ok bool) {
	for id, w := range s.Workloads {
		for _, n := range slices.Concat(w.IPv4Nets, w.IPv6Nets) {
			if n.Contains(a) {
				return w.Tiers, w.ProfileIDs, "WorkloadEndpoint " + id.String(), true
			}
		}
	}
	for id, h := range s.HostEndpoints {
		if slices.Contains(h.ExpectedIPs, a) {
			return h.Tiers, h.ProfileIDs, "HostEndpoint " + id, true
		}
	}
	return nil, nil, "", false
}

// Side evaluates one direction for the endpoint of s that owns the packet's source (Egress) or
// destination (Ingress); an address that is no local endpoint of s is allowed ("not-local").
func Side(s *dpmodel.State, dir Direction, p Packet) (Result, string) {
	a := p.Dst
	if dir == Egress {
		a = p.Src
	}
	tiers, profiles, name, ok := EndpointAt(s, a)
	if !ok {
		return Result{Verdict: dpmodel.Allow, Decision: "not-local"}, ""
	}
	return Evaluate(s, tiers, profiles, dir, p), name
}
