//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/linux/lab"
	"github.com/tortie-net/tortie/platform/dptest/policy"
)

// The policy model's placement (platform/dptest/policy): pod a of every namespace on n1, b on n2, c on
// n3, at 10.0.<namespace 1-3>.<pod 1-3>.
func modelIP(ns, pod string) string {
	return fmt.Sprintf("10.0.%d.%d", slices.Index(policy.Namespaces, ns)+1, slices.Index(policy.PodNames, pod)+1)
}

func modelNode(pod string, nodes int) string {
	return fmt.Sprint(slices.Index(policy.PodNames, pod)%nodes + 1)
}

func modelPods() []string {
	var out []string
	for _, ns := range policy.Namespaces {
		for _, p := range policy.PodNames {
			out = append(out, ns+"/"+p)
		}
	}
	return out
}

// modelSourcePort is the source port of every probe of the policy model (platform/dptest/policy).
// The only case whose rules match source ports allows 40000:40010, so a re-probe after a mismatch
// uses the next port of that range (40000 + attempt): same verdict, and no socket or conntrack entry
// left by the previous attempt's port in the way.
const modelSourcePort = 40000

// sourcePortRule matches a rule whose source matches ports: the lab probes such a case from the
// model's source port. Other cases probe from ephemeral ports, so a step's probes never ride a
// conntrack entry a previous step's probe made.
var sourcePortRule = regexp.MustCompile(`source: \{[^}]*\b(ports|notPorts):`)

func needsSourcePort(c *policy.Case) bool {
	for _, s := range c.Steps {
		if sourcePortRule.MatchString(s.Apply) {
			return true
		}
	}
	return false
}

// labProbes maps the case's probes the lab can send (tcp/N, udp/N) to probe --json keys.
func labProbes(c *policy.Case) map[string]string {
	probes := c.Probes
	if len(probes) == 0 {
		probes = policy.DefaultProbes
	}
	out := map[string]string{}
	for _, p := range probes {
		proto, port, ok := strings.Cut(p, "/")
		if ok && (proto == "tcp" || proto == "udp") && !strings.Contains(port, "/") {
			out[p] = strings.ToUpper(proto) + "/" + port
		}
	}
	return out
}

// conformanceLab sets up the model: namespaces x, y, z labelled ns=<name>, pods a, b, c labelled
// pod=<name> at the model's addresses, on nodes n1..n3, each serving the model's four ports plus
// tcp/82 (some cases probe it).
func conformanceLab(t *testing.T, nodes int, encap string, needLinux bool) *labT {
	l := newLab(t, "--nodes", fmt.Sprint(nodes), "--pod-cidr", "10.0.0.0/16", "--encap", encap)
	if dp := l.dataplane(); needLinux && dp != "linux" {
		t.Skipf("needs the Linux dataplane (policy enforcement and routes between nodes): tortie-node runs --dataplane %s "+
			"because `tortie-node run --dataplane linux` says it is not wired yet", dp)
	}
	for _, ns := range policy.Namespaces {
		l.must("", "ns", "add", ns, "--label", "ns="+ns)
		for _, p := range policy.PodNames {
			l.must("", "sa", "add", ns+"/sa-"+p, "--label", "sa="+p)
		}
	}
	for _, id := range modelPods() {
		addModelPod(l, id, nodes)
	}
	if needLinux && nodes > 1 {
		l.must("", "sync")
		if m := l.probe("--port", "80"); m.Results["TCP/80"][0][1] != '.' {
			t.Skipf("needs routes between nodes: x/a on n1 does not reach x/b on n2 without any policy "+
				"(the Linux dataplane programs no routes between nodes yet: linux/routing is not wired into it): %v", m.Results["TCP/80"])
		}
	}
	return l
}

func addModelPod(l *labT, id string, nodes int) {
	ns, pod, _ := strings.Cut(id, "/")
	l.must("", "pod", "add", id, "--node", modelNode(pod, nodes), "--label", "pod="+pod, "--ip", modelIP(ns, pod),
		"--port", "serve-80-tcp=80/TCP", "--port", "serve-81-tcp=81/TCP", "--port", "serve-80-udp=80/UDP",
		"--port", "serve-81-udp=81/UDP", "--port", "serve-82-tcp=82/TCP", "--sa", "sa-"+pod)
}

