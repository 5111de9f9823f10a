package selector

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
)

// Selector is a parsed label selector. It is immutable and safe for
// concurrent use. The zero Selector is equivalent to all(); a nil *Selector
// is not valid.
type Selector struct {
	root  node
	canon string // canonical text; "" only for the zero Selector

	uidOnce sync.Once
	uid     string
}

// Labels is a source of labels that need not be a map, for example a
// workload's own labels layered over its namespace's. Get returns the value
// of key and whether it is present.
type Labels interface {
	Get(key string) (value string, present bool)
}

// ParseError describes why a selector was rejected.
type ParseError struct {
	Selector string // the input, verbatim
	Pos      int    // 0-based byte offset of the problem in Selector
	Msg      string // what was wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("selector %q: position %d: %s", e.Selector, e.Pos, e.Msg)
}

// Parse parses a selector. An empty or all-whitespace selector is all().
// Errors are of type *ParseError.
func Parse(s string) (*Selector, error) {
	root, err := parse(s)
	if err != nil {
		return nil, &ParseError{Selector: s, Pos: err.pos, Msg: err.msg}
	}
	return &Selector{root: root, canon: string(root.appendCanonical(make([]byte, 0, len(s)+8)))}, nil
}

// MustParse is Parse that panics on error; for tests and constants.
func MustParse(s string) *Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// Validate reports whether s is a valid selector, returning the error Parse
// would return.
func Validate(s string) error {
	_, err := Parse(s)
	return err
}

// Evaluate reports whether labels match the selector. A missing label is
// not the same as an empty value: `k == ""` needs k present, while
// "k != 'v'" and "k not in {...}" match when k is absent. Evaluate does not
// allocate.
func (s *Selector) Evaluate(labels map[string]string) bool {
	return s.root.evalMap(labels)
}

// EvaluateLabels is Evaluate for a Labels source. It does not allocate
// beyond what l.Get does.
func (s *Selector) EvaluateLabels(l Labels) bool {
	return s.root.evalLabels(l)
}

// String returns the canonical form of the selector: Parse(s.String())
// is a selector with the same meaning and the same String(), and any two
// inputs that differ only in spacing, quoting, redundant parentheses,
// repeated "!" or set order/duplicates share one canonical form.
func (s *Selector) String() string {
	if s.canon == "" {
		return "all()"
	}
	return s.canon
}

// UniqueID returns an identifier derived from the canonical form:
// "s:" + base64url-without-padding(SHA-224("s:" + String())). Equal
// canonical forms give equal IDs; it is used to name IP sets.
func (s *Selector) UniqueID() string {
	s.uidOnce.Do(func() {
		sum := sha256.Sum224([]byte("s:" + s.String()))
		s.uid = "s:" + base64.RawURLEncoding.EncodeToString(sum[:])
	})
	return s.uid
}

// ValidateLabelKey reports whether k can be used as a label name in a
// selector: 1 to MaxLabelLength characters from [A-Za-z0-9_./-]. (This is
// the selector language's rule; Kubernetes label keys are stricter.)
func ValidateLabelKey(k string) error {
	if k == "" {
		return fmt.Errorf("label key is empty")
	}
	if len(k) > MaxLabelLength {
		return fmt.Errorf("label key is too long (%d characters, maximum %d)", len(k), MaxLabelLength)
	}
	for i := 0; i < len(k); i++ {
		if !labelChar[k[i]] {
			return fmt.Errorf("label key %q: invalid character %s at position %d (allowed: A-Z a-z 0-9 _ . / -)",
				k, describeText(k[i:]), i)
		}
	}
	return nil
}

// LabelKeyValid reports whether ValidateLabelKey(k) == nil.
func LabelKeyValid(k string) bool {
	if k == "" || len(k) > MaxLabelLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !labelChar[k[i]] {
			return false
		}
	}
	return true
}
