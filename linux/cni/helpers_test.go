//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/cnitest"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Test topology: a "node" namespace plays the host. It has lo and an uplink
// veth pair (uplink0 <-> uplink1, both in the node) carrying the node's
// addresses and default routes, as a real node's NIC would: proxy ARP only
// answers for destinations routed out of a different interface, so a node
// without a default route would not answer the pod's ARP for 169.254.1.1.
// Pods are separate namespaces. Setup runs inside the node via ns.Do.

var (
	nodeIPv4 = netip.MustParseAddr("10.255.0.1")
	nodeIPv6 = netip.MustParseAddr("fd00:ff::1")
	// nodeBaseLinks are the node's links before any pod exists.
	nodeBaseLinks = []string{"lo", "uplink0", "uplink1"}
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces and veths")
	}
}

// doIn runs f on a thread in n.
func doIn(t testing.TB, n ns.NetNS, f func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatalf("in netns %s: %v", n.Path(), err)
	}
}

func newNode(t testing.TB) ns.NetNS {
	t.Helper()
	n := cnitest.NewNS(t)
	h := cnitest.Handle(t, n)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("node setup: %s: %v", what, err)
		}
	}
	lo, err := h.LinkByName("lo")
	must("lo", err)
	must("lo up", h.LinkSetUp(lo))
	la := netlink.NewLinkAttrs()
	la.Name = "uplink0"
	must("uplink veth", h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "uplink1", PeerTxQLen: -1}))
	for _, name := range []string{"uplink1", "uplink0"} {
		l, err := h.LinkByName(name)
		must(name, err)
		must(name+" up", h.LinkSetUp(l))
	}
	up0, err := h.LinkByName("uplink0")
	must("uplink0", err)
	must("node IPv4", h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(nodeIPv4, 24))}))
	must("node IPv6", h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(nodeIPv6, 64)), Flags: unix.IFA_F_NODAD}))
	must("node default v4", h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Scope: netlink.SCOPE_LINK}))
	must("node default v6", h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("::/0"))}))
	// What the node agent does at startup: IPv6 forwarding is only
	// switchable globally (IPv4's per-interface forwarding=1 from Setup is
	// enough on its own).
	doIn(t, n, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0)
	})
	return n
}

// setupIn runs Setup with the calling thread in node.
func setupIn(t testing.TB, node ns.NetNS, req cnicore.InterfaceRequest) (*cnicore.InterfaceResult, error) {
	t.Helper()
	var res *cnicore.InterfaceResult
	var err error
	doIn(t, node, func() error {
		res, err = (&PodNetwork{}).Setup(context.Background(), req)
		return nil
	})
	return res, err
}

func mustSetup(t testing.TB, node ns.NetNS, req cnicore.InterfaceRequest) *cnicore.InterfaceResult {
	t.Helper()
	res, err := setupIn(t, node, req)
	if err != nil {
		t.Fatalf("Setup(%+v): %v", req, err)
	}
	return res
}

func teardownIn(t testing.TB, node ns.NetNS, netnsPath, contIf, hostIf string) error {
	t.Helper()
	var err error
	doIn(t, node, func() error {
		err = (&PodNetwork{}).Teardown(context.Background(), netnsPath, contIf, hostIf)
		return nil
	})
	return err
}

func checkIn(t testing.TB, node ns.NetNS, req cnicore.InterfaceRequest) error {
	t.Helper()
	var err error
	doIn(t, node, func() error {
		err = (&PodNetwork{}).Check(context.Background(), req)
		return nil
	})
	return err
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// linkState is what the tests compare about one interface.
type linkState struct {
	Type   string
	MAC    string
	MTU    int
	Up     bool
	Oper   string   // operational state
	Addrs  []string // without link-local ones
	Routes []string // main table, without the kernel's own (proto kernel)
}

// snapshot describes the link name in n, or returns nil if there is none.
func snapshot(t testing.TB, n ns.NetNS, name string) *linkState {
	t.Helper()
	h := cnitest.Handle(t, n)
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		t.Fatalf("looking up %s in %s: %v", name, n.Path(), err)
	}
	a := l.Attrs()
	s := &linkState{Type: l.Type(), MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Oper: a.OperState.String()}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("listing addresses of %s: %v", name, err)
	}
	for _, ad := range addrs {
		if !ad.IP.IsLinkLocalUnicast() {
			s.Addrs = append(s.Addrs, ad.IPNet.String())
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: a.Index}, netlink.RT_FILTER_OIF)
	if err != nil {
		t.Fatalf("listing routes via %s: %v", name, err)
	}
	for _, r := range routes {
		if r.Protocol != unix.RTPROT_KERNEL {
			s.Routes = append(s.Routes, renderRoute(r))
		}
	}
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

// renderRoute writes r like `ip route` does, independently of the code under
// test.
func renderRoute(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		if ones, _ := r.Dst.Mask.Size(); ones != 0 {
			dst = r.Dst.String()
		}
	}
	s := dst
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if r.Scope == netlink.SCOPE_LINK {
		s += " scope link"
	}
	return s + fmt.Sprintf(" proto %d", int(r.Protocol))
}

// ownedRoutes lists the routes in n that carry RouteProtocol.
func ownedRoutes(t testing.TB, n ns.NetNS) []string {
	t.Helper()
	routes, err := cnitest.Handle(t, n).RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatalf("listing routes in %s: %v", n.Path(), err)
	}
	var out []string
	for _, r := range routes {
		out = append(out, renderRoute(r))
	}
	return out
}

// readSysctls reads the given /proc/sys paths inside n.
func readSysctls(t testing.TB, n ns.NetNS, paths ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	doIn(t, n, func() error {
		for _, p := range paths {
			b, err := os.ReadFile(filepath.Join("/proc/sys", p))
			if err != nil {
				return err
			}
			out[p] = strings.TrimSpace(string(b))
		}
		return nil
	})
	return out
}

// addVethIn creates a veth pair a <-> b, both in n (a stand-in for stale or
// foreign interfaces).
func addVethIn(t testing.TB, n ns.NetNS, a, b string) {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = a
	if err := cnitest.Handle(t, n).LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: b, PeerTxQLen: -1}); err != nil {
		t.Fatalf("creating veth %s <-> %s in %s: %v", a, b, n.Path(), err)
	}
}

// addBridgeIn creates a bridge called name in n: an interface that is not a
// veth, so not ours.
func addBridgeIn(t testing.TB, n ns.NetNS, name string) {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := cnitest.Handle(t, n).LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		t.Fatalf("creating bridge %s in %s: %v", name, n.Path(), err)
	}
}

// eventually polls cond every 50 ms for up to 5 s: only for what the kernel
// does asynchronously (carrier, namespace destruction).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
