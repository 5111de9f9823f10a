//go:build linux

package netlinkx_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// env is what one conformance step acts on: two namespaces, a ("node") and b ("pod").
type env struct{ a, b netlinkx.Handle }

func idx(h netlinkx.Handle, name string) int {
	l, err := h.LinkByName(name)
	if err != nil {
		return -1 // a missing link: the operation then fails as the kernel would on a bad index
	}
	return l.Index
}

var (
	macA = net.HardwareAddr{0x66, 0x00, 0x00, 0x00, 0x00, 0x01}
	macB = net.HardwareAddr{0x66, 0x00, 0x00, 0x00, 0x00, 0x02}
	pfx  = netip.MustParsePrefix
	ip   = netip.MustParseAddr
)

const proto = 116

// conformanceSteps is the table both the kernel and the fake run, in order; each step's error and the
// state afterwards must agree.
var conformanceSteps = []struct {
	name string
	op   func(e env) error
}{
	// A veth pair inside one namespace stands in for an uplink (this kernel has no dummy driver).
	{"add veth d0/d0p", func(e env) error {
		_, err := e.a.LinkAdd(netlinkx.NewLink{Name: "d0", Kind: "veth", MTU: 1500, HardwareAddr: macA, PeerName: "d0p"})
		return err
	}},
	{"add d0 again: EEXIST", func(e env) error {
		_, err := e.a.LinkAdd(netlinkx.NewLink{Name: "d0", Kind: "veth", PeerName: "d0q"})
		return err
	}},
	{"route via a down device: ENETDOWN", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.1.0.0/24"), LinkIndex: idx(e.a, "d0"), Scope: netlinkx.ScopeLink, Protocol: proto})
	}},
	{"address on a down link: no connected route yet", func(e env) error {
		return e.a.AddrAdd(netlinkx.Addr{LinkIndex: idx(e.a, "d0"), Prefix: pfx("192.168.5.1/24")})
	}},
	{"set d0 up: connected route appears", func(e env) error { return e.a.LinkSetUp(idx(e.a, "d0")) }},
	{"same address again: EEXIST", func(e env) error {
		return e.a.AddrAdd(netlinkx.Addr{LinkIndex: idx(e.a, "d0"), Prefix: pfx("192.168.5.1/24")})
	}},
	{"route via a reachable gateway: device filled in", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.1.0.0/24"), Gw: ip("192.168.5.9"), Protocol: proto})
	}},
	{"route via an unreachable gateway: ENETUNREACH", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.2.0.0/24"), Gw: ip("172.16.0.1"), Protocol: proto})
	}},
	{"onlink gateway", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.2.0.0/24"), Gw: ip("172.16.0.1"), LinkIndex: idx(e.a, "d0"), OnLink: true, Protocol: proto})
	}},
	{"add an existing destination: EEXIST", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.1.0.0/24"), LinkIndex: idx(e.a, "d0"), Scope: netlinkx.ScopeLink, Protocol: proto})
	}},
	{"replace it", func(e env) error {
		return e.a.RouteReplace(netlinkx.Route{Dst: pfx("10.1.0.0/24"), LinkIndex: idx(e.a, "d0"), Scope: netlinkx.ScopeLink, Protocol: proto})
	}},
	{"replace a new destination adds it", func(e env) error {
		return e.a.RouteReplace(netlinkx.Route{Dst: pfx("10.4.0.0/24"), LinkIndex: idx(e.a, "d0"), Scope: netlinkx.ScopeLink, Protocol: 3})
	}},
	{"blackhole", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.3.0.0/26"), Type: netlinkx.RouteBlackhole, Protocol: proto})
	}},
	{"delete a missing route: ESRCH", func(e env) error {
		return e.a.RouteDel(netlinkx.Route{Dst: pfx("10.9.0.0/24")})
	}},
	{"delete with the wrong protocol: ESRCH", func(e env) error {
		return e.a.RouteDel(netlinkx.Route{Dst: pfx("10.4.0.0/24"), Protocol: proto})
	}},
	{"delete with the right protocol", func(e env) error {
		return e.a.RouteDel(netlinkx.Route{Dst: pfx("10.4.0.0/24"), Protocol: 3})
	}},
	{"set d0 down: its IPv4 routes go, the blackhole stays", func(e env) error { return e.a.LinkSetDown(idx(e.a, "d0")) }},
	{"set d0 up again: only the connected route returns", func(e env) error { return e.a.LinkSetUp(idx(e.a, "d0")) }},
	{"gateway route again", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.1.0.0/24"), Gw: ip("192.168.5.9"), Protocol: proto})
	}},
	{"veth across namespaces", func(e env) error {
		_, err := e.a.LinkAdd(netlinkx.NewLink{Name: "v0", Kind: "veth", MTU: 1450, HardwareAddr: macB, PeerName: "eth0", PeerNS: e.b})
		return err
	}},
	{"peer name taken in the peer namespace: EEXIST", func(e env) error {
		_, err := e.a.LinkAdd(netlinkx.NewLink{Name: "v1", Kind: "veth", PeerName: "eth0", PeerNS: e.b})
		return err
	}},
	{"v0 up, eth0 up", func(e env) error {
		return errors.Join(e.a.LinkSetUp(idx(e.a, "v0")), e.b.LinkSetUp(idx(e.b, "eth0")))
	}},
	{"pod address and routes", func(e env) error {
		eth0 := idx(e.b, "eth0")
		return errors.Join(
			e.b.AddrAdd(netlinkx.Addr{LinkIndex: eth0, Prefix: pfx("10.65.0.7/32")}),
			e.b.RouteAdd(netlinkx.Route{Dst: pfx("169.254.1.1/32"), LinkIndex: eth0, Scope: netlinkx.ScopeLink}),
			e.b.RouteAdd(netlinkx.Route{Dst: pfx("0.0.0.0/0"), Gw: ip("169.254.1.1")}),
		)
	}},
	{"IPv6 default route via a link-local gateway on a device", func(e env) error {
		return e.b.RouteAdd(netlinkx.Route{Dst: pfx("::/0"), Gw: ip("fe80::ecee:eeff:feee:eeee"), LinkIndex: idx(e.b, "eth0")})
	}},
	{"IPv6 route via a global gateway with no route to it: EHOSTUNREACH", func(e env) error {
		return e.b.RouteAdd(netlinkx.Route{Dst: pfx("fd00:1::/64"), Gw: ip("fd00:2::1"), LinkIndex: idx(e.b, "eth0")})
	}},
	{"host route to the pod", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.65.0.7/32"), LinkIndex: idx(e.a, "v0"), Scope: netlinkx.ScopeLink, Protocol: proto})
	}},
	{"vxlan device", func(e env) error {
		_, err := e.a.LinkAdd(netlinkx.NewLink{Name: "vx0", Kind: "vxlan", MTU: 1450, HardwareAddr: macA,
			VXLAN: &netlinkx.VXLAN{VNI: 4096, Port: 4789, Local: ip("192.168.5.1")}})
		return err
	}},
	{"vxlan up, neighbour, FDB, route onlink via the tunnel address", func(e env) error {
		vx := idx(e.a, "vx0")
		return errors.Join(
			e.a.LinkSetUp(vx),
			e.a.NeighSet(netlinkx.Neigh{LinkIndex: vx, IP: ip("10.244.1.0"), MAC: macB}),
			e.a.FDBSet(netlinkx.FDB{LinkIndex: vx, MAC: macB, Dst: ip("192.168.5.20")}),
			e.a.RouteAdd(netlinkx.Route{Dst: pfx("10.244.1.0/26"), Gw: ip("10.244.1.0"), LinkIndex: vx, OnLink: true, Protocol: proto}),
		)
	}},
	{"IPv6 blackhole", func(e env) error {
		return e.a.RouteAdd(netlinkx.Route{Dst: pfx("fd70::/122"), Type: netlinkx.RouteBlackhole, Protocol: proto})
	}},
	{"IPv6 routes on the vxlan device: onlink via a tunnel address, and to the address itself", func(e env) error {
		vx := idx(e.a, "vx0")
		return errors.Join(
			e.a.RouteAdd(netlinkx.Route{Dst: pfx("fd70::40/122"), Gw: ip("fd70::40"), LinkIndex: vx, OnLink: true, Protocol: proto}),
			e.a.RouteAdd(netlinkx.Route{Dst: pfx("fd70::40/128"), LinkIndex: vx, Scope: netlinkx.ScopeLink, Protocol: proto}),
		)
	}},
	{"neighbour and FDB replaced in place", func(e env) error {
		vx := idx(e.a, "vx0")
		return errors.Join(
			e.a.NeighSet(netlinkx.Neigh{LinkIndex: vx, IP: ip("10.244.1.0"), MAC: macA}),
			e.a.FDBSet(netlinkx.FDB{LinkIndex: vx, MAC: macB, Dst: ip("192.168.5.21")}),
		)
	}},
	{"delete d0: its address and routes go with it", func(e env) error { return e.a.LinkDel(idx(e.a, "d0")) }},
	{"delete the pod end: both veth ends and their routes go", func(e env) error { return e.b.LinkDel(idx(e.b, "eth0")) }},
	{"delete vx0: neighbours, FDB and routes go", func(e env) error { return e.a.LinkDel(idx(e.a, "vx0")) }},
	{"delete it again: ENODEV", func(e env) error { return e.a.LinkDel(1000) }},
	{"look up a missing link: not found", func(e env) error {
		_, err := e.a.LinkByName("nope")
		if netlinkx.IsNotFound(err) {
			return unix.ENODEV
		}
		return err
	}},
}

