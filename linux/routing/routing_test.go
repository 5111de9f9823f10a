//go:build linux

package routing

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/startup/mtu"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// fakeHost is node n1 in a fake World: uplink eth0 (10.0.0.1/24, fd00::1/64, MTU 1500) and one pod
// interface cali1.
type fakeHost struct {
	w *netlinkx.World
	h *counting
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	w := netlinkx.NewWorld()
	h := w.Handle("n1")
	sw := w.Handle("switch")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eth, err := h.LinkAdd(netlinkx.NewLink{Name: "eth0", Kind: "veth", MTU: 1500, PeerName: "sw1", PeerNS: sw})
	must(err)
	sw1, err := sw.LinkByName("sw1")
	must(err)
	must(sw.LinkSetUp(sw1.Index))
	must(h.LinkSetUp(eth.Index))
	must(h.AddrAdd(netlinkx.Addr{LinkIndex: eth.Index, Prefix: pfx("10.0.0.1/24")}))
	must(h.AddrAdd(netlinkx.Addr{LinkIndex: eth.Index, Prefix: pfx("fd00::1/64"), NoDAD: true}))
	// A default route, as a node has: nodes in other subnets are reached through it.
	must(h.RouteAdd(netlinkx.Route{Dst: pfx("0.0.0.0/0"), Gw: ip("10.0.0.254")}))
	pod := w.Handle("pod1")
	cali, err := h.LinkAdd(netlinkx.NewLink{Name: "cali1", Kind: "veth", MTU: 1450, PeerName: "eth0", PeerNS: pod})
	must(err)
	must(h.LinkSetUp(cali.Index))
	return &fakeHost{w: w, h: &counting{Handle: h}}
}

var (
	local = LocalTunnels{VXLANv4: ip("10.244.0.0"), MACv4: "66:00:00:00:00:01", VXLANv6: ip("fd10::"), MACv6: "66:00:00:00:06:01",
		IPIP: ip("10.244.0.1")}
	vxlanConfig = dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, IPv6Enabled: true, VXLANEnabled: true,
		VXLANEnabledV6: true, VXLANVNI: 4096, VXLANPort: 4789}
)

func vxRoute(t dpmodel.RouteType, node, nodeIP string) dpmodel.Route {
	return dpmodel.Route{Type: t, Encap: dpmodel.EncapVXLAN, DstNode: node, DstNodeIP: ip(nodeIP)}
}

// clusterUpdates is what common/calc sends node n1 of a three-node VXLAN cluster, in its order.
func clusterUpdates(cfg dpmodel.Config) []dpmodel.Update {
	return []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: cfg},
		dpmodel.PoolUpdate{CIDR: pfx("10.244.0.0/16"), Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapAlways, NATOutgoing: true}},
		dpmodel.PoolUpdate{CIDR: pfx("fd10::/64"), Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapAlways}},
		dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24"), IPv6: pfx("fd00::1/64")}},
		dpmodel.HostUpdate{Node: "n2", Host: dpmodel.Host{IPv4: pfx("10.0.0.2/24"), IPv6: pfx("fd00::2/64")}},
		dpmodel.HostUpdate{Node: "n3", Host: dpmodel.Host{IPv4: pfx("10.1.0.3/24")}},
		dpmodel.VTEPUpdate{Node: "n2", VTEP: dpmodel.VTEP{TunnelIPv4: ip("10.244.1.0"), MACv4: "66:00:00:00:00:02", ParentIPv4: ip("10.0.0.2"),
			TunnelIPv6: ip("fd10::40"), MACv6: "66:00:00:00:06:02", ParentIPv6: ip("fd00::2")}},
		dpmodel.VTEPUpdate{Node: "n3", VTEP: dpmodel.VTEP{TunnelIPv4: ip("10.244.2.0"), MACv4: "66:00:00:00:00:03", ParentIPv4: ip("10.1.0.3")}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.0.5/32"), Route: dpmodel.Route{Type: dpmodel.RouteLocalWorkload, InterfaceName: "cali1"}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.1.0/26"), Route: vxRoute(dpmodel.RouteRemoteBlock, "n2", "10.0.0.2")},
		dpmodel.RouteUpdate{Dst: pfx("10.244.1.0/32"), Route: vxRoute(dpmodel.RouteRemoteTunnel, "n2", "10.0.0.2")},
		dpmodel.RouteUpdate{Dst: pfx("10.244.2.0/26"), Route: vxRoute(dpmodel.RouteRemoteBlock, "n3", "10.1.0.3")},
		dpmodel.RouteUpdate{Dst: pfx("10.244.9.7/32"), Route: dpmodel.Route{Type: dpmodel.RouteRemoteWorkload, Encap: dpmodel.EncapVXLAN,
			DstNode: "n3", DstNodeIP: ip("10.1.0.3"), Borrowed: true}},
		dpmodel.RouteUpdate{Dst: pfx("fd10::/122"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}},
		dpmodel.RouteUpdate{Dst: pfx("fd10::40/122"), Route: vxRoute(dpmodel.RouteRemoteBlock, "n2", "fd00::2")},
	}
}

