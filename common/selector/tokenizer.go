package selector

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tokKind identifies the kind of a lexical token.
type tokKind uint8

const (
	tokEOF tokKind = iota
	tokLabel
	tokString
	tokLParen
	tokRParen
	tokLBrace
	tokRBrace
	tokComma
	tokEq
	tokNe
	tokContains
	tokStartsWith
	tokEndsWith
	tokIn
	tokNotIn
	tokNot
	tokAnd
	tokOr
	tokHas
	tokAll
	tokGlobal
)

// symbol is the canonical spelling of each fixed token, used in error
// messages.
var symbol = [...]string{
	tokEOF:        "end of selector",
	tokLabel:      "label",
	tokString:     "string literal",
	tokLParen:     "(",
	tokRParen:     ")",
	tokLBrace:     "{",
	tokRBrace:     "}",
	tokComma:      ",",
	tokEq:         "==",
	tokNe:         "!=",
	tokContains:   "contains",
	tokStartsWith: "starts with",
	tokEndsWith:   "ends with",
	tokIn:         "in",
	tokNotIn:      "not in",
	tokNot:        "!",
	tokAnd:        "&&",
	tokOr:         "||",
	tokHas:        "has()",
	tokAll:        "all()",
	tokGlobal:     "global()",
}

// token is one lexical token. pos is the byte offset of its first character
// in the selector; val holds the label name (tokLabel, tokHas) or the
// unquoted literal (tokString).
type token struct {
	kind tokKind
	pos  int
	val  string
}

// describe renders a token for use in an error message.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of selector"
	case tokLabel:
		return fmt.Sprintf("label %q", t.val)
	case tokString:
		return fmt.Sprintf("string literal %s", quoteLiteral(t.val))
	case tokHas:
		return fmt.Sprintf("%q", "has("+t.val+")")
	default:
		return fmt.Sprintf("%q", symbol[t.kind])
	}
}

// MaxLabelLength is the longest label name a selector may mention.
const MaxLabelLength = 512

// labelChar reports which bytes may appear in a label name:
// [A-Za-z0-9_./-].
var labelChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_./-" {
		t[c] = true
	}
	return t
}()

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// lexError is a tokenizer or parser failure before the selector text is
// attached.
type lexError struct {
	pos int
	msg string
}

