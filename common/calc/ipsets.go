package calc

import (
	"maps"
	"slices"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/selector"
)

// ipsetSpec defines an IP set: the entities a selector matches, as addresses and CIDRs, or (named) as
// address+protocol+port for their port called port.
type ipsetSpec struct {
	sel   *selector.Selector
	named bool
	proto uint8
	port  string
}

// ipset is an IP set some active rule refers to. Members are counted: two entities may contribute the
// same address, and it stays until neither does.
type ipset struct {
	id      string
	spec    ipsetSpec
	refs    int
	contrib map[string][]dpmodel.Member
	count   map[dpmodel.Member]int
}

func (s *ipset) typ() dpmodel.IPSetType {
	if s.spec.named {
		return dpmodel.IPSetIPPort
	}
	return dpmodel.IPSetNet
}

func (s *ipset) members() []dpmodel.Member {
	ms := slices.Collect(maps.Keys(s.count))
	slices.SortFunc(ms, dpmodel.Member.Compare)
	return ms
}

func (c *Calculator) refIPSet(id string) {
	s := c.ipsets[id]
	if s == nil {
		spec, ok := c.setSpecs[id]
		if !ok {
			panic("calc: IP set " + id + " referenced without a definition")
		}
		s = &ipset{id: id, spec: spec, contrib: map[string][]dpmodel.Member{}, count: map[dpmodel.Member]int{}}
		c.ipsets[id] = s
		c.seq.setFull(id)
		c.setIdx.add(id, spec.sel)
	}
	s.refs++
}

func (c *Calculator) derefIPSet(id string) {
	s := c.ipsets[id]
	if s == nil {
		return
	}
	s.refs--
	if s.refs > 0 {
		return
	}
	c.setIdx.remove(id)
	delete(c.ipsets, id)
	delete(c.setSpecs, id)
	c.seq.setGone(id)
}

// entityMembers is what e contributes to a set with spec.
func entityMembers(e *entity, spec ipsetSpec) []dpmodel.Member {
	if !spec.named {
		out := make([]dpmodel.Member, 0, len(e.nets))
		for _, n := range e.nets {
			out = append(out, dpmodel.Member{Net: n})
		}
		return out
	}
	var out []dpmodel.Member
	for _, p := range e.ports {
		if p.name.Value() != spec.port || p.proto != spec.proto {
			continue
		}
		for _, n := range e.nets {
			if n.IsSingleIP() {
				out = append(out, dpmodel.Member{Net: n, Protocol: p.proto, Port: p.port})
			}
		}
	}
	return out
}

// onIPSetMatch is the IP set selector index's callback: entity e starts, keeps (its data may have
// changed) or stops matching set id.
func (c *Calculator) onIPSetMatch(id string, e *entity, on bool) {
	s := c.ipsets[id]
	var now []dpmodel.Member
	if on {
		now = entityMembers(e, s.spec)
	}
	before := s.contrib[e.key]
	if slices.Equal(before, now) {
		return
	}
	for _, m := range now {
		s.count[m]++
		if s.count[m] == 1 {
			c.seq.setMember(id, m, true)
		}
	}
	for _, m := range before {
		s.count[m]--
		if s.count[m] == 0 {
			delete(s.count, m)
			c.seq.setMember(id, m, false)
		}
	}
	if len(now) == 0 {
		delete(s.contrib, e.key)
	} else {
		s.contrib[e.key] = now
	}
}
