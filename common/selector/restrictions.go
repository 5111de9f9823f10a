package selector

import (
	"slices"
)

// LabelRestriction is a necessary condition on one label that any matching
// set of labels satisfies. It is meant for indexes that want to skip
// selectors that cannot match; it is not a complete description of the
// selector.
type LabelRestriction struct {
	// MustBePresent: the label must be present to match.
	MustBePresent bool
	// MustBeAbsent: the label must be absent to match. If both flags are
	// set the selector can never match.
	MustBeAbsent bool
	// MustHaveOneOfValues, if non-nil, is the sorted set of values the
	// label may have (it then must also be present). nil means any value;
	// an empty non-nil slice means no value can match.
	MustHaveOneOfValues []string
}

// restrictions maps label name to its restriction; nil means none.
type restrictions map[string]LabelRestriction

// LabelRestrictions returns, for each label the selector constrains, a
// necessary condition on that label. It returns nil if no label is
// constrained (for example all(), or an || whose branches constrain
// different labels). Negations are pushed inwards, so "!(a != 'x')"
// restricts a to {"x"}, but "!has(a)" is the only way to get MustBeAbsent.
// The result is freshly allocated and may be modified.
func (s *Selector) LabelRestrictions() map[string]LabelRestriction {
	r := s.root.restrictions(false)
	if len(r) == 0 {
		return nil
	}
	return r
}

func (n *node) restrictions(negated bool) restrictions {
	present := func() restrictions {
		return restrictions{n.label: {MustBePresent: true}}
	}
	oneOf := func(vals ...string) restrictions {
		return restrictions{n.label: {MustBePresent: true, MustHaveOneOfValues: slices.Clone(vals)}}
	}
	switch n.kind {
	case opAll, opGlobal:
		// !all() never matches; any restriction would be sound, but none
		// is needed.
		return nil
	case opHas:
		if negated {
			return restrictions{n.label: {MustBeAbsent: true}}
		}
		return present()
	case opEq:
		if negated { // a != v: matches when a is absent.
			return nil
		}
		return oneOf(n.value)
	case opNe:
		if negated { // a == v
			return oneOf(n.value)
		}
		return nil
	case opContains, opStartsWith, opEndsWith:
		if negated {
			return nil
		}
		return present()
	case opIn:
		if negated {
			return nil
		}
		return oneOf(n.set...)
	case opNotIn:
		if negated {
			return oneOf(n.set...)
		}
		return nil
	case opNot:
		return n.kids[0].restrictions(!negated)
	case opAnd, opOr:
		// De Morgan: !(x && y) == !x || !y and vice versa.
		conj := (n.kind == opAnd) != negated
		acc := n.kids[0].restrictions(negated)
		for i := 1; i < len(n.kids); i++ {
			r := n.kids[i].restrictions(negated)
			if conj {
				acc = intersectRestrictions(acc, r)
			} else {
				acc = unionRestrictions(acc, r)
			}
		}
		return acc
	}
	panic("selector: corrupt expression tree")
}

// intersectRestrictions combines the restrictions of two conjuncts: every
// condition of either must hold.
func intersectRestrictions(a, b restrictions) restrictions {
	if len(a) == 0 {
		return b
	}
	for label, rb := range b {
		ra, ok := a[label]
		if !ok {
			a[label] = rb
			continue
		}
		ra.MustBePresent = ra.MustBePresent || rb.MustBePresent
		ra.MustBeAbsent = ra.MustBeAbsent || rb.MustBeAbsent
		switch {
		case ra.MustHaveOneOfValues == nil:
			ra.MustHaveOneOfValues = rb.MustHaveOneOfValues
		case rb.MustHaveOneOfValues != nil:
			ra.MustHaveOneOfValues = intersectSorted(ra.MustHaveOneOfValues, rb.MustHaveOneOfValues)
		}
		a[label] = ra
	}
	return a
}

// unionRestrictions combines the restrictions of two disjuncts: only
// conditions implied by both survive.
func unionRestrictions(a, b restrictions) restrictions {
	for label, ra := range a {
		rb, ok := b[label]
		if !ok {
			delete(a, label)
			continue
		}
		ra.MustBePresent = ra.MustBePresent && rb.MustBePresent
		ra.MustBeAbsent = ra.MustBeAbsent && rb.MustBeAbsent
		if ra.MustHaveOneOfValues == nil || rb.MustHaveOneOfValues == nil {
			ra.MustHaveOneOfValues = nil
		} else {
			ra.MustHaveOneOfValues = unionSorted(ra.MustHaveOneOfValues, rb.MustHaveOneOfValues)
		}
		if !ra.MustBePresent && !ra.MustBeAbsent && ra.MustHaveOneOfValues == nil {
			delete(a, label)
			continue
		}
		a[label] = ra
	}
	return a
}

// intersectSorted returns the values in both sorted sets, as a non-nil
// slice (empty means "nothing matches").
func intersectSorted(a, b []string) []string {
	out := make([]string, 0, min(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func unionSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	return slices.Compact(out)
}
