//go:build linux

package routing

import (
	"io"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// BenchmarkPathInterleaved compares tortie's programming of the pod-to-pod path with a hand-built one
// between the same namespaces and over the same sockets: each round programs one, measures, removes
// it, programs the other, measures (alternating which goes first). Latency is the p50 of TCP ping-pong
// round trips with SCHED_IDLE spinners keeping every vCPU busy (an idle vCPU's halt/wake through the
// hypervisor otherwise dominates, see the shared performance baselines); throughput is bulk TCP over a
// second connection (64 MiB). Run with -benchtime 1x; it reports the medians of the per-round ratios.
//
//	go test -run '^$' -bench PathInterleaved -benchtime 1x ./linux/routing/
func BenchmarkPathInterleaved(b *testing.B) {
	for _, tc := range []struct {
		name   string
		direct bool
	}{{"vxlan", false}, {"direct", true}} {
		b.Run(tc.name, func(b *testing.B) {
			podA, podB, nodes := twoNodes(b)
			dst := ip("10.70.2.2")
			tcpEcho(b, podB, 7300)
			tcpSink(b, podB, 7301)
			program(b, nodes, true, tc.direct)
			pp, err := tcpDial(podA, dst, 7300)
			must(b, "dial echo", err)
			defer func() { _ = pp.Close() }()
			bulk, err := tcpDial(podA, dst, 7301)
			must(b, "dial sink", err)
			defer func() { _ = bulk.Close() }()
			clearPath(b, nodes, true, tc.direct)
			stop := spinners(b)
			defer stop()

			const rounds = 7
			var latRatio, tputRatio []float64
			var ours, base []time.Duration
			for range b.N {
				for r := range rounds {
					order := []bool{true, false}
					if r%2 == 1 {
						order = []bool{false, true}
					}
					var p50 [2]time.Duration
					var tput [2]float64
					for _, tortie := range order {
						i := 0
						if !tortie {
							i = 1
						}
						program(b, nodes, tortie, tc.direct)
						p50[i] = pingPongP50(b, pp, 200, 3000)
						tput[i] = throughput(b, bulk, 64<<20)
						clearPath(b, nodes, tortie, tc.direct)
					}
					ours, base = append(ours, p50[0]), append(base, p50[1])
					latRatio = append(latRatio, float64(p50[0])/float64(p50[1]))
					tputRatio = append(tputRatio, tput[0]/tput[1])
				}
			}
			b.ReportMetric(median(latRatio), "p50-ratio")
			b.ReportMetric(slices.Min(latRatio), "p50-ratio-min")
			b.ReportMetric(slices.Max(latRatio), "p50-ratio-max")
			b.ReportMetric(median(tputRatio), "tput-ratio")
			b.ReportMetric(float64(medianDur(ours))/1e3, "ours-p50-µs")
			b.ReportMetric(float64(medianDur(base))/1e3, "base-p50-µs")
		})
	}
}

// clearPath removes what program put on the nodes, leaving the pods' own routes.
func clearPath(b *testing.B, nodes [2]*netlinkx.Kernel, tortie, direct bool) {
	b.Helper()
	for i, h := range nodes {
		if !direct {
			name := "vxhand"
			if tortie {
				name = config.VXLANDevice
			}
			l, err := h.LinkByName(name)
			must(b, "device", err)
			must(b, "deleting "+name, h.LinkDel(l.Index))
			continue
		}
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(2 - i), 0}), 26)
		routes, err := h.RouteList(netlinkx.TableMain)
		must(b, "routes", err)
		for _, r := range routes {
			if r.Dst == block {
				must(b, "deleting the block route", h.RouteDel(r))
			}
		}
	}
}

func tcpSink(b *testing.B, n ns.NetNS, port int) {
	b.Helper()
	var ln net.Listener
	must(b, "listen", n.Do(func(ns.NetNS) (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)).String())
		return err
	}))
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 1)
				for {
					// Acknowledge each 1 MiB so the sender can time whole transfers.
					if _, err := io.CopyN(io.Discard, c, 1<<20); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() { _ = ln.Close() })
}

func pingPongP50(b *testing.B, c net.Conn, warm, n int) time.Duration {
	b.Helper()
	buf := []byte{'x'}
	rtts := make([]time.Duration, 0, n)
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	for i := range warm + n {
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		if i >= warm {
			rtts = append(rtts, time.Since(start))
		}
	}
	return medianDur(rtts)
}

// throughput sends size bytes in 1 MiB pieces, each acknowledged by the sink, and returns bytes/s.
func throughput(b *testing.B, c net.Conn, size int) float64 {
	b.Helper()
	chunk := make([]byte, 1<<20)
	ack := make([]byte, 1)
	_ = c.SetDeadline(time.Now().Add(120 * time.Second))
	start := time.Now()
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
	}
	return float64(size) / time.Since(start).Seconds()
}

// spinners keeps every vCPU busy with SCHED_IDLE busy loops (separate processes: spinning goroutines
// would take the Go scheduler's Ps from the measurement) until stopped.
func spinners(b *testing.B) (stop func()) {
	b.Helper()
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		c := exec.Command("chrt", "-i", "0", "sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			b.Logf("no SCHED_IDLE spinners (%v): latency includes vCPU wake-ups", err)
			break
		}
		cmds = append(cmds, c)
	}
	return func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
