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

	m := p.machineOrReal()
	host, err := m.openHost(ctx)
	if err != nil {
		return err
	}
	defer host.Close() //nolint:errcheck // read-only use
	contNS, err := m.openPod(ctx, req.NetNS)
	if err != nil {
		return wrap([]error{err})
	}
	defer contNS.Close() //nolint:errcheck // read-only use
	cont := contNS.handle()

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
			id := host.NetNSID(cont)
			if hostLink.PeerIndex != contLink.Index || hostLink.PeerNetNSID != id {
				errs = append(errs, fmt.Errorf("%s in %s is not paired with %s in %s (its peer is ifindex %d in netnsid %d, want %d in %d)",
					req.HostIfName, hostWhere, req.ContainerIfName, contWhere, hostLink.PeerIndex, hostLink.PeerNetNSID, contLink.Index, id))
			}
		}
		errs = append(errs, checkHostAddrs(host, hostLink)...)
		errs = append(errs, checkHostRoutes(host, hostLink, addrs)...)
		errs = append(errs, m.checkHostSysctls(hostSysctls(req.HostIfName, v4, v6))...)
	}
	return wrap(errs)
}

// checkLink finds the veth name and checks its state; the link is nil if
// there is none.
func checkLink(h netlinkx.Handle, name, where string, mtu int, mac net.HardwareAddr) (*netlinkx.Link, []error) {
	l, err := linkByName(h, name)
	if err != nil {
		return nil, []error{fmt.Errorf("looking up %s in %s: %w", name, where, err)}
	}
	if l == nil {
		return nil, []error{fmt.Errorf("%s is missing from %s", name, where)}
	}
	var errs []error
	if !isVeth(l) {
		errs = append(errs, fmt.Errorf("%s in %s is a %s, want a veth", name, where, l.Kind))
	}
	if !l.Up {
		errs = append(errs, fmt.Errorf("%s in %s is down", name, where))
	}
	if l.MTU != mtu {
		errs = append(errs, fmt.Errorf("%s in %s has MTU %d, want %d", name, where, l.MTU, mtu))
	}
	if len(mac) != 0 && !bytes.Equal(l.HardwareAddr, mac) {
		errs = append(errs, fmt.Errorf("%s in %s has MAC %s, want %s", name, where, l.HardwareAddr, mac))
	}
	return l, errs
}

// linkPrefixes lists the addresses of l.
func linkPrefixes(h netlinkx.Handle, l *netlinkx.Link, where string) ([]netip.Prefix, error) {
	list, err := h.AddrList(l.Index)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s in %s: %w", l.Name, where, err)
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, a := range list {
		out = append(out, a.Prefix)
	}
	return out, nil
}

// checkContainerAddrs reports pod addresses missing from l.
func checkContainerAddrs(h netlinkx.Handle, l *netlinkx.Link, where string, want []netip.Prefix) []error {
	have, err := linkPrefixes(h, l, where)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range want {
		if !slices.Contains(have, p) {
			errs = append(errs, fmt.Errorf("address %s is missing from %s in %s", p, l.Name, where))
		}
	}
	return errs
}

// checkHostAddrs reports any address on the host end other than its link-local one.
func checkHostAddrs(h netlinkx.Handle, l *netlinkx.Link) []error {
	have, err := linkPrefixes(h, l, hostWhere)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range have {
		if !p.Addr().IsLinkLocalUnicast() {
			errs = append(errs, fmt.Errorf("%s in %s has address %s, want none", l.Name, hostWhere, p))
		}
	}
	return errs
}

// routeKey is what Check compares of a route.
type routeKey struct {
	dst   netip.Prefix // zero for a default route
	gw    netip.Addr
	scope int
	proto int
}

func keyOf(r netlinkx.Route) routeKey {
	k := routeKey{scope: r.Scope, proto: r.Protocol, gw: r.Gw}
	if r.Dst.IsValid() && r.Dst.Bits() != 0 {
		k.dst = r.Dst
	}
	return k
}

// hasRoute reports whether have contains want; a want without a protocol
// matches any.
func hasRoute(have []netlinkx.Route, want netlinkx.Route) bool {
	w := keyOf(want)
	return slices.ContainsFunc(have, func(r netlinkx.Route) bool {
		k := keyOf(r)
		if w.proto == 0 {
			k.proto = 0
		}
		return k == w
	})
}

// routesVia lists the main table's routes through l.
func routesVia(h netlinkx.Handle, l *netlinkx.Link, where string) ([]netlinkx.Route, error) {
	routes, err := h.RouteList(netlinkx.TableMain)
	if err != nil {
		return nil, fmt.Errorf("listing routes via %s in %s: %w", l.Name, where, err)
	}
	return slices.DeleteFunc(routes, func(r netlinkx.Route) bool { return r.LinkIndex != l.Index }), nil
}

func checkContainerRoutes(h netlinkx.Handle, l *netlinkx.Link, where string, v4, v6 bool) []error {
	have, err := routesVia(h, l, where)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, want := range containerRoutes(l.Index, v4, v6) {
		if !hasRoute(have, want) {
			errs = append(errs, fmt.Errorf("route %s is missing from %s", describeRoute(want, l.Name), where))
		}
	}
	return errs
}

func checkHostRoutes(h netlinkx.Handle, l *netlinkx.Link, addrs []netip.Prefix) []error {
	have, err := routesVia(h, l, hostWhere)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, p := range addrs {
		want := hostRoute(l.Index, p)
		if !hasRoute(have, want) {
			errs = append(errs, fmt.Errorf("route %s is missing from %s", describeRoute(want, l.Name), hostWhere))
		}
	}
	return errs
}
