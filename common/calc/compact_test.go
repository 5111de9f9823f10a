package calc

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
)

// TestIDSet drives an idSet through random adds and removes against a map, over ranges that make it
// pass through all three forms (one member, sorted slice, bitmap) and back.
func TestIDSet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		universe uint32
		ops      int
		addBias  float64
	}{
		{"sparse", 100_000, 3000, 0.6},
		{"dense", 200, 5000, 0.7},
		{"grow then drain", 2000, 8000, 0.5},
		{"tiny", 3, 200, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.universe)))
			var s idSet
			want := map[uint32]bool{}
			sawDense, sawSlice := false, false
			for i := range tc.ops {
				bias := tc.addBias
				if tc.name == "grow then drain" && i > tc.ops/2 {
					bias = 1 - bias - 0.2
				}
				id := r.Uint32N(tc.universe)
				if r.Float64() < bias {
					if got := s.add(id); got == want[id] {
						t.Fatalf("op %d: add(%d) = %v with the member present=%v", i, id, got, want[id])
					}
					want[id] = true
				} else {
					if got := s.remove(id); got != want[id] {
						t.Fatalf("op %d: remove(%d) = %v with the member present=%v", i, id, got, want[id])
					}
					delete(want, id)
				}
				sawDense = sawDense || s.dense
				sawSlice = sawSlice || (!s.dense && s.n > 1)
				if s.len() != len(want) {
					t.Fatalf("op %d: len %d, want %d", i, s.len(), len(want))
				}
				if i%97 == 0 {
					if d := cmp.Diff(slices.Sorted(maps.Keys(want)), s.appendTo(nil)); d != "" {
						t.Fatalf("op %d: members (-want +got):\n%s", i, d)
					}
					for probe := range min(tc.universe, 50) {
						if s.has(probe) != want[probe] {
							t.Fatalf("op %d: has(%d) = %v", i, probe, s.has(probe))
						}
					}
				}
			}
			if tc.name == "dense" && !sawDense {
				t.Error("the dense case never became a bitmap")
			}
			if tc.name == "sparse" && (sawDense || !sawSlice) {
				t.Errorf("the sparse case: bitmap %v, slice %v; want a slice only", sawDense, sawSlice)
			}
		})
	}
}

func TestIDAllocatorReusesLowestFirst(t *testing.T) {
	var a idAllocator
	for want := range uint32(5) {
		if got := a.get(); got != want {
			t.Fatalf("get = %d, want %d", got, want)
		}
	}
	a.put(3)
	a.put(1)
	got := []uint32{a.get(), a.get(), a.get()}
	if d := cmp.Diff([]uint32{1, 3, 5}, got); d != "" {
		t.Errorf("ids after freeing 3 and 1 (-want +got):\n%s", d)
	}
}

func TestLabelsWith(t *testing.T) {
	base := labelsFromMap(map[string]string{"a": "1", "b": "2", "d": "4"})
	over := labelsFromMap(map[string]string{"b": "X", "c": "3"})
	baseBefore, overBefore := base.toMap(), over.toMap()
	got := base.with(over)
	if d := cmp.Diff(map[string]string{"a": "1", "b": "X", "c": "3", "d": "4"}, got.toMap()); d != "" {
		t.Errorf("with (-want +got):\n%s", d)
	}
	if !slices.IsSortedFunc(got, func(x, y label) int { return compareStr(x.k.Value(), y.k.Value()) }) {
		t.Errorf("with: not sorted by key: %v", got.toMap())
	}
	if d := cmp.Diff(baseBefore, base.toMap()); d != "" {
		t.Errorf("with changed its receiver (-before +after):\n%s", d)
	}
	if d := cmp.Diff(overBefore, over.toMap()); d != "" {
		t.Errorf("with changed its argument (-before +after):\n%s", d)
	}
	for _, k := range []string{"a", "b", "c", "d", "e", ""} {
		v, ok := got.get(k)
		wv, wok := got.toMap()[k]
		if v != wv || ok != wok {
			t.Errorf("get(%q) = %q, %v; want %q, %v", k, v, ok, wv, wok)
		}
	}
}

