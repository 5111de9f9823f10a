package selector

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// corpus mirrors testdata/calico-selectors.json (see its "_about" entry).
type corpus struct {
	About struct {
		Counts map[string]int `json:"counts"`
	} `json:"_about"`
	Evaluate []struct {
		Selector string            `json:"selector"`
		Labels   map[string]string `json:"labels"`
		Expected bool              `json:"expected"`
	} `json:"evaluate"`
	Invalid          []string `json:"invalid"`
	InvalidTokenizer []string `json:"invalid_tokenizer"`
	Canonical        []struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
		UID       string `json:"uid"`
	} `json:"canonical"`
	Tokenize []struct {
		Input  string `json:"input"`
		Tokens []struct {
			Kind  string
			Value string
		} `json:"tokens"`
		Error bool `json:"error"`
	} `json:"tokenize"`
	LabelRestrictions []struct {
		Selector     string `json:"selector"`
		Restrictions map[string]struct {
			MustBePresent       bool     `json:"mustBePresent"`
			MustBeAbsent        bool     `json:"mustBeAbsent"`
			MustHaveOneOfValues []string `json:"mustHaveOneOfValues"`
		} `json:"restrictions"`
	} `json:"labelRestrictions"`
}

var (
	corpusOnce sync.Once
	corpusData *corpus
	corpusErr  error
)

func loadCorpus(t testing.TB) *corpus {
	t.Helper()
	corpusOnce.Do(func() {
		raw, err := os.ReadFile("testdata/calico-selectors.json")
		if err != nil {
			corpusErr = err
			return
		}
		var c corpus
		if err := json.Unmarshal(raw, &c); err != nil {
			corpusErr = err
			return
		}
		corpusData = &c
	})
	if corpusErr != nil {
		t.Fatalf("loading corpus: %v", corpusErr)
	}
	return corpusData
}

func TestCorpusCounts(t *testing.T) {
	c := loadCorpus(t)
	got := map[string]int{
		"evaluate":          len(c.Evaluate),
		"invalid":           len(c.Invalid),
		"invalid_tokenizer": len(c.InvalidTokenizer),
		"canonical":         len(c.Canonical),
		"tokenize":          len(c.Tokenize),
		"labelRestrictions": len(c.LabelRestrictions),
	}
	if diff := cmp.Diff(c.About.Counts, got); diff != "" {
		t.Errorf("corpus section sizes differ from _about.counts (-about +loaded):\n%s", diff)
	}
}

func mustParseT(t *testing.T, s string) *Selector {
	t.Helper()
	sel, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sel
}

func TestCorpusEvaluate(t *testing.T) {
	c := loadCorpus(t)
	for i, tc := range c.Evaluate {
		t.Run(fmt.Sprintf("%03d", i), func(t *testing.T) {
			sel := mustParseT(t, tc.Selector)
			canon := mustParseT(t, sel.String())
			for _, v := range []struct {
				name string
				sel  *Selector
			}{{"parsed", sel}, {"reparsed-canonical", canon}} {
				if got := v.sel.Evaluate(tc.Labels); got != tc.Expected {
					t.Errorf("%s %q (canonical %q).Evaluate(%v) = %v, want %v",
						v.name, tc.Selector, sel.String(), tc.Labels, got, tc.Expected)
				}
				if got := v.sel.EvaluateLabels(mapLabels(tc.Labels)); got != tc.Expected {
					t.Errorf("%s %q.EvaluateLabels(%v) = %v, want %v", v.name, tc.Selector, tc.Labels, got, tc.Expected)
				}
			}
			if got, want := canon.String(), sel.String(); got != want {
				t.Errorf("canonical form not a fixed point: %q -> %q", want, got)
			}
		})
	}
}

func TestCorpusInvalid(t *testing.T) {
	c := loadCorpus(t)
	check := func(t *testing.T, s string) {
		t.Helper()
		sel, err := Parse(s)
		if err == nil {
			t.Fatalf("Parse(%q) = %q, want error", s, sel)
		}
		if pe := (*ParseError)(nil); !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error has type %T, want *ParseError", s, err)
		}
		if Validate(s) == nil {
			t.Errorf("Validate(%q) = nil, want error", s)
		}
		t.Logf("%v", err)
	}
	for i, s := range c.Invalid {
		t.Run(fmt.Sprintf("invalid-%02d", i), func(t *testing.T) { check(t, s) })
	}
	for i, s := range c.InvalidTokenizer {
		t.Run(fmt.Sprintf("tokenizer-%02d", i), func(t *testing.T) {
			check(t, s)
			if toks, err := tokenize(s, nil); err == nil {
				t.Errorf("tokenize(%q) succeeded with %d tokens, want error", s, len(toks))
			}
		})
	}
}

