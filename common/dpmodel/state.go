package dpmodel

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
)

// ErrOrder is wrapped by State.Apply's errors for an update that breaks the ordering contract.
var ErrOrder = errors.New("dpmodel ordering contract broken")

// ErrInvalid is wrapped by State.Apply's errors for a malformed update.
var ErrInvalid = errors.New("invalid dpmodel update")

// IPSet is an IP set's type and members (sorted, unique).
type IPSet struct {
	Type    IPSetType
	Members []Member
}

// State is a node's complete desired dataplane state, built by applying Updates. It checks the ordering
// contract (see the package documentation) and is what the fake dataplane records and what dataplanes
// may use to hold their desired state. The zero value is not usable; call NewState. Not safe for
// concurrent use.
type State struct {
	Config        *Config
	IPSets        map[string]*IPSet
	Policies      map[PolicyID]Policy
	Profiles      map[string]Profile
	Workloads     map[WorkloadEndpointID]WorkloadEndpoint
	HostEndpoints map[string]HostEndpoint
	Routes        map[netip.Prefix]Route
	VTEPs         map[string]VTEP
	Pools         map[netip.Prefix]Pool
	Hosts         map[string]Host

	ipsetRefs   map[string]int
	policyRefs  map[PolicyID]int
	profileRefs map[string]int
	vtepRefs    map[string]int
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		IPSets: map[string]*IPSet{}, Policies: map[PolicyID]Policy{}, Profiles: map[string]Profile{},
		Workloads: map[WorkloadEndpointID]WorkloadEndpoint{}, HostEndpoints: map[string]HostEndpoint{},
		Routes: map[netip.Prefix]Route{}, VTEPs: map[string]VTEP{}, Pools: map[netip.Prefix]Pool{}, Hosts: map[string]Host{},
		ipsetRefs: map[string]int{}, policyRefs: map[PolicyID]int{}, profileRefs: map[string]int{}, vtepRefs: map[string]int{},
	}
}

func orderErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrOrder, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Apply applies one update. An update that breaks the ordering contract or is malformed returns an error
// wrapping ErrOrder or ErrInvalid and changes nothing.
func (s *State) Apply(u Update) error {
	switch u := u.(type) {
	case IPSetUpdate:
		if u.ID == "" {
			return invalid("IPSetUpdate without an ID")
		}
		ms, err := checkMembers(u.ID, u.Type, u.Members)
		if err != nil {
			return err
		}
		s.IPSets[u.ID] = &IPSet{Type: u.Type, Members: ms}
	case IPSetDelta:
		set, ok := s.IPSets[u.ID]
		if !ok {
			return orderErr("IPSetDelta for IP set %q, which does not exist", u.ID)
		}
		add, err := checkMembers(u.ID, set.Type, slices.Clone(u.Added))
		if err != nil {
			return err
		}
		rm := map[Member]bool{}
		for _, m := range u.Removed {
			rm[m] = true
		}
		for _, m := range add {
			if rm[m] {
				return invalid("IPSetDelta for %q adds and removes %s", u.ID, m)
			}
		}
		ms := slices.DeleteFunc(slices.Clone(set.Members), func(m Member) bool { return rm[m] })
		set.Members = sortMembers(append(ms, add...))
	case IPSetRemove:
		if n := s.ipsetRefs[u.ID]; n > 0 {
			return orderErr("IP set %q removed while %d policies or profiles still refer to it", u.ID, n)
		}
		delete(s.IPSets, u.ID)
	case PolicyUpdate:
		return applyRuleOwner(s, s.Policies, s.policyRefs, u.ID, &u.Policy, "policy "+u.ID.String())
	case PolicyRemove:
		return applyRuleOwner(s, s.Policies, s.policyRefs, u.ID, nil, "policy "+u.ID.String())
	case ProfileUpdate:
		return applyRuleOwner(s, s.Profiles, s.profileRefs, u.ID, &u.Profile, fmt.Sprintf("profile %q", u.ID))
	case ProfileRemove:
		return applyRuleOwner(s, s.Profiles, s.profileRefs, u.ID, nil, fmt.Sprintf("profile %q", u.ID))
	case WorkloadEndpointUpdate:
		if u.ID.Name == "" {
			return invalid("WorkloadEndpointUpdate without a name")
		}
		if err := s.checkEndpoint("workload endpoint "+u.ID.String(), u.Endpoint.ProfileIDs, u.Endpoint.Tiers); err != nil {
			return err
		}
		if old, ok := s.Workloads[u.ID]; ok {
			s.refEndpoint(-1, old.ProfileIDs, old.Tiers)
		}
		s.refEndpoint(1, u.Endpoint.ProfileIDs, u.Endpoint.Tiers)
		s.Workloads[u.ID] = u.Endpoint
	case WorkloadEndpointRemove:
		if old, ok := s.Workloads[u.ID]; ok {
			s.refEndpoint(-1, old.ProfileIDs, old.Tiers)
			delete(s.Workloads, u.ID)
		}
	case HostEndpointUpdate:
		if u.ID == "" {
			return invalid("HostEndpointUpdate without a name")
		}
		e := u.Endpoint
		if err := s.checkEndpoint("host endpoint "+u.ID, e.ProfileIDs, e.allTiers()...); err != nil {
			return err
		}
		if old, ok := s.HostEndpoints[u.ID]; ok {
			s.refEndpoint(-1, old.ProfileIDs, old.allTiers()...)
		}
		s.refEndpoint(1, e.ProfileIDs, e.allTiers()...)
		s.HostEndpoints[u.ID] = e
	case HostEndpointRemove:
		if old, ok := s.HostEndpoints[u.ID]; ok {
			s.refEndpoint(-1, old.ProfileIDs, old.allTiers()...)
			delete(s.HostEndpoints, u.ID)
		}
	case RouteUpdate:
		if !u.Dst.IsValid() || u.Dst != u.Dst.Masked() {
			return invalid("route destination %s is not a valid masked prefix", u.Dst)
		}
		if needsVTEP(u.Route) {
			if _, ok := s.VTEPs[u.Route.DstNode]; !ok {
				return orderErr("VXLAN route to %s via node %q before that node's VTEP", u.Dst, u.Route.DstNode)
			}
		}
		if old, ok := s.Routes[u.Dst]; ok && needsVTEP(old) {
			s.vtepRefs[old.DstNode]--
		}
		if needsVTEP(u.Route) {
			s.vtepRefs[u.Route.DstNode]++
		}
		s.Routes[u.Dst] = u.Route
	case RouteRemove:
		if old, ok := s.Routes[u.Dst]; ok {
			if needsVTEP(old) {
				s.vtepRefs[old.DstNode]--
			}
			delete(s.Routes, u.Dst)
		}
	case VTEPUpdate:
		if u.Node == "" {
			return invalid("VTEPUpdate without a node")
		}
		s.VTEPs[u.Node] = u.VTEP
	case VTEPRemove:
		if n := s.vtepRefs[u.Node]; n > 0 {
			return orderErr("VTEP of node %q removed while %d VXLAN routes still use it", u.Node, n)
		}
		delete(s.VTEPs, u.Node)
	case PoolUpdate:
		if !u.CIDR.IsValid() {
			return invalid("pool CIDR %s is not valid", u.CIDR)
		}
		s.Pools[u.CIDR] = u.Pool
	case PoolRemove:
		delete(s.Pools, u.CIDR)
	case HostUpdate:
		if u.Node == "" {
			return invalid("HostUpdate without a node")
		}
		s.Hosts[u.Node] = u.Host
	case HostRemove:
		delete(s.Hosts, u.Node)
	case ConfigUpdate:
		c := u.Config
		s.Config = &c
	case nil:
		return invalid("nil update")
	default:
		return invalid("unknown update type %T", u)
	}
	return nil
}

// ApplyAll applies updates in order and stops at the first error, which names the update's position.
// Updates before the failing one stay applied.
func (s *State) ApplyAll(us []Update) error {
	for i, u := range us {
		if err := s.Apply(u); err != nil {
			return fmt.Errorf("update %d (%s): %w", i, u.Kind(), err)
		}
	}
	return nil
}

