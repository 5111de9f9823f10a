//go:build linux

package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// Check verifies that the pod interface described by req is as Setup left it
// (CNI CHECK): both veth ends exist, are up, are paired with each other and
// have the right MTU and MACs; the pod has its addresses and routes; the host
// end has no address, its sysctls, and a route to each pod address. The
// error lists every difference found, each saying what and where; nil means
// none. Check changes nothing.
func (p *PodNetwork) Check(ctx context.Context, req cnicore.InterfaceRequest) error {
	addrs, mtu, err := normalize(req)
	if err != nil {
		return fmt.Errorf("invalid pod interface request: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checking pod interface %s: %w", req.HostIfName, err)
	}
	contWhere := containerWhere(req.NetNS)
	wrap := func(errs []error) error {
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("pod interface %s <-> %s in %s: %w", req.HostIfName, req.ContainerIfName, req.NetNS, err)
		}
		return nil
	}

	host, err := openHandle(ctx, netns.None(), hostWhere)
	if err != nil {
		return err
	}
	defer host.Close()
	contNS, cont, err := openContainerNS(ctx, req.NetNS)
	if err != nil {
		return wrap([]error{err})
	}
	defer contNS.Close()
	defer cont.Close()

	var v4, v6 bool
	for _, a := range addrs {
		v4 = v4 || a.Addr().Is4()
		v6 = v6 || a.Addr().Is6()
	}

	var errs []error
	contLink, cerrs := checkLink(cont, req.ContainerIfName, contWhere, mtu, req.ContainerMAC)
	errs = append(errs, cerrs...)
	if contLink != nil {
		errs = append(errs, checkContainerAddrs(cont, contLink, contWhere, addrs)...)
		errs = append(errs, checkContainerRoutes(cont, contLink, contWhere, v4, v6)...)
	}

	hostLink, herrs := checkLink(host, req.HostIfName, hostWhere, mtu, hostMAC)
	errs = append(errs, herrs...)
	if hostLink != nil {
		if contLink != nil {
			id := netnsID(host, contNS.Fd())
			if a := hostLink.Attrs(); a.ParentIndex != contLink.Attrs().Index || a.NetNsID != id {
				errs = append(errs, fmt.Errorf("%s in %s is not paired with %s in %s (its peer is ifindex %d in netnsid %d, want %d in %d)",
					req.HostIfName, hostWhere, req.ContainerIfName, contWhere, a.ParentIndex, a.NetNsID, contLink.Attrs().Index, id))
			}
		}
		errs = append(errs, checkHostAddrs(host, hostLink)...)
		errs = append(errs, checkHostRoutes(host, hostLink, addrs)...)
		errs = append(errs, checkSysctls(hostWhere, hostSysctls(req.HostIfName, v4, v6))...)
	}
	return wrap(errs)
}

// checkLink finds the veth name and checks its state; the link is nil if
// there is none.
func checkLink(h *netlink.Handle, name, where string, mtu int, mac net.HardwareAddr) (netlink.Link, []error) {
	l, err := linkByName(h, name)
	if err != nil {
		return nil, []error{fmt.Errorf("looking up %s in %s: %w", name, where, err)}
	}
	if l == nil {
		return nil, []error{fmt.Errorf("%s is missing from %s", name, where)}
	}
	var errs []error
	a := l.Attrs()
	if !isVeth(l) {
		errs = append(errs, fmt.Errorf("%s in %s is a %s, want a veth", name, where, l.Type()))
	}
	if a.Flags&net.FlagUp == 0 {
		errs = append(errs, fmt.Errorf("%s in %s is down", name, where))
	}
	if a.MTU != mtu {
		errs = append(errs, fmt.Errorf("%s in %s has MTU %d, want %d", name, where, a.MTU, mtu))
	}
	if len(mac) != 0 && !bytes.Equal(a.HardwareAddr, mac) {
		errs = append(errs, fmt.Errorf("%s in %s has MAC %s, want %s", name, where, a.HardwareAddr, mac))
	}
	return l, errs
}

func linkPrefixes(h *netlink.Handle, l netlink.Link, where string) ([]netip.Prefix, error) {
	list, err := netlinkx.AddrList(h, l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s in %s: %w", l.Attrs().Name, where, err)
	}
	var out []netip.Prefix
	for _, a := range list {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func checkContainerAddrs(h *netlink.Handle, l netlink.Link, where string, want []netip.Prefix) []error {
	have, err := linkPrefixes(h, l, where)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range want {
		if !slices.Contains(have, p) {
			errs = append(errs, fmt.Errorf("address %s is missing from %s in %s", p, l.Attrs().Name, where))
		}
	}
	return errs
}

func checkHostAddrs(h *netlink.Handle, l netlink.Link) []error {
	have, err := linkPrefixes(h, l, hostWhere)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range have {
		if !p.Addr().IsLinkLocalUnicast() {
			errs = append(errs, fmt.Errorf("%s in %s has address %s, want none", l.Attrs().Name, hostWhere, p))
		}
	}
	return errs
}

// routeKey is the part of a route Check compares.
type routeKey struct {
	dst   netip.Prefix // zero for a default route
	gw    netip.Addr
	scope netlink.Scope
	proto netlink.RouteProtocol
}

func keyOf(r *netlink.Route) routeKey {
	k := routeKey{scope: r.Scope, proto: r.Protocol}
	if p, ok := prefixOf(r.Dst); ok && p.Bits() != 0 {
		k.dst = p
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		k.gw = a.Unmap()
	}
	return k
}

// hasRoute reports whether have contains want. A want without a protocol
// matches any protocol (the kernel fills in "boot").
func hasRoute(have []netlink.Route, want *netlink.Route) bool {
	w := keyOf(want)
	return slices.ContainsFunc(have, func(r netlink.Route) bool {
		k := keyOf(&r)
		if w.proto == 0 {
			k.proto = 0
		}
		return k == w
	})
}

func routesVia(h *netlink.Handle, l netlink.Link, where string) ([]netlink.Route, error) {
	routes, err := netlinkx.RouteListFiltered(h, netlink.FAMILY_ALL,
		&netlink.Route{LinkIndex: l.Attrs().Index}, netlink.RT_FILTER_OIF)
	if err != nil {
		return nil, fmt.Errorf("listing routes via %s in %s: %w", l.Attrs().Name, where, err)
	}
	return routes, nil
}

func checkContainerRoutes(h *netlink.Handle, l netlink.Link, where string, v4, v6 bool) []error {
	have, err := routesVia(h, l, where)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, want := range containerRoutes(l.Attrs().Index, v4, v6) {
		if !hasRoute(have, want) {
			errs = append(errs, fmt.Errorf("route %s is missing from %s", describeRoute(want, l.Attrs().Name), where))
		}
	}
	return errs
}

func checkHostRoutes(h *netlink.Handle, l netlink.Link, addrs []netip.Prefix) []error {
	have, err := routesVia(h, l, hostWhere)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range addrs {
		want := hostRoute(l.Attrs().Index, p)
		if !hasRoute(have, want) {
			errs = append(errs, fmt.Errorf("route %s is missing from %s", describeRoute(want, l.Attrs().Name), hostWhere))
		}
	}
	return errs
}
