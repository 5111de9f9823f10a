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

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// RouteProtocol tags the host routes Setup adds ("proto 116" in ip route), so the dataplane and
// `tortie-node cleanup` recognise them without relying on the interface name alone. Why 116 is in
// common/config/owned.go.
const RouteProtocol = config.RouteProtocol

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

// openHost opens a netlink handle in the calling thread's namespace. The
// socket stays in that namespace whatever thread later uses it.
func openHost(ctx context.Context) (netlinkx.Handle, error) {
	h, err := netlinkx.Open("", requestTimeout(ctx))
	if err != nil {
		return nil, fmt.Errorf("in %s: %w", hostWhere, err)
	}
	return h, nil
}

// machine is what PodNetwork needs of the host: netlink in the host and pod
// namespaces and their sysctls. The zero PodNetwork uses realMachine; tests
// without root use a fake over netlinkx.World.
type machine interface {
	openHost(ctx context.Context) (netlinkx.Handle, error)
	// openPod opens the pod namespace at path; nsGone(err) when it no longer
	// exists.
	openPod(ctx context.Context, path string) (podNS, error)
	writeHostSysctls(list []sysctl) error
	checkHostSysctls(list []sysctl) []error
}

// podNS is an open pod network namespace.
type podNS interface {
	handle() netlinkx.Handle
	writeSysctls(list []sysctl) error
	Close() error
}

// realMachine is the kernel: the host namespace is the calling thread's.
type realMachine struct{}

func (realMachine) openHost(ctx context.Context) (netlinkx.Handle, error) { return openHost(ctx) }

func (realMachine) openPod(ctx context.Context, path string) (podNS, error) {
	n, err := ns.GetNS(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", containerWhere(path), err)
	}
	h, err := netlinkx.OpenFd(int(n.Fd()), requestTimeout(ctx))
	if err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("in %s: %w", containerWhere(path), err)
	}
	return &realPod{ns: n, h: h, where: containerWhere(path)}, nil
}

// writeHostSysctls runs on the calling thread, which is in the host
// namespace (see the package documentation).
func (realMachine) writeHostSysctls(list []sysctl) error { return writeSysctls(hostWhere, list) }

func (realMachine) checkHostSysctls(list []sysctl) []error { return checkSysctls(hostWhere, list) }

type realPod struct {
	ns    ns.NetNS
	h     *netlinkx.Kernel
	where string
}

func (p *realPod) handle() netlinkx.Handle { return p.h }

// writeSysctls writes from a separate, locked thread switched into the pod
// namespace (ns.Do), never from the caller's.
func (p *realPod) writeSysctls(list []sysctl) error {
	return p.ns.Do(func(ns.NetNS) error { return writeSysctls(p.where, list) })
}

func (p *realPod) Close() error {
	return errors.Join(p.h.Close(), p.ns.Close())
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
func linkByName(h netlinkx.Handle, name string) (*netlinkx.Link, error) {
	l, err := h.LinkByName(name)
	if netlinkx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func isVeth(l *netlinkx.Link) bool { return l.Kind == "veth" }
