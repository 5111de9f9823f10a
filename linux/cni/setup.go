//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// DefaultMTU is used when the request's MTU is 0.
const DefaultMTU = 1500

// MTU bounds: 68 is IPv4's minimum and 65535 the veth driver's maximum;
// IPv6 refuses to run on a device below 1280 (the kernel silently drops the
// device's IPv6 state, so it is better to say so up front).
const (
	minMTU     = 68
	maxMTU     = 65535
	minMTUIPv6 = 1280
)

// PodNetwork is [cnicore.PodNetwork] on Linux: a veth pair per pod, wired
// as the package documentation describes. The zero value is ready to use.
//
// How it reads a [cnicore.InterfaceRequest]: NetNS is the path of the pod's
// network namespace (CNI_NETNS); ContainerIfName the interface name inside
// the pod (CNI_IFNAME, usually eth0); HostIfName the host end's name,
// normally from [PodNetwork.HostIfName]. MTU applies to both ends, 0 means
// [DefaultMTU]; it must be 68..65535, and at least 1280 when the pod has an
// IPv6 address. Only the address of each of Addresses matters: they are
// programmed as /32 and /128 whatever the prefix length says, because the pod
// reaches everything through the host, never on-link; at least one is
// required and duplicates are merged. ContainerMAC, if set, is the pod
// interface's MAC (cni.projectcalico.org/hwAddr); otherwise the kernel picks
// one.
type PodNetwork struct {
	// VethPrefix starts the host ends' names; empty means
	// [DefaultHostVethPrefix].
	VethPrefix string

	// inject, in tests, runs before each named step of Setup; an error from
	// it fails the step, to prove the rollback.
	inject func(step string) error
	// machine, in tests, replaces the kernel (nil: realMachine).
	machine machine
}

func (p *PodNetwork) machineOrReal() machine {
	if p.machine == nil {
		return realMachine{}
	}
	return p.machine
}

var _ cnicore.PodNetwork = (*PodNetwork)(nil)

// HostIfName names the host end of a pod's veth ([HostVethName]).
func (p *PodNetwork) HostIfName(namespace, pod string) string {
	return HostVethName(p.VethPrefix, namespace, pod)
}

// Setup steps, named for errors and for failure injection in tests.
const (
	stepOpen        = "open"
	stepRemoveStale = "remove-stale"
	stepCreateVeth  = "create-veth"
	stepContSysctls = "container-sysctls"
	stepHostSysctls = "host-sysctls"
	stepHostUp      = "host-up"
	stepContUp      = "container-up"
	stepContAddrs   = "container-addresses"
	stepContRoutes  = "container-routes"
	stepHostRoutes  = "host-routes"
	stepWaitReady   = "wait-ready"
	stepBuildResult = "result"
)

// Setup creates the pod's interface as described in the package
// documentation (CNI ADD). On error nothing it created remains. See the
// package documentation for which namespace is "host". The result's
// addresses are the programmed ones: /32 and /128, deduplicated, in request
// order.
func (p *PodNetwork) Setup(ctx context.Context, req cnicore.InterfaceRequest) (res *cnicore.InterfaceResult, err error) {
	addrs, mtu, err := normalize(req)
	if err != nil {
		return nil, fmt.Errorf("invalid pod interface request: %w", err)
	}
	s := &setup{ctx: ctx, m: p.machineOrReal(), req: req, addrs: addrs, mtu: mtu, contWhere: containerWhere(req.NetNS)}
	for _, a := range addrs {
		s.v4 = s.v4 || a.Addr().Is4()
		s.v6 = s.v6 || a.Addr().Is6()
	}
	defer s.close()
	defer func() {
		if err != nil {
			if rbErr := s.rollback(); rbErr != nil {
				err = errors.Join(err, fmt.Errorf("rolling back pod interface %s: %w", req.HostIfName, rbErr))
			}
			res = nil
		}
	}()

	for _, step := range s.steps() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("setting up pod interface %s before step %s: %w", req.HostIfName, step.name, err)
		}
		if p.inject != nil {
			if err := p.inject(step.name); err != nil {
				return nil, fmt.Errorf("step %s: %w", step.name, err)
			}
		}
		if err := step.run(); err != nil {
			return nil, err
		}
	}
	return s.res, nil
}

type step struct {
	name string
	run  func() error
}

// steps lists Setup's steps in order; tests iterate the names.
func (s *setup) steps() []step {
	return []step{
		{stepOpen, s.open},
		{stepRemoveStale, s.removeStale},
		{stepCreateVeth, s.createVeth},
		{stepContSysctls, s.containerSysctls},
		{stepHostSysctls, s.hostSysctls},
		{stepHostUp, s.hostUp},
		{stepContUp, s.containerUp},
		{stepContAddrs, s.containerAddresses},
		{stepContRoutes, s.containerRoutes},
		{stepHostRoutes, s.hostRoutes},
		{stepWaitReady, s.waitReady},
		{stepBuildResult, s.buildResult},
	}
}