func TestCorpusCanonical(t *testing.T) {
	c := loadCorpus(t)
	for i, tc := range c.Canonical {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			sel := mustParseT(t, tc.Input)
			if got := sel.String(); got != tc.Canonical {
				t.Errorf("Parse(%q).String() = %q, want %q", tc.Input, got, tc.Canonical)
			}
			if tc.UID != "" {
				if got := sel.UniqueID(); got != tc.UID {
					t.Errorf("Parse(%q).UniqueID() = %q, want %q", tc.Input, got, tc.UID)
				}
			}
			again := mustParseT(t, tc.Canonical)
			if got := again.String(); got != tc.Canonical {
				t.Errorf("Parse(%q).String() = %q, want it unchanged", tc.Canonical, got)
			}
			if got, want := again.UniqueID(), sel.UniqueID(); got != want {
				t.Errorf("UniqueID of canonical form %q = %q, want %q", tc.Canonical, got, want)
			}
		})
	}
}

// corpusKind maps Calico's token kind names to ours.
var corpusKind = map[string]tokKind{
	"TokEOF":           tokEOF,
	"TokLabel":         tokLabel,
	"TokStringLiteral": tokString,
	"TokLParen":        tokLParen,
	"TokRParen":        tokRParen,
	"TokLBrace":        tokLBrace,
	"TokRBrace":        tokRBrace,
	"TokComma":         tokComma,
	"TokEq":            tokEq,
	"TokNe":            tokNe,
	"TokContains":      tokContains,
	"TokStartsWith":    tokStartsWith,
	"TokEndsWith":      tokEndsWith,
	"TokIn":            tokIn,
	"TokNotIn":         tokNotIn,
	"TokNot":           tokNot,
	"TokAnd":           tokAnd,
	"TokOr":            tokOr,
	"TokHas":           tokHas,
	"TokAll":           tokAll,
	"TokGlobal":        tokGlobal,
}

func TestCorpusTokenize(t *testing.T) {
	type tok struct {
		Kind tokKind
		Val  string
	}
	c := loadCorpus(t)
	for i, tc := range c.Tokenize {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			got, err := tokenize(tc.Input, nil)
			if tc.Error {
				if err == nil {
					t.Fatalf("tokenize(%q) succeeded, want error", tc.Input)
				}
				return
			}
			if err != nil {
				t.Fatalf("tokenize(%q): %v", tc.Input, err)
			}
			var want, have []tok
			for _, w := range tc.Tokens {
				k, ok := corpusKind[w.Kind]
				if !ok {
					t.Fatalf("unknown corpus token kind %q", w.Kind)
				}
				want = append(want, tok{k, w.Value})
			}
			for _, g := range got {
				have = append(have, tok{g.kind, g.val})
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("tokenize(%q) mismatch (-want +got):\n%s", tc.Input, diff)
			}
		})
	}
}

func TestCorpusLabelRestrictions(t *testing.T) {
	c := loadCorpus(t)
	for i, tc := range c.LabelRestrictions {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			var want map[string]LabelRestriction
			if tc.Restrictions != nil {
				want = map[string]LabelRestriction{}
				for k, r := range tc.Restrictions {
					want[k] = LabelRestriction{
						MustBePresent:       r.MustBePresent,
						MustBeAbsent:        r.MustBeAbsent,
						MustHaveOneOfValues: r.MustHaveOneOfValues,
					}
				}
			}
			sel := mustParseT(t, tc.Selector)
			for _, s := range []*Selector{sel, mustParseT(t, sel.String())} {
				if diff := cmp.Diff(want, s.LabelRestrictions()); diff != "" {
					t.Errorf("Parse(%q).LabelRestrictions() mismatch (-want +got):\n%s", s, diff)
				}
			}
		})
	}
}

// mapLabels adapts a map to Labels.
type mapLabels map[string]string

func (m mapLabels) Get(k string) (string, bool) {
	v, ok := m[k]
	return v, ok
}