// ruleOwner is what endpoints list and whose rules refer to IP sets: a policy or a profile.
type ruleOwner interface {
	Policy | Profile
	ruleLists() [][]Rule
}

func (p Policy) ruleLists() [][]Rule  { return [][]Rule{p.Inbound, p.Outbound} }
func (p Profile) ruleLists() [][]Rule { return [][]Rule{p.Inbound, p.Outbound} }

// applyRuleOwner adds, replaces (v set) or removes (v nil) a policy or profile in m, keeping the IP set
// reference counts of its rules. refs counts the endpoints listing each one: removing one that is still
// listed breaks the ordering contract; removing an absent one is a no-op. owner names it in errors.
// On error nothing changes.
func applyRuleOwner[K comparable, T ruleOwner](s *State, m map[K]T, refs map[K]int, id K, v *T, owner string) error {
	if v == nil {
		if n := refs[id]; n > 0 {
			return orderErr("%s removed while %d endpoints still list it", owner, n)
		}
	} else if err := s.checkRules(owner, (*v).ruleLists()...); err != nil {
		return err
	}
	if old, ok := m[id]; ok {
		s.refRules(-1, old.ruleLists()...)
		delete(m, id)
	}
	if v != nil {
		s.refRules(1, (*v).ruleLists()...)
		m[id] = *v
	}
	return nil
}

func needsVTEP(r Route) bool {
	return r.Encap == EncapVXLAN && (r.Type == RouteRemoteBlock || r.Type == RouteRemoteWorkload || r.Type == RouteRemoteTunnel)
}

func (e *HostEndpoint) allTiers() [][]TierInfo {
	return [][]TierInfo{e.Tiers, e.UntrackedTiers, e.PreDNATTiers, e.ForwardTiers}
}

func checkMembers(id string, t IPSetType, ms []Member) ([]Member, error) {
	switch t {
	case IPSetNet, IPSetIPPort:
	default:
		return nil, invalid("IP set %q has no valid type (%v)", id, t)
	}
	ms = slices.Clone(ms)
	for i, m := range ms {
		if !m.Net.IsValid() {
			return nil, invalid("IP set %q member %d has no address", id, i)
		}
		ms[i].Net = m.Net.Masked()
		if t == IPSetNet && (m.Protocol != 0 || m.Port != 0) {
			return nil, invalid("IP set %q is a net set but member %s has a protocol or port", id, m)
		}
		if t == IPSetIPPort {
			if !m.Net.IsSingleIP() {
				return nil, invalid("IP set %q is an ip,port set but member %s is a network", id, m)
			}
			if m.Protocol != 6 && m.Protocol != 17 && m.Protocol != 132 {
				return nil, invalid("IP set %q member %s: protocol must be tcp, udp or sctp", id, m)
			}
		}
	}
	return sortMembers(ms), nil
}

func (s *State) checkRules(owner string, lists ...[]Rule) error {
	for _, rules := range lists {
		for i := range rules {
			if rules[i].Action < Allow || rules[i].Action > Log {
				return invalid("%s rule %d has no valid action", owner, i)
			}
			for _, id := range rules[i].IPSetRefs() {
				if _, ok := s.IPSets[id]; !ok {
					return orderErr("%s rule %d refers to IP set %q, which does not exist", owner, i, id)
				}
			}
		}
	}
	return nil
}

func (s *State) refRules(d int, lists ...[]Rule) {
	for _, rules := range lists {
		for i := range rules {
			for _, id := range rules[i].IPSetRefs() {
				s.ipsetRefs[id] += d
				if s.ipsetRefs[id] == 0 {
					delete(s.ipsetRefs, id)
				}
			}
		}
	}
}

