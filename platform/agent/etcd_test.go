package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/health"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/platform/agent"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(benchChild(mode))
	}
	testenv.Main(m)
}

// eventually polls cond until it holds or a generous deadline passes (a wait, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// TestAgentRealEtcd runs the agent against a real etcd process: it gets ready, serves health and
// metrics over HTTP, follows a live FelixConfiguration change, keeps the host through etcd being
// stopped, and after etcd restarts writes only what really changed.
func TestAgentRealEtcd(t *testing.T) {
	proc := testenv.EtcdProcess(t)
	be, err := etcd.New(etcd.Config{Endpoints: proc.Endpoints(), RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	seed(t, be)
	h := start(t, be, nil, agent.Options{HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"})
	defer h.stop(t)
	<-h.a.Started()
	healthAddr, metricsAddr := h.a.Addrs()

	eventually(t, "/readyz", func() bool {
		_, err := health.Probe(t.Context(), healthAddr, "/readyz")
		return err == nil
	})
	if _, err := health.Probe(t.Context(), healthAddr, "/livez"); err != nil {
		t.Fatalf("/livez: %v", err)
	}
	golden(t, "graph", h.dp.Render()) // the same cluster as over the memory backend (TestGraphProgramsTheNode), the same host
	for _, url := range []string{"http://" + healthAddr + "/metrics", "http://" + metricsAddr + "/metrics"} {
		body := get(t, url)
		for _, want := range []string{
			"tortie_dataplane_apply_duration_seconds_count", "tortie_dataplane_applies_total", "tortie_dataplane_pending_updates",
			"tortie_dataplane_resyncs_total 0", "tortie_dataplane_apply_errors_total 0", `tortie_datastore_status{status="InSync"} 1`,
			"tortie_build_info{", "tortie_process_resident_memory_bytes", "go_goroutines",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", url, want)
			}
		}
	}

	// A live change through etcd.
	mustCreate(t, be, felixConfig("node."+node, api.FelixConfigurationSpec{LogSeverityScreen: "Debug"}))
	eventually(t, "the log level to follow FelixConfiguration", func() bool { return h.level.Level() == slog.LevelDebug })

	rendered, before := h.dp.Render(), h.dp.Stats()
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	// etcd is down for a while; the agent keeps beating and keeps the host.
	for range 10 {
		time.Sleep(500 * time.Millisecond)
		if _, err := health.Probe(t.Context(), healthAddr, "/livez"); err != nil {
			t.Fatalf("/livez during the outage: %v", err)
		}
	}
	if got := h.dp.Render(); got != rendered {
		t.Errorf("the host changed while etcd was down")
	}
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitReady(); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, be, dstest.WorkloadEndpoint("ns1", node, "after", 30))
	eventually(t, "the endpoint created after the restart", func() bool { return len(h.dp.Host().Workloads) == 3 })
	eventually(t, "/readyz after the restart", func() bool {
		_, err := health.Probe(context.Background(), healthAddr, "/readyz")
		return err == nil
	})
	after := h.dp.Stats()
	if removes(after) != removes(before) {
		t.Errorf("removes written around the outage: before %v after %v", before.WritesByKind, after.WritesByKind)
	}
	for k, v := range after.WritesByKind {
		d := v - before.WritesByKind[k]
		want := map[string]int{"WorkloadEndpointUpdate": 1, "RouteUpdate": 1}[k]
		if d != want {
			t.Errorf("%d %s written around the outage, want %d", d, k, want)
		}
	}
}
