package selector_test

import (
	"testing"

	"github.com/tortie-net/tortie/common/selector"
)

// benchLabels is a typical pod's label set.
var benchLabels = map[string]string{
	"app":                                "web",
	"tier":                               "frontend",
	"env":                                "staging",
	"version":                            "v1.4.2",
	"x":                                  "1",
	"pod-template-hash":                  "7d9f8c6b5",
	"app.kubernetes.io/name":             "web",
	"app.kubernetes.io/part-of":          "shop",
	"projectcalico.org/namespace":        "shop",
	"projectcalico.org/serviceaccount":   "default",
	"projectcalico.org/orchestrator":     "k8s",
	"security.example.com/compliance-pd": "true",
}

var sink bool

// benchCases pairs each selector with a hand-written equivalent.
var benchCases = []struct {
	name     string
	sel      string
	baseline func(map[string]string) bool
}{
	{
		name: "eq",
		sel:  `app == 'web'`,
		baseline: func(l map[string]string) bool {
			v, ok := l["app"]
			return ok && v == "web"
		},
	},
	{
		name: "and3-in",
		sel:  `app == 'web' && tier in {'frontend', 'backend', 'cache'} && env != 'prod'`,
		baseline: func(l map[string]string) bool {
			if v, ok := l["app"]; !ok || v != "web" {
				return false
			}
			if v, ok := l["tier"]; !ok || (v != "frontend" && v != "backend" && v != "cache") {
				return false
			}
			v, ok := l["env"]
			return !ok || v != "prod"
		},
	},
	{
		name: "has-not-has",
		sel:  `has(x) && !has(y)`,
		baseline: func(l map[string]string) bool {
			if _, ok := l["x"]; !ok {
				return false
			}
			_, ok := l["y"]
			return !ok
		},
	},
}

func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range benchCases {
		sel := selector.MustParse(bc.sel)
		if sel.Evaluate(benchLabels) != bc.baseline(benchLabels) {
			b.Fatalf("%s: selector and baseline disagree", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = sel.Evaluate(benchLabels)
			}
		})
	}
}

func BenchmarkEvaluateBaselineMapLookup(b *testing.B) {
	for _, bc := range benchCases {
		f := bc.baseline
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = f(benchLabels)
			}
		})
	}
}

func BenchmarkEvaluateLabels(b *testing.B) {
	for _, bc := range benchCases {
		sel := selector.MustParse(bc.sel)
		var l selector.Labels = layered{own: benchLabels}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = sel.EvaluateLabels(l)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := selector.Parse(bc.sel); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
