//go:build linux

package netlinkx

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func isENODEV(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.Is(err, unix.ENODEV) || errors.As(err, &nf)
}

// Kernel is a Handle on the real kernel through github.com/vishvananda/netlink.
type Kernel struct {
	h  *netlink.Handle
	ns netns.NsHandle // the namespace's fd, or netns.None() for the opening thread's
}

var _ Handle = (*Kernel)(nil)

// Open returns a Handle on the namespace bind-mounted at path, or on the calling thread's namespace
// when path is empty. The socket stays in that namespace whatever thread later uses it. timeout bounds
// each request (0: none).
func Open(path string, timeout time.Duration) (*Kernel, error) {
	nsh := netns.None()
	if path != "" {
		var err error
		if nsh, err = netns.GetFromPath(path); err != nil {
			return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
		}
	}
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		closeNS(nsh)
		return nil, fmt.Errorf("opening a netlink socket in %s: %w", where(path), err)
	}
	if timeout > 0 {
		if err := h.SetSocketTimeout(timeout); err != nil {
			h.Close()
			closeNS(nsh)
			return nil, fmt.Errorf("setting the netlink socket timeout in %s: %w", where(path), err)
		}
	}
	return &Kernel{h: h, ns: nsh}, nil
}

func where(path string) string {
	if path == "" {
		return "the current network namespace"
	}
	return "network namespace " + path
}

func closeNS(n netns.NsHandle) {
	if n.IsOpen() {
		_ = n.Close()
	}
}

// Netlink returns the underlying handle, for the few calls outside Handle.
func (k *Kernel) Netlink() *netlink.Handle { return k.h }

// Close closes the socket and the namespace.
func (k *Kernel) Close() error {
	k.h.Close()
	closeNS(k.ns)
	return nil
}

func linkOf(l netlink.Link) Link {
	a := l.Attrs()
	out := Link{Index: a.Index, Name: a.Name, Kind: l.Type(), MTU: a.MTU, HardwareAddr: a.HardwareAddr,
		Up: a.Flags&net.FlagUp != 0, OperUp: a.OperState == netlink.OperUp, PeerNetNSID: -1}
	switch v := l.(type) {
	case *netlink.Veth:
		out.PeerIndex, out.PeerNetNSID = a.ParentIndex, a.NetNsID
	case *netlink.Vxlan:
		x := &VXLAN{VNI: v.VxlanId, Port: v.Port, ParentIndex: v.VtepDevIndex, Learning: v.Learning}
		if ip, ok := netip.AddrFromSlice(v.SrcAddr); ok {
			x.Local = ip.Unmap()
		}
		out.VXLAN = x
	}
	return out
}

func (k *Kernel) LinkByName(name string) (Link, error) {
	l, err := Dump(func() (netlink.Link, error) { return k.h.LinkByName(name) })
	if err != nil {
		if isENODEV(err) {
			return Link{}, fmt.Errorf("link %s: %w", name, ErrLinkNotFound)
		}
		return Link{}, fmt.Errorf("looking up link %s: %w", name, err)
	}
	return linkOf(l), nil
}

func (k *Kernel) LinkByIndex(index int) (Link, error) {
	l, err := k.h.LinkByIndex(index)
	if err != nil {
		if isENODEV(err) {
			return Link{}, fmt.Errorf("link %d: %w", index, ErrLinkNotFound)
		}
		return Link{}, fmt.Errorf("looking up link %d: %w", index, err)
	}
	return linkOf(l), nil
}

func (k *Kernel) LinkList() ([]Link, error) {
	ls, err := Dump(k.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, linkOf(l))
	}
	return out, nil
}

func (k *Kernel) LinkAdd(nl NewLink) (Link, error) {
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.HardwareAddr = nl.Name, nl.MTU, nl.HardwareAddr
	var l netlink.Link
	switch nl.Kind {
	case "dummy":
		l = &netlink.Dummy{LinkAttrs: la}
	case "veth":
		v := &netlink.Veth{LinkAttrs: la, PeerName: nl.PeerName, PeerHardwareAddr: nl.PeerHardwareAddr, PeerTxQLen: -1}
		if nl.PeerNS != nil {
			peer, ok := nl.PeerNS.(*Kernel)
			if !ok || !peer.ns.IsOpen() {
				return Link{}, fmt.Errorf("creating veth %s: the peer namespace must be a Kernel handle opened by path", nl.Name)
			}
			v.PeerNamespace = netlink.NsFd(int(peer.ns))
		}
		l = v
	case "vxlan":
		if nl.VXLAN == nil {
			return Link{}, fmt.Errorf("creating vxlan %s: no VXLAN settings", nl.Name)
		}
		x := &netlink.Vxlan{LinkAttrs: la, VxlanId: nl.VXLAN.VNI, Port: nl.VXLAN.Port, VtepDevIndex: nl.VXLAN.ParentIndex,
			Learning: nl.VXLAN.Learning}
		if nl.VXLAN.Local.IsValid() {
			x.SrcAddr = nl.VXLAN.Local.AsSlice()
		}
		l = x
	case "ipip":
		// "tunl0" is the ipip module's fallback device: it exists as soon as the module is loaded, so
		// creating it gives EEXIST there; another name makes a second ipip device.
		l = &netlink.Iptun{LinkAttrs: la}
	default:
		return Link{}, fmt.Errorf("creating link %s: kind %q is not supported (dummy, veth, vxlan, ipip)", nl.Name, nl.Kind)
	}
	if err := k.h.LinkAdd(l); err != nil {
		return Link{}, fmt.Errorf("creating %s %s: %w", nl.Kind, nl.Name, err)
	}
	got, err := k.LinkByName(nl.Name)
	if err != nil {
		return Link{Name: nl.Name}, fmt.Errorf("reading back new %s %s: %w", nl.Kind, nl.Name, err)
	}
	return got, nil
}

