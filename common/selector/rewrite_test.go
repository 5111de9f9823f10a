package selector

import "testing"

func TestPrefixLabels(t *testing.T) {
	hasNS := MustParse("has(ns)")
	notNS := MustParse("!has(ns)")
	for _, tc := range []struct {
		in, want string
	}{
		{"a == 'x'", `p.a == "x"`},
		{"all()", "has(ns)"},
		{"global()", "!has(ns)"},
		{"!(a in {'x','y'} || has(b)) && c != 'z'", `(!(p.a in {"x", "y"} || has(p.b)) && p.c != "z")`},
		{"a starts with 'x' || global()", `(p.a starts with "x" || !has(ns))`},
	} {
		got := MustParse(tc.in).PrefixLabels("p.", hasNS, notNS)
		if got.String() != tc.want {
			t.Errorf("PrefixLabels(%q) = %q, want %q", tc.in, got.String(), tc.want)
		}
		// The canonical form must parse back to the same selector.
		if again := MustParse(got.String()); again.String() != got.String() {
			t.Errorf("PrefixLabels(%q): canonical form %q is not a fixed point (%q)", tc.in, got.String(), again.String())
		}
	}
	s := MustParse("a == 'x' && all()").PrefixLabels("p.", nil, nil)
	if !s.Evaluate(map[string]string{"p.a": "x"}) || s.Evaluate(map[string]string{"a": "x"}) {
		t.Errorf("prefixed selector %q evaluates wrongly", s)
	}
}
