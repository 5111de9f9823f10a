//go:build linux

package dataplane

import (
	"bufio"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// BenchmarkPodLatencyInterleaved: same-node pod-to-pod request/response latency with the busy-loop
// method of the shared performance baselines (§4.4): SCHED_IDLE spinners keep both vCPUs busy, so a
// vCPU's halt and wake-up through the hypervisor do not dominate. One TCP connection between two pods
// wired as the CNI plugin wires them stays open for the whole run; each round measures, in an order
// that rotates between rounds, the bare veth + route pair (no rule on the path; conntrack on, as on any
// node), this dataplane with
// an allow-all profile alone (policies=0) and with 250 local endpoints and 1,000 policies loaded
// (policies=1000), each freshly programmed. A measurement is the p50 of 2,000 round trips after 200
// warm-up ones. It reports the medians over rounds of the per-round ratios to the bare pair.
//
//	go test -run '^$' -bench PodLatencyInterleaved -benchtime 1x ./linux/dataplane/
func BenchmarkPodLatencyInterleaved(b *testing.B) {
	needRoot(b)
	c := buildCluster(b)
	echoServer(b, c.pods["y/a"], 91)
	r := nsExec(c.nodes["n1"])
	two := restartState(true)
	configs := []struct {
		name string
		us   []dpmodel.Update
	}{
		{"bare", nil},
		{"policies=0", two},
		{"policies=1000", append(benchState(250, 1000, 1000), two[1:]...)},
	}
	// Conntrack on in the node from the start, as on any node (kube-proxy), with no rule on the packets'
	// path: a conntrack match in a chain nothing jumps to registers conntrack's hooks for the namespace.
	// Without it the connection would be dialled untracked and its packets picked up mid-stream as
	// INVALID once tortie's rules load conntrack.
	for _, args := range [][]string{{"-t", "filter", "-N", "bench-ct"}, {"-t", "filter", "-A", "bench-ct", "-m", "conntrack", "--ctstate", "INVALID", "-j", "RETURN"}} {
		if _, err := r.Run(b.Context(), "iptables-nft", args, nil); err != nil {
			b.Fatal(err)
		}
	}
	var conn net.Conn
	if err := c.pods["x/a"].Do(func(ns.NetNS) (err error) {
		conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(podAddr("y/a"), 91).String(), 2*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	rd := bufio.NewReader(conn)
	measure := func() time.Duration {
		ds := make([]time.Duration, 0, 2000)
		for i := range 2200 {
			start := time.Now()
			if err := roundTrip(conn, rd, "x"); err != nil {
				b.Fatalf("round trip %d: %v", i, err)
			}
			if i >= 200 {
				ds = append(ds, time.Since(start))
			}
		}
		return percentile(ds, 50)
	}
	program := func(us []dpmodel.Update) {
		dp := New(Options{Runner: r, Backend: "nft"})
		if err := dp.Cleanup(b.Context()); err != nil {
			b.Fatal(err)
		}
		if us == nil {
			return
		}
		for _, u := range us {
			dp.OnUpdate(u)
		}
		if err := dp.Apply(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	stop := busyLoops(b)
	defer stop()
	const rounds = 7
	ratios := make([][]float64, len(configs))
	p50s := make([][]time.Duration, len(configs))
	for range b.N {
		for round := range rounds {
			var got [3]time.Duration
			for k := range configs {
				i := (k + round) % len(configs)
				program(configs[i].us)
				got[i] = measure()
			}
			for i := range configs {
				p50s[i] = append(p50s[i], got[i])
				ratios[i] = append(ratios[i], float64(got[i])/float64(got[0]))
			}
		}
	}
	program(nil)
	for i, cfg := range configs {
		b.ReportMetric(float64(percentile(p50s[i], 50))/float64(time.Microsecond), cfg.name+"-p50-µs")
		if i > 0 {
			ratioMedian := slices.Clone(ratios[i])
			slices.Sort(ratioMedian)
			b.ReportMetric(ratioMedian[len(ratioMedian)/2], cfg.name+"/bare")
			b.Logf("%s/bare per round: %.3f", cfg.name, ratios[i])
		}
	}
	b.ReportMetric(0, "ns/op")
}

// busyLoops starts one SCHED_IDLE busy loop per vCPU, as separate processes (spinning goroutines
// would compete for the Go scheduler's Ps with the measurement), and returns a function stopping them.
func busyLoops(b *testing.B) (stop func()) {
	b.Helper()
	var procs []*exec.Cmd
	for range runtime.NumCPU() {
		p := exec.Command("chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
		if err := p.Start(); err != nil {
			b.Logf("without SCHED_IDLE busy loops (%v): latency includes vCPU wake-ups", err)
			break
		}
		procs = append(procs, p)
	}
	return func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
}
