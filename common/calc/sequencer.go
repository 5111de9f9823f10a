package calc

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// setChange is an IP set's pending change: a full update (new set) or member deltas.
type setChange struct {
	full           bool
	gone           bool
	added, removed map[dpmodel.Member]struct{}
}

// sequencer is the event sequencer: it keeps at most one pending change per object (marking objects
// dirty, the value being read at flush time) and emits them in dpmodel's dependency order. It remembers
// what it sent, so that a removal is emitted only for an object the dataplane has.
type sequencer struct {
	sets      map[string]*setChange
	policies  map[dpmodel.PolicyID]struct{}
	profiles  map[string]struct{}
	endpoints map[string]struct{}

	routesDirty bool

	sentSets     map[string]bool
	sentPolicies map[dpmodel.PolicyID]bool
	sentProfiles map[string]bool
	sentWEPs     map[string]dpmodel.WorkloadEndpointID
	sentHEPs     map[string]string
	sentRoutes   map[netip.Prefix]dpmodel.Route
	sentVTEPs    map[string]dpmodel.VTEP
	sentPools    map[netip.Prefix]dpmodel.Pool
	sentHosts    map[string]dpmodel.Host
}

func newSequencer() sequencer {
	return sequencer{
		sets: map[string]*setChange{}, policies: map[dpmodel.PolicyID]struct{}{}, profiles: map[string]struct{}{},
		endpoints: map[string]struct{}{},
		sentSets:  map[string]bool{}, sentPolicies: map[dpmodel.PolicyID]bool{}, sentProfiles: map[string]bool{},
		sentWEPs: map[string]dpmodel.WorkloadEndpointID{}, sentHEPs: map[string]string{},
		sentRoutes: map[netip.Prefix]dpmodel.Route{}, sentVTEPs: map[string]dpmodel.VTEP{},
		sentPools: map[netip.Prefix]dpmodel.Pool{}, sentHosts: map[string]dpmodel.Host{},
	}
}

func (q *sequencer) set(id string) *setChange {
	ch := q.sets[id]
	if ch == nil {
		ch = &setChange{added: map[dpmodel.Member]struct{}{}, removed: map[dpmodel.Member]struct{}{}}
		q.sets[id] = ch
	}
	return ch
}

func (q *sequencer) setFull(id string) {
	ch := q.set(id)
	ch.full, ch.gone = true, false
}

func (q *sequencer) setGone(id string) {
	ch := q.set(id)
	ch.gone = true
}

func (q *sequencer) setMember(id string, m dpmodel.Member, add bool) {
	ch := q.set(id)
	if ch.full {
		return // the whole set is sent anyway
	}
	if add {
		if _, ok := ch.removed[m]; ok {
			delete(ch.removed, m)
		} else {
			ch.added[m] = struct{}{}
		}
		return
	}
	if _, ok := ch.added[m]; ok {
		delete(ch.added, m)
	} else {
		ch.removed[m] = struct{}{}
	}
}

func (q *sequencer) dirtyPolicy(id dpmodel.PolicyID) { q.policies[id] = struct{}{} }
func (q *sequencer) dirtyProfile(name string)        { q.profiles[name] = struct{}{} }
func (q *sequencer) dirtyEndpoint(key string)        { q.endpoints[key] = struct{}{} }

func sortedMembers(m map[dpmodel.Member]struct{}) []dpmodel.Member {
	ms := slices.Collect(maps.Keys(m))
	slices.SortFunc(ms, dpmodel.Member.Compare)
	return ms
}

