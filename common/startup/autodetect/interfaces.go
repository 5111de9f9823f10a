package autodetect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Interface is one host network interface as autodetection and MTU detection see it.
type Interface struct {
	// Name is the OS name ("eth0", "ens5", "vEthernet (Ethernet)").
	Name string
	// Index is the OS interface index (informational; ordering comes from the List order).
	Index int
	// Up reports that the interface is administratively up AND has carrier/is running (Linux IFF_UP and
	// IFF_RUNNING; Windows OperStatus up). MTU detection skips interfaces that are not Up; IP
	// autodetection does not look at it, exactly like Calico.
	Up bool
	// MTU is the interface MTU in bytes (0 if unknown).
	MTU int
	// Addrs are the interface addresses with their on-link prefix length, host bits kept
	// (10.0.0.5/24, not 10.0.0.0/24). IPv4 addresses are never 4-in-6 mapped.
	Addrs []netip.Prefix
}

// InterfaceSource lists the host's interfaces.
//
// List returns the interfaces in the order the OS lists them (ascending index on Linux); autodetection
// walks that order in reverse, as Calico does. It is called once per detection and must be safe to call
// repeatedly; implementations need not be safe for concurrent use. The returned slice is owned by the
// caller.
type InterfaceSource interface {
	List() ([]Interface, error)
}

// SourceAddrFinder is implemented by an InterfaceSource that can say which local address the OS would
// use to reach a destination. The can-reach method uses it when the source implements it and otherwise
// asks the OS directly (see SystemInterfaces.SourceAddr).
type SourceAddrFinder interface {
	// SourceAddr returns the local address the OS would choose for traffic of the given family (4 or 6)
	// to dest (an IP literal or a host name, resolved in that family). No packet is sent.
	SourceAddr(ctx context.Context, family int, dest string) (netip.Addr, error)
}

// SystemInterfaces lists the running host's interfaces with the standard library (net.Interfaces), so it
// works on Linux and Windows alike. On Linux it reads the network namespace of the calling OS thread, so
// a caller that has locked its goroutine to a thread inside another namespace (ns.Do) sees that
// namespace's interfaces. The zero value is ready to use.
type SystemInterfaces struct{}

var (
	_ InterfaceSource  = SystemInterfaces{}
	_ SourceAddrFinder = SystemInterfaces{}
)

// List implements InterfaceSource. An interface that disappears between listing it and reading its
// addresses is skipped rather than failing the whole listing.
func (SystemInterfaces) List() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing host interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		iface := Interface{
			Name:  ifc.Name,
			Index: ifc.Index,
			Up:    ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagRunning != 0,
			MTU:   ifc.MTU,
		}
		for _, a := range addrs {
			if p, ok := prefixFromNetAddr(a); ok {
				iface.Addrs = append(iface.Addrs, p)
			}
		}
		out = append(out, iface)
	}
	return out, nil
}

// SourceAddr implements SourceAddrFinder the way Calico does it: a UDP "connect" to dest port 80 makes
// the kernel pick a route and a source address without sending anything; the socket's local address is
// the answer. On Linux the socket is opened in the calling OS thread's network namespace.
func (SystemInterfaces) SourceAddr(ctx context.Context, family int, dest string) (netip.Addr, error) {
	network, err := udpNetwork(family)
	if err != nil {
		return netip.Addr{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, net.JoinHostPort(dest, "80"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding the IPv%d source address towards %s: %w", family, dest, err)
	}
	defer conn.Close() //nolint:errcheck // nothing was sent; closing cannot lose data
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || ua == nil {
		return netip.Addr{}, fmt.Errorf("finding the IPv%d source address towards %s: no local address on the socket", family, dest)
	}
	addr, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return netip.Addr{}, fmt.Errorf("finding the IPv%d source address towards %s: unparseable local address %v", family, dest, ua.IP)
	}
	return addr.Unmap(), nil
}

func udpNetwork(family int) (string, error) {
	switch family {
	case 4:
		return "udp4", nil
	case 6:
		return "udp6", nil
	}
	return "", fmt.Errorf("IP family %d: want 4 or 6", family)
}

// StaticInterfaces is a fixed InterfaceSource for tests and for callers that already hold the interface
// list. Routes, when set, makes it a SourceAddrFinder too: it maps a can-reach destination (exactly as
// written in the method) to the local address the OS would have picked.
type StaticInterfaces struct {
	Interfaces []Interface
	Routes     map[string]netip.Addr
}

var (
	_ InterfaceSource  = StaticInterfaces{}
	_ SourceAddrFinder = StaticInterfaces{}
)

// List implements InterfaceSource; it returns a deep copy.
func (s StaticInterfaces) List() ([]Interface, error) {
	out := slices.Clone(s.Interfaces)
	for i := range out {
		out[i].Addrs = slices.Clone(out[i].Addrs)
	}
	return out, nil
}

// ErrNoRoute is returned by StaticInterfaces.SourceAddr for a destination missing from Routes.
var ErrNoRoute = errors.New("no route to destination")

// SourceAddr implements SourceAddrFinder from Routes.
func (s StaticInterfaces) SourceAddr(_ context.Context, family int, dest string) (netip.Addr, error) {
	a, ok := s.Routes[dest]
	if !ok || familyOf(a) != family {
		return netip.Addr{}, fmt.Errorf("finding the IPv%d source address towards %s: %w", family, dest, ErrNoRoute)
	}
	return a, nil
}

// prefixFromNetAddr converts what net.Interface.Addrs returns (*net.IPNet; *net.IPAddr on some
// platforms) to a prefix that keeps the host bits, with IPv4 unmapped.
func prefixFromNetAddr(a net.Addr) (netip.Prefix, bool) {
	switch a := a.(type) {
	case *net.IPNet:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return netip.Prefix{}, false
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		if bits == 0 { // non-canonical mask
			return netip.Prefix{}, false
		}
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		p := netip.PrefixFrom(ip, ones)
		return p, p.IsValid()
	case *net.IPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return netip.Prefix{}, false
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	return netip.Prefix{}, false
}

// familyOf returns 4 or 6 for a valid address, 0 otherwise. 4-in-6 mapped addresses count as IPv4.
func familyOf(a netip.Addr) int {
	switch {
	case !a.IsValid():
		return 0
	case a.Unmap().Is4():
		return 4
	default:
		return 6
	}
}

// LookupPrefix finds addr on ifaces (walked in reverse list order, like every other lookup here) and
// returns it with the interface's prefix length and the interface name. Calico uses this to complete
// an address given without a prefix length (IP=10.0.0.5, can-reach, kubernetes-internal-ip).
func LookupPrefix(ifaces []Interface, addr netip.Addr) (netip.Prefix, string, bool) {
	addr = addr.Unmap()
	for i := len(ifaces) - 1; i >= 0; i-- {
		for _, p := range ifaces[i].Addrs {
			if p.Addr().Unmap() == addr {
				return netip.PrefixFrom(addr, p.Bits()), ifaces[i].Name, true
			}
		}
	}
	return netip.Prefix{}, "", false
}
