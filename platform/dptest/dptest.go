package dptest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform"
)

// Instance is one dataplane under test over its own host.
type Instance struct {
	Dataplane platform.Dataplane
	// Host reads back what is programmed on the host, as a dpmodel.State holding what the dataplane can
	// read back (see Project). Required.
	Host func(ctx context.Context) (*dpmodel.State, error)
	// Project reduces a desired state to what Host can read back (e.g. a dataplane that cannot read rule
	// annotations back drops them). nil: Host reads back everything.
	Project func(*dpmodel.State) *dpmodel.State
	// Writes counts the writes to the host so far (objects or OS calls; only differences matter).
	// Required.
	Writes func() int
	// Drift changes the programmed host behind the dataplane's back, as an operator or another agent
	// would (delete a route, flush a set); r picks what. nil skips the Resync check.
	Drift func(ctx context.Context, r *rand.Rand) error
	// FailNextApply makes the next Apply fail part-way. nil skips the Retry check.
	FailNextApply func()
}

// Factory builds a fresh Instance; cleanup goes through t.Cleanup.
type Factory func(t *testing.T) Instance

// Options tune Run.
type Options struct {
	// Sequences and StatesPerSequence size the States check (defaults 20 and 6).
	Sequences, StatesPerSequence int
	// Random builds the random states (default RandomState).
	Random func(r *rand.Rand) *dpmodel.State
}

// Run runs the conformance suite against the dataplanes the factory builds.
func Run(t *testing.T, f Factory, opts ...Options) {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Sequences <= 0 {
		o.Sequences = 20
	}
	if o.StatesPerSequence <= 0 {
		o.StatesPerSequence = 6
	}
	if o.Random == nil {
		o.Random = RandomState
	}
	t.Run("States", func(t *testing.T) { testStates(t, f, o) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, f, o) })
	t.Run("Resync", func(t *testing.T) { testResync(t, f, o) })
	t.Run("Retry", func(t *testing.T) { testRetry(t, f, o) })
	t.Run("Cleanup", func(t *testing.T) { testCleanup(t, f, o) })
}

// program sends the updates that turn from into to, and applies them.
func program(t *testing.T, inst Instance, from, to *dpmodel.State) {
	t.Helper()
	for _, u := range dpmodel.Diff(from, to) {
		inst.Dataplane.OnUpdate(u)
	}
	if err := inst.Dataplane.Apply(t.Context()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// checkHost fails the test unless the host holds want (projected).
func checkHost(t *testing.T, inst Instance, want *dpmodel.State, what string) {
	t.Helper()
	got, err := inst.Host(t.Context())
	if err != nil {
		t.Fatalf("%s: reading the host back: %v", what, err)
	}
	if inst.Project != nil {
		want = inst.Project(want)
	}
	if !got.Equal(want) {
		t.Fatalf("%s: host differs from the desired state;\nmissing or different: %v\nextra: %v",
			what, kinds(dpmodel.Diff(got, want)), kinds(dpmodel.Diff(want, got)))
	}
}

// kinds summarises updates for a failure message.
func kinds(us []dpmodel.Update) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, fmt.Sprintf("%s%+v", u.Kind(), u))
	}
	return out
}

func testStates(t *testing.T, f Factory, o Options) {
	for seq := range o.Sequences {
		t.Run(fmt.Sprint("seed", seq), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seq), 0xd9))
			inst := f(t)
			prev := dpmodel.NewState()
			for i := range o.StatesPerSequence {
				next := o.Random(r)
				// Now and then go back to empty, as after every workload left.
				if r.IntN(5) == 0 {
					next = dpmodel.NewState()
					next.Config = prev.Config
				}
				program(t, inst, prev, next)
				checkHost(t, inst, next, fmt.Sprintf("after state %d", i))
				prev = next
			}
		})
	}
}

func testIdempotent(t *testing.T, f Factory, o Options) {
	inst := f(t)
	s := o.Random(rand.New(rand.NewPCG(1, 2)))
	program(t, inst, dpmodel.NewState(), s)
	before := inst.Writes()
	if err := inst.Dataplane.Apply(t.Context()); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if n := inst.Writes() - before; n != 0 {
		t.Errorf("a second Apply with nothing new wrote %d times", n)
	}
	// Every message is idempotent: the same state sent again changes nothing on the host.
	program(t, inst, dpmodel.NewState(), s)
	if n := inst.Writes() - before; n != 0 {
		t.Errorf("an Apply after the same updates were sent again wrote %d times", n)
	}
	checkHost(t, inst, s, "after repeated Applies")
}

func testResync(t *testing.T, f Factory, o Options) {
	inst := f(t)
	if inst.Drift == nil {
		t.Skip("the factory cannot inject drift")
	}
	r := rand.New(rand.NewPCG(3, 4))
	s := dpmodel.NewState()
	for len(dpmodel.Diff(dpmodel.NewState(), s)) < 5 { // something to drift
		s = o.Random(r)
	}
	program(t, inst, dpmodel.NewState(), s)
	for round := range 5 {
		if err := inst.Drift(t.Context(), r); err != nil {
			t.Fatalf("injecting drift: %v", err)
		}
		inst.Dataplane.QueueResync()
		if err := inst.Dataplane.Apply(t.Context()); err != nil {
			t.Fatalf("Apply after QueueResync: %v", err)
		}
		checkHost(t, inst, s, fmt.Sprintf("after drift %d and a resync", round))
		before := inst.Writes()
		if err := inst.Dataplane.Apply(t.Context()); err != nil {
			t.Fatalf("Apply after the repair: %v", err)
		}
		if n := inst.Writes() - before; n != 0 {
			t.Errorf("the Apply after a repair wrote %d times", n)
		}
	}
}

func testRetry(t *testing.T, f Factory, o Options) {
	inst := f(t)
	if inst.FailNextApply == nil {
		t.Skip("the factory cannot inject Apply failures")
	}
	r := rand.New(rand.NewPCG(5, 6))
	a, b, c := o.Random(r), o.Random(r), o.Random(r)
	program(t, inst, dpmodel.NewState(), a)
	inst.FailNextApply()
	for _, u := range dpmodel.Diff(a, b) {
		inst.Dataplane.OnUpdate(u)
	}
	if err := inst.Dataplane.Apply(t.Context()); err == nil {
		t.Fatal("the Apply made to fail succeeded")
	}
	// Later updates are recorded before the retry, which must reach the latest state.
	program(t, inst, b, c)
	checkHost(t, inst, c, "after a failed Apply and a retry")
}

func testCleanup(t *testing.T, f Factory, o Options) {
	inst := f(t)
	s := o.Random(rand.New(rand.NewPCG(7, 8)))
	program(t, inst, dpmodel.NewState(), s)
	for i := range 2 {
		if err := inst.Dataplane.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup %d: %v", i+1, err)
		}
		got, err := inst.Host(t.Context())
		if err != nil {
			t.Fatalf("reading the host back: %v", err)
		}
		if snap := got.Snapshot(); len(snap) > 0 {
			t.Fatalf("after Cleanup %d the host still holds %v", i+1, kinds(snap))
		}
	}
}
