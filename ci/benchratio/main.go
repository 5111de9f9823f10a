// Command benchratio reads `go test -bench` output and prints, for each pair of benchmarks named on
// the command line, the median of ours and of the baseline and their ratio, as a Markdown table.
// ci/bench.sh runs the pairs interleaved (ours, baseline, ours, …) and pipes the output here.
//
//	benchratio -pairs pairs.txt < bench.out
//
// A pairs file has one pair a line: "label | ours-benchmark | baseline-benchmark" with benchmark names
// as go test prints them without the -N GOMAXPROCS suffix (e.g. BenchmarkEvaluate/eq).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// result lines look like: BenchmarkX/sub-2   	 1000	  1234 ns/op	  56 B/op	  3 allocs/op	  7.5 custom/unit
var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type samples map[string][]float64 // unit -> values

func parse(r io.Reader) (map[string]samples, error) {
	out := map[string]samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			if out[m[1]] == nil {
				out[m[1]] = samples{}
			}
			out[m[1]][fields[i+1]] = append(out[m[1]][fields[i+1]], v)
		}
	}
	return out, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type pair struct{ label, ours, base string }

// units lists the metrics both sides report: the standard three first, then custom ones (allocs/s,
// cpu-ns/op, …) in name order.
func units(o, b samples) []string {
	std := []string{"ns/op", "B/op", "allocs/op"}
	var out, custom []string
	for _, u := range std {
		if len(o[u]) > 0 && len(b[u]) > 0 {
			out = append(out, u)
		}
	}
	for u := range o {
		if len(b[u]) > 0 && !slices.Contains(std, u) {
			custom = append(custom, u)
		}
	}
	slices.Sort(custom)
	return append(out, custom...)
}

func readPairs(path string) ([]pair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ps []pair
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"label | ours | baseline\", got %q", path, n+1, line)
		}
		ps = append(ps, pair{strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])})
	}
	return ps, nil
}

func human(v float64, unit string) string {
	switch unit {
	case "ns/op":
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.2f s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.2f ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.2f µs", v/1e3)
		}
		return fmt.Sprintf("%.1f ns", v)
	case "B/op":
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}

func main() {
	pairsPath := flag.String("pairs", "", "file of `label | ours | baseline` lines")
	flag.Parse()
	if *pairsPath == "" {
		fmt.Fprintln(os.Stderr, "benchratio: -pairs is required")
		os.Exit(2)
	}
	ps, err := readPairs(*pairsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	res, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio: reading benchmark output:", err)
		os.Exit(2)
	}
	fmt.Println("| benchmark | metric | ours (median) | baseline (median) | ours/baseline | runs |")
	fmt.Println("|---|---|---|---|---|---|")
	missing := 0
	for _, p := range ps {
		o, b := res[p.ours], res[p.base]
		if o == nil || b == nil {
			fmt.Fprintf(os.Stderr, "benchratio: no results for %q or %q\n", p.ours, p.base)
			missing++
			continue
		}
		for _, unit := range units(o, b) {
			ov, bv := o[unit], b[unit]
			if len(ov) == 0 || len(bv) == 0 {
				continue
			}
			om, bm := median(ov), median(bv)
			ratio := "n/a"
			if bm > 0 {
				ratio = fmt.Sprintf("%.2f×", om/bm)
			} else if om == 0 {
				ratio = "equal (0)"
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %d/%d |\n", p.label, unit, human(om, unit), human(bm, unit), ratio, len(ov), len(bv))
		}
	}
	if missing > 0 {
		os.Exit(1)
	}
}
