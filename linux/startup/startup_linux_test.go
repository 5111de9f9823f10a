//go:build linux

package startup

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/startup/mtu"
	"github.com/tortie-net/tortie/common/testenv"
)

// link describes one interface of the test node.
type link struct {
	name  string
	kind  string // "veth" (peer up in the peer namespace), "veth-nocarrier" (peer left down), "bridge", "vxlan"
	mtu   int
	addrs []string
}

// nodeLinks is the test node, in creation (= ifindex = net.Interfaces) order after lo. Reverse walk
// order is therefore eth9, vxlan.tortie, ens5, cali123, docker0, eth1, eth0, lo.
var nodeLinks = []link{
	{name: "eth0", kind: "veth", mtu: 1500, addrs: []string{"10.0.0.5/24", "2001:db8::5/64"}},
	{name: "eth1", kind: "veth", mtu: 9000, addrs: []string{"192.168.1.10/24", "2001:db8:1::10/64"}},
	{name: "docker0", kind: "bridge", mtu: 1500, addrs: []string{"172.17.0.1/16", "fd00:dead::1/64"}},
	{name: "cali123", kind: "veth", mtu: 1440, addrs: []string{"10.244.0.1/32"}},
	{name: "ens5", kind: "veth", mtu: 1450, addrs: []string{"10.1.0.7/16", "2001:db8:5::7/64"}},
	{name: "vxlan.tortie", kind: "vxlan", mtu: 1400, addrs: []string{"10.244.1.0/32"}},
	{name: "eth9", kind: "veth-nocarrier", mtu: 1280},
}

// route is a route in the test node: dst via gw (on dev, which must be on-link).
type route struct{ dst, gw, dev string }

var nodeRoutes = []route{
	{"192.0.2.0/24", "10.0.0.1", "eth0"},
	{"198.51.100.0/24", "10.1.0.1", "ens5"},
	{"2001:db8:99::/48", "2001:db8:1::1", "eth1"},
	{"::/0", "2001:db8:5::1", "ens5"},
}

// newNS returns an empty network namespace that is released when the test ends.
func newNS(t *testing.T) ns.NetNS {
	t.Helper()
	n, err := ns.TempNetNS()
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			testenv.Unavailable(t, "cannot create a network namespace: %v", err)
		}
		t.Fatalf("creating a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func handleAt(t *testing.T, n ns.NetNS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(int(n.Fd())))
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Path(), err)
	}
	t.Cleanup(h.Close)
	return h
}

// buildNode creates the test node namespace (nodeLinks, nodeRoutes, lo up) and returns it.
func buildNode(t *testing.T) ns.NetNS {
	t.Helper()
	testenv.RequireRoot(t) // CAP_NET_ADMIN: network namespaces, links, addresses, routes
	node, peer := newNS(t), newNS(t)
	h, ph := handleAt(t, node), handleAt(t, peer)

	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	for _, l := range nodeLinks {
		attrs := netlink.LinkAttrs{Name: l.name, MTU: l.mtu}
		var nl netlink.Link
		switch l.kind {
		case "veth", "veth-nocarrier":
			nl = &netlink.Veth{LinkAttrs: attrs, PeerName: "p-" + l.name, PeerMTU: uint32(l.mtu), PeerNamespace: netlink.NsFd(int(peer.Fd()))}
		case "bridge":
			nl = &netlink.Bridge{LinkAttrs: attrs}
		case "vxlan":
			nl = &netlink.Vxlan{LinkAttrs: attrs, VxlanId: 4096, Port: 4789}
		default:
			t.Fatalf("unknown link kind %q", l.kind)
		}
		if err := h.LinkAdd(nl); err != nil {
			t.Fatalf("adding %s %s: %v", l.kind, l.name, err)
		}
		if err := h.LinkSetUp(nl); err != nil {
			t.Fatalf("setting %s up: %v", l.name, err)
		}
		if l.kind == "veth" {
			p, err := ph.LinkByName("p-" + l.name)
			if err != nil {
				t.Fatalf("peer of %s: %v", l.name, err)
			}
			if err := ph.LinkSetUp(p); err != nil {
				t.Fatalf("setting the peer of %s up: %v", l.name, err)
			}
		}
		for _, a := range l.addrs {
			ipn, err := netlink.ParseIPNet(a)
			if err != nil {
				t.Fatal(err)
			}
			// NODAD: an IPv6 address still doing duplicate address detection is tentative and the
			// kernel would not pick it as a source address.
			if err := h.AddrAdd(nl, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
				t.Fatalf("adding %s to %s: %v", a, l.name, err)
			}
		}
	}
	// The kernel reports carrier (IFF_RUNNING) asynchronously after the peer comes up (linkwatch);
	// wait for it so that Up and the MTU calculation see the settled state.
	for _, l := range nodeLinks {
		if l.kind == "veth" {
			waitRunning(t, h, l.name)
		}
	}
	for _, r := range nodeRoutes {
		dev, err := h.LinkByName(r.dev)
		if err != nil {
			t.Fatal(err)
		}
		_, dst, err := net.ParseCIDR(r.dst)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: dev.Attrs().Index, Dst: dst, Gw: net.ParseIP(r.gw)}); err != nil {
			t.Fatalf("adding route %s via %s dev %s: %v", r.dst, r.gw, r.dev, err)
		}
	}
	return node
}

