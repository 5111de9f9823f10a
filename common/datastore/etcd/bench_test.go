package etcd_test

// Snapshot cost of the syncer against the floor of a raw etcd range read of the same keys:
//
//	go test -run '^$' -bench 'Etcd10k' -benchmem ./common/datastore/etcd/
//
// etcd runs as a separate process (Debian's etcd, TORTIE_ETCD or etcd on PATH) with its data on tmpfs,
// so that B/op and allocs/op count the client side only; without the binary the embedded server of
// TestMain is used and its allocations are counted too (the benchmark logs which).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/etcd"
)

const benchObjects = 10000

var bench struct {
	once      sync.Once
	err       error
	endpoints []string
	external  bool
	cmd       *exec.Cmd
	dir       string
}

// stopBenchEtcd is called by TestMain.
func stopBenchEtcd() {
	if bench.cmd != nil {
		bench.cmd.Process.Kill()
		bench.cmd.Wait()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
}

// benchEtcd returns endpoints of an etcd holding benchObjects WorkloadEndpoints under the standard
// layout, set up once per test binary.
func benchEtcd(b *testing.B) []string {
	b.Helper()
	bench.once.Do(func() {
		bench.endpoints, bench.external, bench.err = startBenchEtcd()
		if bench.err == nil {
			bench.err = loadWorkloadEndpoints(bench.endpoints, benchObjects)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	if !bench.external {
		b.Log("no etcd binary: using the embedded etcd, whose allocations are counted too")
	}
	return bench.endpoints
}

func startBenchEtcd() ([]string, bool, error) {
	bin := os.Getenv("TORTIE_ETCD")
	if bin == "" {
		bin = "etcd"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return endpoints, false, nil
	}
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "tortie-bench-etcd-")
	if err != nil {
		return nil, false, err
	}
	bench.dir = dir
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, false, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cmd := exec.Command(path, "--name=bench", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=bench="+peer, "--logger=zap", "--log-level=error",
		"--quota-backend-bytes=4294967296")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, false, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("starting %s: %w", path, err)
	}
	bench.cmd = cmd
	b, err := etcd.New(etcd.Config{Endpoints: []string{client}})
	if err != nil {
		return nil, false, err
	}
	defer b.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Ping(ctx)
		cancel()
		if err == nil {
			return []string{client}, true, nil
		}
		if time.Now().After(deadline) {
			return nil, false, fmt.Errorf("etcd at %s not ready: %w (log in %s)", client, err, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadWorkloadEndpoints writes n realistic WorkloadEndpoints (about 1 KiB of JSON each, as the CNI
// plugin writes them) in the form the backend stores, 100 per transaction.
func loadWorkloadEndpoints(eps []string, n int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cli.Delete(ctx, etcd.ResourcePrefix+"/workloadendpoints/", clientv3.WithPrefix()); err != nil {
		return err
	}
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var ops []clientv3.Op
	for i := range n {
		ns := fmt.Sprintf("team-%02d", i%40)
		w := dstest.WorkloadEndpoint(ns, fmt.Sprintf("node-%03d", i%200), fmt.Sprintf("app-%d-7d9f8c6b5-x%04d", i%50, i), i)
		w.UID = types.UID(fmt.Sprintf("0f3c2a1e-8b7d-4c6e-9a5f-%012d", i))
		w.CreationTimestamp.Time = created
		w.Annotations = map[string]string{"projectcalico.org/podIP": w.Spec.IPNetworks[0]}
		val, err := json.Marshal(w)
		if err != nil {
			return err
		}
		path, err := etcd.KeyPath(datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: w.Namespace, Name: w.Name})
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(path, string(val)))
		if len(ops) == 100 || i == n-1 {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				return err
			}
			ops = ops[:0]
		}
	}
	return nil
}

// reportCPU adds cpu-ns/op (this process's user+system CPU per iteration) to a benchmark: with etcd
// in another process it is the client's work alone, and it varies much less than wall time when the
// machine is shared.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// snapshotCounter is the cheapest possible receiver: it counts and signals InSync.
type snapshotCounter struct {
	n      int
	insync chan struct{}
}

func (c *snapshotCounter) OnStatusUpdated(s datastore.Status) {
	if s == datastore.InSync {
		close(c.insync)
	}
}

func (c *snapshotCounter) OnUpdates(ups []datastore.Update) { c.n += len(ups) }

// BenchmarkSyncerSnapshotEtcd10k: from NewSyncer to InSync with 10,000 WorkloadEndpoints: list,
// decode into typed objects, diff against the (empty) receiver state, deliver in batches, start the
// watch.
func BenchmarkSyncerSnapshotEtcd10k(b *testing.B) {
	eps := benchEtcd(b)
	be, err := etcd.New(etcd.Config{Endpoints: eps})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	kinds := []datastore.ListOptions{{Kind: api.KindWorkloadEndpoint}}
	if err := be.Ping(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer reportCPU(b)()
	for b.Loop() {
		cb := &snapshotCounter{insync: make(chan struct{})}
		s := datastore.NewSyncer(be, cb, kinds)
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		<-cb.insync
		cancel()
		<-done
		if cb.n != benchObjects {
			b.Fatalf("snapshot had %d updates, want %d", cb.n, benchObjects)
		}
	}
}

// BenchmarkRawEtcdPrefixGet10k is the floor: one clientv3 prefix Get of the same keys, then
// JSON-decoding every value into a generic map (the fair comparison), into the typed object, or not at
// all.
func BenchmarkRawEtcdPrefixGet10k(b *testing.B) {
	eps := benchEtcd(b)
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	prefix := etcd.ResourcePrefix + "/workloadendpoints/"
	get := func(b *testing.B) *clientv3.GetResponse {
		resp, err := cli.Get(b.Context(), prefix, clientv3.WithPrefix())
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Kvs) != benchObjects {
			b.Fatalf("got %d keys, want %d", len(resp.Kvs), benchObjects)
		}
		return resp
	}
	b.Run("decode=map", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			for _, kv := range get(b).Kvs {
				var m map[string]any
				if err := json.Unmarshal(kv.Value, &m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("decode=typed", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			for _, kv := range get(b).Kvs {
				w := api.NewWorkloadEndpoint()
				if err := json.Unmarshal(kv.Value, w); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// What any cache does on top: keep every object, by key, until the next snapshot.
	b.Run("decode=typed-kept", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			kvs := get(b).Kvs
			kept := make(map[string]api.Resource, len(kvs))
			for _, kv := range kvs {
				w := api.NewWorkloadEndpoint()
				if err := json.Unmarshal(kv.Value, w); err != nil {
					b.Fatal(err)
				}
				kept[string(kv.Key)] = w
			}
		}
	})
	b.Run("decode=none", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			get(b)
		}
	})
}