// errName reduces an error to the errno the kernel gave.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errs []string
	for _, e := range []unix.Errno{unix.EEXIST, unix.ESRCH, unix.ENODEV, unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ENETDOWN, unix.EINVAL, unix.ENOENT, unix.EADDRNOTAVAIL} {
		if errors.Is(err, e) {
			errs = append(errs, unix.ErrnoName(e))
		}
	}
	if len(errs) == 0 {
		return "other: " + err.Error()
	}
	return strings.Join(errs, ",")
}

// state renders what a namespace holds, by names (indexes differ between the kernel and the fake),
// leaving out what the fake does not model: lo, IPv6 autoconfiguration, the local table.
func state(t *testing.T, h netlinkx.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{0: "-"}
	var out []string
	for _, l := range links {
		names[l.Index] = l.Name
	}
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		s := fmt.Sprintf("link %s %s mtu %d up %t", l.Name, l.Kind, l.MTU, l.Up)
		if l.Kind == "veth" {
			s += fmt.Sprintf(" peer-in-other-ns %t", l.PeerNetNSID >= 0)
		}
		if x := l.VXLAN; x != nil {
			s += fmt.Sprintf(" vni %d port %d local %s learning %t", x.VNI, x.Port, x.Local, x.Learning)
		}
		out = append(out, s)
		neighs, err := h.NeighList(l.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			out = append(out, fmt.Sprintf("neigh %s %s dev %s", n.IP, n.MAC, l.Name))
		}
		if l.Kind == "vxlan" {
			fdb, err := h.FDBList(l.Index)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fdb {
				out = append(out, fmt.Sprintf("fdb %s dst %s dev %s", f.MAC, f.Dst, l.Name))
			}
		}
	}
	addrs, err := h.AddrList(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Prefix.Addr().Is6() || names[a.LinkIndex] == "lo" {
			continue
		}
		out = append(out, fmt.Sprintf("addr %s dev %s", a.Prefix, names[a.LinkIndex]))
	}
	routes, err := h.RouteList(netlinkx.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst.Addr().Is6() && (r.Protocol == netlinkx.ProtocolKernel || r.Dst.Addr().IsLinkLocalUnicast()) {
			continue // IPv6 autoconfiguration and connected routes are not modelled
		}
		out = append(out, fmt.Sprintf("route type %d %s via %s dev %s scope %d proto %d onlink %t",
			r.Type, r.Dst, r.Gw, names[r.LinkIndex], r.Scope, r.Protocol, r.OnLink))
	}
	slices.Sort(out)
	return out
}

