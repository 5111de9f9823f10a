//go:build linux

package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/iptables"
)

// benchState is a node with local endpoints, policies (each one inbound and one outbound rule from
// its own selector set of 10 members, 10 policies per endpoint) and one "cluster" set of
// clusterMembers addresses that every policy's first rule also uses.
func benchState(local, policies, clusterMembers int) []dpmodel.Update {
	us := []dpmodel.Update{dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}}}}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	var cluster []dpmodel.Member
	for i := range clusterMembers {
		cluster = append(cluster, dpmodel.HostMember(addr(1<<20+i)))
	}
	us = append(us, dpmodel.IPSetUpdate{ID: "s:cluster", Type: dpmodel.IPSetNet, Members: cluster})
	ids := make([]dpmodel.PolicyID, policies)
	for p := range policies {
		set := fmt.Sprintf("s:%d", p)
		var ms []dpmodel.Member
		for j := range 10 {
			ms = append(ms, dpmodel.HostMember(addr(p*10+j)))
		}
		us = append(us, dpmodel.IPSetUpdate{ID: set, Type: dpmodel.IPSetNet, Members: ms})
		ids[p] = dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "ns", Name: fmt.Sprint("p", p)}
		us = append(us, dpmodel.PolicyUpdate{ID: ids[p], Policy: dpmodel.Policy{
			Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, Protocol: 6, SrcIPSetIDs: []string{set, "s:cluster"}, DstPorts: []dpmodel.PortRange{{First: 80, Last: 80}}},
				{Action: dpmodel.Deny, SrcIPSetIDs: []string{set}}},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, DstIPSetIDs: []string{set}}},
		}})
	}
	for e := range local {
		var mine []dpmodel.PolicyID
		for k := range 10 {
			mine = append(mine, ids[(e*7+k*13)%policies])
		}
		us = append(us, dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "ns", Name: fmt.Sprint("w", e)},
			Endpoint: dpmodel.WorkloadEndpoint{InterfaceName: fmt.Sprintf("cali%06x", e), IPv4Nets: []netip.Prefix{netip.PrefixFrom(addr(1<<22+e), 32)},
				Tiers: []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: mine, Egress: mine}}}})
	}
	return us
}

func mustStateOf(b *testing.B, us []dpmodel.Update) *dpmodel.State {
	s := dpmodel.NewState()
	if err := s.ApplyAll(us); err != nil {
		b.Fatal(err)
	}
	return s
}

// restoreText is the rendering as the input of one iptables-restore (without --noflush) per table
// and one ipset restore: the baseline of cold programming.
func restoreText(h *hostState) (tables map[string]string, sets string) {
	tables = map[string]string{}
	for k, t := range h.Tables {
		var sb strings.Builder
		fmt.Fprintf(&sb, "*%s\n", k.Name)
		for c := range t.Chains {
			fmt.Fprintf(&sb, ":%s - [0:0]\n", c)
		}
		for c, rules := range t.Chains {
			for _, r := range rules {
				fmt.Fprintf(&sb, "-A %s %s\n", c, r)
			}
		}
		for c, rules := range t.Hooks {
			for _, r := range rules {
				fmt.Fprintf(&sb, "-A %s %s\n", c, r)
			}
		}
		sb.WriteString("COMMIT\n")
		tables[k.Name] = sb.String()
	}
	var sb strings.Builder
	for name, s := range h.Sets {
		fmt.Fprintf(&sb, "create %s %s family inet maxelem 1048576\n", name, s.Type)
		for _, m := range s.Members {
			fmt.Fprintf(&sb, "add %s %s\n", name, m)
		}
	}
	return tables, sb.String()
}