func (s *State) checkEndpoint(owner string, profiles []string, tierLists ...[]TierInfo) error {
	for _, p := range profiles {
		if _, ok := s.Profiles[p]; !ok {
			return orderErr("%s lists profile %q, which does not exist", owner, p)
		}
	}
	for _, tiers := range tierLists {
		for _, t := range tiers {
			if t.DefaultAction != Deny && t.DefaultAction != Pass {
				return invalid("%s tier %q: default action must be Deny or Pass, not %v", owner, t.Name, t.DefaultAction)
			}
			for _, id := range slices.Concat(t.Ingress, t.Egress) {
				if _, ok := s.Policies[id]; !ok {
					return orderErr("%s lists policy %s, which does not exist", owner, id)
				}
			}
		}
	}
	return nil
}

func (s *State) refEndpoint(d int, profiles []string, tierLists ...[]TierInfo) {
	for _, p := range profiles {
		s.profileRefs[p] += d
		if s.profileRefs[p] == 0 {
			delete(s.profileRefs, p)
		}
	}
	for _, tiers := range tierLists {
		for _, t := range tiers {
			for _, id := range slices.Concat(t.Ingress, t.Egress) {
				s.policyRefs[id] += d
				if s.policyRefs[id] == 0 {
					delete(s.policyRefs, id)
				}
			}
		}
	}
}

// Snapshot returns the updates that build s from an empty state, in dependency order: config, IP sets,
// profiles, policies, endpoints, pools, hosts, VTEPs, routes; each group sorted by ID so the result is
// deterministic.
func (s *State) Snapshot() []Update {
	return Diff(NewState(), s)
}

// Diff returns the updates that turn from into to, in dependency order: config; IP set adds and
// changes; profile and policy adds and changes; endpoint adds, changes and removes; policy and profile
// removes; IP set removes; pools and hosts; VTEP adds; route removes, adds and changes; VTEP removes.
// Applying them to a copy of from yields a state equal to to. Unchanged objects produce nothing.
func Diff(from, to *State) []Update {
	var out []Update
	if to.Config != nil && (from.Config == nil || !reflect.DeepEqual(*from.Config, *to.Config)) {
		out = append(out, ConfigUpdate{Config: *to.Config})
	}
	for _, id := range sortedKeys(to.IPSets, cmp.Compare[string]) {
		if old, ok := from.IPSets[id]; !ok || !reflect.DeepEqual(old, to.IPSets[id]) {
			out = append(out, IPSetUpdate{ID: id, Type: to.IPSets[id].Type, Members: slices.Clone(to.IPSets[id].Members)})
		}
	}
	for _, id := range sortedKeys(to.Profiles, cmp.Compare[string]) {
		if old, ok := from.Profiles[id]; !ok || !reflect.DeepEqual(old, to.Profiles[id]) {
			out = append(out, ProfileUpdate{ID: id, Profile: to.Profiles[id]})
		}
	}
	for _, id := range sortedKeys(to.Policies, PolicyID.Compare) {
		if old, ok := from.Policies[id]; !ok || !reflect.DeepEqual(old, to.Policies[id]) {
			out = append(out, PolicyUpdate{ID: id, Policy: to.Policies[id]})
		}
	}
	weCmp := func(a, b WorkloadEndpointID) int { return cmp.Compare(a.String(), b.String()) }
	for _, id := range sortedKeys(to.Workloads, weCmp) {
		if old, ok := from.Workloads[id]; !ok || !reflect.DeepEqual(old, to.Workloads[id]) {
			out = append(out, WorkloadEndpointUpdate{ID: id, Endpoint: to.Workloads[id]})
		}
	}
	for _, id := range sortedKeys(to.HostEndpoints, cmp.Compare[string]) {
		if old, ok := from.HostEndpoints[id]; !ok || !reflect.DeepEqual(old, to.HostEndpoints[id]) {
			out = append(out, HostEndpointUpdate{ID: id, Endpoint: to.HostEndpoints[id]})
		}
	}
	for _, id := range sortedKeys(from.Workloads, weCmp) {
		if _, ok := to.Workloads[id]; !ok {
			out = append(out, WorkloadEndpointRemove{ID: id})
		}
	}
	for _, id := range sortedKeys(from.HostEndpoints, cmp.Compare[string]) {
		if _, ok := to.HostEndpoints[id]; !ok {
			out = append(out, HostEndpointRemove{ID: id})
		}
	}
	for _, id := range sortedKeys(from.Policies, PolicyID.Compare) {
		if _, ok := to.Policies[id]; !ok {
			out = append(out, PolicyRemove{ID: id})
		}
	}
	for _, id := range sortedKeys(from.Profiles, cmp.Compare[string]) {
		if _, ok := to.Profiles[id]; !ok {
			out = append(out, ProfileRemove{ID: id})
		}
	}
	for _, id := range sortedKeys(from.IPSets, cmp.Compare[string]) {
		if _, ok := to.IPSets[id]; !ok {
			out = append(out, IPSetRemove{ID: id})
		}
	}
	prefixCmp := func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	}
	for _, c := range sortedKeys(to.Pools, prefixCmp) {
		if old, ok := from.Pools[c]; !ok || old != to.Pools[c] {
			out = append(out, PoolUpdate{CIDR: c, Pool: to.Pools[c]})
		}
	}
	for _, c := range sortedKeys(from.Pools, prefixCmp) {
		if _, ok := to.Pools[c]; !ok {
			out = append(out, PoolRemove{CIDR: c})
		}
	}
	for _, n := range sortedKeys(to.Hosts, cmp.Compare[string]) {
		if old, ok := from.Hosts[n]; !ok || old != to.Hosts[n] {
			out = append(out, HostUpdate{Node: n, Host: to.Hosts[n]})
		}
	}
	for _, n := range sortedKeys(from.Hosts, cmp.Compare[string]) {
		if _, ok := to.Hosts[n]; !ok {
			out = append(out, HostRemove{Node: n})
		}
	}
	for _, n := range sortedKeys(to.VTEPs, cmp.Compare[string]) {
		if old, ok := from.VTEPs[n]; !ok || old != to.VTEPs[n] {
			out = append(out, VTEPUpdate{Node: n, VTEP: to.VTEPs[n]})
		}
	}
	for _, d := range sortedKeys(from.Routes, prefixCmp) {
		if _, ok := to.Routes[d]; !ok {
			out = append(out, RouteRemove{Dst: d})
		}
	}
	for _, d := range sortedKeys(to.Routes, prefixCmp) {
		if old, ok := from.Routes[d]; !ok || old != to.Routes[d] {
			out = append(out, RouteUpdate{Dst: d, Route: to.Routes[d]})
		}
	}
	for _, n := range sortedKeys(from.VTEPs, cmp.Compare[string]) {
		if _, ok := to.VTEPs[n]; !ok {
			out = append(out, VTEPRemove{Node: n})
		}
	}
	return out
}