type outcome struct {
	Err  string
	A, B []string
}

func run(t *testing.T, e env) []outcome {
	t.Helper()
	var out []outcome
	for _, s := range conformanceSteps {
		err := s.op(e)
		out = append(out, outcome{Err: s.name + ": " + errName(err), A: state(t, e.a), B: state(t, e.b)})
	}
	return out
}

// TestFakeConformance runs the same operations on the kernel (two throwaway network namespaces) and
// on the fake, and requires the same errors and the same resulting state after every step.
func TestFakeConformance(t *testing.T) {
	w := netlinkx.NewWorld()
	fake := run(t, env{a: w.Handle("node"), b: w.Handle("pod")})

	if os.Geteuid() != 0 {
		t.Skip("the kernel half needs root (network namespaces); the fake ran")
	}
	nodeNS, podNS := cnitest.NewNS(t), cnitest.NewNS(t)
	a, err := netlinkx.Open(nodeNS.Path(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := netlinkx.Open(podNS.Path(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kernel := run(t, env{a: a, b: b})
	for i := range kernel {
		if diff := cmp.Diff(kernel[i], fake[i]); diff != "" {
			t.Errorf("step %d %q: kernel (-) and fake (+) differ:\n%s", i, conformanceSteps[i].name, diff)
		}
	}
}
