package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform/agent"
	"github.com/tortie-net/tortie/platform/fake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const node = "node-a"

// syncedLogs is a log buffer safe for the agent's goroutines.
type syncedLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncedLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncedLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	be     datastore.Backend
	dp     *fake.Dataplane
	a      *agent.Agent
	level  *slog.LevelVar
	logs   *syncedLogs
	cancel context.CancelFunc
	done   chan error
}

// start runs an agent with the fake dataplane over be. env are settings (FELIX_HEALTHENABLED=false by
// default: inside a synctest bubble nothing may wait on the network).
func start(t *testing.T, be datastore.Backend, env map[string]string, o agent.Options) *harness {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "felix.cfg")
	if err := os.WriteFile(cfgFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := map[string]string{"FELIX_CONFIGFILE": cfgFile, "FELIX_HEALTHENABLED": "false"}
	for k, v := range env {
		e[k] = v
	}
	logs := &syncedLogs{}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	settings, err := config.LoadAgent(func(k string) string { return e[k] }, node, log)
	if err != nil {
		t.Fatal(err)
	}
	dp := fake.New(fake.WithLogger(log))
	o.NodeName, o.Dataplane, o.Settings, o.Logger, o.LogLevel = node, dp, settings, log, level
	o.Syncer = func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
		return datastore.NewSyncer(be, cb, kinds, datastore.WithBackoff(time.Second, 5*time.Second), datastore.WithLogger(log))
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{be: be, dp: dp, a: a, level: level, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- a.Run(ctx) }()
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("agent Run: %v", err)
	}
	if errs := h.dp.Errors(); len(errs) > 0 {
		t.Errorf("the dataplane saw contract violations: %v", errs)
	}
}

func mustCreate(t *testing.T, be datastore.Backend, objs ...api.Resource) {
	t.Helper()
	for _, o := range objs {
		if _, err := be.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func pool(name, cidr string) *api.IPPool {
	p := dstest.IPPool(name, cidr)
	p.Spec.VXLANMode = api.EncapAlways
	return p
}

func nodeObj(name, ip, tunnel, mac string) *api.Node {
	n := api.NewNode()
	n.Name = name
	n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: ip}
	n.Spec.IPv4VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddr = tunnel, mac
	return n
}

func felixConfig(name string, spec api.FelixConfigurationSpec) *api.FelixConfiguration {
	fc := api.NewFelixConfiguration()
	fc.Name, fc.Spec = name, spec
	return fc
}

// seed writes a small cluster: a pool, three nodes, two local and one remote endpoint.
func seed(t *testing.T, be datastore.Backend) {
	t.Helper()
	mustCreate(t, be, pool("default-ipv4-ippool", "10.64.0.0/16"),
		nodeObj(node, "192.168.1.1/24", "10.64.0.1", "66:00:00:00:00:01"),
		nodeObj("node-b", "192.168.1.2/24", "10.64.1.1", "66:00:00:00:00:02"),
		nodeObj("node-c", "192.168.1.3/24", "", ""),
		dstest.WorkloadEndpoint("ns1", node, "web", 1), dstest.WorkloadEndpoint("ns1", node, "db", 2),
		dstest.WorkloadEndpoint("ns1", "node-b", "api", 3))
}

func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func removes(st fake.Stats) int {
	n := 0
	for k, v := range st.WritesByKind {
		if strings.HasSuffix(k, "Remove") {
			n += v
		}
	}
	return n
}

// TestPassThroughProgramsTheNode: the agent programs pools, hosts, VTEPs and the local endpoints with
// their profiles and routes, and nothing before the first InSync.
func TestPassThroughProgramsTheNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, nil, agent.Options{Calculator: agent.NewPassThrough(node, nil)})
		defer h.stop(t)
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		golden(t, "passthrough", h.dp.Render())
		if ready := h.a.Health().Ready(); !ready.OK {
			t.Errorf("not ready after InSync and an Apply: %+v", ready)
		}
		if live := h.a.Health().Live(); !live.OK {
			t.Errorf("not live: %+v", live)
		}
		// Deleting the remote node and a local endpoint removes what they made, in contract order.
		if _, err := be.Delete(context.Background(), datastore.Key{Kind: "Node", Name: "node-b"}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := be.Delete(context.Background(), datastore.Key{Kind: "WorkloadEndpoint", Namespace: "ns1",
			Name: node + "-k8s-db-eth0"}, ""); err != nil {
			t.Fatal(err)
		}
		// A pool change reaches the local routes.
		pl, err := be.Get(context.Background(), datastore.Key{Kind: "IPPool", Name: "default-ipv4-ippool"})
		if err != nil {
			t.Fatal(err)
		}
		pl.(*api.IPPool).Spec.NATOutgoing = false
		if _, err := be.Update(context.Background(), pl); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		host := h.dp.Host()
		for dst, r := range host.Routes {
			if r.NATOutgoing || r.PoolCIDR.String() != "10.64.0.0/16" {
				t.Errorf("route %s after natOutgoing was turned off: %+v", dst, r)
			}
		}
		if _, ok := host.VTEPs["node-b"]; ok {
			t.Error("node-b's VTEP is still programmed")
		}
		if len(host.Workloads) != 1 {
			t.Errorf("workloads %v, want only web", host.Workloads)
		}
	})
}

func TestNothingAppliedBeforeInSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		seed(t, mem)
		faulty := dstest.NewFaulty(mem)
		faulty.Down(false)
		h := start(t, faulty, nil, agent.Options{})
		defer h.stop(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := h.dp.Stats(); st.Applies != 0 {
			t.Errorf("%d Applies before the datastore answered", st.Applies)
		}
		if ready := h.a.Health().Ready(); ready.OK {
			t.Error("ready before the datastore answered")
		}
		faulty.Up()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := h.dp.Stats(); st.Applies == 0 || len(h.dp.Host().Workloads) != 2 {
			t.Errorf("after the datastore came up: %+v, workloads %d", st, len(h.dp.Host().Workloads))
		}
	})
}

// TestCoalescingAndRateLimit: many changes between two Applies cost one Apply and one write per
// object; Applies are at least DataplaneApplyMinInterval apart.
func TestCoalescingAndRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, map[string]string{"TORTIE_DATAPLANEAPPLYMININTERVAL": "2s"}, agent.Options{})
		defer h.stop(t)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		before := h.dp.Stats()

		// 50 changes to one endpoint and an endpoint that comes and goes, all before the next Apply.
		ctx := context.Background()
		for i := range 50 {
			w, err := be.Get(ctx, datastore.Key{Kind: "WorkloadEndpoint", Namespace: "ns1", Name: node + "-k8s-web-eth0"})
			if err != nil {
				t.Fatal(err)
			}
			wep := w.(*api.WorkloadEndpoint)
			wep.Spec.MAC = fmt.Sprintf("ee:ee:ee:00:00:%02x", i)
			if _, err := be.Update(ctx, wep); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // the changes span several syncer batches
		}
		flap := dstest.WorkloadEndpoint("ns1", node, "flap", 9)
		mustCreate(t, be, flap)
		time.Sleep(20 * time.Millisecond)
		if _, err := be.Delete(ctx, datastore.Key{Kind: "WorkloadEndpoint", Namespace: "ns1", Name: flap.Name}, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mid := h.dp.Stats()
		// The first change may be applied at once (the last Apply was long enough ago); the rest wait.
		if n := mid.Applies - before.Applies; n > 1 {
			t.Errorf("%d Applies within the 2s minimum interval", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		after := h.dp.Stats()
		if n := after.Applies - before.Applies; n < 1 || n > 2 {
			t.Errorf("%d Applies for 52 changes, want 1 or 2", n)
		}
		if n := after.WritesByKind["WorkloadEndpointUpdate"] - before.WritesByKind["WorkloadEndpointUpdate"]; n > 2 {
			t.Errorf("%d endpoint writes for 50 changes to one endpoint, want at most 2", n)
		}
		if got := h.dp.Host().Workloads[dpmodel.WorkloadEndpointID{Namespace: "ns1", Name: node + "-k8s-web-eth0"}].MAC; got != "ee:ee:ee:00:00:31" {
			t.Errorf("host holds MAC %s, want the last one", got)
		}
		if _, ok := h.dp.Host().Workloads[dpmodel.WorkloadEndpointID{Namespace: "ns1", Name: flap.Name}]; ok {
			t.Error("the flapping endpoint was left programmed")
		}
		if removes(after) != removes(before) {
			t.Errorf("the flap wrote removes: %v", after.WritesByKind)
		}
	})
}