// vxlanHost is the host state clusterUpdates must produce on n1.
var vxlanHost = []string{
	"addr 10.244.0.0/32 dev vxlan.tortie",
	"addr fd10::/128 dev vxlan-v6.tortie",
	"fdb 66:00:00:00:00:02 dst 10.0.0.2 dev vxlan.tortie",
	"fdb 66:00:00:00:00:03 dst 10.1.0.3 dev vxlan.tortie",
	"fdb 66:00:00:00:06:02 dst fd00::2 dev vxlan-v6.tortie",
	"link vxlan-v6.tortie vxlan mtu 1430 up=true mac 66:00:00:00:06:01 vni 4096 port 4789 local fd00::1 parent eth0 learning=false",
	"link vxlan.tortie vxlan mtu 1450 up=true mac 66:00:00:00:00:01 vni 4096 port 4789 local 10.0.0.1 parent eth0 learning=false",
	"neigh 10.244.1.0 lladdr 66:00:00:00:00:02 dev vxlan.tortie",
	"neigh 10.244.2.0 lladdr 66:00:00:00:00:03 dev vxlan.tortie",
	"neigh fd10::40 lladdr 66:00:00:00:06:02 dev vxlan-v6.tortie",
	"route 10.244.0.5/32 dev cali1 proto 116",
	"route 10.244.1.0/26 via 10.244.1.0 dev vxlan.tortie onlink proto 116",
	"route 10.244.1.0/32 dev vxlan.tortie proto 116",
	"route 10.244.2.0/26 via 10.244.2.0 dev vxlan.tortie onlink proto 116",
	"route 10.244.9.7/32 via 10.244.2.0 dev vxlan.tortie onlink proto 116",
	"route blackhole 10.244.0.0/26 proto 116",
	"route blackhole fd10::/122 proto 116",
	"route fd10::40/122 via fd10::40 dev vxlan-v6.tortie onlink proto 116",
}

