package ipam

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

const stressNodes = 5

// TestConcurrentAllocation: 5 nodes, each with its own Client and datastore connection, allocate 1000
// addresses one pod at a time from a pool of 1024 addresses in 16 blocks. Each node fills about three
// blocks; when the pool has no unclaimed block left, nodes must borrow from each other's blocks.
// Afterwards every block is read back: no address is handed out twice, blocks do not overlap, every
// handle owns exactly the address its pod was given (and its IPAMHandle says so), every owned block has
// a confirmed affinity, and some addresses were borrowed.
func TestConcurrentAllocation(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		ctx := testCtx(t)
		admin := e.open(t)
		// 1000 addresses of 1024, in 16 blocks of 64: 5 nodes need about 3.1 blocks each, so the last
		// allocations must borrow. (-short: 250 of 256, in 16 blocks of 16.)
		total := 1000
		if testing.Short() {
			total = 250
			createPools(t, admin, poolSpec{name: "stress", cidr: "10.20.0.0/24", blockSize: 28})
		} else {
			createPools(t, admin, poolSpec{name: "stress", cidr: "10.20.0.0/22", blockSize: 26})
		}
		perNode := total / stressNodes
		type got struct {
			handle string
			node   string
			ip     netip.Prefix
		}
		results := make([][]got, stressNodes)
		errs := make([]error, stressNodes)
		start := time.Now()
		var wg sync.WaitGroup
		for n := range stressNodes {
			c := New(e.open(t)) // (opened here: t.Fatal may not run on other goroutines)
			wg.Go(func() {
				node := fmt.Sprintf("node-%d", n)
				for i := range perNode {
					h := fmt.Sprintf("k8s-pod-network.%s-%04d", node, i)
					res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: h, Hostname: node,
						Attrs: map[string]string{AttributeNode: node, AttributePod: fmt.Sprintf("pod-%d", i), AttributeNamespace: "stress"}})
					if err != nil || len(res.IPv4) != 1 {
						errs[n] = fmt.Errorf("%s allocation %d: %v %w (%v)", node, i, res.IPv4, err, res.Msgs)
						return
					}
					results[n] = append(results[n], got{h, node, res.IPv4[0]})
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d allocations by %d nodes in %v (%.0f/s)", e.name, total, stressNodes, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())

		byHandle := consistency(t, admin, true)
		seen := map[netip.Addr]string{}
		borrowed := 0
		c := New(admin)
		blocks, err := c.listBlocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owner := map[netip.Prefix]string{}
		for _, o := range blocks {
			h, _ := affinityHost(o.Spec.Affinity)
			owner[netip.MustParsePrefix(o.Spec.CIDR)] = h
		}
		for _, rs := range results {
			for _, g := range rs {
				if prev, dup := seen[g.ip.Addr()]; dup {
					t.Errorf("%s handed to %s and %s", g.ip.Addr(), prev, g.handle)
				}
				seen[g.ip.Addr()] = g.handle
				if stored := byHandle[g.handle]; len(stored) != 1 || stored[0] != g.ip.Addr() {
					t.Errorf("handle %s was given %s but the blocks hold %v for it", g.handle, g.ip, stored)
				}
				if owner[g.ip.Masked()] != g.node {
					borrowed++
				}
			}
		}
		if len(seen) != total || len(byHandle) != total {
			t.Errorf("%d distinct addresses, %d handles; want %d", len(seen), len(byHandle), total)
		}
		if borrowed == 0 {
			t.Errorf("no address was borrowed: the test no longer forces borrowing")
		}
		t.Logf("%s: %d of %d addresses borrowed from other nodes' blocks", e.name, borrowed, total)
	})
}