// runCase plays one case on the lab and compares every probe matrix with the case's expectation
// (which TestReference in platform/dptest/policy checks against the reference evaluator), then puts
// the lab back to the model's start.
func runCase(t *testing.T, parent *labT, c *policy.Case, nodes int) {
	l := &labT{t: t, dir: parent.dir, ph: parent.ph} // fail this case, not the test that owns the lab
	probes := labProbes(c)
	if len(probes) == 0 {
		t.Skipf("case %s probes only %v, which the lab cannot send (TCP and UDP only)", c.Name, c.Probes)
	}
	removed := map[string]bool{}
	relabelled := map[string]bool{}
	profiled := map[string]bool{}
	var applied []string
	t.Cleanup(func() {
		start := time.Now()
		resetModel(t, l, applied, removed, relabelled, profiled, nodes)
		l.ph.add("reset", start)
	})
	fixedSourcePort := needsSourcePort(c)
	for i, s := range c.Steps {
		start := time.Now()
		if s.Apply != "" {
			out, errOut, code := l.run(s.Apply, "apply", "-f", "-")
			if code != 0 {
				t.Fatalf("case %s step %d: apply: exit %d\n%s%s", c.Name, i+1, code, out, errOut)
			}
			applied = append(applied, s.Apply)
		}
		if s.Delete != "" {
			l.must(s.Delete, "delete", "-f", "-")
		}
		for _, ns := range slices.Sorted(maps.Keys(s.NSLabels)) {
			l.must("", append([]string{"ns", "label", ns}, kv(s.NSLabels[ns])...)...)
			relabelled[ns] = true
		}
		for _, id := range slices.Sorted(maps.Keys(s.PodLabels)) {
			l.must("", append([]string{"pod", "label", id}, kv(s.PodLabels[id])...)...)
			relabelled[id] = true
		}
		for _, id := range s.RemovePods {
			l.must("", "pod", "del", id)
			removed[id] = true
		}
		for _, id := range s.AddPods {
			addModelPod(l, id, nodes)
			delete(removed, id)
		}
		for _, id := range slices.Sorted(maps.Keys(s.PodProfiles)) {
			l.must("", append([]string{"pod", "profiles", id}, s.PodProfiles[id]...)...)
			profiled[id] = true
		}
		l.ph.add("change", start)
		start = time.Now()
		l.must("", "sync")
		l.ph.add("sync", start)
		// An allowed probe is certain (the destination answered with its id); a blocked one may be a
		// probe that timed out on a loaded machine. A mismatch is probed again (twice at most) before
		// it counts, which cannot turn a wrong "allowed" into a match.
		var diffs []string
		for attempt := 0; attempt < 3; attempt++ {
			timeout := "1s"
			if attempt == 2 {
				timeout = "3s"
			}
			probeArgs := []string{"--timeout", timeout}
			if fixedSourcePort {
				probeArgs = append(probeArgs, "--source-port", fmt.Sprint(modelSourcePort+attempt))
			}
			start := time.Now()
			got := l.probe(probeArgs...)
			l.ph.add("probe", start)
			diffs = diffs[:0]
			for _, probe := range slices.Sorted(maps.Keys(probes)) {
				want, ok := s.Expect[probe]
				if !ok {
					want = s.Expect["*"]
				}
				if g, w := render(got, probes[probe]), loopbackAllowed(normalise(want)); g != w {
					diffs = append(diffs, fmt.Sprintf("case %s step %d probe %s: matrix (rows from, columns to %s)\ngot:\n%swant:\n%s",
						c.Name, i+1, probe, strings.Join(modelPods(), " "), g, w))
				}
			}
			if len(diffs) == 0 {
				break
			}
		}
		for _, d := range diffs {
			t.Error(d)
		}
	}
}