// TestRetryAfterFailedApply: a failing Apply is retried with backoff, and updates arriving meanwhile
// are not dropped.
func TestRetryAfterFailedApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, nil, agent.Options{})
		defer h.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		before := h.dp.Stats()

		h.dp.FailNextApplies(4)
		mustCreate(t, be, dstest.WorkloadEndpoint("ns1", node, "one", 10))
		time.Sleep(150 * time.Millisecond) // the first attempt fails
		synctest.Wait()
		mustCreate(t, be, dstest.WorkloadEndpoint("ns2", node, "two", 11)) // arrives during the backoff
		time.Sleep(10 * time.Second)
		synctest.Wait()
		after := h.dp.Stats()
		if n := after.Failed - before.Failed; n != 4 {
			t.Errorf("%d failed Applies, want 4", n)
		}
		if n := metric(t, h.a.Registry(), "tortie_dataplane_apply_errors_total"); n != 4 {
			t.Errorf("tortie_dataplane_apply_errors_total = %v, want 4", n)
		}
		host := h.dp.Host()
		for _, id := range []dpmodel.WorkloadEndpointID{{Namespace: "ns1", Name: node + "-k8s-one-eth0"}, {Namespace: "ns2", Name: node + "-k8s-two-eth0"}} {
			if _, ok := host.Workloads[id]; !ok {
				t.Errorf("%s not programmed after the retries", id)
			}
		}
		if _, ok := host.Profiles["kns.ns2"]; !ok {
			t.Error("the second endpoint's profile is missing")
		}
		// Backoff: 4 failures at 100ms, 200ms, 400ms, 800ms apart, not a busy loop.
		if n := after.Applies - before.Applies; n != 5 {
			t.Errorf("%d Applies, want 4 failed + 1", n)
		}
		if !h.a.Health().Ready().OK {
			t.Error("not ready after the retry succeeded")
		}
	})
}

// TestDatastoreOutage: 60 s without the datastore: nothing is removed, the agent stays live (not
// ready), and afterwards only the real change made meanwhile is written.
func TestDatastoreOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		seed(t, mem)
		faulty := dstest.NewFaulty(mem)
		h := start(t, faulty, nil, agent.Options{})
		defer h.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		rendered, before := h.dp.Render(), h.dp.Stats()

		faulty.Down(true)
		// A change lands in the datastore while the agent cannot see it.
		mustCreate(t, mem, dstest.WorkloadEndpoint("ns1", node, "late", 20))
		for range 6 {
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if !h.a.Health().Live().OK {
				t.Fatal("not live during the outage")
			}
		}
		if h.a.Health().Ready().OK {
			t.Error("ready while the datastore is unreachable")
		}
		if got := h.dp.Render(); got != rendered {
			t.Errorf("the host changed during the outage:\n%s", cmp.Diff(rendered, got))
		}
		if metric(t, h.a.Registry(), "tortie_datastore_status", "status", "InSync") != 0 {
			t.Error("tortie_datastore_status says InSync during the outage")
		}
		during := h.dp.Stats()
		if removes(during) != removes(before) {
			t.Errorf("removes written during the outage: %v", during.WritesByKind)
		}

		faulty.Up()
		time.Sleep(40 * time.Second) // the syncer's relist backoff is at most 5s here
		synctest.Wait()
		after := h.dp.Stats()
		if !h.a.Health().Ready().OK {
			t.Fatalf("not ready after the datastore came back: %+v", h.a.Health().Ready())
		}
		if removes(after) != removes(before) {
			t.Errorf("removes written after the outage: %v", after.WritesByKind)
		}
		// Exactly the late endpoint, its route, and nothing else (the resync found no other difference).
		want := map[string]int{"WorkloadEndpointUpdate": 1, "RouteUpdate": 1}
		got := map[string]int{}
		for k, v := range after.WritesByKind {
			if d := v - before.WritesByKind[k]; d != 0 {
				got[k] = d
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("writes after the outage (-want +got):\n%s", diff)
		}
	})
}

