package selector

import "strings"

// opKind is the operation performed by a node. The zero value is all(), so
// a zero node (and hence a zero Selector) matches everything.
type opKind uint8

const (
	opAll opKind = iota
	opGlobal
	opHas
	opEq
	opNe
	opContains
	opStartsWith
	opEndsWith
	opIn
	opNotIn
	opNot
	opAnd
	opOr
)

// smallSet is the largest set that is searched linearly; larger sets also
// get a map index.
const smallSet = 8

// node is one node of the parsed expression tree. Only the fields relevant
// to kind are set:
//
//	opHas:                 label
//	opEq ... opEndsWith:   label, value
//	opIn, opNotIn:         label, set (sorted, de-duplicated), index if large
//	opNot:                 kids[0]
//	opAnd, opOr:           kids (two or more)
type node struct {
	kind  opKind
	label string
	value string
	set   []string
	index map[string]struct{}
	kids  []node
}

func (n *node) inSet(v string) bool {
	if n.index != nil {
		_, ok := n.index[v]
		return ok
	}
	for _, s := range n.set {
		if s == v {
			return true
		}
	}
	return false
}

// evalMap evaluates the node against a plain map. It must not allocate.
func (n *node) evalMap(m map[string]string) bool {
	switch n.kind {
	case opAll, opGlobal:
		return true
	case opHas:
		_, ok := m[n.label]
		return ok
	case opEq:
		v, ok := m[n.label]
		return ok && v == n.value
	case opNe:
		v, ok := m[n.label]
		return !ok || v != n.value
	case opContains:
		v, ok := m[n.label]
		return ok && strings.Contains(v, n.value)
	case opStartsWith:
		v, ok := m[n.label]
		return ok && strings.HasPrefix(v, n.value)
	case opEndsWith:
		v, ok := m[n.label]
		return ok && strings.HasSuffix(v, n.value)
	case opIn:
		v, ok := m[n.label]
		return ok && n.inSet(v)
	case opNotIn:
		v, ok := m[n.label]
		return !ok || !n.inSet(v)
	case opNot:
		return !n.kids[0].evalMap(m)
	case opAnd:
		for i := range n.kids {
			if !n.kids[i].evalMap(m) {
				return false
			}
		}
		return true
	case opOr:
		for i := range n.kids {
			if n.kids[i].evalMap(m) {
				return true
			}
		}
		return false
	}
	panic("selector: corrupt expression tree")
}

// evalLabels is evalMap for the Labels interface. Keep the two in step.
func (n *node) evalLabels(l Labels) bool {
	switch n.kind {
	case opAll, opGlobal:
		return true
	case opHas:
		_, ok := l.Get(n.label)
		return ok
	case opEq:
		v, ok := l.Get(n.label)
		return ok && v == n.value
	case opNe:
		v, ok := l.Get(n.label)
		return !ok || v != n.value
	case opContains:
		v, ok := l.Get(n.label)
		return ok && strings.Contains(v, n.value)
	case opStartsWith:
		v, ok := l.Get(n.label)
		return ok && strings.HasPrefix(v, n.value)
	case opEndsWith:
		v, ok := l.Get(n.label)
		return ok && strings.HasSuffix(v, n.value)
	case opIn:
		v, ok := l.Get(n.label)
		return ok && n.inSet(v)
	case opNotIn:
		v, ok := l.Get(n.label)
		return !ok || !n.inSet(v)
	case opNot:
		return !n.kids[0].evalLabels(l)
	case opAnd:
		for i := range n.kids {
			if !n.kids[i].evalLabels(l) {
				return false
			}
		}
		return true
	case opOr:
		for i := range n.kids {
			if n.kids[i].evalLabels(l) {
				return true
			}
		}
		return false
	}
	panic("selector: corrupt expression tree")
}

// binaryOp is the canonical spelling of each label/literal operator.
var binaryOp = [...]string{
	opEq:         " == ",
	opNe:         " != ",
	opContains:   " contains ",
	opStartsWith: " starts with ",
	opEndsWith:   " ends with ",
	opIn:         " in ",
	opNotIn:      " not in ",
}

// appendCanonical appends the canonical text of n to b.
//
// The canonical form uses single spaces around binary operators, no space
// after "!", parentheses around every && and || group (including the
// outermost), sets sorted and de-duplicated, and for each literal double
// quotes unless the literal itself contains a double quote.
func (n *node) appendCanonical(b []byte) []byte {
	switch n.kind {
	case opAll:
		return append(b, "all()"...)
	case opGlobal:
		return append(b, "global()"...)
	case opHas:
		b = append(b, "has("...)
		b = append(b, n.label...)
		return append(b, ')')
	case opEq, opNe, opContains, opStartsWith, opEndsWith:
		b = append(b, n.label...)
		b = append(b, binaryOp[n.kind]...)
		return appendLiteral(b, n.value)
	case opIn, opNotIn:
		b = append(b, n.label...)
		b = append(b, binaryOp[n.kind]...)
		b = append(b, '{')
		for i, v := range n.set {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendLiteral(b, v)
		}
		return append(b, '}')
	case opNot:
		b = append(b, '!')
		return n.kids[0].appendCanonical(b)
	case opAnd, opOr:
		sep := " && "
		if n.kind == opOr {
			sep = " || "
		}
		b = append(b, '(')
		for i := range n.kids {
			if i > 0 {
				b = append(b, sep...)
			}
			b = n.kids[i].appendCanonical(b)
		}
		return append(b, ')')
	}
	panic("selector: corrupt expression tree")
}

// appendLiteral quotes v with double quotes, or with single quotes if v
// contains a double quote. (A literal cannot contain both: the language has
// no escapes.)
func appendLiteral(b []byte, v string) []byte {
	q := byte('"')
	if strings.IndexByte(v, '"') >= 0 {
		q = '\''
	}
	b = append(b, q)
	b = append(b, v...)
	return append(b, q)
}

func quoteLiteral(v string) string {
	return string(appendLiteral(nil, v))
}
