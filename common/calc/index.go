package calc

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/selector"
)

// entityKind says what a labelled entity is.
type entityKind uint8

const (
	kindWorkload entityKind = iota + 1
	kindHost
	kindNetworkSet
	kindGlobalNetworkSet
)

// namedPort is one named port of an endpoint.
type namedPort struct {
	name  string
	proto uint8
	port  uint16
}

// entity is anything a selector can match: workload and host endpoints (cluster-wide) and network sets.
// labels is the flattened view selectors see: the entity's own labels (with the computed
// projectcalico.org/* ones) over its profiles' labelsToApply, the first profile winning.
type entity struct {
	key     string
	kind    entityKind
	own     map[string]string
	parents []string
	labels  map[string]string
	nets    []netip.Prefix
	ports   []namedPort
	node    string
	local   bool
}

// population is a set of entities with an index from label name and value to entity keys, so that a new
// selector is evaluated only against entities that can match it.
type population struct {
	entities map[string]*entity
	byLabel  map[string]map[string]map[string]struct{} // label → value → entity keys
	indexes  []*selIndex
}

func newPopulation() *population {
	return &population{entities: map[string]*entity{}, byLabel: map[string]map[string]map[string]struct{}{}}
}

func (p *population) indexLabels(key string, labels map[string]string, add bool) {
	for k, v := range labels {
		vals := p.byLabel[k]
		if add {
			if vals == nil {
				vals = map[string]map[string]struct{}{}
				p.byLabel[k] = vals
			}
			keys := vals[v]
			if keys == nil {
				keys = map[string]struct{}{}
				vals[v] = keys
			}
			keys[key] = struct{}{}
			continue
		}
		if keys := vals[v]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(vals, v)
				if len(vals) == 0 {
					delete(p.byLabel, k)
				}
			}
		}
	}
}

// upsert adds or replaces an entity (old is the value it replaces, nil for a new one) and re-evaluates
// the selectors that could change their mind about it.
func (p *population) upsert(e, old *entity) {
	if old != nil {
		p.indexLabels(old.key, old.labels, false)
	}
	p.entities[e.key] = e
	p.indexLabels(e.key, e.labels, true)
	for _, idx := range p.indexes {
		idx.entityChanged(e, old)
	}
}

// remove deletes an entity; every selector that matched it stops matching.
func (p *population) remove(key string) {
	e, ok := p.entities[key]
	if !ok {
		return
	}
	for _, idx := range p.indexes {
		idx.entityRemoved(e)
	}
	p.indexLabels(key, e.labels, false)
	delete(p.entities, key)
}

// selEntry is one selector in a selIndex. The selector is filed under one label: either the values it
// must have (values != nil), or presence; unrestricted selectors are evaluated against every entity.
type selEntry struct {
	id           string
	sel          *selector.Selector
	label        string
	values       []string
	unrestricted bool
	matches      map[string]struct{}
}

// selIndex keeps, for each selector in use, the entities of a population that it matches, and reports
// every change through onMatch. An entity update evaluates only the selectors filed under one of its old
// or new labels, the unrestricted ones and those that matched it: never every selector.
type selIndex struct {
	pop          *population
	sels         map[string]*selEntry
	byValue      map[string]map[string]map[string]struct{} // label → value → selector IDs
	byPresence   map[string]map[string]struct{}            // label → selector IDs
	unrestricted map[string]struct{}
	matchesOf    map[string]map[string]struct{} // entity key → selector IDs that match it
	onMatch      func(selID string, e *entity, matched bool)
}

func newSelIndex(pop *population, onMatch func(string, *entity, bool)) *selIndex {
	idx := &selIndex{
		pop: pop, sels: map[string]*selEntry{}, byValue: map[string]map[string]map[string]struct{}{},
		byPresence: map[string]map[string]struct{}{}, unrestricted: map[string]struct{}{},
		matchesOf: map[string]map[string]struct{}{}, onMatch: onMatch,
	}
	pop.indexes = append(pop.indexes, idx)
	return idx
}

// fileUnder picks the most selective label restriction: the smallest value set, else presence (ties go
// to the smaller label name, so the choice is deterministic).
func fileUnder(sel *selector.Selector) (label string, values []string, ok bool) {
	bestN, presence := -1, ""
	for l, r := range sel.LabelRestrictions() {
		switch {
		case r.MustHaveOneOfValues != nil:
			n := len(r.MustHaveOneOfValues)
			if bestN < 0 || n < bestN || (n == bestN && l < label) {
				label, values, bestN = l, r.MustHaveOneOfValues, n
			}
		case r.MustBePresent:
			if presence == "" || l < presence {
				presence = l
			}
		}
	}
	if bestN >= 0 {
		return label, values, true
	}
	return presence, nil, presence != ""
}