func newManager(t *testing.T, h netlinkx.Handle, mtuFile string) *Manager {
	t.Helper()
	m, err := New(Options{Handle: h, Local: local, MTUFile: mtuFile})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func feed(m *Manager, us []dpmodel.Update) {
	for _, u := range us {
		m.OnUpdate(u)
	}
}

func TestVXLANRoutes(t *testing.T) {
	fh := newFakeHost(t)
	mtuFile := filepath.Join(t.TempDir(), "mtu")
	m := newManager(t, fh.h, mtuFile)
	feed(m, clusterUpdates(vxlanConfig))
	if err := m.Apply(t.Context()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	// The pod MTU follows the smallest encapsulation in use: VXLAN over IPv6 (1500-70).
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 1430 {
		t.Errorf("MTU file = %d, %v; want 1430", got, err)
	}

	// Idempotent and silent: nothing changed, nothing read or written.
	fh.h.writes.Store(0)
	fh.h.calls.Store(0)
	if err := m.Apply(t.Context()); err != nil || fh.h.calls.Load() != 0 {
		t.Errorf("second Apply: %v, %d netlink calls; want none", err, fh.h.calls.Load())
	}
	// A resync reads and, with no drift, writes nothing.
	m.QueueResync()
	if err := m.Apply(t.Context()); err != nil || fh.h.writes.Load() != 0 || fh.h.calls.Load() == 0 {
		t.Errorf("resync Apply: %v, %d writes, %d calls; want reads only", err, fh.h.writes.Load(), fh.h.calls.Load())
	}
}

// TestStartupAdopts: a new manager (the agent restarted) with the same desired state adopts what the
// old one programmed: it reads and writes nothing.
func TestStartupAdopts(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	feed(m, clusterUpdates(vxlanConfig))
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	fh.h.writes.Store(0)
	m2 := newManager(t, fh.h, "")
	feed(m2, clusterUpdates(vxlanConfig))
	if err := m2.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := fh.h.writes.Load(); w != 0 {
		t.Errorf("restart wrote %d times; want 0 (adopt, no flush)", w)
	}
	if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
}

// TestForeignRoutes: routes of other protocols are never changed or removed; one that holds a wanted
// destination is reported with the route, and the other routes are still programmed.
func TestForeignRoutes(t *testing.T) {
	fh := newFakeHost(t)
	eth, _ := fh.h.LinkByName("eth0")
	foreign := []netlinkx.Route{
		{Dst: pfx("10.244.2.0/26"), Gw: ip("10.0.0.9"), Protocol: netlinkx.ProtocolBoot},           // a destination tortie wants
		{Dst: pfx("192.168.7.0/24"), Gw: ip("10.0.0.9"), Protocol: netlinkx.ProtocolBoot},          // an unrelated one
		{Dst: pfx("10.244.7.0/26"), LinkIndex: eth.Index, Scope: netlinkx.ScopeLink, Protocol: 80}, // Calico's
	}
	for _, r := range foreign {
		if err := fh.h.RouteAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, fh.h, "")
	feed(m, clusterUpdates(vxlanConfig))
	err := m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "10.244.2.0/26 to node \"n3\"") || !strings.Contains(err.Error(), "protocol 3") {
		t.Fatalf("Apply error = %v; want one naming route 10.244.2.0/26 and the foreign protocol", err)
	}
	want := []string{}
	for _, l := range vxlanHost {
		if l != "route 10.244.2.0/26 via 10.244.2.0 dev vxlan.tortie onlink proto 116" {
			want = append(want, l)
		}
	}
	want = append(want, "route 10.244.2.0/26 via 10.0.0.9 dev eth0 proto 3", "route 10.244.7.0/26 dev eth0 proto 80",
		"route 192.168.7.0/24 via 10.0.0.9 dev eth0 proto 3")
	got := hostText(t, fh.h, "10.244.2.0/26", "192.168.7.0/24", "10.244.7.0/26")
	if diff := cmp.Diff(sorted(want), got); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	// The operator removes the conflicting route: the retry programs tortie's.
	if err := fh.h.RouteDel(foreign[0]); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(t.Context()); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Cleanup removes tortie's only.
	if err := m.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"route 10.244.7.0/26 dev eth0 proto 80", "route 192.168.7.0/24 via 10.0.0.9 dev eth0 proto 3"},
		hostText(t, fh.h, "192.168.7.0/24", "10.244.7.0/26")); diff != "" {
		t.Errorf("after Cleanup (-want +got):\n%s", diff)
	}
	if err := m.Cleanup(t.Context()); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestBadRouteRetried: a route the host cannot take now (its pod interface is missing) is reported
// with the route and the reason, the others are programmed, and a later Apply programs it.
func TestBadRouteRetried(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	us := clusterUpdates(vxlanConfig)
	us = append(us, dpmodel.RouteUpdate{Dst: pfx("10.244.0.6/32"), Route: dpmodel.Route{Type: dpmodel.RouteLocalWorkload, InterfaceName: "cali2"}})
	feed(m, us)
	err := m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), `route 10.244.0.6/32 dev cali2 (local pod): interface "cali2" does not exist`) {
		t.Fatalf("Apply = %v; want the missing interface reported with the route", err)
	}
	if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff != "" {
		t.Errorf("the other routes (-want +got):\n%s", diff)
	}
	if _, err := fh.w.Handle("n1").LinkAdd(netlinkx.NewLink{Name: "cali2", Kind: "veth", PeerName: "eth0", PeerNS: fh.w.Handle("pod2")}); err != nil {
		t.Fatal(err)
	}
	l, _ := fh.h.LinkByName("cali2")
	if err := fh.h.LinkSetUp(l.Index); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(t.Context()); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if diff := cmp.Diff(sorted(append(append([]string{}, vxlanHost...), "route 10.244.0.6/32 dev cali2 proto 116")), hostText(t, fh.h)); diff != "" {
		t.Errorf("after retry (-want +got):\n%s", diff)
	}
}

