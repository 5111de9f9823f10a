package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// mutableIfaces is an interface source whose eth0 address the test changes while Monitor runs.
type mutableIfaces struct {
	mu   sync.Mutex
	eth0 string
}

func (m *mutableIfaces) set(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eth0 = addr
}

func (m *mutableIfaces) List() ([]autodetect.Interface, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return hostIfaces(m.eth0).List()
}

// recorder is a slog.Handler keeping "LEVEL message k=v …" lines (and logging them through t.Log).
type recorder struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
	t     *testing.T
}

func newRecorder(t *testing.T) (*slog.Logger, *recorder) {
	r := &recorder{mu: &sync.Mutex{}, lines: new([]string), t: t}
	return slog.New(r), r
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	*r.lines = append(*r.lines, b.String())
	r.mu.Unlock()
	r.t.Log(b.String())
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// count returns how many lines at level (e.g. "INFO") contain all of subs.
func (r *recorder) count(level string, subs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, l := range *r.lines {
		if !strings.HasPrefix(l, level+" ") {
			continue
		}
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// monitorSetup is a node-1 registered by startup with eth0 at 10.0.0.5/24 and IP=autodetect, plus a
// running Monitor.
type monitorSetup struct {
	be     datastore.Backend
	ifaces *mutableIfaces
	log    *recorder
	done   chan error
	cancel context.CancelFunc
}

// startMonitor runs startup over be, then Monitor with interval; must be called inside a bubble.
func startMonitor(t *testing.T, be datastore.Backend, env map[string]string, interval time.Duration) *monitorSetup {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env[autodetect.EnvIPv4]; !ok {
		env[autodetect.EnvIPv4] = autodetect.ValueAutodetect
	}
	env[EnvIPv4PoolCIDR] = "none"
	ifaces := &mutableIfaces{eth0: "10.0.0.5/24"}
	o := testOptions(t, be, env)
	o.Interfaces = ifaces
	run(t, o)

	logger, rec := newRecorder(t)
	o.Logger = logger
	ctx, cancel := context.WithCancel(t.Context())
	ms := &monitorSetup{be: be, ifaces: ifaces, log: rec, done: make(chan error, 1), cancel: cancel}
	go func() { ms.done <- Monitor(ctx, o, interval) }()
	synctest.Wait()
	return ms
}

// stop cancels Monitor and checks it returns nil.
func (ms *monitorSetup) stop(t *testing.T) {
	t.Helper()
	ms.cancel()
	if err := <-ms.done; err != nil {
		t.Errorf("Monitor: %v", err)
	}
}

// running fails the test when Monitor has returned.
func (ms *monitorSetup) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-ms.done:
		t.Fatalf("Monitor returned early: %v", err)
	default:
	}
}

func ipv4Of(t *testing.T, be datastore.Backend, name string) string {
	t.Helper()
	n := getNode(t, be, name)
	if n.Spec.BGP == nil {
		return ""
	}
	return n.Spec.BGP.IPv4Address
}

func TestMonitorAddressChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		// The TORTIE_ alias wins over Calico's name.
		ms := startMonitor(t, be, map[string]string{
			EnvAutodetectPollInterval: "1h", config.Alias(EnvAutodetectPollInterval): "30s",
		}, 0)
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.5/24" {
			t.Fatalf("after startup IPv4 %q", got)
		}
		if ms.log.count("INFO", "monitoring node addresses", "interval=30s") != 1 {
			t.Errorf("no start line with the interval")
		}

		ms.ifaces.set("10.0.0.7/24")
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.5/24" {
			t.Fatalf("IPv4 %q before the interval passed", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.7/24" {
			t.Fatalf("IPv4 %q after one interval, want 10.0.0.7/24", got)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := ms.log.count("INFO", "node address changed", "old_ipv4=10.0.0.5/24", "ipv4=10.0.0.7/24", "ipv4_interface=eth0", "node=node-1"); n != 1 {
			t.Errorf("change logged %d times, want once", n)
		}
		ms.running(t)
		ms.stop(t)
	})
}

func TestMonitorUnchangedWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		ms := startMonitor(t, be, nil, 10*time.Second)
		before := getNode(t, be, "node-1").ResourceVersion
		revs := revisions(t, be)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if after := getNode(t, be, "node-1").ResourceVersion; after != before {
			t.Errorf("Node revision %s → %s with unchanged addresses", before, after)
		}
		if got := revisions(t, be); strings.Join(got, " ") != strings.Join(revs, " ") {
			t.Errorf("revisions changed:\n%v\n%v", revs, got)
		}
		if n := ms.log.count("INFO", "node address changed"); n != 0 {
			t.Errorf("%d change lines", n)
		}
		ms.stop(t)
	})
}

func TestMonitorDefaultInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		ms := startMonitor(t, be, nil, 0)
		ms.ifaces.set("10.0.0.8/24")
		time.Sleep(DefaultAutodetectPollInterval - time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.5/24" {
			t.Fatalf("IPv4 %q before 60s", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.8/24" {
			t.Fatalf("IPv4 %q after 60s", got)
		}
		ms.stop(t)
	})
}

func TestMonitorAddressConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		other := api.NewNode()
		other.Name = "node-2"
		other.Spec.BGP = &api.NodeBGPSpec{IPv4Address: "10.0.0.9/24"}
		if _, err := be.Create(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		ms := startMonitor(t, be, nil, 10*time.Second)
		otherRev := getNode(t, be, "node-2").ResourceVersion

		ms.ifaces.set("10.0.0.9/24")
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got == "10.0.0.9/24" {
			t.Fatalf("the conflicting address was written")
		} else if got != "" {
			// As startup (and Calico) do for IP=autodetect: the old address is cleared for the node
			// that has it now.
			t.Errorf("IPv4 %q after the conflict, want the old address cleared", got)
		}
		if n := ms.log.count("ERROR", `IPv4 address 10.0.0.9 is already used by node "node-2"`, "DISABLE_NODE_IP_CHECK"); n != 1 {
			t.Errorf("conflict logged %d times over 30 ticks, want once", n)
		}
		if got := getNode(t, be, "node-2").ResourceVersion; got != otherRev {
			t.Errorf("the other Node was written")
		}
		ms.running(t)

		// The conflict goes away: the new address is written.
		ms.ifaces.set("10.0.0.6/24")
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.6/24" {
			t.Errorf("IPv4 %q after the conflict went away", got)
		}
		if ms.log.count("INFO", "node address check succeeded again") != 1 {
			t.Errorf("recovery not logged")
		}
		ms.stop(t)
	})
}

func TestMonitorDisableNodeIPCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		other := api.NewNode()
		other.Name = "node-2"
		other.Spec.BGP = &api.NodeBGPSpec{IPv4Address: "10.0.0.9/24"}
		if _, err := be.Create(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		ms := startMonitor(t, be, map[string]string{EnvDisableNodeIPCheck: "true"}, 10*time.Second)
		ms.ifaces.set("10.0.0.9/24")
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.9/24" {
			t.Errorf("IPv4 %q with the check disabled", got)
		}
		ms.stop(t)
	})
}

func TestMonitorCASConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &flakyBackend{Backend: memory.New()}
		ms := startMonitor(t, be, nil, 10*time.Second)
		be.mu.Lock()
		be.failures = 2
		be.mu.Unlock()

		ms.ifaces.set("10.0.0.7/24")
		time.Sleep(11 * time.Second)
		synctest.Wait()
		n := getNode(t, be, "node-1")
		if n.Spec.BGP == nil || n.Spec.BGP.IPv4Address != "10.0.0.7/24" {
			t.Fatalf("Node BGP %+v after retried conflicts", n.Spec.BGP)
		}
		if n.Labels["concurrent"] != "writer" {
			t.Errorf("the concurrent writer's label was lost: %v", n.Labels)
		}
		be.mu.Lock()
		bumped := be.bumped
		be.mu.Unlock()
		if bumped != 2 {
			t.Errorf("%d injected conflicts, want 2", bumped)
		}
		if ms.log.count("ERROR") != 0 {
			t.Errorf("a retried conflict was logged as an error")
		}
		ms.stop(t)
	})
}

func TestMonitorMissingNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		logger, rec := newRecorder(t)
		o := testOptions(t, be, map[string]string{autodetect.EnvIPv4: autodetect.ValueAutodetect})
		o.Logger = logger
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Monitor(ctx, o, time.Minute) }()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if _, err := be.Get(t.Context(), key(api.KindNode, "node-1")); err == nil {
			t.Errorf("Monitor created the Node")
		}
		if n := rec.count("ERROR", "does not exist", "tortie-node startup"); n != 1 {
			t.Errorf("missing Node logged %d times, want once", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Monitor: %v", err)
		}
	})
}

func TestMonitorNothingToMonitor(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"explicit IP", map[string]string{"IP": "10.0.0.5"}, "none is autodetected"},
		{"explicit TORTIE_IP over autodetect", map[string]string{"IP": "autodetect", "TORTIE_IP": "10.0.0.5/24"}, "ipv4_variable=TORTIE_IP"},
		{"IP none", map[string]string{"IP": "none", "IP6": "2001:db8::5/64"}, "none is autodetected"},
		{"policy only", map[string]string{"IP": "autodetect", EnvNetworkingBackend: "none"}, "policy-only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := memory.New()
				logger, rec := newRecorder(t)
				o := testOptions(t, be, tt.env)
				o.Logger = logger
				start := time.Now()
				if err := Monitor(t.Context(), o, 0); err != nil {
					t.Fatalf("Monitor: %v", err)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("returned after %s, want at once", d)
				}
				if rec.count("INFO", "not monitoring node addresses", tt.want) != 1 {
					t.Errorf("no log line with %q", tt.want)
				}
			})
		})
	}
}

func TestMonitorBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad interval", map[string]string{EnvAutodetectPollInterval: "soon"}, `AUTODETECT_POLL_INTERVAL="soon"`},
		{"bad alias interval", map[string]string{EnvAutodetectPollInterval: "60s", "TORTIE_AUTODETECT_POLL_INTERVAL": "-5s"}, `TORTIE_AUTODETECT_POLL_INTERVAL="-5s"`},
		{"zero interval", map[string]string{EnvAutodetectPollInterval: "0"}, `AUTODETECT_POLL_INTERVAL="0"`},
		{"bad method", map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "bogus"}, "IP_AUTODETECTION_METHOD"},
		{"bad IP6 method", map[string]string{"IP6": "autodetect", "TORTIE_IP6_AUTODETECTION_METHOD": "cidr=nope"}, "TORTIE_IP6_AUTODETECTION_METHOD"},
		{"bad IP", map[string]string{"IP": "10.0.0.300", "IP6": "autodetect"}, `IP="10.0.0.300"`},
		{"bad DISABLE_NODE_IP_CHECK", map[string]string{"IP": "autodetect", EnvDisableNodeIPCheck: "maybe"}, "DISABLE_NODE_IP_CHECK"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(t, memory.New(), tt.env)
			err := Monitor(t.Context(), o, 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// The interval argument, when set, wins over the environment (a bad variable is then not read).
func TestMonitorIntervalArgument(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		ms := startMonitor(t, be, map[string]string{EnvAutodetectPollInterval: "soon"}, 5*time.Second)
		ms.running(t)
		ms.ifaces.set("10.0.0.7/24")
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if got := ipv4Of(t, be, "node-1"); got != "10.0.0.7/24" {
			t.Errorf("IPv4 %q", got)
		}
		ms.stop(t)
	})
}