// BenchmarkColdProgram: from an empty namespace to 250 local endpoints × 1,000 policies programmed:
// ours (render, read the kernel, ipset restore, iptables-restore per table) against the baseline of
// writing the same rules and sets with one plain ipset restore and one iptables-restore per table.
// It reports rules/endpoint (filter table rules divided by local endpoints).
func BenchmarkColdProgram(b *testing.B) {
	needRoot(b)
	us := benchState(250, 1000, 1000)
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			n := cnitest.NewNS(b)
			dp := New(Options{Runner: nsExec(n), Backend: "nft"})
			for _, u := range us {
				dp.OnUpdate(u)
			}
			b.StartTimer()
			if err := dp.Apply(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cnitest.DeleteNS(n)
			b.StartTimer()
		}
		h := render(mustStateOf(b, us))
		rules := 0
		for k, t := range h.Tables {
			if k.Name == "filter" {
				for _, r := range t.Chains {
					rules += len(r)
				}
			}
		}
		b.ReportMetric(float64(rules)/250, "rules/endpoint")
	})
	b.Run("baseline", func(b *testing.B) {
		tables, sets := restoreText(render(mustStateOf(b, us)))
		for b.Loop() {
			b.StopTimer()
			n := cnitest.NewNS(b)
			r := nsExec(n)
			b.StartTimer()
			if _, err := r.Run(b.Context(), "ipset", []string{"restore"}, []byte(sets)); err != nil {
				b.Fatal(err)
			}
			for _, name := range iptables.Tables {
				if _, err := r.Run(b.Context(), "iptables-nft-restore", nil, []byte(tables[name])); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cnitest.DeleteNS(n)
			b.StartTimer()
		}
	})
}

