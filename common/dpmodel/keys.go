package dpmodel

import (
	"cmp"
	"net/netip"
	"slices"
)

// Keys is a set of object identities of a State, by kind. A consumer that forwards a State to a
// dataplane keeps two — what the dataplane holds and what changed since it was last told — instead of a
// second copy of every object: DiffKeys computes the same updates from them and the current State.
type Keys struct {
	Config        bool
	IPSets        map[string]struct{}
	Policies      map[PolicyID]struct{}
	Profiles      map[string]struct{}
	Workloads     map[WorkloadEndpointID]struct{}
	HostEndpoints map[string]struct{}
	Routes        map[netip.Prefix]struct{}
	VTEPs         map[string]struct{}
	Pools         map[netip.Prefix]struct{}
	Hosts         map[string]struct{}
}

// NewKeys returns an empty set.
func NewKeys() *Keys {
	return &Keys{
		IPSets: map[string]struct{}{}, Policies: map[PolicyID]struct{}{}, Profiles: map[string]struct{}{},
		Workloads: map[WorkloadEndpointID]struct{}{}, HostEndpoints: map[string]struct{}{},
		Routes: map[netip.Prefix]struct{}{}, VTEPs: map[string]struct{}{}, Pools: map[netip.Prefix]struct{}{},
		Hosts: map[string]struct{}{},
	}
}

// Add records the identity of the object u creates, changes or removes.
func (k *Keys) Add(u Update) {
	switch u := u.(type) {
	case ConfigUpdate:
		k.Config = true
	case IPSetUpdate:
		k.IPSets[u.ID] = struct{}{}
	case IPSetDelta:
		k.IPSets[u.ID] = struct{}{}
	case IPSetRemove:
		k.IPSets[u.ID] = struct{}{}
	case PolicyUpdate:
		k.Policies[u.ID] = struct{}{}
	case PolicyRemove:
		k.Policies[u.ID] = struct{}{}
	case ProfileUpdate:
		k.Profiles[u.ID] = struct{}{}
	case ProfileRemove:
		k.Profiles[u.ID] = struct{}{}
	case WorkloadEndpointUpdate:
		k.Workloads[u.ID] = struct{}{}
	case WorkloadEndpointRemove:
		k.Workloads[u.ID] = struct{}{}
	case HostEndpointUpdate:
		k.HostEndpoints[u.ID] = struct{}{}
	case HostEndpointRemove:
		k.HostEndpoints[u.ID] = struct{}{}
	case RouteUpdate:
		k.Routes[u.Dst] = struct{}{}
	case RouteRemove:
		k.Routes[u.Dst] = struct{}{}
	case VTEPUpdate:
		k.VTEPs[u.Node] = struct{}{}
	case VTEPRemove:
		k.VTEPs[u.Node] = struct{}{}
	case PoolUpdate:
		k.Pools[u.CIDR] = struct{}{}
	case PoolRemove:
		k.Pools[u.CIDR] = struct{}{}
	case HostUpdate:
		k.Hosts[u.Node] = struct{}{}
	case HostRemove:
		k.Hosts[u.Node] = struct{}{}
	}
}

// Len is the number of identities in the set.
func (k *Keys) Len() int {
	n := len(k.IPSets) + len(k.Policies) + len(k.Profiles) + len(k.Workloads) + len(k.HostEndpoints) +
		len(k.Routes) + len(k.VTEPs) + len(k.Pools) + len(k.Hosts)
	if k.Config {
		n++
	}
	return n
}

// Clear empties the set, keeping its maps for reuse.
func (k *Keys) Clear() {
	k.Config = false
	clear(k.IPSets)
	clear(k.Policies)
	clear(k.Profiles)
	clear(k.Workloads)
	clear(k.HostEndpoints)
	clear(k.Routes)
	clear(k.VTEPs)
	clear(k.Pools)
	clear(k.Hosts)
}

