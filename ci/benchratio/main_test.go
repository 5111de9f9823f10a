package main

import (
	"strings"
	"testing"
)

func TestParseAndMedian(t *testing.T) {
	out := `goos: linux
BenchmarkEvaluate/eq-2         	12345678	        43.7 ns/op	       0 B/op	       0 allocs/op
BenchmarkEvaluate/eq-2         	12345678	        50.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkEvaluate/eq-2         	12345678	        60.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkRaw-2   	  10	 2000000 ns/op	 4096 B/op	 12 allocs/op
PASS
`
	res, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := median(res["BenchmarkEvaluate/eq"]["ns/op"]); got != 50 {
		t.Errorf("median ns/op = %v, want 50", got)
	}
	if got := res["BenchmarkRaw"]["B/op"]; len(got) != 1 || got[0] != 4096 {
		t.Errorf("B/op = %v, want [4096]", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("even median = %v, want 2.5", got)
	}
}