// Flush emits every pending change in dependency order: IP set adds and deltas, policy and profile
// updates, endpoint updates and removes, policy and profile removes, IP set removes; then pools and
// hosts, VTEP adds, route removes and adds, VTEP and host removes, pool removes. Objects changed and
// changed back since the last Flush produce nothing or an idempotent update.
func (c *Calculator) Flush() []dpmodel.Update {
	q := &c.seq
	var out []dpmodel.Update
	setIDs := slices.Sorted(maps.Keys(q.sets))
	for _, id := range setIDs {
		s, ch := c.ipsets[id], q.sets[id]
		if s == nil {
			continue
		}
		switch {
		case !q.sentSets[id] || ch.full:
			out = append(out, dpmodel.IPSetUpdate{ID: id, Type: s.typ(), Members: s.members()})
			q.sentSets[id] = true
		case len(ch.added)+len(ch.removed) > 0:
			out = append(out, dpmodel.IPSetDelta{ID: id, Added: sortedMembers(ch.added), Removed: sortedMembers(ch.removed)})
		}
	}
	polIDs := slices.SortedFunc(maps.Keys(q.policies), dpmodel.PolicyID.Compare)
	for _, id := range polIDs {
		if p := c.policyByID[id]; p != nil && p.active {
			out = append(out, dpmodel.PolicyUpdate{ID: id, Policy: *p.compiled})
			q.sentPolicies[id] = true
		}
	}
	profIDs := slices.Sorted(maps.Keys(q.profiles))
	for _, name := range profIDs {
		if pr := c.profiles[name]; pr != nil && pr.compiled != nil {
			out = append(out, dpmodel.ProfileUpdate{ID: name, Profile: *pr.compiled})
			q.sentProfiles[name] = true
		}
	}
	epKeys := slices.Sorted(maps.Keys(q.endpoints))
	for _, key := range epKeys {
		if le := c.endpoints[key]; le != nil {
			out = append(out, c.endpointUpdate(le))
		}
	}
	for _, key := range epKeys {
		if c.endpoints[key] != nil {
			continue
		}
		if id, ok := q.sentWEPs[key]; ok {
			out = append(out, dpmodel.WorkloadEndpointRemove{ID: id})
			delete(q.sentWEPs, key)
		}
		if id, ok := q.sentHEPs[key]; ok {
			out = append(out, dpmodel.HostEndpointRemove{ID: id})
			delete(q.sentHEPs, key)
		}
	}
	for _, id := range polIDs {
		if p := c.policyByID[id]; (p == nil || !p.active) && q.sentPolicies[id] {
			out = append(out, dpmodel.PolicyRemove{ID: id})
			delete(q.sentPolicies, id)
		}
	}
	for _, name := range profIDs {
		if pr := c.profiles[name]; (pr == nil || pr.compiled == nil) && q.sentProfiles[name] {
			out = append(out, dpmodel.ProfileRemove{ID: name})
			delete(q.sentProfiles, name)
		}
	}
	for _, id := range setIDs {
		if c.ipsets[id] == nil && q.sentSets[id] {
			out = append(out, dpmodel.IPSetRemove{ID: id})
			delete(q.sentSets, id)
		}
	}
	clear(q.sets)
	clear(q.policies)
	clear(q.profiles)
	clear(q.endpoints)
	if q.routesDirty {
		out = c.flushRoutes(out)
		q.routesDirty = false
	}
	c.reportProblems()
	return out
}

func (c *Calculator) endpointUpdate(le *localEndpoint) dpmodel.Update {
	e := c.all.entities[le.key]
	q := &c.seq
	if le.wep != nil {
		w := le.wep
		id := dpmodel.WorkloadEndpointID{Namespace: w.Namespace, Name: w.Name}
		ep := dpmodel.WorkloadEndpoint{
			Pod: cmp.Or(w.Spec.Pod, w.Spec.Workload, w.Name), InterfaceName: w.Spec.InterfaceName, MAC: w.Spec.MAC,
			Tiers: c.endpointTiers(le.key, isNormal), ProfileIDs: slices.Clone(le.profiles),
		}
		for _, n := range e.nets {
			if n.Addr().Is4() {
				ep.IPv4Nets = append(ep.IPv4Nets, n)
			} else {
				ep.IPv6Nets = append(ep.IPv6Nets, n)
			}
		}
		ep.AllowSpoofedSourcePrefixes, _ = parseNets(w.Spec.AllowSpoofedSourcePrefixes)
		q.sentWEPs[le.key] = id
		return dpmodel.WorkloadEndpointUpdate{ID: id, Endpoint: ep}
	}
	h := le.hep
	ep := dpmodel.HostEndpoint{
		InterfaceName:  h.Spec.InterfaceName,
		Tiers:          c.endpointTiers(le.key, isNormal),
		UntrackedTiers: c.endpointTiers(le.key, isUntracked),
		PreDNATTiers:   c.endpointTiers(le.key, isPreDNAT),
		ForwardTiers:   c.endpointTiers(le.key, isForward),
		ProfileIDs:     slices.Clone(le.profiles),
	}
	for _, n := range e.nets {
		ep.ExpectedIPs = append(ep.ExpectedIPs, n.Addr())
	}
	q.sentHEPs[le.key] = h.Name
	return dpmodel.HostEndpointUpdate{ID: h.Name, Endpoint: ep}
}

func (c *Calculator) reportProblems() {
	cur := c.Problems()
	if slices.Equal(cur, c.problemsSent) {
		return
	}
	c.problemsSent = cur
	if c.cfg.OnProblems != nil {
		c.cfg.OnProblems(cur)
	}
}
