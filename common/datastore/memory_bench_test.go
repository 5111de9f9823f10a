package datastore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/memory"
)

const memBenchObjects = 10_000

// memBackend holds memBenchObjects realistic WorkloadEndpoints (as the etcd benchmark writes them).
func memBackend(b *testing.B) *memory.Backend {
	b.Helper()
	be := memory.New()
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range memBenchObjects {
		ns := fmt.Sprintf("team-%02d", i%40)
		w := dstest.WorkloadEndpoint(ns, fmt.Sprintf("node-%03d", i%200), fmt.Sprintf("app-%d-7d9f8c6b5-x%04d", i%50, i), i)
		w.UID = types.UID(fmt.Sprintf("0f3c2a1e-8b7d-4c6e-9a5f-%012d", i))
		w.CreationTimestamp.Time = created
		w.Annotations = map[string]string{"projectcalico.org/podIP": w.Spec.IPNetworks[0]}
		if _, err := be.Create(b.Context(), w); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// discarding is a receiver that keeps nothing (as an agent that converts each object to its own model
// and drops it): whatever stays on the heap after the snapshot is the syncer's own.
type discarding struct {
	insync chan struct{}
	n      int
}

func (d *discarding) OnStatusUpdated(s datastore.Status) {
	if s == datastore.InSync && d.insync != nil {
		close(d.insync)
		d.insync = nil
	}
}
func (d *discarding) OnUpdates(ups []datastore.Update) { d.n += len(ups) }

// BenchmarkSyncerHeld10k reports the heap the syncer keeps after delivering a snapshot of 10,000
// WorkloadEndpoints to a receiver that keeps nothing: its bookkeeping of what the receiver holds.
// The baseline is BenchmarkRawSnapshot10k, one full decoded copy of the same objects.
func BenchmarkSyncerHeld10k(b *testing.B) {
	be := memBackend(b)
	kinds := []datastore.ListOptions{{Kind: api.KindWorkloadEndpoint}}
	var perObj float64
	for b.Loop() {
		before := heapInUse()
		cb := &discarding{insync: make(chan struct{})}
		s := datastore.NewSyncer(be, cb, kinds, datastore.WithBatchWindow(0))
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		var held uint64
		stopped := make(chan struct{})
		go func() {
			done <- s.Run(ctx)
			close(stopped)
		}()
		<-cb.insync
		// Measured while the syncer runs (its state is live), after the receiver dropped everything.
		held = heapInUse() - before
		cancel()
		<-done
		<-stopped
		if cb.n != memBenchObjects {
			b.Fatalf("snapshot had %d updates, want %d", cb.n, memBenchObjects)
		}
		perObj = float64(held) / memBenchObjects
	}
	b.ReportMetric(perObj, "heap-B/obj")
}

// BenchmarkRawSnapshot10k is the baseline: the heap one List of the same 10,000 objects occupies
// while it is held, i.e. one full decoded copy of the cluster's endpoints.
func BenchmarkRawSnapshot10k(b *testing.B) {
	be := memBackend(b)
	var perObj float64
	for b.Loop() {
		before := heapInUse()
		objs, _, err := be.List(b.Context(), datastore.ListOptions{Kind: api.KindWorkloadEndpoint})
		if err != nil {
			b.Fatal(err)
		}
		held := heapInUse() - before
		if len(objs) != memBenchObjects {
			b.Fatalf("listed %d, want %d", len(objs), memBenchObjects)
		}
		runtime.KeepAlive(objs)
		perObj = float64(held) / memBenchObjects
	}
	b.ReportMetric(perObj, "heap-B/obj")
}
