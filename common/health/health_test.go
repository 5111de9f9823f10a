package health

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLivenessByHeartbeat(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	a := New(c.now)
	loop := a.Register("loop", 90*time.Second, false)
	if !a.Live().OK {
		t.Fatal("not live right after registering")
	}
	c.add(91 * time.Second)
	rep := a.Live()
	if rep.OK || len(rep.Checks) != 1 || !strings.Contains(rep.Checks[0].Detail, "no heartbeat") {
		t.Fatalf("Live() = %+v, want failing loop", rep)
	}
	loop.Beat()
	if !a.Live().OK {
		t.Fatal("not live after a heartbeat")
	}
	if !a.Ready().OK || len(a.Ready().Checks) != 0 {
		t.Fatalf("Ready() = %+v; a liveness-only component must not count", a.Ready())
	}
}

func TestReadiness(t *testing.T) {
	a := New(nil)
	ds := a.Register("datastore", 0, true)
	dp := a.Register("dataplane", time.Minute, true)
	if a.Ready().OK {
		t.Fatal("ready before anyone said so")
	}
	ds.SetReady(true, "in sync")
	if a.Ready().OK {
		t.Fatal("ready with the dataplane not applied")
	}
	dp.SetReady(true, "applied")
	if rep := a.Ready(); !rep.OK || len(rep.Checks) != 2 || rep.Checks[0].Name != "dataplane" {
		t.Fatalf("Ready() = %+v", rep)
	}
}

func TestServeAndProbe(t *testing.T) {
	a := New(nil)
	r := a.Register("agent", time.Hour, true)
	addr, done, err := Serve(t.Context(), "127.0.0.1:0", a.Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Probe(t.Context(), addr, "/livez"); err != nil {
		t.Errorf("live probe: %v", err)
	}
	_, err = Probe(t.Context(), addr, "/readyz")
	if err == nil || !strings.Contains(err.Error(), "agent") || !strings.Contains(err.Error(), "503") {
		t.Errorf("ready probe before ready: %v, want a 503 naming agent", err)
	}
	r.SetReady(true, "ok")
	if _, err := Probe(t.Context(), addr, "/readyz"); err != nil {
		t.Errorf("ready probe: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("server ended early: %v", err)
	default:
	}
}

func TestProbeNoServer(t *testing.T) {
	_, err := Probe(t.Context(), "127.0.0.1:1", "/livez")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Probe with no server = %v, want an error naming the address", err)
	}
}
