package selector

import (
	"slices"
)

// MaxNesting is the deepest parenthesis nesting Parse accepts. It bounds
// the recursion of the parser, the evaluator and the printer.
const MaxNesting = 512

// parser is a recursive-descent parser over a token slice that always ends
// in tokEOF.
type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// prev describes the token before the current one, for "after X" messages.
func (p *parser) prev() string {
	if p.i == 0 {
		return ""
	}
	return p.toks[p.i-1].describe()
}

// parse parses a whole selector. An empty (or all-whitespace) selector is
// all().
func parse(s string) (node, *lexError) {
	var buf [32]token
	toks, err := tokenize(s, buf[:0])
	if err != nil {
		return node{}, err
	}
	p := parser{toks: toks}
	if p.peek().kind == tokEOF {
		return node{kind: opAll}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return node{}, err
	}
	switch t := p.peek(); t.kind {
	case tokEOF:
		return n, nil
	case tokRParen:
		return node{}, errAt(t.pos, `unexpected ")" with no matching "("`)
	default:
		return node{}, errAt(t.pos, `expected "&&", "||" or end of selector after %s, found %s`, p.prev(), t.describe())
	}
}

// parseOr parses: and ('||' and)*
func (p *parser) parseOr() (node, *lexError) {
	first, err := p.parseAnd()
	if err != nil || p.peek().kind != tokOr {
		return first, err
	}
	kids := []node{first}
	for p.peek().kind == tokOr {
		p.next()
		n, err := p.parseAnd()
		if err != nil {
			return node{}, err
		}
		kids = append(kids, n)
	}
	return node{kind: opOr, kids: kids}, nil
}

// parseAnd parses: op ('&&' op)*
func (p *parser) parseAnd() (node, *lexError) {
	first, err := p.parseOp()
	if err != nil || p.peek().kind != tokAnd {
		return first, err
	}
	kids := []node{first}
	for p.peek().kind == tokAnd {
		p.next()
		n, err := p.parseOp()
		if err != nil {
			return node{}, err
		}
		kids = append(kids, n)
	}
	return node{kind: opAnd, kids: kids}, nil
}

// parseOp parses a possibly negated primary expression. Any run of "!"
// collapses to at most one negation, and a negation of a negation (as in
// "!(!has(a))") cancels out, so the canonical form is a fixed point.
func (p *parser) parseOp() (node, *lexError) {
	negated := false
	for p.peek().kind == tokNot {
		p.next()
		negated = !negated
	}
	n, err := p.parsePrimary()
	if err != nil || !negated {
		return n, err
	}
	if n.kind == opNot {
		return n.kids[0], nil
	}
	return node{kind: opNot, kids: []node{n}}, nil
}

func (p *parser) parsePrimary() (node, *lexError) {
	t := p.peek()
	switch t.kind {
	case tokHas:
		p.next()
		return node{kind: opHas, label: t.val}, nil
	case tokAll:
		p.next()
		return node{kind: opAll}, nil
	case tokGlobal:
		p.next()
		return node{kind: opGlobal}, nil
	case tokLabel:
		p.next()
		return p.parseComparison(t)
	case tokLParen:
		p.next()
		if p.depth >= MaxNesting {
			return node{}, errAt(t.pos, "parentheses nested more than %d deep", MaxNesting)
		}
		p.depth++
		n, err := p.parseOr()
		p.depth--
		if err != nil {
			return node{}, err
		}
		if c := p.peek(); c.kind != tokRParen {
			return node{}, errAt(c.pos, `expected "&&", "||" or ")" to close "(" at position %d, found %s`,
				t.pos, c.describe())
		}
		p.next()
		return n, nil
	}
	const what = `an expression such as has(k), k == "v", k in {...}, all() or (...)`
	if p.i == 0 {
		return node{}, errAt(t.pos, "expected %s, found %s", what, t.describe())
	}
	if t.kind == tokEOF {
		return node{}, errAt(t.pos, "expected %s after %s", what, p.prev())
	}
	return node{}, errAt(t.pos, "expected %s after %s, found %s", what, p.prev(), t.describe())
}

// parseComparison parses the operator and operand that follow label.
func (p *parser) parseComparison(label token) (node, *lexError) {
	op := p.next()
	var kind opKind
	switch op.kind {
	case tokEq:
		kind = opEq
	case tokNe:
		kind = opNe
	case tokContains:
		kind = opContains
	case tokStartsWith:
		kind = opStartsWith
	case tokEndsWith:
		kind = opEndsWith
	case tokIn:
		return p.parseSet(label, op, opIn)
	case tokNotIn:
		return p.parseSet(label, op, opNotIn)
	default:
		return node{}, errAt(op.pos, "expected an operator (%s) after label %q, found %s",
			operatorList, label.val, op.describe())
	}
	lit := p.peek()
	if lit.kind != tokString {
		return node{}, expectedAfter(lit, "a quoted string", op)
	}
	p.next()
	return node{kind: kind, label: label.val, value: lit.val}, nil
}

// parseSet parses a set literal: '{' [ string (',' string)* [','] ] '}'.
// A trailing comma and the empty set are accepted.
func (p *parser) parseSet(label, op token, kind opKind) (node, *lexError) {
	lb := p.peek()
	if lb.kind != tokLBrace {
		return node{}, expectedAfter(lb, `a set literal such as {"a", "b"}`, op)
	}
	p.next()
	var vals []string
	for {
		t := p.next()
		if t.kind == tokRBrace {
			break
		}
		if t.kind != tokString {
			if len(vals) == 0 {
				return node{}, expectedAfter(t, `a quoted string or "}"`, lb)
			}
			return node{}, expectedAfter(t, `a quoted string or "}"`, token{kind: tokComma})
		}
		vals = append(vals, t.val)
		t = p.next()
		if t.kind == tokRBrace {
			break
		}
		if t.kind != tokComma {
			return node{}, errAt(t.pos, `expected "," or "}" after string literal in set, found %s`, t.describe())
		}
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	vals = slices.Clip(vals)
	n := node{kind: kind, label: label.val, set: vals}
	if len(vals) > smallSet {
		n.index = make(map[string]struct{}, len(vals))
		for _, v := range vals {
			n.index[v] = struct{}{}
		}
	}
	return n, nil
}

// expectedAfter builds `expected WHAT after PREV[, found GOT]`, positioned
// at got.
func expectedAfter(got token, what string, prev token) *lexError {
	if got.kind == tokEOF {
		return errAt(got.pos, "expected %s after %s", what, prev.describe())
	}
	return errAt(got.pos, "expected %s after %s, found %s", what, prev.describe(), got.describe())
}
