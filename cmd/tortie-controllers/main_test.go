package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The binary runs against a real API server: it serves /readyz, /livez and /metrics on localhost,
// takes the Lease, and the health subcommand probes it.
func TestRunServesHealthAndMetrics(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.EnsureCRDs(t.Context(), os.DirFS("../../installer/kubernetes/crds")); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	vars := map[string]string{"KUBECONFIG": k.Kubeconfig(), "DATASTORE_TYPE": "kubernetes", "TORTIE_HEALTH_ADDRESS": addr,
		"POD_NAMESPACE": "default", "POD_NAME": "ctl-test", "TORTIE_IPAM_GC_INTERVAL": "200ms"}
	getenv := func(k string) string { return vars[k] }
	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuf
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run"}, getenv, io.Discard, &logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run exited %d: %s", code, logs.String())
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out bytes.Buffer
		if run(t.Context(), []string{"health", "--ready"}, getenv, &out, io.Discard) == 0 && strings.Contains(logs.String(), "leading") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready and leading; logs:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := run(t.Context(), []string{"health", "--live"}, getenv, io.Discard, io.Discard); code != 0 {
		t.Errorf("health --live exited %d", code)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"tortie_ipam_allocations_in_use", "tortie_ipam_blocks", "tortie_controllers_is_leader 1"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if code := run(t.Context(), []string{"health"}, getenv, io.Discard, io.Discard); code != 1 {
		t.Errorf("health without a flag exited %d", code)
	}
}