// TestFelixConfigurationLive: a live setting from FelixConfiguration applies without a restart, a
// non-live one is reported as needing one, a bad one keeps the last good value.
func TestFelixConfigurationLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, nil, agent.Options{})
		defer h.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		if h.level.Level() != slog.LevelInfo {
			t.Fatalf("log level %v at start", h.level.Level())
		}
		mtu, port := 1400, 9999
		mustCreate(t, be, felixConfig("default", api.FelixConfigurationSpec{LogSeverityScreen: "Debug", VXLANMTU: &mtu}),
			felixConfig("node."+node, api.FelixConfigurationSpec{HealthPort: &port, WireguardEnabled: new(bool)}))
		time.Sleep(time.Second)
		synctest.Wait()
		if h.level.Level() != slog.LevelDebug {
			t.Errorf("log level %v after FelixConfiguration set Debug", h.level.Level())
		}
		if c := h.dp.Host().Config; c == nil || c.VXLANMTU != 1400 {
			t.Errorf("dataplane config after vxlanMTU=1400: %+v", c)
		}
		if n := metric(t, h.a.Registry(), "tortie_config_restart_needed"); n != 1 {
			t.Errorf("tortie_config_restart_needed = %v, want 1 (healthPort)", n)
		}
		if !strings.Contains(h.logs.String(), `"setting":"wireguardEnabled"`) {
			t.Error("the unimplemented field wireguardEnabled was not logged")
		}
		// A bad value: the last good one stays.
		fc, err := be.Get(context.Background(), datastore.Key{Kind: "FelixConfiguration", Name: "default"})
		if err != nil {
			t.Fatal(err)
		}
		bad := fc.(*api.FelixConfiguration)
		bad.Spec.LogSeverityScreen = "Chatty"
		if _, err := be.Update(context.Background(), bad); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if h.level.Level() != slog.LevelDebug {
			t.Errorf("log level %v after a bad value, want the last good Debug", h.level.Level())
		}
		if n := metric(t, h.a.Registry(), "tortie_config_rejected_total"); n != 1 {
			t.Errorf("tortie_config_rejected_total = %v, want 1", n)
		}
	})
}

// TestPeriodicResync: every refresh interval the dataplane is resynced, which repairs drift.
func TestPeriodicResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, map[string]string{"FELIX_ROUTEREFRESHINTERVAL": "30s"}, agent.Options{})
		defer h.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		want := h.dp.Render()
		var dst dpmodel.RouteRemove
		for p := range h.dp.Host().Routes {
			dst.Dst = p
			break
		}
		if err := h.dp.Drift(dst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if got := h.dp.Render(); got != want {
			t.Errorf("drift not repaired by the periodic resync:\n%s", cmp.Diff(want, got))
		}
		if n := metric(t, h.a.Registry(), "tortie_dataplane_resyncs_total"); n != 1 {
			t.Errorf("tortie_dataplane_resyncs_total = %v, want 1", n)
		}
	})
}