// normalize validates r and returns its addresses as host prefixes and the
// effective MTU.
func normalize(r cnicore.InterfaceRequest) ([]netip.Prefix, int, error) {
	if r.NetNS == "" {
		return nil, 0, errors.New("NetNS (container netns path) is empty")
	}
	if err := validIfName(r.ContainerIfName); err != nil {
		return nil, 0, fmt.Errorf("ContainerIfName: %w", err)
	}
	if err := validIfName(r.HostIfName); err != nil {
		return nil, 0, fmt.Errorf("HostIfName: %w", err)
	}
	if len(r.Addresses) == 0 {
		return nil, 0, errors.New("no pod addresses")
	}
	var addrs []netip.Prefix
	v6 := false
	for _, p := range r.Addresses {
		a := p.Addr().Unmap()
		switch {
		case !p.IsValid():
			return nil, 0, fmt.Errorf("address %q is not a valid prefix", p)
		case a.Zone() != "":
			return nil, 0, fmt.Errorf("address %s has a zone; pod addresses cannot", p)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast():
			return nil, 0, fmt.Errorf("address %s cannot be a pod address (unspecified, multicast, loopback or link-local)", p)
		}
		h := netip.PrefixFrom(a, a.BitLen())
		if !slices.Contains(addrs, h) {
			addrs = append(addrs, h)
		}
		v6 = v6 || a.Is6()
	}
	mtu := r.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < minMTU || mtu > maxMTU {
		return nil, 0, fmt.Errorf("MTU %d out of range for a veth (%d..%d)", r.MTU, minMTU, maxMTU)
	}
	if v6 && mtu < minMTUIPv6 {
		return nil, 0, fmt.Errorf("MTU %d is below IPv6's minimum of %d and the pod has an IPv6 address", mtu, minMTUIPv6)
	}
	if len(r.ContainerMAC) != 0 {
		m := r.ContainerMAC
		if len(m) != 6 || m[0]&1 != 0 || slices.Equal(m, make(net.HardwareAddr, 6)) {
			return nil, 0, fmt.Errorf("ContainerMAC %s is not a unicast Ethernet address", m)
		}
	}
	return addrs, mtu, nil
}

// validIfName mirrors the kernel's dev_valid_name.
func validIfName(name string) error {
	switch {
	case name == "":
		return errors.New("empty interface name")
	case len(name) > maxIfNameLen:
		return fmt.Errorf("interface name %q longer than %d bytes", name, maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is reserved", name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("interface name %q contains '/', ':', whitespace or NUL", name)
	}
	return nil
}

// setup carries one Setup call's state, including what to undo.
type setup struct {
	ctx       context.Context
	req       cnicore.InterfaceRequest
	addrs     []netip.Prefix
	mtu       int
	v4, v6    bool
	contWhere string

	m        machine
	contNS   podNS
	host     netlinkx.Handle
	cont     netlinkx.Handle
	hostLink *netlinkx.Link // set once created
	contLink *netlinkx.Link
	// addedRoutes are the host routes added so far, for rollback.
	addedRoutes []netlinkx.Route
	res         *cnicore.InterfaceResult
}

func (s *setup) open() error {
	var err error
	if s.host, err = s.m.openHost(s.ctx); err != nil {
		return err
	}
	if s.contNS, err = s.m.openPod(s.ctx, s.req.NetNS); err != nil {
		return err
	}
	s.cont = s.contNS.handle()
	return nil
}

func (s *setup) close() {
	if s.host != nil {
		_ = s.host.Close()
	}
	if s.contNS != nil {
		_ = s.contNS.Close()
	}
}

// removeStale deletes a host veth left with our name: the pod's previous
// sandbox (whose container end goes with it) or a crashed ADD. Anything that
// is not a veth is not ours to delete.
func (s *setup) removeStale() error {
	name := s.req.HostIfName
	l, err := linkByName(s.host, name)
	if err != nil {
		return fmt.Errorf("looking up stale host veth %s in %s: %w", name, hostWhere, err)
	}
	if l != nil {
		if !isVeth(l) {
			return fmt.Errorf("%s already has a %s interface named %s; refusing to replace a non-veth", hostWhere, l.Kind, name)
		}
		if err := s.host.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
			return fmt.Errorf("deleting stale host veth %s in %s: %w", name, hostWhere, err)
		}
	}
	// Checked here, not left to the kernel's EEXIST, to name the culprit.
	l, err = linkByName(s.cont, s.req.ContainerIfName)
	if err != nil {
		return fmt.Errorf("looking up %s in %s: %w", s.req.ContainerIfName, s.contWhere, err)
	}
	if l != nil {
		return fmt.Errorf("%s already has a %s interface named %s (index %d)",
			s.contWhere, l.Kind, s.req.ContainerIfName, l.Index)
	}
	return nil
}