// waitRunning polls until the link has IFF_RUNNING set.
func waitRunning(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("link %s: %v", name, err)
		}
		if l.Attrs().RawFlags&unix.IFF_RUNNING != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s has no carrier 10s after its peer came up (flags %v)", name, l.Attrs().Flags)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inNS runs fn on an OS thread inside n (ns.Do locks the thread) and returns its result. fn runs on
// another goroutine, so it must not call t.Fatal.
func inNS[T any](t *testing.T, n ns.NetNS, fn func() (T, error)) (T, error) {
	t.Helper()
	var out T
	var fnErr error
	if err := n.Do(func(ns.NetNS) error {
		out, fnErr = fn()
		return nil
	}); err != nil {
		t.Fatalf("entering %s: %v", n.Path(), err)
	}
	return out, fnErr
}

type k8sAddrs []string

func (k k8sAddrs) InternalIPs(context.Context) ([]string, error) { return k, nil }

func TestSystemInterfacesInNamespace(t *testing.T) {
	node := buildNode(t)
	ifaces, err := inNS(t, node, autodetect.SystemInterfaces{}.List)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	type row struct {
		Name  string
		Up    bool
		MTU   int
		Addrs []string // global addresses only: link-local ones depend on kernel timing
	}
	var got []row
	for _, i := range ifaces {
		r := row{Name: i.Name, Up: i.Up, MTU: i.MTU}
		if i.Name == "docker0" {
			// Whether a bridge without ports has carrier depends on the kernel version (6.18 says
			// yes, operstate UNKNOWN; older kernels say NO-CARRIER). Not asserted.
			r.Up = false
		}
		for _, a := range i.Addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				r.Addrs = append(r.Addrs, a.String())
			}
		}
		got = append(got, r)
	}
	want := []row{{Name: "lo", Up: true, MTU: 65536, Addrs: []string{"127.0.0.1/8", "::1/128"}}}
	for _, l := range nodeLinks {
		// A veth whose peer is down has no carrier: not running, so MTU detection skips it.
		up := l.kind == "veth" || l.kind == "vxlan"
		want = append(want, row{Name: l.name, Up: up, MTU: l.mtu, Addrs: l.addrs})
	}
	sortAddrs := func(r []row) {
		for i := range r {
			slices.Sort(r[i].Addrs)
		}
	}
	sortAddrs(got)
	sortAddrs(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SystemInterfaces.List in the test namespace (-want +got):\n%s", diff)
	}
}

