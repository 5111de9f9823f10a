//go:build linux

package routing

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// randomState is a random routing state of node n1 (see newFakeHost): encapsulations switched on and
// off, VNI and MTU changes (the device must be recreated or adjusted), remote nodes coming and going
// with their VTEPs (MACs changing), local and remote routes of every kind, IPv4 and IPv6.
func randomState(t *testing.T, r *rand.Rand) (*dpmodel.State, LocalTunnels) {
	t.Helper()
	half := func() bool { return r.IntN(2) == 0 }
	s := dpmodel.NewState()
	must := func(u dpmodel.Update) {
		if err := s.Apply(u); err != nil {
			t.Fatalf("bad random update %#v: %v", u, err)
		}
	}
	cfg := dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, IPv6Enabled: true, VXLANEnabled: half(),
		IPIPEnabled: half(), VXLANVNI: 4096 + r.IntN(2), VXLANPort: 4789}
	cfg.VXLANEnabledV6 = cfg.VXLANEnabled && half()
	if half() {
		cfg.VXLANMTU = 1400
	}
	must(dpmodel.ConfigUpdate{Config: cfg})
	must(dpmodel.PoolUpdate{CIDR: pfx("10.244.0.0/16"), Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapMode(r.IntN(3))}})
	if half() {
		must(dpmodel.PoolUpdate{CIDR: pfx("fd10::/64"), Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapMode(r.IntN(3))}})
	}
	must(dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24"), IPv6: pfx("fd00::1/64")}})
	local := LocalTunnels{VXLANv4: ip("10.244.0.0"), VXLANv6: ip("fd10::"), IPIP: ip("10.244.0.1"),
		MACv4: fmt.Sprintf("66:00:00:00:00:%02x", 1+r.IntN(2)), MACv6: "66:00:00:00:06:01"}
	if half() {
		must(dpmodel.RouteUpdate{Dst: pfx("10.244.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}})
		must(dpmodel.RouteUpdate{Dst: pfx("fd10::/122"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}})
	}
	if half() {
		must(dpmodel.RouteUpdate{Dst: pfx("10.244.0.5/32"), Route: dpmodel.Route{Type: dpmodel.RouteLocalWorkload, InterfaceName: "cali1"}})
	}
	for i := 2; i <= 4; i++ {
		if half() {
			continue
		}
		node := fmt.Sprint("n", i)
		subnet := byte(r.IntN(2))
		v4 := netip.AddrFrom4([4]byte{10, 0, subnet, byte(i)})
		v6 := netip.MustParseAddr(fmt.Sprintf("fd00::%d", i))
		must(dpmodel.HostUpdate{Node: node, Host: dpmodel.Host{IPv4: netip.PrefixFrom(v4, 24), IPv6: netip.PrefixFrom(v6, 64)}})
		tun4 := netip.AddrFrom4([4]byte{10, 244, byte(i), 0})
		tun6 := netip.MustParseAddr(fmt.Sprintf("fd10::%x", i*64))
		vtep := cfg.VXLANEnabled && half()
		if vtep {
			must(dpmodel.VTEPUpdate{Node: node, VTEP: dpmodel.VTEP{TunnelIPv4: tun4, MACv4: fmt.Sprintf("66:00:00:00:%02x:%02x", i, r.IntN(2)),
				ParentIPv4: v4, TunnelIPv6: tun6, MACv6: fmt.Sprintf("66:00:00:06:%02x:%02x", i, r.IntN(2)), ParentIPv6: v6}})
		}
		encaps4 := []dpmodel.Encap{dpmodel.EncapNone}
		encaps6 := []dpmodel.Encap{dpmodel.EncapNone}
		if vtep {
			encaps4 = append(encaps4, dpmodel.EncapVXLAN)
			if cfg.VXLANEnabledV6 {
				encaps6 = append(encaps6, dpmodel.EncapVXLAN)
			}
		}
		if cfg.IPIPEnabled {
			encaps4 = append(encaps4, dpmodel.EncapIPIP)
		}
		same := subnet == 0
		if !same {
			encaps4 = encaps4[1:] // without encapsulation a node in another subnet is unreachable (TestUnreachableNode)
		}
		if len(encaps4) == 0 {
			continue
		}
		e4, e6 := encaps4[r.IntN(len(encaps4))], encaps6[r.IntN(len(encaps6))]
		must(dpmodel.RouteUpdate{Dst: netip.PrefixFrom(tun4, 26), Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: e4, DstNode: node,
			DstNodeIP: v4, SameSubnet: same}})
		if half() {
			must(dpmodel.RouteUpdate{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, 0, byte(100 + i)}), 32),
				Route: dpmodel.Route{Type: dpmodel.RouteRemoteWorkload, Encap: e4, DstNode: node, DstNodeIP: v4, SameSubnet: same, Borrowed: true}})
		}
		if vtep && half() {
			must(dpmodel.RouteUpdate{Dst: netip.PrefixFrom(tun4, 32), Route: dpmodel.Route{Type: dpmodel.RouteRemoteTunnel, Encap: dpmodel.EncapVXLAN,
				DstNode: node, DstNodeIP: v4}})
		}
		if half() {
			must(dpmodel.RouteUpdate{Dst: netip.PrefixFrom(tun6, 122), Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: e6, DstNode: node,
				DstNodeIP: v6, SameSubnet: true}})
		}
	}
	return s, local
}

// TestRandomStates replays random sequences of states (as Tailscale's TestRouterStates does): after
// each transition Apply succeeds, and the host equals what a fresh manager programs from scratch for
// the same state on a fresh host, whatever the path; a further Apply writes nothing.
func TestRandomStates(t *testing.T) {
	for seq := range 30 {
		r := rand.New(rand.NewPCG(uint64(seq), 11))
		fh := newFakeHost(t)
		m := newManager(t, fh.h, "")
		cur := dpmodel.NewState()
		for step := range 8 {
			next, local := randomState(t, r)
			m.SetLocalTunnels(local)
			for _, u := range dpmodel.Diff(cur, next) {
				m.OnUpdate(u)
			}
			if err := m.Apply(t.Context()); err != nil {
				t.Fatalf("sequence %d step %d: Apply: %v", seq, step, err)
			}
			fresh := newFakeHost(t)
			fm := newManager(t, fresh.h, "")
			fm.SetLocalTunnels(local)
			feed(fm, next.Snapshot())
			if err := fm.Apply(t.Context()); err != nil {
				t.Fatalf("sequence %d step %d: fresh Apply: %v", seq, step, err)
			}
			// A tortie route through a pod interface stays when no longer wanted (TestCNIRouteKept), and
			// tunl0 once created stays (the kernel's device; only tortie's address goes).
			noPod := func(ls []string) []string {
				return slices.DeleteFunc(ls, func(l string) bool {
					return strings.Contains(l, " dev cali1 ") || strings.HasPrefix(l, "link tunl0 ")
				})
			}
			if diff := cmp.Diff(noPod(hostText(t, fresh.h)), noPod(hostText(t, fh.h)), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("sequence %d step %d: host after the transition differs from a fresh programming (-fresh +got):\n%s", seq, step, diff)
			}
			fh.h.writes.Store(0)
			m.QueueResync()
			if err := m.Apply(t.Context()); err != nil || fh.h.writes.Load() != 0 {
				t.Fatalf("sequence %d step %d: resync: %v, %d writes", seq, step, err, fh.h.writes.Load())
			}
			if step == 7 && seq == 0 {
				t.Logf("last state of sequence 0:\n%s", strings.Join(hostText(t, fh.h), "\n"))
			}
			cur = next
		}
	}
}