// createVeth creates both ends in one request, the peer directly in the pod
// namespace under its final name: there is never a moment when a half-named
// or half-placed pair exists.
func (s *setup) createVeth() error {
	l, err := s.host.LinkAdd(netlinkx.NewLink{
		Name:             s.req.HostIfName,
		Kind:             "veth",
		MTU:              s.mtu,
		HardwareAddr:     hostMAC,
		PeerName:         s.req.ContainerIfName,
		PeerHardwareAddr: s.req.ContainerMAC,
		PeerNS:           s.cont,
	})
	if err != nil {
		if l.Name != "" {
			// Created but not read back: rollback finds it by name.
			s.hostLink = &l
		}
		return fmt.Errorf("creating veth %s (%s) <-> %s (%s) with MTU %d: %w",
			s.req.HostIfName, hostWhere, s.req.ContainerIfName, s.contWhere, s.mtu, err)
	}
	s.hostLink = &l
	c, err := s.cont.LinkByName(s.req.ContainerIfName)
	if err != nil {
		return fmt.Errorf("looking up new veth end %s in %s: %w", s.req.ContainerIfName, s.contWhere, err)
	}
	s.contLink = &c
	return nil
}

func (s *setup) containerSysctls() error {
	if !s.v6 {
		return nil
	}
	return s.contNS.writeSysctls(containerSysctls(s.req.ContainerIfName))
}

// hostSysctls runs on the calling thread, which is in the host namespace
// (see the package documentation).
func (s *setup) hostSysctls() error {
	return s.m.writeHostSysctls(hostSysctls(s.req.HostIfName, s.v4, s.v6))
}

func (s *setup) hostUp() error {
	if err := s.host.LinkSetUp(s.hostLink.Index); err != nil {
		return fmt.Errorf("bringing up %s in %s: %w", s.req.HostIfName, hostWhere, err)
	}
	return nil
}

func (s *setup) containerUp() error {
	if err := s.cont.LinkSetUp(s.contLink.Index); err != nil {
		return fmt.Errorf("bringing up %s in %s: %w", s.req.ContainerIfName, s.contWhere, err)
	}
	return nil
}

func (s *setup) containerAddresses() error {
	for _, p := range s.addrs {
		a := netlinkx.Addr{LinkIndex: s.contLink.Index, Prefix: p, NoDAD: p.Addr().Is6()}
		if err := s.cont.AddrAdd(a); err != nil {
			return fmt.Errorf("adding address %s to %s in %s: %w", p, s.req.ContainerIfName, s.contWhere, err)
		}
	}
	return nil
}

// containerRoutes returns the routes Setup puts in the pod, in order (the
// on-link route to the IPv4 gateway must precede the default route via it).
func containerRoutes(ifIndex int, v4, v6 bool) []netlinkx.Route {
	var out []netlinkx.Route
	if v4 {
		out = append(out,
			netlinkx.Route{LinkIndex: ifIndex, Dst: netip.PrefixFrom(gatewayV4, 32), Scope: netlinkx.ScopeLink},
			netlinkx.Route{LinkIndex: ifIndex, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gatewayV4},
		)
	}
	if v6 {
		out = append(out, netlinkx.Route{LinkIndex: ifIndex, Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gw: gatewayV6})
	}
	return out
}

func (s *setup) containerRoutes() error {
	for _, r := range containerRoutes(s.contLink.Index, s.v4, s.v6) {
		if err := s.cont.RouteAdd(r); err != nil {
			return fmt.Errorf("adding route %s in %s: %w", describeRoute(r, s.req.ContainerIfName), s.contWhere, err)
		}
	}
	return nil
}

func hostRoute(ifIndex int, p netip.Prefix) netlinkx.Route {
	r := netlinkx.Route{LinkIndex: ifIndex, Dst: p, Protocol: RouteProtocol, Table: netlinkx.TableMain}
	if p.Addr().Is4() {
		r.Scope = netlinkx.ScopeLink
	}
	return r
}

func (s *setup) hostRoutes() error {
	for _, p := range s.addrs {
		r := hostRoute(s.hostLink.Index, p)
		if err := s.host.RouteAdd(r); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%w (%s)", err, s.describeExisting(p))
			}
			return fmt.Errorf("adding route %s in %s: %w", describeRoute(r, s.req.HostIfName), hostWhere, err)
		}
		s.addedRoutes = append(s.addedRoutes, r)
	}
	return nil
}

