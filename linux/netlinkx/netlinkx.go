//go:build linux

package netlinkx

import (
	"errors"
	"net"
	"net/netip"
)

// ErrLinkNotFound is returned (wrapped) by LinkByName and LinkByIndex for a link that does not exist.
// Operations on a missing link by index return the kernel's ENODEV, as the kernel does.
var ErrLinkNotFound = errors.New("link not found")

// Link is what tortie reads of a network device.
type Link struct {
	Index        int
	Name         string
	Kind         string // "veth", "vxlan", "dummy", ... as the kernel names the driver
	MTU          int
	HardwareAddr net.HardwareAddr
	// Up is the administrative state (IFF_UP); OperUp the operational one (carrier processed).
	Up, OperUp bool
	// PeerIndex is a veth's peer's ifindex in the peer's namespace; PeerNetNSID the id this namespace
	// gives the peer's namespace, -1 when the peer is in this namespace. Both 0/-1 for other kinds.
	PeerIndex, PeerNetNSID int
	// VXLAN is set for vxlan links.
	VXLAN *VXLAN
}

// VXLAN is a vxlan device's configuration.
type VXLAN struct {
	VNI  int
	Port int // UDP destination port
	// Local is the underlay source address; ParentIndex the underlay device (0: any).
	Local       netip.Addr
	ParentIndex int
	// Learning enables source-address learning; tortie programs FDB and neighbour entries itself and
	// turns it off.
	Learning bool
}

// NewLink describes a link to create.
type NewLink struct {
	Name         string
	Kind         string // "veth", "vxlan", "dummy" or "ipip" (the kernel here has no ipip module)
	MTU          int    // 0: the driver's default
	HardwareAddr net.HardwareAddr
	// Veth: the peer's name and MAC, and the namespace it is created in (nil: this one). The peer gets
	// the same MTU.
	PeerName         string
	PeerHardwareAddr net.HardwareAddr
	PeerNS           Handle
	VXLAN            *VXLAN
}

// Addr is an address on a link.
type Addr struct {
	LinkIndex int
	Prefix    netip.Prefix
	// NoDAD skips IPv6 duplicate address detection (IFA_F_NODAD).
	NoDAD bool
}

// Route scopes (rtm_scope).
const (
	ScopeUniverse = 0
	ScopeLink     = 253
	ScopeHost     = 254
)

// Route types (rtm_type) tortie uses.
const (
	RouteUnicast   = 1
	RouteBlackhole = 6
)

// Route protocols with a meaning to the kernel (tortie's own is common/config.RouteProtocol).
const (
	ProtocolKernel = 2 // connected routes the kernel adds for an address
	ProtocolBoot   = 3 // a plain `ip route add`
)

// TableMain is the main routing table.
const TableMain = 254

// Route is one route. Zero Table means TableMain and zero Type RouteUnicast.
type Route struct {
	Table int
	Dst   netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Gw    netip.Addr   // invalid: no gateway
	// LinkIndex is the output device; the kernel fills it in for a gateway it resolves.
	LinkIndex int
	Scope     int
	Protocol  int
	Type      int
	// OnLink takes Gw as reachable on LinkIndex without a route to it (RTNH_F_ONLINK).
	OnLink bool
}

// Neigh is a permanent neighbour (ARP/NDP) entry.
type Neigh struct {
	LinkIndex int
	IP        netip.Addr
	MAC       net.HardwareAddr
}

// FDB is a permanent forwarding-database entry of a vxlan device: frames for MAC go to the underlay
// address Dst.
type FDB struct {
	LinkIndex int
	MAC       net.HardwareAddr
	Dst       netip.Addr
}

// Handle is the netlink tortie uses, bound to one network namespace. Errors are the kernel's
// (unix.Errno: EEXIST, ESRCH, ENODEV, ENETUNREACH, ENETDOWN, EADDRNOTAVAIL) wrapped with what was
// asked, so errors.Is works on them, and the fake returns the same ones. A Handle is not safe for
// concurrent use.
type Handle interface {
	// LinkByName and LinkByIndex return ErrLinkNotFound (wrapped) for a missing link.
	LinkByName(name string) (Link, error)
	LinkByIndex(index int) (Link, error)
	LinkList() ([]Link, error)
	// LinkAdd creates a link (both ends of a veth) and returns it; EEXIST when the name is taken here
	// (or the peer's name in the peer's namespace). When the link was created but could not be read
	// back, the error comes with a Link whose Name is set (Index 0), so the caller can remove it.
	LinkAdd(l NewLink) (Link, error)
	// LinkDel deletes a link with its addresses, routes, neighbours and FDB entries; deleting either
	// end of a veth deletes both.
	LinkDel(index int) error
	LinkSetUp(index int) error
	// LinkSetDown takes a link down; the kernel removes the IPv4 routes through it.
	LinkSetDown(index int) error
	LinkSetMTU(index, mtu int) error

	// AddrList lists a link's addresses (index 0: every link's). AddrAdd returns EEXIST for an
	// address the link has; an IPv4 address on an up link adds its connected route (proto kernel,
	// scope link). AddrDel returns EADDRNOTAVAIL for one it has not.
	AddrList(index int) ([]Addr, error)
	AddrAdd(a Addr) error
	AddrDel(a Addr) error

	// RouteList lists a table's routes, both families. RouteAdd returns EEXIST when the table has a
	// route to Dst, ENETUNREACH (IPv6: EHOSTUNREACH) for a gateway with no route to it (unless
	// OnLink), ENETDOWN for an IPv4 route through a down link. RouteReplace adds or replaces the route
	// to Dst. RouteDel deletes the route to Dst whose set fields (LinkIndex, Gw, Protocol, Scope)
	// match; ESRCH when none does.
	RouteList(table int) ([]Route, error)
	RouteAdd(r Route) error
	RouteReplace(r Route) error
	RouteDel(r Route) error

	// NeighList lists a link's permanent neighbours; NeighSet adds or replaces one, NeighDel removes
	// one (ENOENT when absent).
	NeighList(index int) ([]Neigh, error)
	NeighSet(n Neigh) error
	NeighDel(n Neigh) error

	// FDBList lists a vxlan link's permanent FDB entries; FDBSet adds or replaces the entry for MAC,
	// FDBDel removes it (ENOENT when absent).
	FDBList(index int) ([]FDB, error)
	FDBSet(f FDB) error
	FDBDel(f FDB) error

	// NetNSID returns the id this namespace gives other's namespace, -1 when it has none.
	NetNSID(other Handle) int
	Close() error
}

// IsNotFound reports whether err means a link is gone: ErrLinkNotFound or the kernel's ENODEV.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrLinkNotFound) || isENODEV(err)
}