// byIndex is the minimal netlink.Link the library needs to address a link by index.
func byIndex(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func (k *Kernel) LinkDel(index int) error {
	if err := k.h.LinkDel(byIndex(index)); err != nil {
		return fmt.Errorf("deleting link %d: %w", index, err)
	}
	return nil
}

func (k *Kernel) LinkSetUp(index int) error {
	if err := k.h.LinkSetUp(byIndex(index)); err != nil {
		return fmt.Errorf("bringing up link %d: %w", index, err)
	}
	return nil
}

func (k *Kernel) LinkSetDown(index int) error {
	if err := k.h.LinkSetDown(byIndex(index)); err != nil {
		return fmt.Errorf("taking down link %d: %w", index, err)
	}
	return nil
}

func (k *Kernel) LinkSetMTU(index, mtu int) error {
	if err := k.h.LinkSetMTU(byIndex(index), mtu); err != nil {
		return fmt.Errorf("setting MTU %d on link %d: %w", mtu, index, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func (k *Kernel) AddrList(index int) ([]Addr, error) {
	var link netlink.Link
	if index != 0 {
		link = byIndex(index)
	}
	list, err := Dump(func() ([]netlink.Addr, error) { return k.h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing addresses of link %d: %w", index, err)
	}
	out := make([]Addr, 0, len(list))
	for _, a := range list {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, Addr{LinkIndex: a.LinkIndex, Prefix: p, NoDAD: a.Flags&unix.IFA_F_NODAD != 0})
		}
	}
	return out, nil
}

func nlAddr(a Addr) *netlink.Addr {
	na := &netlink.Addr{IPNet: ipNet(a.Prefix)}
	if a.NoDAD {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

func (k *Kernel) AddrAdd(a Addr) error {
	if err := k.h.AddrAdd(byIndex(a.LinkIndex), nlAddr(a)); err != nil {
		return fmt.Errorf("adding address %s to link %d: %w", a.Prefix, a.LinkIndex, err)
	}
	return nil
}

func (k *Kernel) AddrDel(a Addr) error {
	if err := k.h.AddrDel(byIndex(a.LinkIndex), nlAddr(a)); err != nil {
		return fmt.Errorf("deleting address %s from link %d: %w", a.Prefix, a.LinkIndex, err)
	}
	return nil
}

func routeOf(r netlink.Route) (Route, bool) {
	out := Route{Table: r.Table, LinkIndex: r.LinkIndex, Scope: int(r.Scope), Protocol: int(r.Protocol), Type: r.Type,
		OnLink: r.Flags&unix.RTNH_F_ONLINK != 0}
	if p, ok := prefixOf(r.Dst); ok {
		out.Dst = p
	} else if r.Family == netlink.FAMILY_V6 {
		out.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	} else if r.Family == netlink.FAMILY_V4 {
		out.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	} else {
		return Route{}, false
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		out.Gw = a.Unmap()
	}
	return out, true
}

func nlRoute(r Route) *netlink.Route {
	out := &netlink.Route{Table: r.Table, LinkIndex: r.LinkIndex, Scope: netlink.Scope(r.Scope),
		Protocol: netlink.RouteProtocol(r.Protocol), Type: r.Type}
	if out.Table == 0 {
		out.Table = TableMain
	}
	if out.Type == 0 {
		out.Type = RouteUnicast
	}
	if r.Dst.IsValid() {
		out.Dst = ipNet(r.Dst)
		out.Family = nl.GetIPFamily(r.Dst.Addr().AsSlice())
	}
	if r.Gw.IsValid() {
		out.Gw = r.Gw.AsSlice()
	}
	if r.OnLink {
		out.Flags = int(netlink.FLAG_ONLINK)
	}
	return out
}

func (k *Kernel) RouteList(table int) ([]Route, error) {
	if table == 0 {
		table = TableMain
	}
	list, err := Dump(func() ([]netlink.Route, error) {
		return k.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing routes of table %d: %w", table, err)
	}
	out := make([]Route, 0, len(list))
	for _, r := range list {
		if rr, ok := routeOf(r); ok {
			out = append(out, rr)
		}
	}
	return out, nil
}

func (k *Kernel) RouteAdd(r Route) error {
	if err := k.h.RouteAdd(nlRoute(r)); err != nil {
		return fmt.Errorf("adding route %s: %w", r, err)
	}
	return nil
}

func (k *Kernel) RouteReplace(r Route) error {
	if err := k.h.RouteReplace(nlRoute(r)); err != nil {
		return fmt.Errorf("replacing route %s: %w", r, err)
	}
	return nil
}

func (k *Kernel) RouteDel(r Route) error {
	nr := nlRoute(r)
	if r.Type == 0 {
		nr.Type = 0 // match any type
	}
	if r.Scope == 0 {
		nr.Scope = netlink.SCOPE_NOWHERE // match any scope, as `ip route del` does
	}
	if err := k.h.RouteDel(nr); err != nil {
		return fmt.Errorf("deleting route %s: %w", r, err)
	}
	return nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func (k *Kernel) NeighList(index int) ([]Neigh, error) {
	var out []Neigh
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := Dump(func() ([]netlink.Neigh, error) { return k.h.NeighList(index, fam) })
		if err != nil {
			return nil, fmt.Errorf("listing neighbours of link %d: %w", index, err)
		}
		for _, n := range list {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || n.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			out = append(out, Neigh{LinkIndex: n.LinkIndex, IP: ip.Unmap(), MAC: n.HardwareAddr})
		}
	}
	return out, nil
}

func (k *Kernel) NeighSet(n Neigh) error {
	err := k.h.NeighSet(&netlink.Neigh{LinkIndex: n.LinkIndex, Family: family(n.IP), State: netlink.NUD_PERMANENT,
		Type: unix.RTN_UNICAST, IP: n.IP.AsSlice(), HardwareAddr: n.MAC})
	if err != nil {
		return fmt.Errorf("setting neighbour %s %s on link %d: %w", n.IP, n.MAC, n.LinkIndex, err)
	}
	return nil
}

func (k *Kernel) NeighDel(n Neigh) error {
	if err := k.h.NeighDel(&netlink.Neigh{LinkIndex: n.LinkIndex, Family: family(n.IP), IP: n.IP.AsSlice()}); err != nil {
		return fmt.Errorf("deleting neighbour %s on link %d: %w", n.IP, n.LinkIndex, err)
	}
	return nil
}

func (k *Kernel) FDBList(index int) ([]FDB, error) {
	list, err := Dump(func() ([]netlink.Neigh, error) { return k.h.NeighList(index, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("listing FDB entries of link %d: %w", index, err)
	}
	var out []FDB
	for _, n := range list {
		if n.State&netlink.NUD_PERMANENT == 0 || n.Flags&netlink.NTF_SELF == 0 {
			continue
		}
		f := FDB{LinkIndex: n.LinkIndex, MAC: n.HardwareAddr}
		if ip, ok := netip.AddrFromSlice(n.IP); ok {
			f.Dst = ip.Unmap()
		}
		out = append(out, f)
	}
	return out, nil
}

func fdbNeigh(f FDB) *netlink.Neigh {
	n := &netlink.Neigh{LinkIndex: f.LinkIndex, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, HardwareAddr: f.MAC}
	if f.Dst.IsValid() {
		n.IP = f.Dst.AsSlice()
	}
	return n
}

func (k *Kernel) FDBSet(f FDB) error {
	if err := k.h.NeighSet(fdbNeigh(f)); err != nil {
		return fmt.Errorf("setting FDB entry %s dst %s on link %d: %w", f.MAC, f.Dst, f.LinkIndex, err)
	}
	return nil
}

func (k *Kernel) FDBDel(f FDB) error {
	if err := k.h.NeighDel(fdbNeigh(f)); err != nil {
		return fmt.Errorf("deleting FDB entry %s on link %d: %w", f.MAC, f.LinkIndex, err)
	}
	return nil
}

func (k *Kernel) NetNSID(other Handle) int {
	o, ok := other.(*Kernel)
	if !ok || !o.ns.IsOpen() {
		return -1
	}
	id, err := k.h.GetNetNsIdByFd(int(o.ns))
	if err != nil {
		return -1
	}
	return id
}

// String renders r roughly as `ip route` does, for errors.
func (r Route) String() string {
	s := r.Dst.String()
	if r.Type == RouteBlackhole {
		s = "blackhole " + s
	}
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex != 0 {
		s += fmt.Sprintf(" dev #%d", r.LinkIndex)
	}
	if r.OnLink {
		s += " onlink"
	}
	if r.Protocol != 0 {
		s += fmt.Sprintf(" proto %d", r.Protocol)
	}
	return s
}

// OpenFd returns a Handle on the network namespace open as fd (a duplicate is kept, so the caller
// may close fd). timeout bounds each request (0: none).
func OpenFd(fd int, timeout time.Duration) (*Kernel, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating network namespace fd %d: %w", fd, err)
	}
	nsh := netns.NsHandle(dup)
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		closeNS(nsh)
		return nil, fmt.Errorf("opening a netlink socket in network namespace fd %d: %w", fd, err)
	}
	if timeout > 0 {
		if err := h.SetSocketTimeout(timeout); err != nil {
			h.Close()
			closeNS(nsh)
			return nil, fmt.Errorf("setting the netlink socket timeout: %w", err)
		}
	}
	return &Kernel{h: h, ns: nsh}, nil
}