// TestDriftRepair: a route, FDB entry, neighbour or the whole device removed by hand comes back on the
// next resync.
func TestDriftRepair(t *testing.T) {
	tests := []struct {
		name  string
		drift func(h netlinkx.Handle) error
	}{
		{"route", func(h netlinkx.Handle) error {
			return h.RouteDel(netlinkx.Route{Dst: pfx("10.244.1.0/26")})
		}},
		{"route replaced by hand", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan.tortie")
			return h.RouteReplace(netlinkx.Route{Dst: pfx("10.244.1.0/26"), Gw: ip("10.244.2.0"), LinkIndex: vx.Index, OnLink: true, Protocol: 116})
		}},
		{"fdb", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan.tortie")
			return h.FDBDel(netlinkx.FDB{LinkIndex: vx.Index, MAC: mac("66:00:00:00:00:02")})
		}},
		{"neighbour", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan-v6.tortie")
			return h.NeighDel(netlinkx.Neigh{LinkIndex: vx.Index, IP: ip("fd10::40")})
		}},
		{"device", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan.tortie")
			return h.LinkDel(vx.Index)
		}},
		{"device down", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan.tortie")
			return h.LinkSetDown(vx.Index)
		}},
		{"stale route of ours", func(h netlinkx.Handle) error {
			return h.RouteAdd(netlinkx.Route{Dst: pfx("10.99.0.0/26"), Type: netlinkx.RouteBlackhole, Protocol: 116})
		}},
		{"stale neighbour and FDB entry", func(h netlinkx.Handle) error {
			vx, _ := h.LinkByName("vxlan.tortie")
			return errors.Join(h.NeighSet(netlinkx.Neigh{LinkIndex: vx.Index, IP: ip("10.244.8.0"), MAC: mac("66:00:00:00:00:08")}),
				h.FDBSet(netlinkx.FDB{LinkIndex: vx.Index, MAC: mac("66:00:00:00:00:08"), Dst: ip("10.0.0.8")}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fh := newFakeHost(t)
			m := newManager(t, fh.h, "")
			feed(m, clusterUpdates(vxlanConfig))
			if err := m.Apply(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := tt.drift(fh.h.Handle); err != nil {
				t.Fatalf("drift: %v", err)
			}
			if err := m.Apply(t.Context()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff == "" {
				t.Fatal("drift not visible before the resync; the test proves nothing")
			}
			m.QueueResync()
			if err := m.Apply(t.Context()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff != "" {
				t.Errorf("after resync (-want +got):\n%s", diff)
			}
		})
	}
}

func mac(s string) []byte {
	out := make([]byte, 0, 6)
	for _, p := range strings.Split(s, ":") {
		var b byte
		for _, c := range p {
			b = b<<4 | byte(strings.IndexRune("0123456789abcdef", c))
		}
		out = append(out, b)
	}
	return out
}

// TestRemovals: removing a VTEP removes its FDB and neighbour entries (after its routes, as the
// calculation orders them), and turning VXLAN off removes the devices and their routes.
func TestRemovals(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	feed(m, clusterUpdates(vxlanConfig))
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	feed(m, []dpmodel.Update{
		dpmodel.RouteRemove{Dst: pfx("10.244.2.0/26")}, dpmodel.RouteRemove{Dst: pfx("10.244.9.7/32")},
		dpmodel.VTEPRemove{Node: "n3"}, dpmodel.HostRemove{Node: "n3"},
	})
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range vxlanHost {
		if !strings.Contains(l, "10.244.2.0") && !strings.Contains(l, "10.244.9.7") && !strings.Contains(l, "10.1.0.3") {
			want = append(want, l)
		}
	}
	if diff := cmp.Diff(want, hostText(t, fh.h)); diff != "" {
		t.Errorf("after removing n3 (-want +got):\n%s", diff)
	}

	cfg := vxlanConfig
	cfg.VXLANEnabled, cfg.VXLANEnabledV6 = false, false
	var us []dpmodel.Update
	us = append(us, dpmodel.ConfigUpdate{Config: cfg})
	for _, d := range []string{"10.244.1.0/26", "10.244.1.0/32", "fd10::40/122"} {
		us = append(us, dpmodel.RouteRemove{Dst: pfx(d)})
	}
	us = append(us, dpmodel.VTEPRemove{Node: "n2"})
	feed(m, us)
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	want = []string{"route 10.244.0.5/32 dev cali1 proto 116", "route blackhole 10.244.0.0/26 proto 116", "route blackhole fd10::/122 proto 116"}
	if diff := cmp.Diff(want, hostText(t, fh.h)); diff != "" {
		t.Errorf("after turning VXLAN off (-want +got):\n%s", diff)
	}
}

// TestCrossSubnetAndNone: routes the calculation sends without encapsulation go straight to the node
// (on-link through the uplink when it shares the subnet); encapsulated ones through the tunnel.
func TestCrossSubnetAndNone(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	us := clusterUpdates(vxlanConfig)
	// n2 shares n1's subnet: CrossSubnet sends its routes unencapsulated.
	for i, u := range us {
		if ru, ok := u.(dpmodel.RouteUpdate); ok && ru.Route.DstNode == "n2" && ru.Route.Type != dpmodel.RouteRemoteTunnel {
			ru.Route.Encap, ru.Route.SameSubnet = dpmodel.EncapNone, true
			us[i] = ru
		}
	}
	feed(m, us)
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := hostText(t, fh.h)
	for _, want := range []string{
		"route 10.244.1.0/26 via 10.0.0.2 dev eth0 onlink proto 116",
		"route fd10::40/122 via fd00::2 dev eth0 onlink proto 116",
		"route 10.244.2.0/26 via 10.244.2.0 dev vxlan.tortie onlink proto 116",
	} {
		if !contains(got, want) {
			t.Errorf("missing %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestIPIP: tunl0 (MTU host-20) with the node's IPIP tunnel address, remote blocks on-link via the
// node's address through it. This runs against the netlink fake: the kernel here has no ipip module.
func TestIPIP(t *testing.T) {
	fh := newFakeHost(t)
	mtuFile := filepath.Join(t.TempDir(), "mtu")
	m := newManager(t, fh.h, mtuFile)
	cfg := dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, IPIPEnabled: true}
	ipipRoute := func(t dpmodel.RouteType, node, nodeIP string) dpmodel.Route {
		return dpmodel.Route{Type: t, Encap: dpmodel.EncapIPIP, DstNode: node, DstNodeIP: ip(nodeIP)}
	}
	feed(m, []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: cfg},
		dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}},
		dpmodel.HostUpdate{Node: "n2", Host: dpmodel.Host{IPv4: pfx("10.1.0.2/24")}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.1.0/26"), Route: ipipRoute(dpmodel.RouteRemoteBlock, "n2", "10.1.0.2")},
		dpmodel.RouteUpdate{Dst: pfx("10.244.1.1/32"), Route: ipipRoute(dpmodel.RouteRemoteTunnel, "n2", "10.1.0.2")},
	})
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"addr 10.244.0.1/32 dev tunl0",
		"link tunl0 ipip mtu 1480 up=true",
		"route 10.244.1.0/26 via 10.1.0.2 dev tunl0 onlink proto 116",
		"route 10.244.1.1/32 via 10.1.0.2 dev tunl0 onlink proto 116",
		"route blackhole 10.244.0.0/26 proto 116",
	}
	if diff := cmp.Diff(want, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 1480 {
		t.Errorf("MTU file = %d, %v; want 1480", got, err)
	}
	if err := m.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"link tunl0 ipip mtu 1480 up=true"}, hostText(t, fh.h)); diff != "" {
		t.Errorf("after Cleanup (-want +got):\n%s", diff)
	}
}

// TestConfiguredMTU: FELIX_VXLANMTU (Config.VXLANMTU) wins over the derived MTU, for the device and
// the MTU file; a changed host MTU follows on the next resync.
func TestConfiguredMTU(t *testing.T) {
	fh := newFakeHost(t)
	mtuFile := filepath.Join(t.TempDir(), "mtu")
	m := newManager(t, fh.h, mtuFile)
	cfg := vxlanConfig
	cfg.VXLANMTU = 1400 // IPv6 stays derived: 1430
	feed(m, clusterUpdates(cfg))
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := fh.h.LinkByName("vxlan.tortie")
	if err != nil || l.MTU != 1400 {
		t.Errorf("device MTU %d, %v; want 1400", l.MTU, err)
	}
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 1400 {
		t.Errorf("MTU file = %d, %v; want 1400", got, err)
	}
	// Unset: derived from the uplink, which changes to 9000.
	cfg.VXLANMTU = 0
	m.OnUpdate(dpmodel.ConfigUpdate{Config: cfg})
	eth, _ := fh.h.LinkByName("eth0")
	if err := fh.h.LinkSetMTU(eth.Index, 9000); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, _ = fh.h.LinkByName("vxlan.tortie")
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 8930 || l.MTU != 8950 {
		t.Errorf("MTU file = %d (%v), device %d; want 8930 (IPv6 VXLAN) and 8950", got, err, l.MTU)
	}
	// A removed file comes back on the next resync.
	if err := os.Remove(mtuFile); err != nil {
		t.Fatal(err)
	}
	m.QueueResync()
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 8930 {
		t.Errorf("MTU file after resync = %d, %v; want 8930", got, err)
	}
}

// TestBadVTEPMAC: a VTEP with an unusable MAC is reported naming the node and field; the other VTEPs
// are programmed.
func TestBadVTEPMAC(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	us := clusterUpdates(vxlanConfig)
	us = append(us, dpmodel.VTEPUpdate{Node: "n4", VTEP: dpmodel.VTEP{TunnelIPv4: ip("10.244.4.0"), MACv4: "not-a-mac", ParentIPv4: ip("10.0.0.4")}})
	feed(m, us)
	err := m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), `VTEP of node "n4": MAC "not-a-mac"`) {
		t.Fatalf("Apply = %v", err)
	}
	if diff := cmp.Diff(vxlanHost, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
}

