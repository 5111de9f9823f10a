package fake_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform/dptest"
	"github.com/tortie-net/tortie/platform/fake"
)

// broken wraps the fake with one defect, to prove the conformance suite catches it.
type broken struct {
	*fake.Dataplane
	defect  string
	applies int
}

func (b *broken) OnUpdate(u dpmodel.Update) {
	if b.defect == "drops-removes" && strings.HasSuffix(u.Kind(), "Remove") {
		return
	}
	b.Dataplane.OnUpdate(u)
}

func (b *broken) Apply(ctx context.Context) error {
	b.applies++
	return b.Dataplane.Apply(ctx)
}

func (b *broken) QueueResync() {
	if b.defect != "ignores-resync" {
		b.Dataplane.QueueResync()
	}
}

func (b *broken) Cleanup(ctx context.Context) error {
	if b.defect == "no-cleanup" {
		return nil
	}
	return b.Dataplane.Cleanup(ctx)
}

const brokenEnv = "TORTIE_DPTEST_BROKEN"

// TestBrokenHelper runs the suite against a broken dataplane; only as TestSuiteCatchesBrokenDataplanes'
// child.
func TestBrokenHelper(t *testing.T) {
	defect := os.Getenv(brokenEnv)
	if defect == "" {
		t.Skip("run by TestSuiteCatchesBrokenDataplanes")
	}
	dptest.Run(t, func(t *testing.T) dptest.Instance {
		b := &broken{Dataplane: fake.New(), defect: defect}
		writes := b.Writes
		if defect == "writes-every-apply" {
			writes = func() int { return b.Writes() + b.applies }
		}
		return dptest.Instance{Dataplane: b, Writes: writes,
			Host:          func(context.Context) (*dpmodel.State, error) { return b.Host(), nil },
			FailNextApply: func() { b.FailNextApplies(1) },
			Drift: func(_ context.Context, r *rand.Rand) error {
				return b.Drift(drift(b.Host(), r))
			},
		}
	})
}

// TestSuiteCatchesBrokenDataplanes: each defect fails the check meant to catch it.
func TestSuiteCatchesBrokenDataplanes(t *testing.T) {
	for defect, check := range map[string]string{
		"drops-removes":      "States",
		"writes-every-apply": "Idempotent",
		"ignores-resync":     "Resync",
		"no-cleanup":         "Cleanup",
	} {
		t.Run(defect, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v") //nolint:gosec // this test binary
			cmd.Env = append(os.Environ(), brokenEnv+"="+defect)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a dataplane that %s:\n%s", defect, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenHelper/"+check) {
				t.Errorf("the %s check did not catch a dataplane that %s:\n%s", check, defect, out)
			}
		})
	}
}
