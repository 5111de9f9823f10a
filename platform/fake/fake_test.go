package fake_test

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform/dptest"
	"github.com/tortie-net/tortie/platform/fake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func factory(t *testing.T) dptest.Instance {
	d := fake.New()
	return dptest.Instance{
		Dataplane:     d,
		Host:          func(context.Context) (*dpmodel.State, error) { return d.Host(), nil },
		Writes:        d.Writes,
		FailNextApply: func() { d.FailNextApplies(1) },
		Drift: func(_ context.Context, r *rand.Rand) error {
			return d.Drift(drift(d.Host(), r))
		},
	}
}

// drift picks a change an operator could make behind the dataplane's back: delete a route or an
// endpoint, flush a set, remove a pool, or add a route tortie did not make.
func drift(h *dpmodel.State, r *rand.Rand) dpmodel.Update {
	pick := func(n int) int { return r.IntN(max(n, 1)) }
	switch r.IntN(5) {
	case 0:
		if ks := keys(h.Routes); len(ks) > 0 {
			return dpmodel.RouteRemove{Dst: ks[pick(len(ks))]}
		}
	case 1:
		if ks := keys(h.Workloads); len(ks) > 0 {
			return dpmodel.WorkloadEndpointRemove{ID: ks[pick(len(ks))]}
		}
	case 2:
		if ks := keys(h.IPSets); len(ks) > 0 {
			id := ks[pick(len(ks))]
			return dpmodel.IPSetUpdate{ID: id, Type: h.IPSets[id].Type}
		}
	case 3:
		if ks := keys(h.Pools); len(ks) > 0 {
			return dpmodel.PoolRemove{CIDR: ks[0]}
		}
	}
	return dpmodel.RouteUpdate{Dst: netip.MustParsePrefix("10.99.0.0/24"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}}
}

func keys[K comparable, V any](m map[K]V) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	// Map order is random; sort by the rendered form so the drift depends on the seed only.
	slices.SortFunc(out, func(a, b K) int { return cmpString(a, b) })
	return out
}

func cmpString[K any](a, b K) int {
	sa, sb := render(a), render(b)
	switch {
	case sa < sb:
		return -1
	case sa > sb:
		return 1
	}
	return 0
}

func render(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

func TestConformance(t *testing.T) { dptest.Run(t, factory) }

func TestContractViolationFailsApply(t *testing.T) {
	d := fake.New()
	pol := dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "p"}
	d.OnUpdate(dpmodel.PolicyUpdate{ID: pol, Policy: dpmodel.Policy{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, SrcIPSetIDs: []string{"s:missing"}}}}})
	err := d.Apply(t.Context())
	if !errors.Is(err, dpmodel.ErrOrder) {
		t.Fatalf("Apply after a rule referring to a missing IP set = %v, want ErrOrder", err)
	}
	if len(d.Errors()) != 1 {
		t.Errorf("recorded errors %v, want 1", d.Errors())
	}
	if st := d.Stats(); st.Writes != 0 || st.Failed != 1 {
		t.Errorf("stats after the refused update: %+v", st)
	}
	// The refused update was skipped; the next Apply succeeds with what was valid.
	if err := d.Apply(t.Context()); err != nil {
		t.Errorf("Apply after the failure was reported: %v", err)
	}
}

func TestCountsAndFaults(t *testing.T) {
	d := fake.New()
	s := dptest.RandomState(rand.New(rand.NewPCG(42, 1)))
	snap := s.Snapshot()
	for _, u := range snap {
		d.OnUpdate(u)
	}
	d.FailNextApplies(2)
	for i := range 2 {
		if err := d.Apply(t.Context()); !errors.Is(err, fake.ErrInjected) {
			t.Fatalf("Apply %d = %v, want ErrInjected", i+1, err)
		}
	}
	if err := d.Apply(t.Context()); err != nil {
		t.Fatalf("Apply after the faults: %v", err)
	}
	if !d.Host().Equal(s) {
		t.Fatalf("host after retries differs: %v", dpmodel.Diff(d.Host(), s))
	}
	st := d.Stats()
	// First failure wrote half; the second re-read the host and wrote half of the rest; the success the remainder.
	if st.Writes != len(snap) {
		t.Errorf("writes = %d, want %d (each object written once across partial Applies)", st.Writes, len(snap))
	}
	want := fake.Stats{Updates: len(snap), Applies: 3, Failed: 2, Writes: len(snap), WritesByKind: st.WritesByKind}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	sum := 0
	for _, n := range st.WritesByKind {
		sum += n
	}
	if sum != st.Writes {
		t.Errorf("writes by kind sum to %d, want %d", sum, st.Writes)
	}
	// Drift is not seen without a resync, and is repaired with one.
	var dst netip.Prefix
	for p := range s.Routes {
		dst = p
		break
	}
	if err := d.Drift(dpmodel.RouteRemove{Dst: dst}); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Host().Routes[dst]; ok {
		t.Fatal("an Apply without a resync saw the drift (the fake should trust its cache, as real dataplanes do)")
	}
	d.QueueResync()
	if err := d.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Host().Routes[dst]; !ok {
		t.Fatal("the resync did not repair the deleted route")
	}
}

func TestRenderGolden(t *testing.T) {
	for _, seed := range []uint64{1, 7} {
		s := dptest.RandomState(rand.New(rand.NewPCG(seed, 3)))
		d := fake.New()
		for _, u := range s.Snapshot() {
			d.OnUpdate(u)
		}
		if err := d.Apply(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := d.Render()
		if again := fake.Render(s); again != got {
			t.Fatalf("rendering the same state twice differs")
		}
		golden(t, filepath.Join("testdata", "random-"+string(rune('0'+seed))+".golden"), got)
	}
	if got := fake.Render(dpmodel.NewState()); got != "" {
		t.Errorf("empty state renders as %q", got)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}