// DiffKeys returns the updates that bring a receiver to the state to, in Diff's dependency order, when
// the receiver holds the objects in held and only the objects in changed can differ from what it holds.
// Each changed object that to has is sent whole (one that changed and changed back is sent again, which a
// dataplane's Apply must absorb: it is idempotent); each changed object that to lacks and held has is
// removed. held is updated to what the receiver holds after the updates; changed is not modified.
//
// With held and changed kept by the caller (changed: Add of every update applied to to since the last
// call), the result applies wherever Diff(sent, to) would, without a copy of what was sent.
func DiffKeys(held, changed *Keys, to *State) []Update {
	var out []Update
	if changed.Config && to.Config != nil {
		out = append(out, ConfigUpdate{Config: *to.Config})
		held.Config = true
	}
	weCmp := func(a, b WorkloadEndpointID) int { return cmp.Compare(a.String(), b.String()) }
	out = upserts(out, changed.IPSets, held.IPSets, to.IPSets, cmp.Compare[string], func(id string, s *IPSet) Update {
		return IPSetUpdate{ID: id, Type: s.Type, Members: slices.Clone(s.Members)}
	})
	out = upserts(out, changed.Profiles, held.Profiles, to.Profiles, cmp.Compare[string], func(id string, p Profile) Update {
		return ProfileUpdate{ID: id, Profile: p}
	})
	out = upserts(out, changed.Policies, held.Policies, to.Policies, PolicyID.Compare, func(id PolicyID, p Policy) Update {
		return PolicyUpdate{ID: id, Policy: p}
	})
	out = upserts(out, changed.Workloads, held.Workloads, to.Workloads, weCmp, func(id WorkloadEndpointID, e WorkloadEndpoint) Update {
		return WorkloadEndpointUpdate{ID: id, Endpoint: e}
	})
	out = upserts(out, changed.HostEndpoints, held.HostEndpoints, to.HostEndpoints, cmp.Compare[string], func(id string, e HostEndpoint) Update {
		return HostEndpointUpdate{ID: id, Endpoint: e}
	})
	out = removes(out, changed.Workloads, held.Workloads, to.Workloads, weCmp, func(id WorkloadEndpointID) Update {
		return WorkloadEndpointRemove{ID: id}
	})
	out = removes(out, changed.HostEndpoints, held.HostEndpoints, to.HostEndpoints, cmp.Compare[string], func(id string) Update {
		return HostEndpointRemove{ID: id}
	})
	out = removes(out, changed.Policies, held.Policies, to.Policies, PolicyID.Compare, func(id PolicyID) Update {
		return PolicyRemove{ID: id}
	})
	out = removes(out, changed.Profiles, held.Profiles, to.Profiles, cmp.Compare[string], func(id string) Update {
		return ProfileRemove{ID: id}
	})
	out = removes(out, changed.IPSets, held.IPSets, to.IPSets, cmp.Compare[string], func(id string) Update {
		return IPSetRemove{ID: id}
	})
	out = upserts(out, changed.Pools, held.Pools, to.Pools, comparePrefix, func(c netip.Prefix, p Pool) Update {
		return PoolUpdate{CIDR: c, Pool: p}
	})
	out = removes(out, changed.Pools, held.Pools, to.Pools, comparePrefix, func(c netip.Prefix) Update {
		return PoolRemove{CIDR: c}
	})
	out = upserts(out, changed.Hosts, held.Hosts, to.Hosts, cmp.Compare[string], func(n string, h Host) Update {
		return HostUpdate{Node: n, Host: h}
	})
	out = removes(out, changed.Hosts, held.Hosts, to.Hosts, cmp.Compare[string], func(n string) Update {
		return HostRemove{Node: n}
	})
	out = upserts(out, changed.VTEPs, held.VTEPs, to.VTEPs, cmp.Compare[string], func(n string, v VTEP) Update {
		return VTEPUpdate{Node: n, VTEP: v}
	})
	out = removes(out, changed.Routes, held.Routes, to.Routes, comparePrefix, func(d netip.Prefix) Update {
		return RouteRemove{Dst: d}
	})
	out = upserts(out, changed.Routes, held.Routes, to.Routes, comparePrefix, func(d netip.Prefix, r Route) Update {
		return RouteUpdate{Dst: d, Route: r}
	})
	out = removes(out, changed.VTEPs, held.VTEPs, to.VTEPs, cmp.Compare[string], func(n string) Update {
		return VTEPRemove{Node: n}
	})
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// upserts appends an update for each changed key that to has, in key order, and marks it held.
func upserts[K comparable, V any](out []Update, changed, held map[K]struct{}, to map[K]V, c func(a, b K) int, mk func(K, V) Update) []Update {
	for _, k := range sortedKeys(changed, c) {
		if v, ok := to[k]; ok {
			out = append(out, mk(k, v))
			held[k] = struct{}{}
		}
	}
	return out
}

// removes appends a removal for each changed key that to lacks and the receiver holds, in key order.
func removes[K comparable, V any](out []Update, changed, held map[K]struct{}, to map[K]V, c func(a, b K) int, mk func(K) Update) []Update {
	for _, k := range sortedKeys(changed, c) {
		if _, ok := to[k]; ok {
			continue
		}
		if _, had := held[k]; had {
			out = append(out, mk(k))
			delete(held, k)
		}
	}
	return out
}
