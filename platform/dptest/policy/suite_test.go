package policy

import (
	"bytes"
	"flag"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tortie-net/tortie/common/calc"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
	"github.com/tortie-net/tortie/platform/dptest/policy/reference"
)

var update = flag.Bool("update", false, "rewrite the expected matrices of cases.yaml from the reference evaluator")

func TestEnoughCases(t *testing.T) {
	cases, err := LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 80 {
		t.Errorf("%d cases, the suite promises at least 80", len(cases))
	}
}

// refMatrices computes every step's matrices with the reference evaluator.
func refMatrices(t *testing.T, c *Case) []map[string]string {
	t.Helper()
	m := newModel()
	var out []map[string]string
	for i := range c.Steps {
		if _, err := m.step(&c.Steps[i]); err != nil {
			t.Fatalf("case %q step %d: %v", c.Name, i+1, err)
		}
		rc := m.reference()
		pods := map[string]*reference.Pod{}
		for _, p := range rc.Pods {
			pods[p.Namespace+"/"+p.Name] = p
		}
		got := map[string]string{}
		for _, probe := range c.probes() {
			ps, _ := parseProbe(probe)
			got[probe] = m.matrix(func(s, d *podState) bool {
				return rc.Allowed(reference.Flow{Src: pods[s.id()], Dst: pods[d.id()], Protocol: ps.proto, Port: ps.port,
					ICMPType: ps.icmpType, ICMPCode: ps.icmpCode, SrcPort: 40000})
			})
		}
		out = append(out, got)
	}
	return out
}

// TestReference checks every expected matrix against the independent reference evaluator (or, with
// -update, rewrites them from it).
func TestReference(t *testing.T) {
	cases, err := LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string][]map[string]string{}
	for i := range cases {
		c := &cases[i]
		ref := refMatrices(t, c)
		all[c.Name] = ref
		if *update {
			continue
		}
		for si, step := range c.Steps {
			for _, probe := range c.probes() {
				want, ok := expected(&step, probe)
				if !ok {
					t.Errorf("case %q step %d: no expected matrix for %s", c.Name, si+1, probe)
					continue
				}
				if normalise(want) != normalise(ref[si][probe]) {
					t.Errorf("case %q step %d probe %s: the reference evaluator disagrees with the data file\nreference:\n%sdata file:\n%s",
						c.Name, si+1, probe, ref[si][probe], normalise(want))
				}
			}
		}
	}
	if *update {
		rewrite(t, all)
	}
}