// TestGraphProgramsTheNode: with the real calculation (the default), the same cluster programs the same
// pools, hosts, VTEPs and endpoints; the namespace and service-account profiles the endpoints list do not
// exist in this datastore, so they fail closed (Deny both ways) until they do; a policy that selects a
// local endpoint reaches the dataplane with its IP set, and goes with it when deleted.
func TestGraphProgramsTheNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, nil, agent.Options{})
		defer h.stop(t)
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		golden(t, "graph", h.dp.Render())

		gnp := api.NewGlobalNetworkPolicy()
		gnp.Name = "allow-web-from-api"
		gnp.Spec.Selector = "app == 'web'"
		gnp.Spec.Ingress = []api.Rule{{Action: api.Allow, Protocol: api.NewProtocol("TCP"),
			Source: api.EntityRule{Selector: "app == 'api'"}, Destination: api.EntityRule{Ports: []api.Port{{MinPort: 80, MaxPort: 80}}}}}
		api.SetDefaults(gnp)
		mustCreate(t, be, gnp)
		time.Sleep(time.Second)
		synctest.Wait()
		host := h.dp.Host()
		if len(host.Policies) != 1 || len(host.IPSets) != 1 {
			t.Fatalf("after the policy: %d policies, %d IP sets; want 1 and 1\n%s", len(host.Policies), len(host.IPSets), h.dp.Render())
		}
		for _, set := range host.IPSets {
			if len(set.Members) != 1 || set.Members[0].Net.String() != "10.64.0.3/32" {
				t.Errorf("IP set members %v, want node-b's api pod 10.64.0.3/32", set.Members)
			}
		}
		// The two missing profiles (kns.ns1, ksa.ns1.default) are problems already.
		if n := metric(t, h.a.Registry(), "tortie_calc_problems"); n != 2 {
			t.Errorf("tortie_calc_problems = %v with two missing profiles and a valid policy, want 2", n)
		}
		// A policy the calculation cannot compile (services matches) fails closed and is counted.
		bad := api.NewGlobalNetworkPolicy()
		bad.Name = "to-kube-dns"
		bad.Spec.Selector = "app == 'db'"
		bad.Spec.Egress = []api.Rule{{Action: api.Allow, Destination: api.EntityRule{Services: &api.ServiceMatch{Name: "kube-dns", Namespace: "kube-system"}}}}
		api.SetDefaults(bad)
		mustCreate(t, be, bad)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := metric(t, h.a.Registry(), "tortie_calc_problems"); n != 3 {
			t.Errorf("tortie_calc_problems = %v after an uncompilable policy, want 3", n)
		}
		for id, p := range h.dp.Host().Policies {
			if id.Name == bad.Name && (!p.Invalid || len(p.Outbound) != 1 || p.Outbound[0].Action != dpmodel.Deny) {
				t.Errorf("uncompilable policy programmed as %+v, want Invalid with one Deny", p)
			}
		}
		for _, name := range []string{gnp.Name, bad.Name} {
			if _, err := be.Delete(context.Background(), datastore.Key{Kind: "GlobalNetworkPolicy", Name: name}, ""); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if host := h.dp.Host(); len(host.Policies) != 0 || len(host.IPSets) != 0 {
			t.Errorf("after deleting the policy: %d policies, %d IP sets remain", len(host.Policies), len(host.IPSets))
		}
	})
}

// TestAppliedRevision: the applied revision reaches the revision of the last write once it is applied,
// also for a write that changes nothing in the dataplane (tortie-lab sync writes such a marker), and
// /status serves it.
func TestAppliedRevision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := memory.New()
		seed(t, be)
		h := start(t, be, nil, agent.Options{})
		defer h.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		st := h.a.Status()
		if !st.Ready || st.AppliedRevision == 0 || st.AppliedRevision != st.SeenRevision || st.Node != node {
			t.Fatalf("after the first Apply: %+v, want ready and applied == seen > 0", st)
		}
		marker := api.NewGlobalNetworkSet()
		marker.Name = "marker"
		marker.Annotations = map[string]string{"sync": "1"}
		created, err := be.Create(context.Background(), marker)
		if err != nil {
			t.Fatal(err)
		}
		want, err := strconv.ParseInt(created.GetResourceVersion(), 10, 64)
		if err != nil {
			t.Fatalf("memory backend revision %q: %v", created.GetResourceVersion(), err)
		}
		if want <= st.AppliedRevision {
			t.Fatalf("the marker's revision %d is not above the applied %d", want, st.AppliedRevision)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.a.Status(); got.AppliedRevision != want || got.Applies <= st.Applies {
			t.Errorf("after the marker (revision %d): %+v, want it applied by a further Apply", want, got)
		}
	})
}

// TestStatusEndpoint: /status is served next to /readyz, as JSON.
func TestStatusEndpoint(t *testing.T) {
	be := memory.New()
	seed(t, be)
	h := start(t, be, map[string]string{"FELIX_HEALTHENABLED": "true"}, agent.Options{HealthAddr: "127.0.0.1:0"})
	defer h.stop(t)
	<-h.a.Started()
	addr, _ := h.a.Addrs()
	deadline := time.Now().Add(time.Minute)
	for {
		var got agent.Status
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("decoding /status: %v", err)
		}
		if got.Ready {
			if got.AppliedRevision == 0 || got.Datastore != datastore.InSync.String() {
				t.Errorf("/status when ready: %+v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never reported ready: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
