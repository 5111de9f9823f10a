package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/platform/agent"
	"github.com/tortie-net/tortie/platform/fake"
)

// The memory benchmarks run the measured process as a child (this test binary re-executed), so that
// its RSS is the agent's alone: not the benchmark's, nor the etcd server's, which runs in the parent.
//
//   - BenchmarkAgentRSS: the whole agent (syncer, pass-through calculation, desired state, fake
//     dataplane) over etcd, until ready;
//   - BenchmarkSyncerSnapshotRSS, the baseline: the syncer alone, its receiver keeping the raw snapshot
//     (every object in a map), until InSync.
//
// The cluster: one IP pool, 100 nodes, N WorkloadEndpoints spread over them (N/100 on the agent's node).
const (
	childEnv     = "TORTIE_AGENT_BENCH_CHILD" // "agent" or "syncer"
	childEtcdEnv = "TORTIE_AGENT_BENCH_ETCD"
	childPfxEnv  = "TORTIE_AGENT_BENCH_PREFIX"
	// childProfEnv, when set, names a file the child writes its heap profile to after the measurement
	// (go tool pprof -sample_index=inuse_space): what the settled process retains.
	childProfEnv  = "TORTIE_AGENT_BENCH_HEAPPROFILE"
	benchNodes    = 100
	benchNodeName = "node-0"
)

var seeded sync.Map // prefix -> bool