// describeExisting names the interface that already has a route to p: the
// likely culprit is a pod whose address was reused before its DEL ran.
func (s *setup) describeExisting(p netip.Prefix) string {
	routes, err := s.host.RouteList(netlinkx.TableMain)
	if err != nil {
		return "a route to it already exists"
	}
	for _, r := range routes {
		if r.Dst != p {
			continue
		}
		dev := fmt.Sprintf("ifindex %d", r.LinkIndex)
		if l, err := s.host.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Name
		}
		return fmt.Sprintf("a route to %s already exists via %s", p, dev)
	}
	return "a route to it already exists"
}

// linkReadyTimeout bounds waitReady. The kernel's linkwatch handles a
// carrier change at once for a veth, or after at most a second for devices
// whose events it batches; twice that is plenty.
const linkReadyTimeout = 2 * time.Second

// waitReady waits, briefly and boundedly, until the kernel has activated both
// ends. Carrier-on is applied asynchronously (linkwatch): until then a
// device's qdisc is "noop", which drops every packet. In
// this kernel, about a quarter of new pods lost their first packets that way
// and saw a one-second stall (ARP/ND or TCP SYN retransmit). Waiting costs
// well under a millisecond. Not becoming ready in time is not an error: the
// interface is correct and will come up; it only means early packets may be
// lost.
func (s *setup) waitReady() error {
	deadline := time.Now().Add(linkReadyTimeout)
	delay := 100 * time.Microsecond
	for {
		if linkReady(s.host, s.req.HostIfName) && linkReady(s.cont, s.req.ContainerIfName) {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s and %s to come up: %w", s.req.HostIfName, s.req.ContainerIfName, s.ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// linkReady reports whether linkwatch has processed the link's carrier:
// it sets the operational state and activates the qdisc in the same step.
func linkReady(h netlinkx.Handle, name string) bool {
	l, err := h.LinkByName(name)
	return err == nil && l.OperUp
}

func (s *setup) buildResult() error {
	s.res = &cnicore.InterfaceResult{
		HostIfName:   s.req.HostIfName,
		HostMAC:      slices.Clone(hostMAC),
		ContainerMAC: slices.Clone(s.contLink.HardwareAddr),
		Addresses:    slices.Clone(s.addrs),
		SandboxPath:  s.req.NetNS,
		GatewayV4:    gatewayV4,
		GatewayV6:    gatewayV6,
	}
	return nil
}

// rollback undoes what Setup did, newest first: host routes (the kernel would
// drop them with the link, but a half-deleted link must not leave them), then
// the veth, which takes its container end and everything on it. It runs
// whatever ctx says: a failed ADD must not leave an interface behind.
func (s *setup) rollback() error {
	var errs []error
	for _, r := range slices.Backward(s.addedRoutes) {
		if err := s.host.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !netlinkx.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting route %s in %s: %w", describeRoute(r, s.req.HostIfName), hostWhere, err))
		}
	}
	if s.hostLink != nil {
		err := errNoIndex
		if s.hostLink.Index != 0 {
			err = s.host.LinkDel(s.hostLink.Index)
		} else if l, lerr := linkByName(s.host, s.req.HostIfName); lerr == nil && l != nil && isVeth(l) {
			err = s.host.LinkDel(l.Index)
		}
		switch {
		case err == nil:
		case errors.Is(err, errNoIndex) || netlinkx.IsNotFound(err):
			// Host end already gone; make sure the container end is too.
			if l, lerr := linkByName(s.cont, s.req.ContainerIfName); lerr == nil && l != nil && isVeth(l) {
				if err := s.cont.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting %s in %s: %w", s.req.ContainerIfName, s.contWhere, err))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("deleting veth %s in %s: %w", s.req.HostIfName, hostWhere, err))
		}
	}
	return errors.Join(errs...)
}

// errNoIndex marks a host veth that was never read back (rollback looks it up by name).
var errNoIndex = errors.New("host veth index unknown")

// describeRoute renders r roughly as `ip route` would, for errors.
func describeRoute(r netlinkx.Route, dev string) string {
	var b strings.Builder
	switch {
	case r.Dst.IsValid() && r.Dst.Bits() != 0:
		b.WriteString(r.Dst.String())
	default:
		b.WriteString("default")
	}
	if r.Gw.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Gw)
	}
	fmt.Fprintf(&b, " dev %s", dev)
	if r.Scope == netlinkx.ScopeLink {
		b.WriteString(" scope link")
	}
	if r.Protocol != 0 {
		fmt.Fprintf(&b, " proto %d", r.Protocol)
	}
	return b.String()
}
