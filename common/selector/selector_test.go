package selector_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/selector"
)

func TestParseErrorFormat(t *testing.T) {
	tests := []struct {
		in      string
		wantPos int
		wantErr string
	}{
		{`a == `, 5, `selector "a == ": position 5: expected a quoted string after "=="`},
		{`a == b`, 5, `selector "a == b": position 5: expected a quoted string after "==", found label "b"`},
		{`a in "x"`, 5, `selector "a in \"x\"": position 5: expected a set literal such as {"a", "b"} after "in", found string literal "x"`},
		{`a in {"x" "y"}`, 10, `selector "a in {\"x\" \"y\"}": position 10: expected "," or "}" after string literal in set, found string literal "y"`},
		{`a in {,}`, 6, `selector "a in {,}": position 6: expected a quoted string or "}" after "{", found ","`},
		{`has(a))`, 6, `selector "has(a))": position 6: unexpected ")" with no matching "("`},
		{`has(a) has(b)`, 7, `selector "has(a) has(b)": position 7: expected "&&", "||" or end of selector after "has(a)", found "has(b)"`},
		{`a == "x`, 5, `selector "a == \"x": position 5: unterminated string literal: no closing double quote`},
		{`a == 'x`, 5, `selector "a == 'x": position 5: unterminated string literal: no closing single quote`},
		{`a = "x"`, 2, `selector "a = \"x\"": position 2: unexpected "=" (equality is written "==")`},
		{`a ∈ {"x"}`, 2, `selector "a ∈ {\"x\"}": position 2: expected an operator (==, !=, contains, starts with, ends with, in, not in) after label "a", found '∈'`},
		{`ä == "x"`, 0, `selector "ä == \"x\"": position 0: unexpected 'ä'`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := selector.Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error", tc.in)
			}
			if got := err.Error(); got != tc.wantErr {
				t.Errorf("Parse(%q) error:\n got %s\nwant %s", tc.in, got, tc.wantErr)
			}
			var pe *selector.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Pos != tc.wantPos || pe.Selector != tc.in {
				t.Errorf("ParseError{Selector: %q, Pos: %d}, want {%q, %d}", pe.Selector, pe.Pos, tc.in, tc.wantPos)
			}
		})
	}
}

