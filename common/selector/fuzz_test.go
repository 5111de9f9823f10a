package selector

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics, that any error is a
// well-formed *ParseError, and that for any accepted selector the canonical
// form re-parses to the same canonical form and UID, evaluates the same as
// the original on generated label maps, and that LabelRestrictions holds for
// every matching map.
func FuzzParse(f *testing.F) {
	c := loadCorpus(f)
	for _, tc := range c.Evaluate {
		f.Add(tc.Selector)
	}
	for _, s := range c.Invalid {
		f.Add(s)
	}
	for _, s := range c.InvalidTokenizer {
		f.Add(s)
	}
	for _, tc := range c.Canonical {
		f.Add(tc.Input)
	}
	for _, tc := range c.Tokenize {
		f.Add(tc.Input)
	}
	for _, tc := range c.LabelRestrictions {
		f.Add(tc.Selector)
	}
	f.Add(`!(!(a == "x" || b in {"y", "z",}) && c not in {})`)
	f.Add("a\tstarts \n with 'x' && !(b endswith \"y\" || c contains 'z')")

	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", s, err)
			}
			if pe.Pos < 0 || pe.Pos > len(s) || pe.Msg == "" || pe.Selector != s {
				t.Fatalf("Parse(%q): malformed error %#v", s, pe)
			}
			return
		}
		canon := sel.String()
		sel2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", s, canon, err)
		}
		if got := sel2.String(); got != canon {
			t.Fatalf("canonical form not a fixed point: %q -> %q -> %q", s, canon, got)
		}
		if sel.UniqueID() != sel2.UniqueID() {
			t.Fatalf("UniqueID differs between %q and its canonical form", s)
		}

		restr := sel.LabelRestrictions()
		for _, m := range genLabelMaps(&sel.root, s) {
			want := sel.Evaluate(m)
			if got := sel2.Evaluate(m); got != want {
				t.Fatalf("%q.Evaluate(%v) = %v but canonical %q gives %v", s, m, want, canon, got)
			}
			if got := sel.EvaluateLabels(mapLabels(m)); got != want {
				t.Fatalf("%q: Evaluate(%v) = %v but EvaluateLabels gives %v", s, m, want, got)
			}
			if want {
				checkRestrictions(t, s, restr, m)
			}
		}
	})
}

// checkRestrictions fails if matching labels m break a label restriction.
func checkRestrictions(t *testing.T, s string, restr map[string]LabelRestriction, m map[string]string) {
	t.Helper()
	for k, r := range restr {
		v, ok := m[k]
		switch {
		case r.MustBePresent && !ok:
			t.Fatalf("%q matches %v, but restriction says %q must be present", s, m, k)
		case r.MustBeAbsent && ok:
			t.Fatalf("%q matches %v, but restriction says %q must be absent", s, m, k)
		case r.MustHaveOneOfValues != nil && (!ok || !slices.Contains(r.MustHaveOneOfValues, v)):
			t.Fatalf("%q matches %v, but restriction says %q must be one of %q", s, m, k, r.MustHaveOneOfValues)
		}
	}
}

// genLabelMaps makes a few label maps that exercise the selector: each label
// it mentions is absent, or has one of its literals, or a variant of one
// (prefixed, suffixed, empty). The choice is seeded from the input so runs
// are reproducible.
func genLabelMaps(root *node, seed string) []map[string]string {
	vals := map[string][]string{}
	var walk func(n *node)
	walk = func(n *node) {
		if n.label != "" {
			vs := vals[n.label]
			if n.kind != opHas {
				vs = append(vs, n.value)
			}
			vs = append(vs, n.set...)
			vals[n.label] = vs
		}
		for i := range n.kids {
			walk(&n.kids[i])
		}
	}
	walk(root)
	labels := make([]string, 0, len(vals))
	for k := range vals {
		labels = append(labels, k)
	}
	slices.Sort(labels)

	h := fnv.New64a()
	h.Write([]byte(seed))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x5e1ec7))

	maps := []map[string]string{{}, {"unrelated": "x"}}
	for range 10 {
		m := map[string]string{}
		for _, k := range labels {
			vs := vals[k]
			base := ""
			if len(vs) > 0 {
				base = vs[rng.IntN(len(vs))]
			}
			switch rng.IntN(6) {
			case 0: // absent
			case 1, 2:
				m[k] = base
			case 3:
				m[k] = "p" + base
			case 4:
				m[k] = base + "s"
			case 5:
				m[k] = ""
			}
		}
		maps = append(maps, m)
	}
	return maps
}