// TestRandomAddDelCrashGC runs random pod ADDs and DELs on 5 concurrent nodes, crashing some of them
// between any two writes (a backend that dies, or a context cancelled mid-way). A crashed ADD never
// produces a pod; a crashed DEL's pod is gone anyway. Afterwards one garbage-collection pass
// (Check + ReleaseFromReport) must leave exactly the live pods' addresses allocated, with consistent
// handles and affinities, and a second Check must find nothing.
func TestRandomAddDelCrashGC(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		ctx := testCtx(t)
		admin := e.open(t)
		createPools(t, admin, poolSpec{name: "v4", cidr: "10.30.0.0/24", blockSize: 28}, poolSpec{name: "v6", cidr: "fd30::/120", blockSize: 124})
		ops := 120 / e.scale
		if testing.Short() {
			ops /= 4
		}
		type pod struct {
			handle string
			ips    []netip.Addr
		}
		var mu sync.Mutex
		live := map[string]pod{}
		crashes := 0
		var wg sync.WaitGroup
		for n := range stressNodes {
			conn := e.open(t)
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(n), 42))
				node := fmt.Sprintf("node-%d", n)
				var mine []string
				for i := range ops {
					cb := &crashBackend{Backend: conn}
					opCtx, cancel := context.WithTimeout(ctx, time.Minute)
					if rng.IntN(4) == 0 {
						cb.failAt = 1 + rng.IntN(8)
						if rng.IntN(2) == 0 {
							cb.cancel = cancel
						}
					}
					c := New(cb, WithMaxBackoff(2*time.Millisecond))
					if len(mine) == 0 || rng.IntN(3) != 0 {
						h := fmt.Sprintf("net.%s-%03d", node, i)
						res, err := c.AutoAssign(opCtx, AutoAssignArgs{Num4: 1, Num6: rng.IntN(2), HandleID: h, Hostname: node,
							Attrs: map[string]string{AttributeNode: node, AttributeTimestamp: Timestamp(time.Now())}})
						if err == nil && !cb.crashed {
							mu.Lock()
							live[h] = pod{h, res.Addrs()}
							mu.Unlock()
							mine = append(mine, h)
						} else if !cb.crashed {
							t.Errorf("%s ADD %s: %v", node, h, err)
						}
					} else {
						k := rng.IntN(len(mine))
						h := mine[k]
						mine = slices.Delete(mine, k, k+1)
						mu.Lock()
						delete(live, h)
						mu.Unlock()
						if err := c.ReleaseByHandle(opCtx, h); err != nil && !cb.crashed {
							t.Errorf("%s DEL %s: %v", node, h, err)
						}
					}
					if cb.crashed {
						mu.Lock()
						crashes++
						mu.Unlock()
					}
					cancel()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		t.Logf("%s: %d operations, %d crashed, %d pods live", e.name, ops*stressNodes, crashes, len(live))

		var lv Liveness
		for n := range stressNodes {
			lv.AddNode(fmt.Sprintf("node-%d", n))
		}
		for _, p := range live {
			for _, a := range p.ips {
				lv.AddIP(a, "pod "+p.handle)
			}
		}
		gc := New(admin, WithEmptyBlockMinAge(0))
		report, err := gc.Check(ctx, lv)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: check found %d leaked addresses, %d handle problems, %d stale affinities, %d empty blocks",
			e.name, len(report.Leaked), len(report.HandleProblems), len(report.StaleAffinities), len(report.EmptyBlocks))
		if len(report.NotAllocated) > 0 || len(report.InvalidBlocks) > 0 {
			t.Errorf("live pods' addresses not allocated: %v; damaged blocks: %v", report.NotAllocated, report.InvalidBlocks)
		}
		if _, err := gc.ReleaseFromReport(ctx, report); err != nil {
			t.Fatalf("ReleaseFromReport: %v", err)
		}
		again, err := gc.Check(ctx, lv)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Clean() {
			t.Errorf("second check is not clean: leaked %v, handles %+v, affinities %+v, empty blocks %+v",
				again.Leaked, again.HandleProblems, again.StaleAffinities, again.EmptyBlocks)
		}
		held := consistency(t, admin, true)
		for h, p := range live {
			got := held[h]
			slices.SortFunc(got, netip.Addr.Compare)
			want := slices.Clone(p.ips)
			slices.SortFunc(want, netip.Addr.Compare)
			if !slices.Equal(got, want) {
				t.Errorf("pod %s has %v, the blocks hold %v", h, want, got)
			}
		}
		for h := range held {
			if _, ok := live[h]; !ok {
				t.Errorf("handle %s still holds %v after GC", h, held[h])
			}
		}
	})
}