func rewrite(t *testing.T, all map[string][]map[string]string) {
	data, err := os.ReadFile(CasesFile)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	get := func(m *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	for _, c := range get(root.Content[0], "cases").Content {
		name := get(c, "name").Value
		for si, step := range get(c, "steps").Content {
			mats := all[name][si]
			exp := &yaml.Node{Kind: yaml.MappingNode}
			same := true
			var first string
			for _, v := range mats {
				if first == "" {
					first = v
				}
				same = same && v == first
			}
			add := func(k, v string) {
				exp.Content = append(exp.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k, Style: yaml.DoubleQuotedStyle},
					&yaml.Node{Kind: yaml.ScalarNode, Value: v, Style: yaml.LiteralStyle})
			}
			if same {
				add("*", first)
			} else {
				for _, p := range (&Case{Probes: probesOf(get(c, "probes"))}).probes() {
					add(p, mats[p])
				}
			}
			if old := get(step, "expect"); old != nil {
				*old = *exp
			} else {
				step.Content = append(step.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "expect"}, exp)
			}
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(CasesFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func probesOf(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

// TestReferenceIndependent: the reference evaluator must not share code with what it checks. Its tortie
// imports are limited to the resource types and the selector language, neither of which imports the
// calculation or the dataplane model (common/layering_test.go keeps common's imports in check).
func TestReferenceIndependent(t *testing.T) {
	allowed := map[string]bool{"github.com/tortie-net/tortie/common/api": true, "github.com/tortie-net/tortie/common/selector": true}
	files, err := filepath.Glob(filepath.Join("reference", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference sources: %v", err)
	}
	for _, f := range files {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/tortie-net/tortie/") && !allowed[path] {
				t.Errorf("%s imports %s: the reference evaluator may use only %v", f, path, allowed)
			}
		}
	}
}

// calcCluster runs the calculation for each node and interprets its dpmodel state.
type calcCluster struct {
	calcs  map[string]*calc.Calculator
	states map[string]*dpmodel.State
	objs   map[datastore.Key]datastore.Update
}

func newCalcCluster(*testing.T) Dataplane {
	c := &calcCluster{calcs: map[string]*calc.Calculator{}, states: map[string]*dpmodel.State{}, objs: map[datastore.Key]datastore.Update{}}
	for _, n := range Nodes {
		c.calcs[n] = calc.New(calc.Config{NodeName: n})
		c.states[n] = dpmodel.NewState()
	}
	return c
}

// Update feeds the batch to every node's calculator and checks that each incremental state equals the
// state a fresh calculator computes from all current resources at once.
func (c *calcCluster) Update(t testing.TB, batch []datastore.Update) {
	t.Helper()
	for _, u := range batch {
		if u.Type == datastore.UpdateDeleted {
			delete(c.objs, u.Key)
		} else {
			c.objs[u.Key] = datastore.Update{Type: datastore.UpdateNew, Key: u.Key, Value: u.Value}
		}
	}
	var snapshot []datastore.Update
	for _, u := range c.objs {
		snapshot = append(snapshot, u)
	}
	for _, n := range Nodes {
		if err := c.states[n].ApplyAll(c.calcs[n].OnUpdates(batch)); err != nil {
			t.Fatalf("node %s: the calculation broke the dpmodel contract: %v", n, err)
		}
		fresh := dpmodel.NewState()
		if err := fresh.ApplyAll(calc.New(calc.Config{NodeName: n}).OnUpdates(snapshot)); err != nil {
			t.Fatalf("node %s: from scratch, the calculation broke the dpmodel contract: %v", n, err)
		}
		if d := stateDiff(fresh, c.states[n]); d != "" {
			t.Fatalf("node %s: incremental state differs from the state calculated from scratch (-scratch +incremental):\n%s", n, d)
		}
	}
}

func (c *calcCluster) Allowed(t testing.TB, p Probe) bool {
	t.Helper()
	pkt := dpeval.Packet{Src: p.SrcIP, Dst: p.DstIP, Protocol: p.Protocol, SrcPort: p.SrcPort, DstPort: p.DstPort,
		ICMPType: p.ICMPType, ICMPCode: p.ICMPCode}
	eg, name := dpeval.Side(c.states[p.SrcNode], dpeval.Egress, pkt)
	if name == "" {
		t.Fatalf("%s is not a local endpoint of node %s", p.Src, p.SrcNode)
	}
	in, name := dpeval.Side(c.states[p.DstNode], dpeval.Ingress, pkt)
	if name == "" {
		t.Fatalf("%s is not a local endpoint of node %s", p.Dst, p.DstNode)
	}
	return eg.Verdict == dpmodel.Allow && in.Verdict == dpmodel.Allow
}

// stateDiff compares two states' contents (an IP set emptied by deltas holds an empty slice, one sent
// empty holds nil: the same set).
func stateDiff(a, b *dpmodel.State) string {
	return cmp.Diff(exported(a), exported(b), cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}))
}

// TestCalc runs every case through the calculation and the dpmodel interpreter.
func TestCalc(t *testing.T) {
	Run(t, newCalcCluster)
}

// exported is a state's content without State's bookkeeping, for comparisons.
func exported(s *dpmodel.State) any {
	return []any{s.Config, s.IPSets, s.Policies, s.Profiles, s.Workloads, s.HostEndpoints, s.Routes, s.VTEPs, s.Pools, s.Hosts}
}