// seedCluster writes the cluster under an etcd key prefix once per process.
func seedCluster(b *testing.B, endpoints []string, n int) string {
	b.Helper()
	prefix := fmt.Sprintf("/agentbench%d", n)
	if _, ok := seeded.Load(prefix); ok {
		return prefix
	}
	be, err := etcd.New(etcd.Config{Endpoints: endpoints, Prefix: prefix, RequestTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close() //nolint:errcheck // benchmark
	ctx := context.Background()
	if objs, _, err := be.List(ctx, datastore.ListOptions{Kind: "WorkloadEndpoint"}); err == nil && len(objs) == n {
		seeded.Store(prefix, true)
		return prefix
	}
	objs := []api.Resource{pool("default-ipv4-ippool", "10.64.0.0/10")}
	for i := range benchNodes {
		objs = append(objs, nodeObj(fmt.Sprint("node-", i), fmt.Sprintf("192.168.%d.%d/16", i/250, 1+i%250),
			fmt.Sprintf("10.64.%d.%d", 200+i/250, i%250), fmt.Sprintf("66:00:00:00:%02x:%02x", i/256, i%256)))
	}
	for i := range n {
		objs = append(objs, dstest.WorkloadEndpoint(fmt.Sprint("ns", i%20), fmt.Sprint("node-", i%benchNodes), fmt.Sprint("pod", i), i))
	}
	work := make(chan api.Resource)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range 8 {
		wg.Go(func() {
			for o := range work {
				if _, err := be.Create(ctx, o); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	seeded.Store(prefix, true)
	return prefix
}

func benchMemory(b *testing.B, mode string) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("endpoints=%dk", n/1000), func(b *testing.B) {
			endpoints := testenv.Etcd(b)
			prefix := seedCluster(b, endpoints, n)
			sum := map[string]float64{}
			b.ResetTimer()
			for range b.N {
				for k, v := range runChild(b, mode, endpoints, prefix) {
					sum[k] += v
				}
			}
			b.ReportMetric(sum["rss"]/float64(b.N)/(1<<20), "rss-MiB")
			b.ReportMetric(sum["heap"]/float64(b.N)/(1<<20), "heap-MiB")
			b.ReportMetric(sum["live"]/float64(b.N)/(1<<20), "live-heap-MiB")
			b.ReportMetric(sum["peak"]/float64(b.N)/(1<<20), "peak-rss-MiB")
		})
	}
}

func BenchmarkAgentRSS(b *testing.B)          { benchMemory(b, "agent") }
func BenchmarkSyncerSnapshotRSS(b *testing.B) { benchMemory(b, "syncer") }

// runChild runs the measured process and returns its measurement in bytes: "rss" (settled VmRSS),
// "heap" (spans in use), "peak" (VmHWM) and "live" (the heap's live objects; heap - live is what
// fragmentation costs).
func runChild(b *testing.B, mode string, endpoints []string, prefix string) map[string]float64 {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^$") //nolint:gosec // re-executing this test binary
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childEtcdEnv+"="+strings.Join(endpoints, ","), childPfxEnv+"="+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("child %s: %v", mode, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 8 || f[0] != "rss" {
			continue
		}
		m := map[string]float64{}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				b.Fatalf("child %s: %q: %v", mode, sc.Text(), err)
			}
			m[f[i]] = v
		}
		return m
	}
	b.Fatalf("child %s printed no measurement: %q", mode, out)
	return nil
}

// benchChild is the measured process: it prints "rss <bytes> heap <bytes> peak <bytes> live <bytes>"
// once the agent is ready (or the syncer in sync), after a garbage collection.
func benchChild(mode string) int {
	if os.Getenv(childProfEnv) != "" {
		runtime.MemProfileRate = 1 // every allocation: the profile attributes what is retained exactly
	}
	be, err := etcd.New(etcd.Config{Endpoints: strings.Split(os.Getenv(childEtcdEnv), ","), Prefix: os.Getenv(childPfxEnv),
		RequestTimeout: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer be.Close() //nolint:errcheck // exiting
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := make(chan struct{})
	switch mode {
	case "agent":
		settings, err := config.LoadAgent(func(k string) string {
			return map[string]string{"FELIX_CONFIGFILE": os.DevNull, "FELIX_HEALTHENABLED": "false"}[k]
		}, benchNodeName, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		a, err := agent.New(agent.Options{NodeName: benchNodeName, Dataplane: fake.New(), Settings: settings,
			Syncer: func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
				return datastore.NewSyncer(be, cb, kinds)
			}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() { _ = a.Run(ctx) }()
		go func() {
			for !a.Health().Ready().OK {
				time.Sleep(20 * time.Millisecond)
			}
			close(done)
		}()
	case "syncer":
		kinds := agent.NewPassThrough(benchNodeName, slog.New(slog.DiscardHandler)).Kinds()
		snap := &rawSnapshot{objs: map[datastore.Key]api.Resource{}, inSync: done}
		go func() { _ = datastore.NewSyncer(be, snap, kinds).Run(ctx) }()
	case "idle":
		// The floor: this binary with nothing running (for reading the other two).
		close(done)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 1
	}
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "not ready in time")
		return 1
	}
	// The same settling for both: a collection, and the freed pages returned to the OS (the agent does
	// this itself after its first Apply).
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("rss %d heap %d peak %d live %d\n", procStatus("VmRSS:"), ms.HeapInuse, procStatus("VmHWM:"), ms.HeapAlloc)
	if path := os.Getenv(childProfEnv); path != "" {
		if err := writeHeapProfile(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path) //nolint:gosec // a path the benchmark's user chose
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}

// rawSnapshot is the baseline receiver: it keeps every object the syncer delivers.
type rawSnapshot struct {
	mu     sync.Mutex
	objs   map[datastore.Key]api.Resource
	inSync chan struct{}
	closed bool
}

func (r *rawSnapshot) OnStatusUpdated(s datastore.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == datastore.InSync && !r.closed {
		r.closed = true
		close(r.inSync)
	}
}

func (r *rawSnapshot) OnUpdates(us []datastore.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range us {
		if u.Type == datastore.UpdateDeleted {
			delete(r.objs, u.Key)
		} else {
			r.objs[u.Key] = u.Value
		}
	}
}

// procStatus reads a size field (VmRSS:, VmHWM:) of /proc/self/status in bytes (0 where there is none).
func procStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
