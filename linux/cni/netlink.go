//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// RouteProtocol tags the host routes Setup adds ("proto 116" in ip route), so the dataplane and
// `tortie-node cleanup` recognise them without relying on the interface name alone. Why 116 is in
// common/config/owned.go.
const RouteProtocol netlink.RouteProtocol = config.RouteProtocol

// NetlinkTimeout bounds each netlink request. The kernel answers in
// microseconds unless the RTNL lock is contended; on a node busy creating
// hundreds of pods that can take seconds, so the bound is generous. A ctx
// deadline closer than this shortens it.
const NetlinkTimeout = 30 * time.Second

// minNetlinkTimeout keeps rollback possible when ctx has already expired.
const minNetlinkTimeout = time.Second

// The pod's gateways, the next hops of its default routes (callers report them in the CNI result).
const (
	// GatewayV4 is the pod's IPv4 next hop; it exists nowhere and is
	// answered by proxy ARP on the host end.
	GatewayV4 = "169.254.1.1"
	// GatewayV6 is the host end's EUI-64 link-local address, which follows
	// from its fixed MAC ee:ee:ee:ee:ee:ee.
	GatewayV6 = "fe80::ecee:eeff:feee:eeee"
)

var (
	// hostMAC is the MAC of every host-side veth. Pods never need to learn
	// a new gateway MAC, and the host end's EUI-64 link-local address (the
	// pod's IPv6 gateway) is the same on every veth.
	hostMAC   = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
	gatewayV4 = netip.MustParseAddr(GatewayV4)
	gatewayV6 = netip.MustParseAddr(GatewayV6)
)

const hostWhere = "host netns"

func containerWhere(path string) string { return "container netns " + path }

func requestTimeout(ctx context.Context) time.Duration {
	d := NetlinkTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, max(time.Until(dl), minNetlinkTimeout))
	}
	return d
}

// openHandle opens a NETLINK_ROUTE socket in the namespace nsh, or in the
// calling thread's namespace when nsh is netns.None(). The socket stays in
// that namespace for its lifetime whatever thread later uses it.
func openHandle(ctx context.Context, nsh netns.NsHandle, where string) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening netlink socket in %s: %w", where, err)
	}
	if err := h.SetSocketTimeout(requestTimeout(ctx)); err != nil {
		h.Close()
		return nil, fmt.Errorf("setting netlink socket timeout in %s: %w", where, err)
	}
	return h, nil
}

// openContainerNS opens the namespace at path and a netlink socket inside it.
func openContainerNS(ctx context.Context, path string) (ns.NetNS, *netlink.Handle, error) {
	n, err := ns.GetNS(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", containerWhere(path), err)
	}
	h, err := openHandle(ctx, netns.NsHandle(n.Fd()), containerWhere(path))
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	return n, h, nil
}

// nsGone reports whether err from ns.GetNS means the namespace no longer
// exists (path removed, or left behind as a plain file after the unmount).
func nsGone(err error) bool {
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	return errors.As(err, &notExist) || errors.As(err, &notNS)
}

// linkByName returns the link called name, or nil and no error if there is
// none.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := netlinkx.Dump(func() (netlink.Link, error) { return h.LinkByName(name) })
	if linkGone(err) {
		return nil, nil
	}
	return l, err
}

// linkGone reports whether err means the link does not exist (any more).
func linkGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func isVeth(l netlink.Link) bool { return l.Type() == "veth" }

// netnsID returns the id the namespace of h assigns to the namespace open as
// fd, or -1 if it has none. Veth peers report their peer's namespace by this
// id (IFLA_LINK_NETNSID).
func netnsID(h *netlink.Handle, fd uintptr) int {
	id, err := h.GetNetNsIdByFd(int(fd))
	if err != nil {
		return -1
	}
	return id
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

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