// TestInterningDoesNotAlias: endpoints built from identical labels (and one shared labels map) share
// interned strings and, without profile labels, their own label slice is their flattened one; a later
// change to one endpoint's labels, or to the map it was built from, must reach no other endpoint.
func TestInterningDoesNotAlias(t *testing.T) {
	w := newWorld(t, "n1")
	shared := map[string]string{"app": "web", "tier": "front"}
	a := pod("ns1", "a", "n1", "10.0.0.1", shared)
	b := pod("ns1", "b", "n1", "10.0.0.2", shared)
	c := pod("ns1", "c", "n2", "10.0.0.3", maps.Clone(shared))
	w.put(a, b, c)
	// A policy that makes an IP set of the "web" pods.
	w.put(gnp("allow-web", 1, "all()", func(s *api.GlobalNetworkPolicySpec) {
		s.Ingress = []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "app == 'web'"}}}
	}))
	setID := mustParse("app == 'web'").UniqueID()
	members := func() []string {
		var out []string
		for _, m := range w.state.IPSets[setID].Members {
			out = append(out, m.Net.String())
		}
		slices.Sort(out)
		return out
	}
	if d := cmp.Diff([]string{"10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"}, members()); d != "" {
		t.Fatalf("IP set before the change (-want +got):\n%s", d)
	}

	// Relabel a (a new labels map, as a datastore update brings), then write to the map b and the old a
	// were built from: neither may change what the calculation holds for b.
	a2 := a.DeepCopy()
	a2.Labels = map[string]string{"app": "db", "tier": "front"}
	w.put(a2)
	shared["app"] = "mutated"
	if d := cmp.Diff([]string{"10.0.0.2/32", "10.0.0.3/32"}, members()); d != "" {
		t.Errorf("IP set after relabelling a (-want +got):\n%s", d)
	}
	labelsOf := func(name string) map[string]string {
		e := w.c.all.entities["wep/ns1/"+api.WorkloadEndpointName(map[string]string{"a": "n1", "b": "n1", "c": "n2"}[name], "k8s", name, "eth0")]
		if e == nil {
			t.Fatalf("no entity for pod %s", name)
		}
		return e.labels.toMap()
	}
	for name, app := range map[string]string{"a": "db", "b": "web", "c": "web"} {
		if got := labelsOf(name)["app"]; got != app {
			t.Errorf("pod %s: app = %q, want %q (labels %v)", name, got, app, labelsOf(name))
		}
	}
	shared["app"] = "web" // what the datastore still holds for b (checkScratch reads it)
	// The interned key is one copy for all three.
	ka, kb := w.c.all.entities["wep/ns1/"+a2.Name].labels, w.c.all.entities["wep/ns1/"+b.Name].labels
	ia, _ := ka.find("tier")
	ib, _ := kb.find("tier")
	if ka[ia].v != kb[ib].v || ka[ia].k != kb[ib].k {
		t.Error("the shared label tier=front is not interned to one handle")
	}
	// A namespace (profile) label change reaches every pod of the namespace, each through its own
	// flattened labels.
	w.put(namespace("ns1", map[string]string{"env": "prod"}))
	for _, name := range []string{"a", "b", "c"} {
		if got := labelsOf(name)["pcns.env"]; got != "prod" {
			t.Errorf("pod %s: pcns.env = %q after the namespace change", name, got)
		}
	}
	w.put(pod("ns2", "d", "n2", "10.0.0.4", map[string]string{"app": "web"}))
	if d := cmp.Diff([]string{"10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32"}, members()); d != "" {
		t.Errorf("IP set after adding d (-want +got):\n%s", d)
	}
	w.checkScratch()
}