// BenchmarkLabelChange: one endpoint's label change as the calculation delivers it (one member added
// to, then removed from, a set every policy uses, of 1k or 10k cluster members), to the kernel: ours
// (OnUpdate + Apply on a node with 250 endpoints and 1,000 policies) against the least the kernel
// needs (one `ipset add` / `ipset del` exec). One op is one change.
func BenchmarkLabelChange(b *testing.B) {
	needRoot(b)
	for _, members := range []int{1000, 10000} {
		name := fmt.Sprintf("%dk", members/1000)
		us := benchState(250, 1000, members)
		extra := dpmodel.HostMember(netip.MustParseAddr("10.200.0.1"))
		b.Run(name+"/ours", func(b *testing.B) {
			n := cnitest.NewNS(b)
			dp := New(Options{Runner: nsExec(n), Backend: "nft"})
			for _, u := range us {
				dp.OnUpdate(u)
			}
			if err := dp.Apply(b.Context()); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				d := dpmodel.IPSetDelta{ID: "s:cluster", Added: []dpmodel.Member{extra}}
				if i%2 == 1 {
					d = dpmodel.IPSetDelta{ID: "s:cluster", Removed: []dpmodel.Member{extra}}
				}
				i++
				dp.OnUpdate(d)
				if err := dp.Apply(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/baseline", func(b *testing.B) {
			n := cnitest.NewNS(b)
			r := nsExec(n)
			_, sets := restoreText(render(mustStateOf(b, us)))
			if _, err := r.Run(b.Context(), "ipset", []string{"restore"}, []byte(sets)); err != nil {
				b.Fatal(err)
			}
			set := setName(4, "s:cluster")
			i := 0
			err := n.Do(func(ns.NetNS) error {
				for b.Loop() {
					op := "add"
					if i%2 == 1 {
						op = "del"
					}
					i++
					if _, err := (iptables.Exec{}).Run(b.Context(), "ipset", []string{op, set, "10.200.0.1"}, nil); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkLabelChangeInterleaved: one endpoint's label change as the calculation delivers it (one member added
// to, then removed from, a set every policy uses, of 1k or 10k cluster members), to the kernel, on a
// node with 250 endpoints and 1,000 policies. Three ways interleaved in one run (each op times one
// change of each): ours (OnUpdate + Apply, the member over netlink), ours with IPSetRestoreOnly (the
// member through `ipset restore`, the earlier path) and the least an exec can do (one `ipset add` /
// `ipset del`). It reports p50 and p99 of each and the ratios of ours to the other two. Run with
// -benchtime 400x or more for a meaningful p99.
func BenchmarkLabelChangeInterleaved(b *testing.B) {
	needRoot(b)
	for _, members := range []int{1000, 10000} {
		name := fmt.Sprintf("%dk", members/1000)
		b.Run(name, func(b *testing.B) {
			us := benchState(250, 1000, members)
			extra := dpmodel.HostMember(netip.MustParseAddr("10.200.0.1"))
			program := func(restoreOnly bool) (*Dataplane, ns.NetNS) {
				n := cnitest.NewNS(b)
				dp := New(Options{Runner: nsExec(n), Backend: "nft", IPSetRestoreOnly: restoreOnly})
				for _, u := range us {
					dp.OnUpdate(u)
				}
				if err := dp.Apply(b.Context()); err != nil {
					b.Fatal(err)
				}
				return dp, n
			}
			ours, _ := program(false)
			restoreOnly, n := program(true)
			set := setName(4, "s:cluster")
			change := func(dp *Dataplane, i int) time.Duration {
				d := dpmodel.IPSetDelta{ID: "s:cluster", Added: []dpmodel.Member{extra}}
				if i%2 == 1 {
					d = dpmodel.IPSetDelta{ID: "s:cluster", Removed: []dpmodel.Member{extra}}
				}
				start := time.Now()
				dp.OnUpdate(d)
				if err := dp.Apply(b.Context()); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			var tOurs, tRestore, tExec []time.Duration
			i := 0
			for b.Loop() {
				tOurs = append(tOurs, change(ours, i))
				tRestore = append(tRestore, change(restoreOnly, i))
				op := "add"
				if i%2 == 1 {
					op = "del"
				}
				start := time.Now()
				// Another address than the dataplanes' (which believe they know the set's members).
				err := n.Do(func(ns.NetNS) error {
					_, err := (iptables.Exec{}).Run(b.Context(), "ipset", []string{op, set, "10.200.0.2"}, nil)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				tExec = append(tExec, time.Since(start))
				i++
			}
			p50o, p99o := percentile(tOurs, 50), percentile(tOurs, 99)
			p50r, p99r := percentile(tRestore, 50), percentile(tRestore, 99)
			p50e, p99e := percentile(tExec, 50), percentile(tExec, 99)
			b.ReportMetric(ms(p50o), "ours-p50-ms")
			b.ReportMetric(ms(p99o), "ours-p99-ms")
			b.ReportMetric(ms(p50r), "restore-p50-ms")
			b.ReportMetric(ms(p99r), "restore-p99-ms")
			b.ReportMetric(ms(p50e), "exec-p50-ms")
			b.ReportMetric(ms(p99e), "exec-p99-ms")
			b.ReportMetric(float64(p50o)/float64(p50r), "p50-ours/restore")
			b.ReportMetric(float64(p50o)/float64(p50e), "p50-ours/exec")
			b.ReportMetric(float64(p99o)/float64(p99r), "p99-ours/restore")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPodLatency: one request/response (1 line each way) on an established TCP connection between
// two pods on one node, wired as the CNI plugin wires them: baseline without any rule (the hand-built
// veth + route pair), then with this dataplane enforcing an allow-all profile alone (policies=0), then
// with 250 local endpoints and 1,000 policies loaded (policies=1000). Established packets take the
// conntrack fast path after the interface dispatch. Interleave the three with ci/bench.sh; the machine's
// noise is large, see docs/performance.md.
func BenchmarkPodLatency(b *testing.B) {
	needRoot(b)
	c := buildCluster(b)
	echoServer(b, c.pods["y/a"], 90)
	r := nsExec(c.nodes["n1"])
	two := restartState(true)
	for _, tc := range []struct {
		name string
		us   []dpmodel.Update
	}{
		{"baseline", nil},
		{"policies=0", two},
		{"policies=1000", append(benchState(250, 1000, 1000), two[1:]...)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dp := New(Options{Runner: r, Backend: "nft"})
			if err := dp.Cleanup(b.Context()); err != nil {
				b.Fatal(err)
			}
			for _, u := range tc.us {
				dp.OnUpdate(u)
			}
			if tc.us != nil {
				if err := dp.Apply(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			var conn net.Conn
			if err := c.pods["x/a"].Do(func(ns.NetNS) (err error) {
				conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(podAddr("y/a"), 90).String(), 2*time.Second)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			rd := bufio.NewReader(conn)
			for b.Loop() {
				if err := roundTrip(conn, rd, "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
