package calc

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

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
	name  istr
	proto uint8
	port  uint16
}

// entity is anything a selector can match: workload and host endpoints (cluster-wide) and network sets.
// labels is the flattened view selectors see: the entity's own labels (with the computed
// projectcalico.org/* ones) over its profiles' labelsToApply, the first profile winning. An entity is
// immutable once it is in a population: a change replaces it (labels.go says why its fields are
// interned).
type entity struct {
	key     string
	id      uint32 // its number while it is in the calculation (idset.go)
	kind    entityKind
	local   bool
	node    istr
	own     labels
	labels  labels
	parents []istr // profile names, in the order the resource lists them
	nets    []netip.Prefix
	ports   []namedPort
}

// population is a set of entities with an index from label name and value to entities, so that a new
// selector is evaluated only against entities that can match it.
type population struct {
	entities map[string]*entity
	byID     []*entity               // by entity number (idset.go)
	byLabel  map[istr]map[istr]idSet // label → value → entity numbers
	indexes  []*selIndex
}

func newPopulation() *population {
	return &population{entities: map[string]*entity{}, byLabel: map[istr]map[istr]idSet{}}
}

func (p *population) indexLabels(e *entity, add bool) {
	for _, l := range e.labels {
		vals := p.byLabel[l.k]
		if add {
			if vals == nil {
				vals = map[istr]idSet{}
				p.byLabel[l.k] = vals
			}
			set := vals[l.v]
			set.add(e.id)
			vals[l.v] = set
			continue
		}
		set, ok := vals[l.v]
		if !ok {
			continue
		}
		set.remove(e.id)
		if set.len() > 0 {
			vals[l.v] = set
			continue
		}
		delete(vals, l.v)
		if len(vals) == 0 {
			delete(p.byLabel, l.k)
		}
	}
}

// withLabel returns the entities that have label (with one of values, when values is not nil), sorted
// by key.
func (p *population) withLabel(label string, values []string) []*entity {
	var ids []uint32
	vals := p.byLabel[intern(label)]
	if values == nil {
		for _, set := range vals {
			ids = set.appendTo(ids)
		}
	} else {
		for _, v := range values {
			if set, ok := vals[intern(v)]; ok {
				ids = set.appendTo(ids)
			}
		}
	}
	return p.sortedByKey(ids)
}

// sortedByKey returns the entities numbered ids, sorted by key.
func (p *population) sortedByKey(ids []uint32) []*entity {
	out := make([]*entity, 0, len(ids))
	for _, id := range ids {
		out = append(out, p.byID[id])
	}
	slices.SortFunc(out, func(a, b *entity) int { return strings.Compare(a.key, b.key) })
	return out
}

// upsert adds or replaces an entity (old is the value it replaces, nil for a new one) and re-evaluates
// the selectors that could change their mind about it.
func (p *population) upsert(e, old *entity) {
	if prev := p.entities[e.key]; prev != nil {
		p.indexLabels(prev, false)
	}
	p.entities[e.key] = e
	if int(e.id) >= len(p.byID) {
		p.byID = append(p.byID, make([]*entity, int(e.id)+1-len(p.byID))...)
	}
	p.byID[e.id] = e
	p.indexLabels(e, true)
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
	p.indexLabels(e, false)
	p.byID[e.id] = nil
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
	scratchSet   map[string]struct{}            // entityChanged's, between calls
	scratchIDs   []string
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
	try := func(e *entity) {
		if e != nil && sel.EvaluateLabels(e) {
			x.setMatch(s, e, true)
		}
	}
	if s.unrestricted {
		for _, k := range slices.Sorted(maps.Keys(x.pop.entities)) {
			try(x.pop.entities[k])
		}
		return
	}
	for _, e := range x.pop.withLabel(label, s.values) {
		try(e)
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

func (x *selIndex) candidates(ls labels, into map[string]struct{}) {
	for _, l := range ls {
		k := l.k.Value()
		for id := range x.byValue[k][l.v.Value()] {
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
	// The candidate set and list are reused: one entity update at a time (a callback that re-entered
	// would find nil and allocate its own), and a map per update is garbage among the entities kept.
	cand, ids := x.scratchSet, x.scratchIDs[:0]
	x.scratchSet, x.scratchIDs = nil, nil
	if cand == nil {
		cand = map[string]struct{}{}
	}
	defer func() {
		clear(cand)
		clear(ids)
		x.scratchSet, x.scratchIDs = cand, ids[:0]
	}()
	for id := range x.unrestricted {
		cand[id] = struct{}{}
	}
	for id := range x.matchesOf[e.key] {
		cand[id] = struct{}{}
	}
	x.candidates(e.labels, cand)
	if len(cand) == 0 {
		return
	}
	for id := range cand {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := x.sels[id]
		_, was := s.matches[e.key]
		now := s.sel.EvaluateLabels(e)
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
