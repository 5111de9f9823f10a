//go:build linux

package routing

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tortie-net/tortie/linux/netlinkx"
)

// counting wraps a Handle and counts the calls that change the host, and the requests of any kind.
type counting struct {
	netlinkx.Handle
	// Atomic: the kernel tests read them while an agent goroutine applies.
	writes, calls atomic.Int64
}

func (c *counting) w()                                         { c.writes.Add(1); c.calls.Add(1) }
func (c *counting) r()                                         { c.calls.Add(1) }
func (c *counting) LinkByName(n string) (netlinkx.Link, error) { c.r(); return c.Handle.LinkByName(n) }
func (c *counting) LinkList() ([]netlinkx.Link, error)         { c.r(); return c.Handle.LinkList() }
func (c *counting) AddrList(i int) ([]netlinkx.Addr, error) {
	c.r()
	return c.Handle.AddrList(i)
}
func (c *counting) RouteList(t int) ([]netlinkx.Route, error) { c.r(); return c.Handle.RouteList(t) }
func (c *counting) NeighList(i int) ([]netlinkx.Neigh, error) { c.r(); return c.Handle.NeighList(i) }
func (c *counting) FDBList(i int) ([]netlinkx.FDB, error)     { c.r(); return c.Handle.FDBList(i) }
func (c *counting) LinkAdd(l netlinkx.NewLink) (netlinkx.Link, error) {
	c.w()
	return c.Handle.LinkAdd(l)
}
func (c *counting) LinkDel(i int) error           { c.w(); return c.Handle.LinkDel(i) }
func (c *counting) LinkSetUp(i int) error         { c.w(); return c.Handle.LinkSetUp(i) }
func (c *counting) LinkSetDown(i int) error       { c.w(); return c.Handle.LinkSetDown(i) }
func (c *counting) LinkSetMTU(i, m int) error     { c.w(); return c.Handle.LinkSetMTU(i, m) }
func (c *counting) AddrAdd(a netlinkx.Addr) error { c.w(); return c.Handle.AddrAdd(a) }
func (c *counting) AddrDel(a netlinkx.Addr) error { c.w(); return c.Handle.AddrDel(a) }
func (c *counting) RouteAdd(r netlinkx.Route) error {
	c.w()
	return c.Handle.RouteAdd(r)
}
func (c *counting) RouteReplace(r netlinkx.Route) error {
	c.w()
	return c.Handle.RouteReplace(r)
}
func (c *counting) RouteDel(r netlinkx.Route) error { c.w(); return c.Handle.RouteDel(r) }
func (c *counting) NeighSet(n netlinkx.Neigh) error { c.w(); return c.Handle.NeighSet(n) }
func (c *counting) NeighDel(n netlinkx.Neigh) error { c.w(); return c.Handle.NeighDel(n) }
func (c *counting) FDBSet(f netlinkx.FDB) error     { c.w(); return c.Handle.FDBSet(f) }
func (c *counting) FDBDel(f netlinkx.FDB) error     { c.w(); return c.Handle.FDBDel(f) }

// hostText renders what tortie manages on a host as sorted lines, by device name: tortie's routes
// (proto 116) and any route to a destination in only, tunnel devices, their addresses, neighbours and
// FDB entries.
func hostText(t testing.TB, h netlinkx.Handle, only ...string) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	name := map[int]string{}
	for _, l := range links {
		name[l.Index] = l.Name
	}
	var out []string
	for _, l := range links {
		if l.Kind != "vxlan" && l.Kind != "ipip" {
			continue
		}
		s := fmt.Sprintf("link %s %s mtu %d up=%v", l.Name, l.Kind, l.MTU, l.Up)
		if l.VXLAN != nil {
			s += fmt.Sprintf(" mac %s vni %d port %d local %s parent %s learning=%v", l.HardwareAddr, l.VXLAN.VNI, l.VXLAN.Port,
				l.VXLAN.Local, name[l.VXLAN.ParentIndex], l.VXLAN.Learning)
		}
		out = append(out, s)
		addrs, err := h.AddrList(l.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if !a.Prefix.Addr().IsLinkLocalUnicast() {
				out = append(out, fmt.Sprintf("addr %s dev %s", a.Prefix, l.Name))
			}
		}
		neighs, err := h.NeighList(l.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			out = append(out, fmt.Sprintf("neigh %s lladdr %s dev %s", n.IP, n.MAC, l.Name))
		}
		if l.Kind == "vxlan" {
			fdbs, err := h.FDBList(l.Index)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fdbs {
				out = append(out, fmt.Sprintf("fdb %s dst %s dev %s", f.MAC, f.Dst, l.Name))
			}
		}
	}
	routes, err := h.RouteList(netlinkx.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Protocol != 116 && !slices.Contains(only, r.Dst.String()) {
			continue
		}
		var b strings.Builder
		if r.Type == netlinkx.RouteBlackhole {
			b.WriteString("blackhole ")
		}
		b.WriteString(r.Dst.String())
		if r.Gw.IsValid() {
			fmt.Fprintf(&b, " via %s", r.Gw)
		}
		if r.LinkIndex != 0 && r.Type != netlinkx.RouteBlackhole {
			fmt.Fprintf(&b, " dev %s", name[r.LinkIndex])
		}
		if r.OnLink {
			b.WriteString(" onlink")
		}
		fmt.Fprintf(&b, " proto %d", r.Protocol)
		out = append(out, "route "+b.String())
	}
	slices.Sort(out)
	return out
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