// TestDeviceNameTaken: a link of another kind with the VXLAN device's name is reported, not removed.
func TestDeviceNameTaken(t *testing.T) {
	fh := newFakeHost(t)
	if _, err := fh.h.LinkAdd(netlinkx.NewLink{Name: "vxlan.tortie", Kind: "veth", PeerName: "other"}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, fh.h, "")
	feed(m, clusterUpdates(vxlanConfig))
	err := m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "link vxlan.tortie exists and is a veth device") {
		t.Fatalf("Apply = %v", err)
	}
	if _, err := fh.h.LinkByName("vxlan.tortie"); err != nil {
		t.Errorf("the foreign link was removed: %v", err)
	}
}

func TestNoHandle(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a handle succeeded")
	}
}

// TestMTUIPv4OnlyCluster: the layered configuration reports VXLAN over IPv6 enabled whenever VXLAN is
// and IPv6 is supported; without an IPv6 VXLAN pool the pod MTU must stay host-50 (as start-up computes
// it), not host-70.
func TestMTUIPv4OnlyCluster(t *testing.T) {
	fh := newFakeHost(t)
	mtuFile := filepath.Join(t.TempDir(), "mtu")
	m := newManager(t, fh.h, mtuFile)
	m.SetLocalTunnels(LocalTunnels{VXLANv4: local.VXLANv4, MACv4: local.MACv4})
	var us []dpmodel.Update
	for _, u := range clusterUpdates(vxlanConfig) {
		switch u := u.(type) {
		case dpmodel.PoolUpdate:
			if u.CIDR.Addr().Is6() {
				continue
			}
		case dpmodel.RouteUpdate:
			if u.Dst.Addr().Is6() {
				continue
			}
		}
		us = append(us, u)
	}
	feed(m, us)
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := mtu.ReadMTUFile(mtuFile); err != nil || got != 1450 {
		t.Errorf("MTU file = %d, %v; want 1450", got, err)
	}
	if _, err := fh.h.LinkByName("vxlan-v6.tortie"); !netlinkx.IsNotFound(err) {
		t.Errorf("vxlan-v6.tortie exists without an IPv6 tunnel address (%v)", err)
	}
}

