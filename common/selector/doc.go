// Package selector implements the Calico label-selector language: parsing,
// evaluation against a set of labels, and a canonical text form.
//
// # Language
//
// Grammar, from lowest to highest precedence:
//
//	expr := and ( "||" and )*
//	and  := op ( "&&" op )*
//	op   := "!"* primary
//	primary := "has(" label ")"
//	         | "all()"
//	         | "global()"
//	         | label ( "==" | "!=" | "contains" | "starts with" | "ends with" ) literal
//	         | label ( "in" | "not in" ) "{" [ literal ( "," literal )* [ "," ] ] "}"
//	         | "(" expr ")"
//
// A label name is 1 to 512 characters from [A-Za-z0-9_./-]. A literal is
// quoted with '...' or "..." and has no escapes, so it cannot contain its
// own quote character. Whitespace (space, tab, newline, CR, VT, FF) is
// allowed between tokens, including inside "has( k )", "all( )" and between
// the words of "starts with", "ends with" and "not in" (which may also be
// written "startswith", "endswith", "notin"). The word operators are only
// recognised directly after a label, so "contains contains 'x'" tests the
// label named "contains"; and a word operator may not run on into label
// characters ("a inf" is an error). An empty or all-whitespace selector is
// equivalent to all().
//
// # Semantics
//
// For labels L:
//
//	has(k)                k is present in L
//	all(), global()       true (global() has a special meaning in rule
//	                      namespaceSelectors, handled by the caller)
//	k == "v"              k present and L[k] == v
//	k != "v"              k absent or L[k] != v
//	k contains "v"        k present and L[k] contains v
//	k starts with "v"     k present and L[k] has prefix v
//	k ends with "v"       k present and L[k] has suffix v
//	k in {...}            k present and L[k] in the set
//	k not in {...}        k absent or L[k] not in the set
//	!x                    not x; "!!x" is x
//
// && and || short-circuit left to right.
//
// # Contract
//
// Parse returns a *Selector or a *ParseError giving the 0-based byte
// position and the problem, e.g.
//
//	selector "a == ": position 5: expected a quoted string after "=="
//
// A *Selector is immutable and safe for concurrent use. Evaluate and
// EvaluateLabels do not allocate.
//
// String returns the canonical form: operators separated by single spaces,
// no space after "!", every && or || group parenthesised (including the
// outermost: `(a == "x" && has(b))`), parentheses otherwise dropped, runs of
// "!" collapsed, sets sorted (bytewise) and de-duplicated, and each literal
// in double quotes unless it contains a double quote, in which case single
// quotes. Parse(s.String()) always succeeds, means the same, and has the
// same String(); so String() and UniqueID() identify the selector's meaning
// up to those normalisations (they do not reorder or simplify operands).
// For the selectors in Calico's own tests, String() and UniqueID() equal
// Calico's.
//
// Known, deliberate differences from Calico: a negated parenthesised
// negation such as "!(!has(a))" canonicalises to "has(a)" (Calico prints
// "!!has(a)", which is not a fixed point); newline, CR, VT and FF count as
// whitespace (Calico accepts only space and tab); parentheses may nest at
// most MaxNesting deep.
//
// UniqueID is "s:" + base64url-without-padding(SHA-224("s:" + String())),
// and is used to name IP sets.
//
// LabelRestrictions derives per-label necessary conditions (must be
// present, must be absent, must have one of some values) for label indexes.
package selector