func TestDetectInNamespace(t *testing.T) {
	node := buildNode(t)
	k8s := k8sAddrs{"2001:db8:1::10", "10.0.0.5"}
	tests := []struct {
		name    string
		method  string
		family  int
		want    string // prefix
		iface   string
		wantErr string
	}{
		// first-found: the reverse walk meets eth9 (no address), vxlan.tortie (excluded), then ens5.
		// A forward walk would have answered eth0.
		{name: "first-found v4", method: "first-found", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "first-found v6 skips link-local", method: "first-found", family: 6, want: "2001:db8:5::7/64", iface: "ens5"},
		{name: "interface exact", method: "interface=eth0", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "interface regex, reverse order", method: "interface=eth.*", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "interface regex v6", method: "interface=eth[01]", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "interface list OR-ed", method: "interface=eth0,docker.*", family: 4, want: "172.17.0.1/16", iface: "docker0"},
		{name: "interface no default exclusions", method: "interface=cali.*", family: 4, want: "10.244.0.1/32", iface: "cali123"},
		{name: "interface without address", method: "interface=eth9", family: 4, wantErr: "global-unicast"},
		{name: "skip-interface", method: "skip-interface=ens.*", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "skip-interface list v6", method: "skip-interface=ens5,eth1", family: 6, want: "2001:db8::5/64", iface: "eth0"},
		{name: "cidr", method: "cidr=10.0.0.0/16", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "cidr ignores exclusions", method: "cidr=10.0.0.0/8", family: 4, want: "10.244.1.0/32", iface: "vxlan.tortie"},
		{name: "cidr v6", method: "cidr=2001:db8:1::/48", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "cidr v6 ULA on a bridge", method: "cidr=fd00::/8", family: 6, want: "fd00:dead::1/64", iface: "docker0"},
		{name: "can-reach via gateway", method: "can-reach=192.0.2.7", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "can-reach other gateway", method: "can-reach=198.51.100.1", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "can-reach on-link", method: "can-reach=192.168.1.99", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "can-reach v6 specific route", method: "can-reach=2001:db8:99::1", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "can-reach v6 default route", method: "can-reach=2001:db8:ffff::1", family: 6, want: "2001:db8:5::7/64", iface: "ens5"},
		{name: "can-reach hostname from /etc/hosts", method: "can-reach=localhost", family: 4, want: "127.0.0.1/8", iface: "lo"},
		{name: "can-reach unreachable", method: "can-reach=203.0.113.1", family: 4, wantErr: "unreachable"},
		{name: "kubernetes-internal-ip v4", method: "kubernetes-internal-ip", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "kubernetes-internal-ip v6", method: "kubernetes-internal-ip", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := autodetect.ParseMethod(tt.method)
			if err != nil {
				t.Fatal(err)
			}
			got, err := inNS(t, node, func() (autodetect.Detection, error) {
				return autodetect.DetectInterface(t.Context(), m, tt.family, autodetect.SystemInterfaces{}, k8s)
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect(%s, IPv%d) = %v, %v; want an error containing %q", tt.method, tt.family, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				if strings.Contains(tt.method, "localhost") {
					t.Skipf("localhost does not resolve here: %v", err)
				}
				t.Fatalf("Detect(%s, IPv%d): %v", tt.method, tt.family, err)
			}
			if diff := cmp.Diff(tt.want+" on "+tt.iface, got.Prefix.String()+" on "+got.Interface); diff != "" {
				t.Errorf("Detect(%s, IPv%d) (-want +got):\n%s", tt.method, tt.family, diff)
			}
		})
	}
}