// TestErrorsBounded: when every route fails for one reason (no local VXLAN tunnel address, so no
// device), the error lists the first ones and counts the rest.
func TestErrorsBounded(t *testing.T) {
	fh := newFakeHost(t)
	m, err := New(Options{Handle: fh.h})
	if err != nil {
		t.Fatal(err)
	}
	us := clusterUpdates(vxlanConfig)
	for i := range 50 {
		us = append(us, dpmodel.RouteUpdate{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 245, byte(i), 0}), 26),
			Route: vxRoute(dpmodel.RouteRemoteBlock, "n2", "10.0.0.2")})
	}
	feed(m, us)
	err = m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "VXLAN device vxlan.tortie is not up") || !strings.Contains(err.Error(), "more errors like these") {
		t.Fatalf("Apply = %v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != maxReported+1 {
		t.Errorf("%d error lines, want %d", n, maxReported+1)
	}
	// The local routes are still programmed.
	if got := hostText(t, fh.h); !contains(got, "route blackhole 10.244.0.0/26 proto 116") {
		t.Errorf("local block not programmed:\n%s", strings.Join(got, "\n"))
	}
}

// TestUnreachableNode: without encapsulation, a node outside this node's subnet cannot be a next hop
// (the kernel refuses the gateway); the error names the route and says what to change.
func TestUnreachableNode(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	feed(m, []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1"}},
		dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}},
		dpmodel.HostUpdate{Node: "n3", Host: dpmodel.Host{IPv4: pfx("10.1.0.3/24")}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.3.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, DstNode: "n3", DstNodeIP: ip("10.1.0.3")}},
	})
	err := m.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), `route 10.244.3.0/26 to node "n3"`) || !strings.Contains(err.Error(), "vxlanMode or ipipMode") {
		t.Fatalf("Apply = %v", err)
	}
}