// add starts tracking a selector under id and reports its current matches.
func (x *selIndex) add(id string, sel *selector.Selector) {
	if _, ok := x.sels[id]; ok {
		return
	}
	s := &selEntry{id: id, sel: sel, matches: map[string]struct{}{}}
	label, values, ok := fileUnder(sel)
	switch {
	case !ok:
		s.unrestricted = true
		x.unrestricted[id] = struct{}{}
	case values != nil:
		s.label, s.values = label, values
		vals := x.byValue[label]
		if vals == nil {
			vals = map[string]map[string]struct{}{}
			x.byValue[label] = vals
		}
		for _, v := range values {
			if vals[v] == nil {
				vals[v] = map[string]struct{}{}
			}
			vals[v][id] = struct{}{}
		}
	default:
		s.label = label
		if x.byPresence[label] == nil {
			x.byPresence[label] = map[string]struct{}{}
		}
		x.byPresence[label][id] = struct{}{}
	}
	x.sels[id] = s
	// Initial scan over the candidates only.
	try := func(key string) {
		e := x.pop.entities[key]
		if e != nil && sel.Evaluate(e.labels) {
			x.setMatch(s, e, true)
		}
	}
	switch {
	case s.unrestricted:
		for _, k := range slices.Sorted(maps.Keys(x.pop.entities)) {
			try(k)
		}
	case s.values != nil:
		for _, v := range s.values {
			for _, k := range slices.Sorted(maps.Keys(x.pop.byLabel[label][v])) {
				try(k)
			}
		}
	default:
		var keys []string
		for _, ks := range x.pop.byLabel[label] {
			for k := range ks {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			try(k)
		}
	}
}

// remove stops tracking a selector; its matches are reported as ended.
func (x *selIndex) remove(id string) {
	s, ok := x.sels[id]
	if !ok {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(s.matches)) {
		x.setMatch(s, x.pop.entities[k], false)
	}
	switch {
	case s.unrestricted:
		delete(x.unrestricted, id)
	case s.values != nil:
		for _, v := range s.values {
			delete(x.byValue[s.label][v], id)
			if len(x.byValue[s.label][v]) == 0 {
				delete(x.byValue[s.label], v)
			}
		}
		if len(x.byValue[s.label]) == 0 {
			delete(x.byValue, s.label)
		}
	default:
		delete(x.byPresence[s.label], id)
		if len(x.byPresence[s.label]) == 0 {
			delete(x.byPresence, s.label)
		}
	}
	delete(x.sels, id)
}

func (x *selIndex) setMatch(s *selEntry, e *entity, on bool) {
	if on {
		s.matches[e.key] = struct{}{}
		m := x.matchesOf[e.key]
		if m == nil {
			m = map[string]struct{}{}
			x.matchesOf[e.key] = m
		}
		m[s.id] = struct{}{}
	} else {
		delete(s.matches, e.key)
		delete(x.matchesOf[e.key], s.id)
		if len(x.matchesOf[e.key]) == 0 {
			delete(x.matchesOf, e.key)
		}
	}
	x.onMatch(s.id, e, on)
}

func (x *selIndex) candidates(labels map[string]string, into map[string]struct{}) {
	for k, v := range labels {
		for id := range x.byValue[k][v] {
			into[id] = struct{}{}
		}
		for id := range x.byPresence[k] {
			into[id] = struct{}{}
		}
	}
}

// entityChanged re-evaluates the selectors that could match e now or matched it before. A selector that
// keeps matching is told again (matched=true) so that it can pick up changed addresses or ports.
func (x *selIndex) entityChanged(e, old *entity) {
	cand := map[string]struct{}{}
	for id := range x.unrestricted {
		cand[id] = struct{}{}
	}
	for id := range x.matchesOf[e.key] {
		cand[id] = struct{}{}
	}
	x.candidates(e.labels, cand)
	for _, id := range slices.Sorted(maps.Keys(cand)) {
		s := x.sels[id]
		_, was := s.matches[e.key]
		now := s.sel.Evaluate(e.labels)
		switch {
		case now:
			x.setMatch(s, e, true)
		case was:
			x.setMatch(s, old, false)
		}
	}
}

func (x *selIndex) entityRemoved(e *entity) {
	for _, id := range slices.Sorted(maps.Keys(x.matchesOf[e.key])) {
		x.setMatch(x.sels[id], e, false)
	}
}