func TestResolveNodeIPInNamespace(t *testing.T) {
	node := buildNode(t)
	tests := []struct {
		name     string
		env      map[string]string
		existing string
		family   int
		want     string
		source   autodetect.Source
	}{
		{"IP unset autodetects", nil, "", 4, "10.1.0.7/16", autodetect.SourceAutodetected},
		{"IP unset keeps stored", nil, "10.0.0.5/24", 4, "10.0.0.5/24", autodetect.SourceExisting},
		{"IP explicit gets the kernel's prefix", map[string]string{"IP": "192.168.1.10"}, "", 4, "192.168.1.10/24", autodetect.SourceEnv},
		{"IP6 autodetect with can-reach", map[string]string{"IP6": "autodetect", "IP6_AUTODETECTION_METHOD": "can-reach=2001:db8:99::1"}, "", 6, "2001:db8:1::10/64", autodetect.SourceAutodetected},
		{"IP6 unset is not detected", nil, "", 6, "invalid Prefix", autodetect.SourceNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var existing netip.Prefix
			if tt.existing != "" {
				existing = netip.MustParsePrefix(tt.existing)
			}
			env := func(k string) string { return tt.env[k] }
			got, err := inNS(t, node, func() (autodetect.NodeIP, error) {
				return autodetect.ResolveNodeIP(t.Context(), env, existing, tt.family, nil, nil)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Prefix.String() != tt.want || got.Source != tt.source || got.Warning != "" {
				t.Errorf("ResolveNodeIP = %s (%s, warning %q); want %s (%s)", got.Prefix, got.Source, got.Warning, tt.want, tt.source)
			}
		})
	}
}

func TestMTUInNamespace(t *testing.T) {
	node := buildNode(t)
	ifaces, err := inNS(t, node, autodetect.SystemInterfaces{}.List)
	if err != nil {
		t.Fatal(err)
	}
	// Matching the default pattern: eth0 1500, eth1 9000, ens5 1450, eth9 1280 (no carrier: skipped).
	// Not matching: lo, docker0, cali123, vxlan.tortie.
	tests := []struct {
		name    string
		pattern string
		encap   mtu.Encap
		want    mtu.Result
	}{
		{name: "no encapsulation", encap: mtu.Encap{},
			want: mtu.Result{Host: 1450, HostDetected: true, IPIP: 1430, VXLAN: 1400, VXLANV6: 1380, WireGuard: 1390, WireGuardV6: 1370, Pod: 1450}},
		{name: "VXLAN", encap: mtu.Encap{VXLAN: true},
			want: mtu.Result{Host: 1450, HostDetected: true, IPIP: 1430, VXLAN: 1400, VXLANV6: 1380, WireGuard: 1390, WireGuardV6: 1370, Pod: 1400}},
		{name: "IPIP + WireGuard v6", encap: mtu.Encap{IPIP: true, WireGuardV6: true},
			want: mtu.Result{Host: 1450, HostDetected: true, IPIP: 1430, VXLAN: 1400, VXLANV6: 1380, WireGuard: 1390, WireGuardV6: 1370, Pod: 1370}},
		{name: "configured VXLAN MTU", encap: mtu.Encap{VXLAN: true, VXLANMTU: 1350},
			want: mtu.Result{Host: 1450, HostDetected: true, IPIP: 1430, VXLAN: 1350, VXLANV6: 1380, WireGuard: 1390, WireGuardV6: 1370, Pod: 1350}},
		{name: "pattern picks the jumbo link", pattern: "^eth1$", encap: mtu.Encap{VXLAN: true},
			want: mtu.Result{Host: 9000, HostDetected: true, IPIP: 8980, VXLAN: 8950, VXLANV6: 8930, WireGuard: 8940, WireGuardV6: 8920, Pod: 8950}},
		{name: "pattern matching only a link without carrier falls back", pattern: "^eth9$", encap: mtu.Encap{IPIP: true},
			want: mtu.Result{Host: 1460, IPIP: 1440, VXLAN: 1410, VXLANV6: 1390, WireGuard: 1400, WireGuardV6: 1380, Pod: 1440}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *regexp.Regexp
			if tt.pattern != "" {
				p = regexp.MustCompile(tt.pattern)
			}
			got := mtu.Calculate(ifaces, p, tt.encap)
			got.Warning = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Calculate (-want +got):\n%s", diff)
			}
			if d := mtu.Detect(ifaces, p, tt.encap); d != tt.want.Pod {
				t.Errorf("Detect = %d, want %d", d, tt.want.Pod)
			}
		})
	}

	// The file the CNI reads.
	path := t.TempDir() + "/calico/mtu"
	if err := mtu.WriteMTUFile(path, mtu.Detect(ifaces, nil, mtu.Encap{VXLAN: true})); err != nil {
		t.Fatal(err)
	}
	if got, err := mtu.ReadMTUFile(path); err != nil || got != 1400 {
		t.Errorf("MTU file holds %d, %v; want 1400", got, err)
	}
}