func TestCanonicalExtra(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a == "b" && c == "d"`, `(a == "b" && c == "d")`},
		{`a == "b" || c == "d" && e == "f"`, `(a == "b" || (c == "d" && e == "f"))`},
		{`(a == "b" || c == "d") && e == "f"`, `((a == "b" || c == "d") && e == "f")`},
		{`a == "b" && (c == "d" && e == "f")`, `(a == "b" && (c == "d" && e == "f"))`},
		{`((((has(a)))))`, `has(a)`},
		{`!(!has(a))`, `has(a)`},
		{`!(!(!has(a)))`, `!has(a)`},
		{`!!(has(a) && has(b))`, `(has(a) && has(b))`},
		{`!(a == 'x')`, `!a == "x"`},
		{`a in {}`, `a in {}`},
		{`a not in {'b',}`, `a not in {"b"}`},
		{"a\tnot \t in\n{ 'b' ,'a' }", `a not in {"a", "b"}`},
		{`a notin {"x"}`, `a not in {"x"}`},
		{`a startswith "x"`, `a starts with "x"`},
		{`a   ends    with "x"`, `a ends with "x"`},
		{`a contains"x"`, `a contains "x"`},
		{`contains contains 'contains'`, `contains contains "contains"`},
		{`in in {'in'}`, `in in {"in"}`},
		{`all == "x"`, `all == "x"`},
		{`has(has)`, `has(has)`},
		{`global( )`, `global()`},
		{`a == ""`, `a == ""`},
		{`a in {"'", '"'}`, `a in {'"', "'"}`}, // '"' < '\'' bytewise
		{`calico/k8s_NS-.1/role == 'x'`, `calico/k8s_NS-.1/role == "x"`},
		{"\n\t ", `all()`},
		{`a in{"x"}`, `a in {"x"}`},
		{`a!='x'&&b=="y"||!c in{}`, `((a != "x" && b == "y") || !c in {})`},
		{`a == "x y" && b == 'has(c) && d'`, `(a == "x y" && b == "has(c) && d")`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			sel, err := selector.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := sel.String(); got != tc.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			again := selector.MustParse(sel.String())
			if again.String() != sel.String() || again.UniqueID() != sel.UniqueID() {
				t.Errorf("canonical form %q is not a fixed point: %q", sel, again)
			}
		})
	}
}

func TestInvalidExtra(t *testing.T) {
	for _, s := range []string{
		`a inx {"x"}`, `a in-x`, `a not {"x"}`, `a {"x"}`, `a (`, `a )`, `a &&`,
		`has(a) == "x"`, `all() == "x"`, `a == "x" b == "y"`, `a == "x")`, `((has(a))`,
		`a in {"x"`, `a in {"x",`, `a in {"x",,}`, `a in {"x" "y"}`, `a in {a}`, `a == 'x' 'y'`,
		`!`, `!!`, `&&`, `||`, `has(a) && || has(b)`, `has(a b)`, `has(a,b)`, `all(x)`,
		`a =! "x"`, `a === "x"`, `a == "x" &&& has(b)`, "a == \"x\" \x00", "has(a)\u00a0",
	} {
		t.Run(s, func(t *testing.T) {
			if sel, err := selector.Parse(s); err == nil {
				t.Errorf("Parse(%q) = %q, want error", s, sel)
			}
		})
	}
}

func TestEvaluateExtra(t *testing.T) {
	manyVals := make([]string, 0, 40)
	for i := range 40 {
		manyVals = append(manyVals, `"v`+strings.Repeat("x", i)+`"`)
	}
	bigSet := "{" + strings.Join(manyVals, ", ") + "}"
	tests := []struct {
		sel    string
		labels map[string]string
		want   bool
	}{
		{`a == ""`, map[string]string{"a": ""}, true},
		{`a == ""`, nil, false},
		{`a != ""`, nil, true},
		{`a in {}`, map[string]string{"a": ""}, false},
		{`a not in {}`, map[string]string{"a": ""}, true},
		{`a in {""}`, map[string]string{"a": ""}, true},
		{`a contains ""`, map[string]string{"a": "x"}, true},
		{`a contains ""`, nil, false},
		{`!a contains "x"`, nil, true},
		{`a in ` + bigSet, map[string]string{"a": "vxxxx"}, true},
		{`a in ` + bigSet, map[string]string{"a": "w"}, false},
		{`a not in ` + bigSet, map[string]string{"a": "vxxxx"}, false},
		{`a not in ` + bigSet, nil, true},
		{`has(a) || has(b) && has(c)`, map[string]string{"a": ""}, true},
		{`(has(a) || has(b)) && has(c)`, map[string]string{"a": ""}, false},
		{`!(has(a) && has(b))`, map[string]string{"a": ""}, true},
		{`!global()`, nil, false},
	}
	for _, tc := range tests {
		name := tc.sel
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			sel := selector.MustParse(tc.sel)
			if got := sel.Evaluate(tc.labels); got != tc.want {
				t.Errorf("%q.Evaluate(%v) = %v, want %v", sel, tc.labels, got, tc.want)
			}
			if got := sel.EvaluateLabels(layered{tc.labels, nil}); got != tc.want {
				t.Errorf("%q.EvaluateLabels(%v) = %v, want %v", sel, tc.labels, got, tc.want)
			}
			if got := selector.MustParse(sel.String()).Evaluate(tc.labels); got != tc.want {
				t.Errorf("canonical %q.Evaluate(%v) = %v, want %v", sel, tc.labels, got, tc.want)
			}
		})
	}
}

// layered is an example Labels implementation: own labels over inherited.
type layered struct{ own, inherited map[string]string }

func (l layered) Get(k string) (string, bool) {
	if v, ok := l.own[k]; ok {
		return v, true
	}
	v, ok := l.inherited[k]
	return v, ok
}

func TestEvaluateLabelsLayered(t *testing.T) {
	sel := selector.MustParse(`app == "web" && projectcalico.org/namespace == "prod"`)
	l := layered{
		own:       map[string]string{"app": "web"},
		inherited: map[string]string{"projectcalico.org/namespace": "prod"},
	}
	if !sel.EvaluateLabels(l) {
		t.Errorf("%q.EvaluateLabels(%v) = false, want true", sel, l)
	}
}

func TestZeroSelector(t *testing.T) {
	var s selector.Selector
	if !s.Evaluate(nil) || !s.Evaluate(map[string]string{"a": "b"}) {
		t.Error("zero Selector should match everything")
	}
	if got := s.String(); got != "all()" {
		t.Errorf("zero Selector String() = %q, want all()", got)
	}
	if got, want := s.UniqueID(), selector.MustParse("").UniqueID(); got != want {
		t.Errorf("zero Selector UniqueID() = %q, want %q", got, want)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("MustParse did not panic")
		}
		if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "position") {
			t.Errorf("MustParse panicked with %v, want the parse error", r)
		}
	}()
	selector.MustParse("a ==")
}

func TestNesting(t *testing.T) {
	ok := strings.Repeat("(", selector.MaxNesting) + "has(a)" + strings.Repeat(")", selector.MaxNesting)
	if err := selector.Validate(ok); err != nil {
		t.Errorf("nesting %d: %v", selector.MaxNesting, err)
	}
	deep := "(" + ok + ")"
	if err := selector.Validate(deep); err == nil {
		t.Errorf("nesting %d accepted, want error", selector.MaxNesting+1)
	}
	// Runs of "!" are not recursion and are not limited.
	if err := selector.Validate(strings.Repeat("!", 100000) + "has(a)"); err != nil {
		t.Errorf("long run of !: %v", err)
	}
}

func TestLabelLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want bool
	}{{1, true}, {512, true}, {513, false}} {
		k := strings.Repeat("k", tc.n)
		for _, s := range []string{k + ` == "v"`, "has(" + k + ")"} {
			if got := selector.Validate(s) == nil; got != tc.want {
				t.Errorf("Validate(<%d-char label> in %.10q...) ok = %v, want %v", tc.n, s, got, tc.want)
			}
		}
		if got := selector.LabelKeyValid(k); got != tc.want {
			t.Errorf("LabelKeyValid(<%d chars>) = %v, want %v", tc.n, got, tc.want)
		}
		if got := selector.ValidateLabelKey(k) == nil; got != tc.want {
			t.Errorf("ValidateLabelKey(<%d chars>) ok = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestValidateLabelKey(t *testing.T) {
	tests := []struct {
		key     string
		wantErr string
	}{
		{"app", ""},
		{"projectcalico.org/namespace", ""},
		{"A-Z_a-z.0-9/", ""},
		{"", "label key is empty"},
		{"a b", `label key "a b": invalid character ' ' at position 1 (allowed: A-Z a-z 0-9 _ . / -)`},
		{"a:b", `label key "a:b": invalid character ':' at position 1 (allowed: A-Z a-z 0-9 _ . / -)`},
		{"é", `label key "é": invalid character 'é' at position 0 (allowed: A-Z a-z 0-9 _ . / -)`},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := selector.ValidateLabelKey(tc.key)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, got); diff != "" {
				t.Errorf("ValidateLabelKey(%q) (-want +got):\n%s", tc.key, diff)
			}
			if valid := selector.LabelKeyValid(tc.key); valid != (tc.wantErr == "") {
				t.Errorf("LabelKeyValid(%q) = %v, want %v", tc.key, valid, tc.wantErr == "")
			}
		})
	}
}

func TestLabelRestrictionsExtra(t *testing.T) {
	type LR = selector.LabelRestriction
	tests := []struct {
		sel  string
		want map[string]LR
	}{
		{`!(a != 'x')`, map[string]LR{"a": {MustBePresent: true, MustHaveOneOfValues: []string{"x"}}}},
		{`!(a not in {'y', 'x'})`, map[string]LR{"a": {MustBePresent: true, MustHaveOneOfValues: []string{"x", "y"}}}},
		{`!(has(a) || has(b))`, map[string]LR{"a": {MustBeAbsent: true}, "b": {MustBeAbsent: true}}},
		{`!(has(a) && has(b))`, nil},
		{`!(a in {'x'})`, nil},
		{`!(a contains 'x')`, nil},
		{`!all()`, nil},
		{`!has(a) || !has(a)`, map[string]LR{"a": {MustBeAbsent: true}}},
		{`!has(a) || has(a)`, nil},
		{`a in {'x', 'y'} || a in {'y', 'z'}`, map[string]LR{"a": {MustBePresent: true, MustHaveOneOfValues: []string{"x", "y", "z"}}}},
		{`(a == 'x' || has(b)) && b == 'y'`, map[string]LR{"b": {MustBePresent: true, MustHaveOneOfValues: []string{"y"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.sel, func(t *testing.T) {
			got := selector.MustParse(tc.sel).LabelRestrictions()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("LabelRestrictions(%q) (-want +got):\n%s", tc.sel, diff)
			}
		})
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "frontend", "env": "prod", "x": "1"}
	for _, s := range []string{
		`app == 'web'`,
		`app == 'web' && tier in {'frontend', 'backend'} && env != 'dev'`,
		`has(x) && !has(y)`,
		`app contains 'e' || app starts with 'w' || app ends with 'b' || app not in {'a','b','c','d','e','f','g','h','i','j'}`,
	} {
		sel := selector.MustParse(s)
		if n := testing.AllocsPerRun(100, func() { sel.Evaluate(labels) }); n != 0 {
			t.Errorf("%q.Evaluate allocates %v times per call", s, n)
		}
		var l selector.Labels = layered{own: labels} // convert once, outside the measured call
		if n := testing.AllocsPerRun(100, func() { sel.EvaluateLabels(l) }); n != 0 {
			t.Errorf("%q.EvaluateLabels allocates %v times per call", s, n)
		}
	}
}