func errAt(pos int, format string, args ...any) *lexError {
	return &lexError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

// tokenize splits s into tokens, always ending with a tokEOF token.
//
// Operator keywords (contains, starts with, ends with, in, not in) are only
// recognised directly after a label; anywhere else those words are label
// names. A keyword must not run on into label characters ("inf" is not
// "in" followed by "f").
func tokenize(s string, toks []token) ([]token, *lexError) {
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return append(toks, token{kind: tokEOF, pos: i}), nil
		}
		start := i
		afterLabel := len(toks) > 0 && toks[len(toks)-1].kind == tokLabel
		c := s[i]
		switch c {
		case '(':
			toks = append(toks, token{kind: tokLParen, pos: start})
			i++
		case ')':
			toks = append(toks, token{kind: tokRParen, pos: start})
			i++
		case '{':
			toks = append(toks, token{kind: tokLBrace, pos: start})
			i++
		case '}':
			toks = append(toks, token{kind: tokRBrace, pos: start})
			i++
		case ',':
			toks = append(toks, token{kind: tokComma, pos: start})
			i++
		case '"', '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				quote := "double"
				if c == '\'' {
					quote = "single"
				}
				return nil, errAt(start, "unterminated string literal: no closing %s quote", quote)
			}
			toks = append(toks, token{kind: tokString, pos: start, val: s[i+1 : i+1+end]})
			i += end + 2
		case '=':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{kind: tokEq, pos: start})
				i += 2
			} else {
				return nil, errAt(start, `unexpected "=" (equality is written "==")`)
			}
		case '!':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{kind: tokNe, pos: start})
				i += 2
			} else {
				toks = append(toks, token{kind: tokNot, pos: start})
				i++
			}
		case '&':
			if i+1 < len(s) && s[i+1] == '&' {
				toks = append(toks, token{kind: tokAnd, pos: start})
				i += 2
			} else {
				return nil, errAt(start, `unexpected "&" (logical and is written "&&")`)
			}
		case '|':
			if i+1 < len(s) && s[i+1] == '|' {
				toks = append(toks, token{kind: tokOr, pos: start})
				i += 2
			} else {
				return nil, errAt(start, `unexpected "|" (logical or is written "||")`)
			}
		default:
			if afterLabel {
				kind, end := matchOperatorKeyword(s, i)
				if end < 0 {
					return nil, errAt(start, "expected an operator (%s) after label %q, found %s",
						operatorList, toks[len(toks)-1].val, describeText(s[i:]))
				}
				toks = append(toks, token{kind: kind, pos: start})
				i = end
				continue
			}
			switch {
			case strings.HasPrefix(s[i:], "has("):
				j := skipSpace(s, i+len("has("))
				nameStart := j
				j = scanLabel(s, j)
				if j == nameStart {
					return nil, errAt(nameStart, "expected a label name inside has(...), found %s", describeText(s[j:]))
				}
				if n := j - nameStart; n > MaxLabelLength {
					return nil, errAt(nameStart, "label name is too long (%d characters, maximum %d)", n, MaxLabelLength)
				}
				name := s[nameStart:j]
				j = skipSpace(s, j)
				if j == len(s) || s[j] != ')' {
					return nil, errAt(j, `expected ")" to close "has(", found %s`, describeText(s[j:]))
				}
				toks = append(toks, token{kind: tokHas, pos: start, val: name})
				i = j + 1
			case strings.HasPrefix(s[i:], "all("):
				j := skipSpace(s, i+len("all("))
				if j == len(s) || s[j] != ')' {
					return nil, errAt(j, `expected ")" to close "all(", found %s`, describeText(s[j:]))
				}
				toks = append(toks, token{kind: tokAll, pos: start})
				i = j + 1
			case strings.HasPrefix(s[i:], "global("):
				j := skipSpace(s, i+len("global("))
				if j == len(s) || s[j] != ')' {
					return nil, errAt(j, `expected ")" to close "global(", found %s`, describeText(s[j:]))
				}
				toks = append(toks, token{kind: tokGlobal, pos: start})
				i = j + 1
			case labelChar[c]:
				j := scanLabel(s, i)
				if n := j - i; n > MaxLabelLength {
					return nil, errAt(start, "label name is too long (%d characters, maximum %d)", n, MaxLabelLength)
				}
				toks = append(toks, token{kind: tokLabel, pos: start, val: s[i:j]})
				i = j
			default:
				return nil, errAt(start, "unexpected %s", describeText(s[i:]))
			}
		}
	}
}

const operatorList = `==, !=, contains, starts with, ends with, in, not in`

// matchOperatorKeyword matches one of the word operators at s[i:], returning
// its kind and the offset just past it, or end == -1 if there is none.
// Whitespace between the words of "starts with", "ends with" and "not in" is
// optional and may be repeated.
func matchOperatorKeyword(s string, i int) (kind tokKind, end int) {
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "contains"):
		return keywordEnd(s, i+len("contains"), tokContains)
	case strings.HasPrefix(rest, "starts"):
		j := skipSpace(s, i+len("starts"))
		if strings.HasPrefix(s[j:], "with") {
			return keywordEnd(s, j+len("with"), tokStartsWith)
		}
	case strings.HasPrefix(rest, "ends"):
		j := skipSpace(s, i+len("ends"))
		if strings.HasPrefix(s[j:], "with") {
			return keywordEnd(s, j+len("with"), tokEndsWith)
		}
	case strings.HasPrefix(rest, "not"):
		j := skipSpace(s, i+len("not"))
		if strings.HasPrefix(s[j:], "in") {
			return keywordEnd(s, j+len("in"), tokNotIn)
		}
	case strings.HasPrefix(rest, "in"):
		return keywordEnd(s, i+len("in"), tokIn)
	}
	return 0, -1
}

// keywordEnd accepts a keyword ending at end only if it is not immediately
// followed by a label character.
func keywordEnd(s string, end int, kind tokKind) (tokKind, int) {
	if end < len(s) && labelChar[s[end]] {
		return 0, -1
	}
	return kind, end
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func scanLabel(s string, i int) int {
	for i < len(s) && labelChar[s[i]] {
		i++
	}
	return i
}

// describeText renders the start of some remaining, untokenized input for
// an error message.
func describeText(rest string) string {
	if rest == "" {
		return "end of selector"
	}
	if labelChar[rest[0]] {
		end := scanLabel(rest, 0)
		if end > 32 {
			return fmt.Sprintf("%q...", rest[:32])
		}
		return fmt.Sprintf("%q", rest[:end])
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return fmt.Sprintf("%q", r)
}