// TestClaimRace: many nodes claim the same few blocks at once; each block ends up with exactly one
// owner and every loser's pending affinity is gone.
func TestClaimRace(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		ctx := testCtx(t)
		admin := e.open(t)
		createPools(t, admin, poolSpec{name: "race", cidr: "10.40.0.0/26", blockSize: 28}) // 4 blocks
		var wg sync.WaitGroup
		claimed := make([][]netip.Prefix, 8)
		for n := range 8 {
			c := New(e.open(t))
			wg.Go(func() {
				got, _, err := c.ClaimAffinity(ctx, netip.MustParsePrefix("10.40.0.0/26"), fmt.Sprintf("racer-%d", n))
				if err != nil {
					t.Errorf("racer %d: %v", n, err)
				}
				claimed[n] = got
			})
		}
		wg.Wait()
		owners := map[netip.Prefix]int{}
		for _, got := range claimed {
			for _, p := range got {
				owners[p]++
			}
		}
		if len(owners) != 4 {
			t.Errorf("%d blocks claimed, want 4", len(owners))
		}
		for p, n := range owners {
			if n != 1 {
				t.Errorf("block %s claimed by %d nodes", p, n)
			}
		}
		affs, err := New(admin).listAffinities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range affs {
			if a.Spec.State != api.BlockAffinityConfirmed {
				t.Errorf("affinity %s left in state %s", a.Name, a.Spec.State)
			}
		}
		if len(affs) != 4 {
			t.Errorf("%d affinities, want 4", len(affs))
		}
		consistency(t, admin, true)
	})
}

// BenchmarkAutoAssignEtcd5Nodes measures allocations per second with 5 concurrent nodes (each its own
// Client and etcd connection) on the embedded etcd, then runs the same number of allocations on the
// memory backend as the baseline, and reports both and their ratio.
//
// The machine this runs on is shared, so wall-clock rates swing with its load; cpu-µs/alloc (the whole
// process, including the embedded etcd server) is the steadier figure.
func BenchmarkAutoAssignEtcd5Nodes(b *testing.B) {
	etcdRate, etcdCPU := runAllocBench(b, etcdEnv(b), b.N, true)
	memRate, _ := runAllocBench(b, memoryEnv(b), max(b.N, 2000), false)
	b.ReportMetric(etcdRate, "allocs/s")
	b.ReportMetric(memRate, "memory-allocs/s")
	b.ReportMetric(etcdRate/memRate, "etcd/memory")
	if etcdCPU > 0 {
		b.ReportMetric(float64(etcdCPU.Microseconds())/float64(b.N), "cpu-µs/alloc")
	}
}

// BenchmarkAutoAssignMemory5Nodes is the baseline on its own.
func BenchmarkAutoAssignMemory5Nodes(b *testing.B) {
	rate, cpu := runAllocBench(b, memoryEnv(b), b.N, true)
	b.ReportMetric(rate, "allocs/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/alloc")
	}
}

// runAllocBench allocates n single addresses from 5 concurrent nodes and returns allocations per
// second and the process CPU time they took. With timed, the benchmark timer covers exactly the
// allocations.
func runAllocBench(b *testing.B, e env, n int, timed bool) (float64, time.Duration) {
	ctx := testCtx(b)
	admin := e.open(b)
	createPools(b, admin, poolSpec{name: "bench", cidr: "10.64.0.0/12", blockSize: 26})
	setConfig(b, admin, true, 1<<14) // one node may need many blocks when b.N is large
	clients := make([]*Client, stressNodes)
	for i := range clients {
		clients[i] = New(e.open(b))
		// Warm the connection and the node's first block.
		if _, err := clients[i].EnsureBlock(ctx, EnsureBlockArgs{Hostname: fmt.Sprintf("bench-%d", i), IPv4: true}); err != nil {
			b.Fatal(err)
		}
	}
	var done sync.WaitGroup
	errs := make(chan error, stressNodes)
	per := make([]int, stressNodes)
	for i := range n {
		per[i%stressNodes]++
	}
	if timed {
		b.ResetTimer()
	}
	start, cpu0 := time.Now(), processCPU()
	for i, c := range clients {
		done.Go(func() {
			node := fmt.Sprintf("bench-%d", i)
			for j := range per[i] {
				res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: fmt.Sprintf("bench.%s.%d", node, j), Hostname: node})
				if err != nil || len(res.IPv4) != 1 {
					errs <- fmt.Errorf("%s: %w %v", node, err, res.Msgs)
					return
				}
			}
		})
	}
	done.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	if timed {
		b.StopTimer()
	}
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds(), cpu
}

var _ datastore.Backend = (*crashBackend)(nil)