func kv(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// render turns a probe result into the model's 9×9 matrix: absent pods are '-'.
func render(m matrix, key string) string {
	rows := m.Results[key]
	var b strings.Builder
	for _, src := range modelPods() {
		b.WriteString(src + " ")
		si := slices.Index(m.Pods, src)
		for _, dst := range modelPods() {
			di := slices.Index(m.Pods, dst)
			if si < 0 || di < 0 || si >= len(rows) || di >= len(rows[si]) {
				b.WriteByte('-')
				continue
			}
			b.WriteByte(rows[si][di])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// loopbackAllowed sets the matrix's diagonal to allowed where the pod exists: a pod reaching its own
// address never leaves its network namespace (the kernel loops it back), so no dataplane sees it, as
// the Kubernetes network-policy e2e tests also assume (AllowLoopback). The policy model evaluates it
// like any other pair.
func loopbackAllowed(m string) string {
	lines := strings.Split(strings.TrimSuffix(m, "\n"), "\n")
	for i, l := range lines {
		name, row, ok := strings.Cut(l, " ")
		if !ok || i >= len(row) || row[i] == '-' {
			continue
		}
		b := []byte(row)
		b[i] = '.'
		lines[i] = name + " " + string(b)
	}
	return strings.Join(lines, "\n") + "\n"
}

func normalise(m string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(m), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n") + "\n"
}

// resetModel deletes what the case applied and restores the labels it changed and the pods it removed.
func resetModel(t *testing.T, l *labT, applied []string, removed, relabelled, profiled map[string]bool, nodes int) {
	lb, err := lab.Open(l.dir)
	if err != nil {
		t.Errorf("reset: %v", err)
		return
	}
	for _, docs := range applied {
		var errOut strings.Builder
		if code := lb.Tortiectl(context.Background(), []string{"delete", "--skip-not-exists", "-f", "-"}, strings.NewReader(docs), &errOut, &errOut); code != 0 {
			t.Errorf("reset: deleting the case's resources: %s", errOut.String())
		}
	}
	lb.Close()
	for _, ns := range policy.Namespaces {
		if relabelled[ns] {
			l.must("", "ns", "label", ns, "ns="+ns)
		}
	}
	for _, id := range modelPods() {
		_, pod, _ := strings.Cut(id, "/")
		switch {
		case removed[id]:
			addModelPod(l, id, nodes)
		case relabelled[id]:
			l.must("", "pod", "label", id, "pod="+pod)
		}
		if profiled[id] && !removed[id] {
			l.must("", "pod", "profiles", id, "--default")
		}
	}
}

// threeNodesRan: TestConformance got past its skips, so TestConformanceOneNode adds nothing.
var threeNodesRan bool

// rejectConfig makes the agents reject what policy denies (Felix's IptablesFilterDenyAction: Reject):
// a blocked TCP probe gets a reset and a blocked UDP probe an ICMP port unreachable at once, instead
// of waiting out its timeout. The other settings are what tortie-node's startup writes.
const rejectConfig = `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {reportingInterval: 0s, logSeverityScreen: Info, iptablesFilterDenyAction: Reject}
`

// TestConformance: every case of platform/dptest/policy/cases.yaml on three nodes, over VXLAN with
// the default deny action (Drop: blocked probes time out) and without encapsulation with Reject
// (blocked probes are refused at once), one lab per encapsulation reused across the cases.
func TestConformance(t *testing.T) {
	cases, err := policy.LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct{ encap, deny string }{{"vxlan", "Drop"}, {"none", "Reject"}} {
		t.Run(run.encap, func(t *testing.T) {
			begin := time.Now()
			l := conformanceLab(t, 3, run.encap, true)
			if run.deny == "Reject" {
				l.must(rejectConfig, "apply", "-f", "-")
				l.must("", "sync")
			}
			threeNodesRan = true
			l.ph = &phases{}
			t.Cleanup(func() { t.Logf("%s, deny action %s: lab up in %s; %s", run.encap, run.deny, l.ph.setup, l.ph) })
			l.ph.setup = time.Since(begin).Round(time.Millisecond)
			for i := range cases {
				c := &cases[i]
				t.Run(c.Name, func(t *testing.T) {
					runCase(t, l, c, 3)
				})
			}
		})
	}
}

// phases adds up where the conformance run spends its time (logged with -v or on failure).
type phases struct {
	mu    sync.Mutex
	setup time.Duration
	total map[string]time.Duration
	count map[string]int
}

func (p *phases) add(name string, start time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == nil {
		p.total, p.count = map[string]time.Duration{}, map[string]int{}
	}
	p.total[name] += time.Since(start)
	p.count[name]++
}

func (p *phases) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, k := range []string{"change", "sync", "probe", "reset"} {
		parts = append(parts, fmt.Sprintf("%s %s in %d", k, p.total[k].Round(time.Millisecond), p.count[k]))
	}
	return strings.Join(parts, ", ")
}

// TestHarness checks the conformance harness itself on one node with whatever dataplane tortie-node
// has: the model's pods at the model's addresses, the namespace profiles allowing everything, pods
// removed and re-added, so the no-policy case's all-allowed matrices come out of real probes.
func TestHarness(t *testing.T) {
	if os.Getenv("TORTIE_E2E_SHORT") != "" {
		t.Skip("TORTIE_E2E_SHORT set")
	}
	cases, err := policy.LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	var c *policy.Case
	for i := range cases {
		if cases[i].Name == "k8s-no-policy" {
			c = &cases[i]
		}
	}
	if c == nil {
		t.Fatal("cases.yaml has no k8s-no-policy case")
	}
	l := conformanceLab(t, 1, "vxlan", false)
	runCase(t, l, c, 1)
	// Removing and re-adding a pod between steps: the lab's matrix shows it absent, then back.
	churn := policy.Case{Name: "churn", Steps: []policy.Step{
		{RemovePods: []string{"x/b"}, Expect: map[string]string{"*": churnMatrix("x/b")}},
		{AddPods: []string{"x/b"}, Expect: map[string]string{"*": churnMatrix("")}},
	}}
	runCase(t, l, &churn, 1)
}

// churnMatrix is all-allowed with the given pod absent.
func churnMatrix(absent string) string {
	var b strings.Builder
	for _, s := range modelPods() {
		b.WriteString(s + " ")
		for _, d := range modelPods() {
			if s == absent || d == absent {
				b.WriteByte('-')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestConformanceOneNode: every case with all nine pods on one node, which needs the Linux dataplane's
// policy but no routes between nodes. TestConformance is the real thing (three nodes); this one runs
// the same comparisons, where only enforcement is involved, when TestConformance could not. It is
// opt-in (TORTIE_E2E_ONE_NODE=1): it takes about half an hour.
func TestConformanceOneNode(t *testing.T) {
	cases, err := policy.LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	if threeNodesRan {
		t.Skip("TestConformance ran every case on three nodes")
	}
	if os.Getenv("TORTIE_E2E_ONE_NODE") == "" {
		t.Skip("set TORTIE_E2E_ONE_NODE=1 to run every case on one node (about 15 s per case with the Linux dataplane; " +
			"linux/dataplane's own suite already runs the cases on three namespace nodes)")
	}
	l := conformanceLab(t, 1, "vxlan", true)
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			runCase(t, l, c, 1)
		})
	}
}
