//go:build linux

package dataplane

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// recordingManager records what the Dataplane forwards to it.
type recordingManager struct {
	calls   []string
	applyEr error
}

func (m *recordingManager) OnUpdate(u dpmodel.Update) {
	m.calls = append(m.calls, "OnUpdate "+u.Kind())
}
func (m *recordingManager) Apply(context.Context) error {
	m.calls = append(m.calls, "Apply")
	return m.applyEr
}
func (m *recordingManager) QueueResync() { m.calls = append(m.calls, "QueueResync") }
func (m *recordingManager) Cleanup(context.Context) error {
	m.calls = append(m.calls, "Cleanup")
	return nil
}

// brokenRunner fails every command, as a host without iptables would.
type brokenRunner struct{}

func (brokenRunner) Run(_ context.Context, name string, _ []string, _ []byte) ([]byte, error) {
	return nil, errors.New(name + ": not found")
}

// TestExtraManagers: every update reaches every extra manager, and Apply, QueueResync and Cleanup run
// on each even when the policy part or another manager fails; the errors are joined.
func TestExtraManagers(t *testing.T) {
	a := &recordingManager{applyEr: errors.New("routes: injected")}
	b := &recordingManager{}
	dp := New(Options{Runner: brokenRunner{}, Backend: "nft", Extra: []Manager{a, b}})
	dp.OnUpdate(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1"}})
	dp.OnUpdate(dpmodel.RouteUpdate{Dst: pfx("10.0.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}})
	dp.QueueResync()
	err := dp.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "routes: injected") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Apply: %v, want both the policy part's and the manager's errors", err)
	}
	if err := dp.Cleanup(t.Context()); err == nil {
		t.Errorf("Cleanup with a broken iptables succeeded")
	}
	want := []string{"OnUpdate ConfigUpdate", "OnUpdate RouteUpdate", "QueueResync", "Apply", "Cleanup"}
	for name, m := range map[string]*recordingManager{"first": a, "second": b} {
		if d := cmp.Diff(want, m.calls); d != "" {
			t.Errorf("%s manager's calls (-want +got):\n%s", name, d)
		}
	}
}
