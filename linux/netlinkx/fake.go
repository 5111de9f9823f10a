//go:build linux

package netlinkx

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// World is a stateful fake of the kernel's networking for tests without root: network namespaces,
// each with its links, addresses, routes, neighbours and FDB entries, modelling the semantics tortie
// relies on (TestFakeConformance runs the same operations against the kernel and this fake and
// compares the results):
//
//   - every namespace starts with "lo" (index 1, down); new links get the next free index;
//   - a name is unique per namespace (EEXIST); a veth's ends may live in two namespaces, deleting
//     either deletes both, and each end sees its peer's namespace by an id allocated on creation;
//   - an IPv4 address on an up link adds its connected route (proto kernel, scope link); taking the
//     link down removes the IPv4 routes through it, bringing it up restores the connected ones;
//   - a route needs an up output device (IPv4: ENETDOWN), and a gateway needs a scope-link route to it
//     (IPv4 ENETUNREACH, IPv6 EHOSTUNREACH) unless OnLink or an IPv6 link-local address on a given
//     device; the kernel's choice of device for a gateway is filled in;
//   - one route per table and destination: RouteAdd gives EEXIST, RouteReplace replaces; RouteDel
//     matches the fields that are set (ESRCH when none); protocols are kept as given, and an unset one
//     is boot (3), as a plain `ip route add`;
//   - IPv6 routes have no scope (universe whatever was asked), and IPv6 blackholes sit on lo;
//   - deleting a link removes its addresses, routes, neighbours and FDB entries.
//
// Neither IPv6 autoconfiguration (link-local addresses, their routes) nor the local table is modelled.
// A World is safe for concurrent use.
type World struct {
	mu  sync.Mutex
	nss map[string]*fakeNS
}

// NewWorld returns a World with one namespace, the host ("").
func NewWorld() *World { return &World{nss: map[string]*fakeNS{}} }

type fakeLink struct {
	Link
	peer   *fakeLink
	peerNS *fakeNS
}

type fakeNS struct {
	name      string
	links     map[int]*fakeLink
	nextIndex int
	addrs     []Addr
	routes    []Route
	neighs    []Neigh
	fdb       []FDB
	nsids     map[*fakeNS]int
}

func (w *World) ns(name string) *fakeNS {
	n := w.nss[name]
	if n == nil {
		n = &fakeNS{name: name, links: map[int]*fakeLink{}, nextIndex: 2, nsids: map[*fakeNS]int{}}
		n.links[1] = &fakeLink{Link: Link{Index: 1, Name: "lo", Kind: "device", MTU: 65536, PeerNetNSID: -1}}
		w.nss[name] = n
	}
	return n
}

// Handle returns a Handle on the namespace called name ("" is the host), creating it on first use.
func (w *World) Handle(name string) *Fake {
	w.mu.Lock()
	defer w.mu.Unlock()
	return &Fake{w: w, ns: w.ns(name)}
}

// DeleteNS removes a namespace as the kernel does when its last reference goes: its veth ends take
// their peers with them.
func (w *World) DeleteNS(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.nss[name]
	if n == nil {
		return
	}
	for _, l := range n.links {
		if l.peer != nil {
			l.peerNS.removeLink(l.peer.Index)
		}
	}
	delete(w.nss, name)
}

// Fake is a Handle on one namespace of a World.
type Fake struct {
	w  *World
	ns *fakeNS
}

var _ Handle = (*Fake)(nil)

func (f *Fake) lock() func() {
	f.w.mu.Lock()
	return f.w.mu.Unlock
}