// Clone returns a deep copy of s (rules and slices are shared: updates replace them, never mutate them).
func (s *State) Clone() *State {
	c := NewState()
	if s.Config != nil {
		cfg := *s.Config
		c.Config = &cfg
	}
	for id, set := range s.IPSets {
		c.IPSets[id] = &IPSet{Type: set.Type, Members: slices.Clone(set.Members)}
	}
	c.Policies, c.Profiles = maps.Clone(s.Policies), maps.Clone(s.Profiles)
	c.Workloads, c.HostEndpoints = maps.Clone(s.Workloads), maps.Clone(s.HostEndpoints)
	c.Routes, c.VTEPs, c.Pools, c.Hosts = maps.Clone(s.Routes), maps.Clone(s.VTEPs), maps.Clone(s.Pools), maps.Clone(s.Hosts)
	c.ipsetRefs, c.policyRefs = maps.Clone(s.ipsetRefs), maps.Clone(s.policyRefs)
	c.profileRefs, c.vtepRefs = maps.Clone(s.profileRefs), maps.Clone(s.vtepRefs)
	return c
}

// Equal reports whether two states hold the same desired state.
func (s *State) Equal(o *State) bool { return len(Diff(s, o)) == 0 && len(Diff(o, s)) == 0 }

func sortedKeys[K comparable, V any](m map[K]V, f func(a, b K) int) []K {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, f)
	return ks
}