// TestCNIRouteKept: the CNI plugin's route to a pod (tortie's protocol, through a pod interface) that
// the calculation does not report is left alone; a stale tortie route elsewhere is removed.
func TestCNIRouteKept(t *testing.T) {
	fh := newFakeHost(t)
	cali, _ := fh.h.LinkByName("cali1")
	eth, _ := fh.h.LinkByName("eth0")
	for _, r := range []netlinkx.Route{
		{Dst: pfx("10.244.0.9/32"), LinkIndex: cali.Index, Scope: netlinkx.ScopeLink, Protocol: 116},
		{Dst: pfx("10.244.7.0/26"), Gw: ip("10.0.0.7"), LinkIndex: eth.Index, Protocol: 116},
	} {
		if err := fh.h.RouteAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, fh.h, "")
	feed(m, []dpmodel.Update{dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}}}})
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"route 10.244.0.9/32 dev cali1 proto 116"}, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
}

// TestWindowsPeer: a Windows node publishes its block's .1 as its VXLAN tunnel address and its HNS
// network's DR MAC (which may be written in Windows' dashed upper-case form); the Linux side programs
// the same neighbour, FDB entry (to the node's management address) and onlink route as for a Linux
// peer, on VNI 4096 and port 4789, which HNS requires.
func TestWindowsPeer(t *testing.T) {
	fh := newFakeHost(t)
	m := newManager(t, fh.h, "")
	cfg := vxlanConfig
	cfg.VXLANEnabledV6 = false
	feed(m, []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: cfg},
		dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}},
		dpmodel.HostUpdate{Node: "win1", Host: dpmodel.Host{IPv4: pfx("10.0.0.50/24")}},
		dpmodel.VTEPUpdate{Node: "win1", VTEP: dpmodel.VTEP{TunnelIPv4: ip("10.244.9.1"), MACv4: "00-15-5D-AA-BB-CC", ParentIPv4: ip("10.0.0.50")}},
		dpmodel.RouteUpdate{Dst: pfx("10.244.9.0/26"), Route: vxRoute(dpmodel.RouteRemoteBlock, "win1", "10.0.0.50")},
	})
	m.SetLocalTunnels(LocalTunnels{VXLANv4: local.VXLANv4, MACv4: local.MACv4})
	if err := m.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"addr 10.244.0.0/32 dev vxlan.tortie",
		"fdb 00:15:5d:aa:bb:cc dst 10.0.0.50 dev vxlan.tortie",
		"link vxlan.tortie vxlan mtu 1450 up=true mac 66:00:00:00:00:01 vni 4096 port 4789 local 10.0.0.1 parent eth0 learning=false",
		"neigh 10.244.9.1 lladdr 00:15:5d:aa:bb:cc dev vxlan.tortie",
		"route 10.244.9.0/26 via 10.244.9.1 dev vxlan.tortie onlink proto 116",
	}
	if diff := cmp.Diff(want, hostText(t, fh.h)); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	// Idempotent with the dashed MAC too.
	fh.h.writes.Store(0)
	m.QueueResync()
	if err := m.Apply(t.Context()); err != nil || fh.h.writes.Load() != 0 {
		t.Errorf("resync: %v, %d writes", err, fh.h.writes.Load())
	}
}