func (n *fakeNS) byName(name string) *fakeLink {
	for _, l := range n.links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (n *fakeNS) view(l *fakeLink) Link {
	out := l.Link
	out.HardwareAddr = slices.Clone(l.HardwareAddr)
	out.OperUp = l.Up && (l.peer == nil || l.peer.Up)
	if l.VXLAN != nil {
		x := *l.VXLAN
		out.VXLAN = &x
	}
	return out
}

func (f *Fake) LinkByName(name string) (Link, error) {
	defer f.lock()()
	l := f.ns.byName(name)
	if l == nil {
		return Link{}, fmt.Errorf("link %s: %w", name, ErrLinkNotFound)
	}
	return f.ns.view(l), nil
}

func (f *Fake) LinkByIndex(index int) (Link, error) {
	defer f.lock()()
	l := f.ns.links[index]
	if l == nil {
		return Link{}, fmt.Errorf("link %d: %w", index, ErrLinkNotFound)
	}
	return f.ns.view(l), nil
}

func (f *Fake) LinkList() ([]Link, error) {
	defer f.lock()()
	out := make([]Link, 0, len(f.ns.links))
	for _, l := range f.ns.links {
		out = append(out, f.ns.view(l))
	}
	slices.SortFunc(out, func(a, b Link) int { return a.Index - b.Index })
	return out, nil
}

var fakeMACSeq byte

func fakeMAC() net.HardwareAddr {
	fakeMACSeq++
	return net.HardwareAddr{0x02, 0xfa, 0xce, 0, 0, fakeMACSeq}
}

func (n *fakeNS) nsid(other *fakeNS) int {
	if other == n {
		return -1
	}
	id, ok := n.nsids[other]
	if !ok {
		id = len(n.nsids)
		n.nsids[other] = id
	}
	return id
}

func (n *fakeNS) newLink(name, kind string, mtu int, mac net.HardwareAddr) *fakeLink {
	if mtu == 0 {
		mtu = 1500
	}
	if mac == nil {
		mac = fakeMAC()
	}
	l := &fakeLink{Link: Link{Index: n.nextIndex, Name: name, Kind: kind, MTU: mtu, HardwareAddr: slices.Clone(mac), PeerNetNSID: -1}}
	n.nextIndex++
	n.links[l.Index] = l
	return l
}

func (f *Fake) LinkAdd(nl NewLink) (Link, error) {
	defer f.lock()()
	if nl.Name == "" || len(nl.Name) > 15 {
		return Link{}, fmt.Errorf("creating %s %q: %w", nl.Kind, nl.Name, unix.EINVAL)
	}
	if f.ns.byName(nl.Name) != nil {
		return Link{}, fmt.Errorf("creating %s %s: %w", nl.Kind, nl.Name, unix.EEXIST)
	}
	switch nl.Kind {
	case "dummy":
		f.ns.newLink(nl.Name, nl.Kind, nl.MTU, nl.HardwareAddr)
	case "ipip":
		// An ipip device has no MAC; the kernel's default MTU is 1480 (1500 less the outer header).
		mtu := nl.MTU
		if mtu == 0 {
			mtu = 1480
		}
		l := f.ns.newLink(nl.Name, nl.Kind, mtu, nil)
		l.HardwareAddr = nil
	case "vxlan":
		if nl.VXLAN == nil {
			return Link{}, fmt.Errorf("creating vxlan %s: no VXLAN settings", nl.Name)
		}
		l := f.ns.newLink(nl.Name, nl.Kind, nl.MTU, nl.HardwareAddr)
		x := *nl.VXLAN
		l.VXLAN = &x
	case "veth":
		peerNS := f.ns
		if nl.PeerNS != nil {
			p, ok := nl.PeerNS.(*Fake)
			if !ok || p.w != f.w {
				return Link{}, fmt.Errorf("creating veth %s: the peer namespace is not in this World", nl.Name)
			}
			peerNS = p.ns
		}
		if nl.PeerName == "" || nl.PeerName == nl.Name && peerNS == f.ns || peerNS.byName(nl.PeerName) != nil {
			return Link{}, fmt.Errorf("creating veth %s peer %s: %w", nl.Name, nl.PeerName, unix.EEXIST)
		}
		a := f.ns.newLink(nl.Name, nl.Kind, nl.MTU, nl.HardwareAddr)
		b := peerNS.newLink(nl.PeerName, nl.Kind, nl.MTU, nl.PeerHardwareAddr)
		a.peer, a.peerNS, b.peer, b.peerNS = b, peerNS, a, f.ns
		a.PeerIndex, a.PeerNetNSID = b.Index, f.ns.nsid(peerNS)
		b.PeerIndex, b.PeerNetNSID = a.Index, peerNS.nsid(f.ns)
	default:
		return Link{}, fmt.Errorf("creating link %s: kind %q is not supported (dummy, veth, vxlan, ipip)", nl.Name, nl.Kind)
	}
	return f.ns.view(f.ns.byName(nl.Name)), nil
}

// removeLink deletes a link and everything that hangs off it.
func (n *fakeNS) removeLink(index int) {
	delete(n.links, index)
	n.addrs = slices.DeleteFunc(n.addrs, func(a Addr) bool { return a.LinkIndex == index })
	n.routes = slices.DeleteFunc(n.routes, func(r Route) bool { return r.LinkIndex == index })
	n.neighs = slices.DeleteFunc(n.neighs, func(x Neigh) bool { return x.LinkIndex == index })
	n.fdb = slices.DeleteFunc(n.fdb, func(x FDB) bool { return x.LinkIndex == index })
}

func (f *Fake) link(index int, what string) (*fakeLink, error) {
	l := f.ns.links[index]
	if l == nil {
		return nil, fmt.Errorf("%s link %d: %w", what, index, unix.ENODEV)
	}
	return l, nil
}

func (f *Fake) LinkDel(index int) error {
	defer f.lock()()
	l, err := f.link(index, "deleting")
	if err != nil {
		return err
	}
	f.ns.removeLink(index)
	if l.peer != nil {
		l.peerNS.removeLink(l.peer.Index)
	}
	return nil
}

func (f *Fake) LinkSetUp(index int) error {
	defer f.lock()()
	l, err := f.link(index, "bringing up")
	if err != nil {
		return err
	}
	if l.Up {
		return nil
	}
	l.Up = true
	for _, a := range f.ns.addrs {
		if a.LinkIndex == index {
			f.ns.addConnected(a)
		}
	}
	return nil
}

func (f *Fake) LinkSetDown(index int) error {
	defer f.lock()()
	l, err := f.link(index, "taking down")
	if err != nil {
		return err
	}
	l.Up = false
	f.ns.routes = slices.DeleteFunc(f.ns.routes, func(r Route) bool { return r.LinkIndex == index && r.Dst.Addr().Is4() })
	return nil
}

func (f *Fake) LinkSetMTU(index, mtu int) error {
	defer f.lock()()
	l, err := f.link(index, "setting the MTU of")
	if err != nil {
		return err
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("setting MTU %d on link %d: %w", mtu, index, unix.EINVAL)
	}
	l.MTU = mtu
	return nil
}

func (f *Fake) AddrList(index int) ([]Addr, error) {
	defer f.lock()()
	var out []Addr
	for _, a := range f.ns.addrs {
		if index == 0 || a.LinkIndex == index {
			out = append(out, a)
		}
	}
	return out, nil
}

// addConnected adds the connected route of an IPv4 address, as the kernel does on an up link.
func (n *fakeNS) addConnected(a Addr) {
	if !a.Prefix.Addr().Is4() || a.Prefix.Bits() == 32 {
		return
	}
	r := Route{Table: TableMain, Dst: a.Prefix.Masked(), LinkIndex: a.LinkIndex, Scope: ScopeLink, Protocol: ProtocolKernel,
		Type: RouteUnicast}
	if n.findRoute(r.Table, r.Dst) < 0 {
		n.routes = append(n.routes, r)
	}
}

func (f *Fake) AddrAdd(a Addr) error {
	defer f.lock()()
	l, err := f.link(a.LinkIndex, "adding an address to")
	if err != nil {
		return err
	}
	if slices.ContainsFunc(f.ns.addrs, func(x Addr) bool { return x.LinkIndex == a.LinkIndex && x.Prefix.Addr() == a.Prefix.Addr() }) {
		return fmt.Errorf("adding address %s to link %d: %w", a.Prefix, a.LinkIndex, unix.EEXIST)
	}
	f.ns.addrs = append(f.ns.addrs, a)
	if l.Up {
		f.ns.addConnected(a)
	}
	return nil
}

func (f *Fake) AddrDel(a Addr) error {
	defer f.lock()()
	i := slices.IndexFunc(f.ns.addrs, func(x Addr) bool { return x.LinkIndex == a.LinkIndex && x.Prefix == a.Prefix })
	if i < 0 {
		return fmt.Errorf("deleting address %s from link %d: %w", a.Prefix, a.LinkIndex, unix.EADDRNOTAVAIL)
	}
	f.ns.addrs = slices.Delete(f.ns.addrs, i, i+1)
	if a.Prefix.Addr().Is4() {
		dst := a.Prefix.Masked()
		f.ns.routes = slices.DeleteFunc(f.ns.routes, func(r Route) bool {
			return r.Protocol == ProtocolKernel && r.LinkIndex == a.LinkIndex && r.Dst == dst
		})
	}
	return nil
}

func (f *Fake) RouteList(table int) ([]Route, error) {
	defer f.lock()()
	if table == 0 {
		table = TableMain
	}
	var out []Route
	for _, r := range f.ns.routes {
		if r.Table == table {
			out = append(out, r)
		}
	}
	return out, nil
}

func (n *fakeNS) findRoute(table int, dst netip.Prefix) int {
	return slices.IndexFunc(n.routes, func(r Route) bool { return r.Table == table && r.Dst == dst })
}

// resolve validates r as the kernel does and returns it normalised, with the output device of a
// gateway filled in.
func (f *Fake) resolve(r Route) (Route, error) {
	if r.Table == 0 {
		r.Table = TableMain
	}
	if r.Type == 0 {
		r.Type = RouteUnicast
	}
	if r.Protocol == 0 {
		r.Protocol = ProtocolBoot // what netlink requests default to, as `ip route add`
	}
	if !r.Dst.IsValid() {
		return r, fmt.Errorf("route without a destination: %w", unix.EINVAL)
	}
	r.Dst = r.Dst.Masked()
	v4 := r.Dst.Addr().Is4()
	if !v4 {
		r.Scope = ScopeUniverse // IPv6 has no route scopes: the kernel reports universe whatever was asked
	}
	if r.Type == RouteBlackhole {
		r.LinkIndex, r.Gw, r.OnLink = 0, netip.Addr{}, false
		if !v4 {
			r.LinkIndex = 1 // the kernel hangs IPv6 blackholes on lo
		}
		return r, nil
	}
	checkDev := func() error {
		l := f.ns.links[r.LinkIndex]
		if l == nil {
			return unix.ENODEV
		}
		if v4 && !l.Up {
			return unix.ENETDOWN
		}
		return nil
	}
	switch {
	case r.Gw.Is6() && r.Gw.IsLinkLocalUnicast() && r.LinkIndex != 0:
		// An IPv6 link-local next hop is on the given device by definition.
		return r, checkDev()
	case r.Gw.IsValid() && r.OnLink:
		if r.LinkIndex == 0 {
			return r, unix.EINVAL
		}
		return r, checkDev()
	case r.Gw.IsValid():
		best := -1
		for i, c := range f.ns.routes {
			if c.Table != TableMain || c.Type != RouteUnicast || c.Gw.IsValid() || c.Scope != ScopeLink ||
				!c.Dst.Contains(r.Gw) || (r.LinkIndex != 0 && c.LinkIndex != r.LinkIndex) {
				continue
			}
			if best < 0 || c.Dst.Bits() > f.ns.routes[best].Dst.Bits() {
				best = i
			}
		}
		if best < 0 {
			if !v4 {
				return r, unix.EHOSTUNREACH // IPv6 says so differently
			}
			return r, unix.ENETUNREACH
		}
		r.LinkIndex = f.ns.routes[best].LinkIndex
		return r, nil
	default:
		if r.LinkIndex == 0 {
			return r, unix.ENODEV
		}
		return r, checkDev()
	}
}

func (f *Fake) RouteAdd(r Route) error {
	defer f.lock()()
	rr, err := f.resolve(r)
	if err != nil {
		return fmt.Errorf("adding route %s: %w", r, err)
	}
	if f.ns.findRoute(rr.Table, rr.Dst) >= 0 {
		return fmt.Errorf("adding route %s: %w", r, unix.EEXIST)
	}
	f.ns.routes = append(f.ns.routes, rr)
	return nil
}

func (f *Fake) RouteReplace(r Route) error {
	defer f.lock()()
	rr, err := f.resolve(r)
	if err != nil {
		return fmt.Errorf("replacing route %s: %w", r, err)
	}
	if i := f.ns.findRoute(rr.Table, rr.Dst); i >= 0 {
		f.ns.routes[i] = rr
		return nil
	}
	f.ns.routes = append(f.ns.routes, rr)
	return nil
}

func (f *Fake) RouteDel(r Route) error {
	defer f.lock()()
	table := r.Table
	if table == 0 {
		table = TableMain
	}
	i := slices.IndexFunc(f.ns.routes, func(c Route) bool {
		return c.Table == table && c.Dst == r.Dst.Masked() &&
			(r.LinkIndex == 0 || c.LinkIndex == r.LinkIndex) && (!r.Gw.IsValid() || c.Gw == r.Gw) &&
			(r.Protocol == 0 || c.Protocol == r.Protocol) && (r.Type == 0 || c.Type == r.Type) &&
			(r.Scope == 0 || c.Scope == r.Scope || c.Dst.Addr().Is6())
	})
	if i < 0 {
		return fmt.Errorf("deleting route %s: %w", r, unix.ESRCH)
	}
	f.ns.routes = slices.Delete(f.ns.routes, i, i+1)
	return nil
}

func (f *Fake) NeighList(index int) ([]Neigh, error) {
	defer f.lock()()
	var out []Neigh
	for _, n := range f.ns.neighs {
		if index == 0 || n.LinkIndex == index {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *Fake) NeighSet(n Neigh) error {
	defer f.lock()()
	if _, err := f.link(n.LinkIndex, "setting a neighbour on"); err != nil {
		return err
	}
	n.MAC = slices.Clone(n.MAC)
	if i := slices.IndexFunc(f.ns.neighs, func(x Neigh) bool { return x.LinkIndex == n.LinkIndex && x.IP == n.IP }); i >= 0 {
		f.ns.neighs[i] = n
		return nil
	}
	f.ns.neighs = append(f.ns.neighs, n)
	return nil
}

func (f *Fake) NeighDel(n Neigh) error {
	defer f.lock()()
	i := slices.IndexFunc(f.ns.neighs, func(x Neigh) bool { return x.LinkIndex == n.LinkIndex && x.IP == n.IP })
	if i < 0 {
		return fmt.Errorf("deleting neighbour %s on link %d: %w", n.IP, n.LinkIndex, unix.ENOENT)
	}
	f.ns.neighs = slices.Delete(f.ns.neighs, i, i+1)
	return nil
}

func (f *Fake) FDBList(index int) ([]FDB, error) {
	defer f.lock()()
	var out []FDB
	for _, x := range f.ns.fdb {
		if index == 0 || x.LinkIndex == index {
			out = append(out, x)
		}
	}
	return out, nil
}

func (f *Fake) FDBSet(e FDB) error {
	defer f.lock()()
	if _, err := f.link(e.LinkIndex, "setting an FDB entry on"); err != nil {
		return err
	}
	e.MAC = slices.Clone(e.MAC)
	if i := slices.IndexFunc(f.ns.fdb, func(x FDB) bool { return x.LinkIndex == e.LinkIndex && slices.Equal(x.MAC, e.MAC) }); i >= 0 {
		f.ns.fdb[i] = e
		return nil
	}
	f.ns.fdb = append(f.ns.fdb, e)
	return nil
}

func (f *Fake) FDBDel(e FDB) error {
	defer f.lock()()
	i := slices.IndexFunc(f.ns.fdb, func(x FDB) bool { return x.LinkIndex == e.LinkIndex && slices.Equal(x.MAC, e.MAC) })
	if i < 0 {
		return fmt.Errorf("deleting FDB entry %s on link %d: %w", e.MAC, e.LinkIndex, unix.ENOENT)
	}
	f.ns.fdb = slices.Delete(f.ns.fdb, i, i+1)
	return nil
}

func (f *Fake) NetNSID(other Handle) int {
	defer f.lock()()
	o, ok := other.(*Fake)
	if !ok || o.w != f.w {
		return -1
	}
	if id, ok := f.ns.nsids[o.ns]; ok {
		return id
	}
	return -1
}

// Close does nothing: the namespace lives as long as its World.
func (f *Fake) Close() error { return nil }
