//go:build linux

package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/startup/mtu"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// Calico's defaults, which Windows nodes (HNS) expect of a VXLAN peer.
const (
	DefaultVXLANVNI  = 4096
	DefaultVXLANPort = 4789
)

// IPIPDevice is the ipip module's fallback device, which Calico uses too. It is not in
// common/config/owned.go: tortie does not name it, the kernel does, and it cannot be deleted (Cleanup
// only removes its addresses and takes it down).
const IPIPDevice = "tunl0"

// LocalTunnels are this node's own tunnel addresses and VTEP MACs, from its Node resource (start-up
// allocates and publishes them); the calculation sends VTEPs of remote nodes only.
type LocalTunnels struct {
	VXLANv4, VXLANv6 netip.Addr
	// MACv4 and MACv6 are Node.spec.vxlanTunnelMACAddr(V6); empty: dpmodel.DerivedVTEPMAC, as the calculation
	// assumes for a node that published none.
	MACv4, MACv6 string
	IPIP         netip.Addr
}

// Options configure a Manager.
type Options struct {
	// Handle is netlink in the node's network namespace. Required.
	Handle netlinkx.Handle
	// Logger receives changes at Info and per-object failures at Warn (nil: discarded).
	Logger *slog.Logger
	// Local are this node's tunnel addresses (see SetLocalTunnels).
	Local LocalTunnels
	// MTUFile receives the pod MTU ("": not written; the agent passes config.MTUFile).
	MTUFile string
	// MTUIfacePattern selects the host uplinks whose smallest MTU is the host MTU (nil:
	// mtu.DefaultIfacePattern, Calico's).
	MTUIfacePattern *regexp.Regexp
}

// Manager programs routes, tunnel devices, FDB and neighbour entries. Like a platform.Dataplane it is
// driven from one goroutine and needs no locking.
type Manager struct {
	h   netlinkx.Handle
	log *slog.Logger
	o   Options

	haveCfg bool
	cfg     dpmodel.Config
	local   LocalTunnels
	routes  map[netip.Prefix]dpmodel.Route
	vteps   map[string]dpmodel.VTEP
	hosts   map[string]dpmodel.Host
	pools   map[netip.Prefix]dpmodel.Pool

	// dirty: desired state changed, or the last Apply failed, since the last successful Apply.
	dirty bool
}

// New returns a Manager. Nothing is read or written until Apply.
func New(o Options) (*Manager, error) {
	if o.Handle == nil {
		return nil, errors.New("routing: no netlink handle")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{h: o.Handle, log: log, o: o, local: o.Local, dirty: true,
		routes: map[netip.Prefix]dpmodel.Route{}, vteps: map[string]dpmodel.VTEP{}, hosts: map[string]dpmodel.Host{},
		pools: map[netip.Prefix]dpmodel.Pool{}}, nil
}

// SetLocalTunnels replaces this node's tunnel addresses and MACs (after start-up changed the Node).
func (m *Manager) SetLocalTunnels(l LocalTunnels) {
	if l != m.local {
		m.local, m.dirty = l, true
	}
}

// OnUpdate records one update; kinds other than routes, VTEPs, hosts, pools and configuration (policy,
// endpoints, IP sets) are ignored. No I/O.
func (m *Manager) OnUpdate(u dpmodel.Update) {
	switch u := u.(type) {
	case dpmodel.ConfigUpdate:
		m.cfg, m.haveCfg = u.Config, true
	case dpmodel.RouteUpdate:
		m.routes[u.Dst] = u.Route
	case dpmodel.RouteRemove:
		delete(m.routes, u.Dst)
	case dpmodel.VTEPUpdate:
		m.vteps[u.Node] = u.VTEP
	case dpmodel.VTEPRemove:
		delete(m.vteps, u.Node)
	case dpmodel.HostUpdate:
		m.hosts[u.Node] = u.Host
	case dpmodel.HostRemove:
		delete(m.hosts, u.Node)
	case dpmodel.PoolUpdate:
		m.pools[u.CIDR] = u.Pool
	case dpmodel.PoolRemove:
		delete(m.pools, u.CIDR)
	default:
		return
	}
	m.dirty = true
}

// QueueResync makes the next Apply read the kernel and repair drift even if nothing changed.
func (m *Manager) QueueResync() { m.dirty = true }

// family is one address family's view of this node.
type family struct {
	v6         bool
	hostIP     netip.Addr // this node's underlay address
	parent     int        // the link holding it (0: none)
	tunnelIP   netip.Addr // this node's VXLAN tunnel address
	mac        net.HardwareAddr
	device     string // VXLAN device name
	enabled    bool   // VXLAN enabled for this family
	vxlanIndex int    // the VXLAN device once ensured (0: absent)
}

// hostState is what Apply read of the kernel.
type hostState struct {
	links  map[string]netlinkx.Link
	byIdx  map[int]netlinkx.Link
	addrs  []netlinkx.Addr
	routes []netlinkx.Route
}

func (m *Manager) readHost() (*hostState, error) {
	links, err := m.h.LinkList()
	if err != nil {
		return nil, err
	}
	addrs, err := m.h.AddrList(0)
	if err != nil {
		return nil, err
	}
	routes, err := m.h.RouteList(netlinkx.TableMain)
	if err != nil {
		return nil, err
	}
	hs := &hostState{links: map[string]netlinkx.Link{}, byIdx: map[int]netlinkx.Link{}, addrs: addrs, routes: routes}
	for _, l := range links {
		hs.links[l.Name], hs.byIdx[l.Index] = l, l
	}
	return hs, nil
}

func (hs *hostState) hasAddr(a netlinkx.Addr) bool {
	return slices.ContainsFunc(hs.addrs, func(x netlinkx.Addr) bool { return x.LinkIndex == a.LinkIndex && x.Prefix == a.Prefix })
}

func (hs *hostState) linkWithAddr(a netip.Addr) int {
	if !a.IsValid() {
		return 0
	}
	for _, x := range hs.addrs {
		if x.Prefix.Addr() == a {
			return x.LinkIndex
		}
	}
	return 0
}

// Apply programs the difference between desired state and the kernel. It does nothing when nothing
// changed since the last successful Apply and no resync is queued. Every object is attempted; the
// failures are returned together, and the next Apply retries them.
func (m *Manager) Apply(ctx context.Context) error {
	if !m.dirty || !m.haveCfg {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hs, err := m.readHost()
	if err != nil {
		return fmt.Errorf("reading the host's links, addresses and routes: %w", err)
	}
	var errs []error
	fams := m.families(hs)
	res := m.mtus(hs)
	for _, f := range fams {
		if err := m.ensureVXLAN(hs, f, res); err != nil {
			errs = append(errs, err)
		}
		if f.vxlanIndex != 0 {
			errs = append(errs, m.ensureVTEPs(f)...)
		}
	}
	ipipIndex, err := m.ensureIPIP(hs, res.IPIP)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, m.syncRoutes(hs, fams, ipipIndex)...)
	if err := m.writeMTUFile(res.Pod); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return m.report(errs)
	}
	m.dirty = false
	return nil
}

// maxReported bounds the errors logged and returned by one Apply: a missing tunnel device fails every
// route through it, and a thousand identical lines help nobody.
const maxReported = 20

func (m *Manager) report(errs []error) error {
	shown := errs
	if len(errs) > maxReported {
		shown = append(slices.Clone(errs[:maxReported]), fmt.Errorf("and %d more errors like these", len(errs)-maxReported))
	}
	for _, e := range shown {
		m.log.Warn("routing: not programmed; retrying on the next apply", "error", e.Error())
	}
	return errors.Join(shown...)
}

func (m *Manager) families(hs *hostState) []*family {
	me := m.hosts[m.cfg.NodeName]
	v4 := &family{hostIP: me.IPv4.Addr(), tunnelIP: m.local.VXLANv4, device: config.VXLANDevice, enabled: m.cfg.VXLANEnabled}
	v6 := &family{v6: true, hostIP: me.IPv6.Addr(), tunnelIP: m.local.VXLANv6, device: config.VXLANDeviceV6,
		enabled: m.cfg.VXLANEnabledV6}
	v4.mac = m.localMAC(m.local.MACv4, m.cfg.NodeName)
	v6.mac = m.localMAC(m.local.MACv6, m.cfg.NodeName+"-v6")
	for _, f := range []*family{v4, v6} {
		f.parent = hs.linkWithAddr(f.hostIP)
	}
	return []*family{v4, v6}
}

func (m *Manager) localMAC(published, name string) net.HardwareAddr {
	if mac, err := net.ParseMAC(published); err == nil && len(mac) == 6 {
		return mac
	}
	return dpmodel.DerivedVTEPMAC(name)
}

// mtus computes the device and pod MTUs with common/startup/mtu, the computation start-up used for the
// file's initial value, and start-up's notion of "in use", so the file changes hands without changing:
// IPIP and VXLAN as the configuration says (enabled by FELIX_* or by any pool using them), VXLAN over
// IPv6 only when, besides, an IPv6 pool uses VXLAN (the layered configuration turns VXLANEnabledV6 on
// with IPv6 support alone).
func (m *Manager) mtus(hs *hostState) mtu.Result {
	v6Pool := false
	for cidr, p := range m.pools {
		v6Pool = v6Pool || (cidr.Addr().Is6() && p.VXLANMode != dpmodel.EncapNever)
	}
	var ifaces []autodetect.Interface
	for _, l := range slices.SortedFunc(maps.Values(hs.byIdx), func(a, b netlinkx.Link) int { return a.Index - b.Index }) {
		ifaces = append(ifaces, autodetect.Interface{Name: l.Name, Index: l.Index, Up: l.Up && l.OperUp, MTU: l.MTU})
	}
	res := mtu.Calculate(ifaces, m.o.MTUIfacePattern, mtu.Encap{
		IPIP: m.cfg.IPIPEnabled, VXLAN: m.cfg.VXLANEnabled, VXLANV6: m.cfg.VXLANEnabledV6 && v6Pool,
		IPIPMTU: m.cfg.IPIPMTU, VXLANMTU: m.cfg.VXLANMTU, VXLANMTUV6: m.cfg.VXLANMTUV6,
	})
	if res.Warning != "" {
		m.log.Warn("routing: MTU", "warning", res.Warning)
	}
	return res
}

// writeMTUFile keeps the pod MTU file current: this manager owns the file while the agent runs (see
// docs/dataplane-linux.md, "MTU"). It is checked on every Apply that reads the host, so a removed or
// edited file is repaired on the next resync, and it is only rewritten when the number differs.
func (m *Manager) writeMTUFile(pod int) error {
	if m.o.MTUFile == "" {
		return nil
	}
	changed, err := mtu.UpdateMTUFile(m.o.MTUFile, pod)
	if err != nil {
		return err
	}
	if changed {
		m.log.Info("routing: wrote the pod MTU", "file", m.o.MTUFile, "mtu", pod)
	}
	return nil
}

// ensureVXLAN makes f's VXLAN device match, or removes it when the family does not use VXLAN.
func (m *Manager) ensureVXLAN(hs *hostState, f *family, res mtu.Result) error {
	l, exists := hs.links[f.device]
	if exists && l.Kind != "vxlan" {
		return fmt.Errorf("link %s exists and is a %s device, not tortie's VXLAN device: rename or remove it", f.device, l.Kind)
	}
	want := f.enabled && f.tunnelIP.IsValid() && f.hostIP.IsValid() && f.parent != 0
	if !want {
		if f.enabled && f.tunnelIP.IsValid() {
			// Enabled but the underlay is not known (yet): keep what is there rather than cut traffic.
			if exists {
				f.vxlanIndex = l.Index
			}
			if !f.hostIP.IsValid() {
				return fmt.Errorf("VXLAN device %s: node %q has no %s address in its Node resource", f.device, m.cfg.NodeName, fam(f.v6))
			}
			return fmt.Errorf("VXLAN device %s: no link holds the node address %s", f.device, f.hostIP)
		}
		if exists {
			if err := m.h.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
				return fmt.Errorf("removing VXLAN device %s (not in use): %w", f.device, err)
			}
			m.log.Info("routing: removed VXLAN device", "device", f.device)
		}
		return nil
	}
	mtuWant := res.VXLAN
	if f.v6 {
		mtuWant = res.VXLANV6
	}
	vx := netlinkx.VXLAN{VNI: cmp.Or(m.cfg.VXLANVNI, DefaultVXLANVNI), Port: cmp.Or(m.cfg.VXLANPort, DefaultVXLANPort),
		Local: f.hostIP, ParentIndex: f.parent}
	if exists && (l.VXLAN == nil || *l.VXLAN != vx || !slices.Equal(l.HardwareAddr, f.mac)) {
		// VNI, port, source, parent and MAC cannot be changed in place.
		if err := m.h.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
			return fmt.Errorf("removing VXLAN device %s to recreate it: %w", f.device, err)
		}
		m.log.Info("routing: recreating VXLAN device", "device", f.device, "vni", vx.VNI, "port", vx.Port, "local", f.hostIP.String())
		exists = false
	}
	if !exists {
		nl, err := m.h.LinkAdd(netlinkx.NewLink{Name: f.device, Kind: "vxlan", MTU: mtuWant, HardwareAddr: f.mac, VXLAN: &vx})
		if err != nil {
			if nl.Name != "" {
				_ = m.h.LinkDel(nl.Index)
			}
			return fmt.Errorf("creating VXLAN device %s (VNI %d, port %d, local %s): %w", f.device, vx.VNI, vx.Port, f.hostIP, err)
		}
		m.log.Info("routing: created VXLAN device", "device", f.device, "vni", vx.VNI, "port", vx.Port, "mac", f.mac.String(), "mtu", mtuWant)
		l = nl
	}
	if err := m.ensureDevice(l, mtuWant, f.tunnelIP); err != nil {
		return fmt.Errorf("VXLAN device %s: %w", f.device, err)
	}
	f.vxlanIndex = l.Index
	return nil
}

func fam(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// ensureDevice sets a tunnel device's MTU, its single tunnel address (host prefix; link-local
// addresses the kernel adds are left alone) and brings it up.
func (m *Manager) ensureDevice(l netlinkx.Link, mtuWant int, addr netip.Addr) error {
	if l.MTU != mtuWant {
		if err := m.h.LinkSetMTU(l.Index, mtuWant); err != nil {
			return fmt.Errorf("setting MTU %d: %w", mtuWant, err)
		}
		m.log.Info("routing: set device MTU", "device", l.Name, "mtu", mtuWant)
	}
	addrs, err := m.h.AddrList(l.Index)
	if err != nil {
		return err
	}
	want := netip.PrefixFrom(addr, addr.BitLen())
	have := false
	for _, a := range addrs {
		switch {
		case a.Prefix == want:
			have = true
		case a.Prefix.Addr().IsLinkLocalUnicast():
		default:
			if err := m.h.AddrDel(a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("removing stale address %s: %w", a.Prefix, err)
			}
		}
	}
	if !have {
		if err := m.h.AddrAdd(netlinkx.Addr{LinkIndex: l.Index, Prefix: want, NoDAD: addr.Is6()}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding address %s: %w", want, err)
		}
	}
	if !l.Up {
		if err := m.h.LinkSetUp(l.Index); err != nil {
			return fmt.Errorf("bringing it up: %w", err)
		}
	}
	return nil
}

// ensureVTEPs programs one permanent neighbour (tunnel address → MAC) and FDB entry (MAC → underlay
// address) per remote VTEP of f's family on f's device, and removes the others.
func (m *Manager) ensureVTEPs(f *family) []error {
	type entry struct {
		node string
		tip  netip.Addr
		mac  net.HardwareAddr
		dst  netip.Addr
	}
	var errs []error
	var want []entry
	for _, node := range slices.Sorted(maps.Keys(m.vteps)) {
		v := m.vteps[node]
		e := entry{node: node, tip: v.TunnelIPv4, dst: v.ParentIPv4}
		macS := v.MACv4
		if f.v6 {
			e.tip, e.dst, macS = v.TunnelIPv6, v.ParentIPv6, v.MACv6
		}
		if !e.tip.IsValid() || !e.dst.IsValid() {
			continue
		}
		mac, err := net.ParseMAC(macS)
		if err != nil || len(mac) != 6 {
			errs = append(errs, fmt.Errorf("VTEP of node %q: MAC %q is not a 6-byte MAC address; fix the Node's vxlanTunnelMACAddr", node, macS))
			continue
		}
		e.mac = mac
		want = append(want, e)
	}
	neighs, err := m.h.NeighList(f.vxlanIndex)
	if err != nil {
		return append(errs, fmt.Errorf("listing neighbours of %s: %w", f.device, err))
	}
	fdbs, err := m.h.FDBList(f.vxlanIndex)
	if err != nil {
		return append(errs, fmt.Errorf("listing FDB entries of %s: %w", f.device, err))
	}
	keepN, keepF := map[netip.Addr]bool{}, map[string]bool{}
	for _, e := range want {
		keepN[e.tip], keepF[e.mac.String()] = true, true
		if !slices.ContainsFunc(neighs, func(n netlinkx.Neigh) bool { return n.IP == e.tip && slices.Equal(n.MAC, e.mac) }) {
			if err := m.h.NeighSet(netlinkx.Neigh{LinkIndex: f.vxlanIndex, IP: e.tip, MAC: e.mac}); err != nil {
				errs = append(errs, fmt.Errorf("neighbour %s lladdr %s on %s (VTEP of node %q): %w", e.tip, e.mac, f.device, e.node, err))
			} else {
				m.log.Info("routing: set VTEP neighbour", "device", f.device, "node", e.node, "ip", e.tip.String(), "mac", e.mac.String())
			}
		}
		if !slices.ContainsFunc(fdbs, func(x netlinkx.FDB) bool { return slices.Equal(x.MAC, e.mac) && x.Dst == e.dst }) {
			if err := m.h.FDBSet(netlinkx.FDB{LinkIndex: f.vxlanIndex, MAC: e.mac, Dst: e.dst}); err != nil {
				errs = append(errs, fmt.Errorf("FDB entry %s dst %s on %s (VTEP of node %q): %w", e.mac, e.dst, f.device, e.node, err))
			} else {
				m.log.Info("routing: set VTEP FDB entry", "device", f.device, "node", e.node, "mac", e.mac.String(), "dst", e.dst.String())
			}
		}
	}
	for _, n := range neighs {
		if n.IP.Is6() == f.v6 && !keepN[n.IP] {
			if err := m.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("removing stale neighbour %s on %s: %w", n.IP, f.device, err))
			}
		}
	}
	for _, x := range fdbs {
		if !keepF[x.MAC.String()] {
			if err := m.h.FDBDel(x); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("removing stale FDB entry %s on %s: %w", x.MAC, f.device, err))
			}
		}
	}
	return errs
}

// ensureIPIP configures tunl0 when IPIP is enabled and this node has an IPIP tunnel address. Otherwise
// it only takes this node's IPIP tunnel address off tunl0 if it is there, and returns 0: the device is
// the kernel's, and other software may use it.
func (m *Manager) ensureIPIP(hs *hostState, mtuWant int) (int, error) {
	l, ok := hs.links[IPIPDevice]
	if !m.cfg.IPIPEnabled || !m.local.IPIP.IsValid() {
		if ok && l.Kind == "ipip" && m.local.IPIP.IsValid() {
			a := netlinkx.Addr{LinkIndex: l.Index, Prefix: netip.PrefixFrom(m.local.IPIP, 32)}
			if hs.hasAddr(a) {
				if err := m.h.AddrDel(a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					return 0, fmt.Errorf("removing address %s from %s (IPIP not in use): %w", a.Prefix, IPIPDevice, err)
				}
				m.log.Info("routing: removed the IPIP tunnel address", "device", IPIPDevice, "address", a.Prefix.String())
			}
		}
		return 0, nil
	}
	if ok && l.Kind != "ipip" {
		return 0, fmt.Errorf("link %s exists and is a %s device, not ipip", IPIPDevice, l.Kind)
	}
	if !ok {
		nl, err := m.h.LinkAdd(netlinkx.NewLink{Name: IPIPDevice, Kind: "ipip", MTU: mtuWant})
		if err != nil {
			return 0, fmt.Errorf("creating IPIP device %s (does the kernel have the ipip module?): %w", IPIPDevice, err)
		}
		m.log.Info("routing: created IPIP device", "device", IPIPDevice)
		l = nl
	}
	if err := m.ensureDevice(l, mtuWant, m.local.IPIP); err != nil {
		return 0, fmt.Errorf("IPIP device %s: %w", IPIPDevice, err)
	}
	return l.Index, nil
}

// want is one route tortie wants, with what it is for (errors and logs) and, when the kernel may
// refuse it for a reason the operator controls, a hint.
type want struct {
	r    netlinkx.Route
	what string
	hint string
}

// desired turns the recorded routes into kernel routes. A route that cannot be built now (its pod
// interface, VTEP or tunnel device is missing) yields an error, and its destination is kept: a route
// tortie already programmed there stays until it can be rebuilt.
func (m *Manager) desired(hs *hostState, fams []*family, ipipIndex int) (map[netip.Prefix]want, map[netip.Prefix]bool, []error) {
	out := map[netip.Prefix]want{}
	keep := map[netip.Prefix]bool{}
	var errs []error
	for _, dst := range slices.SortedFunc(maps.Keys(m.routes), prefixCompare) {
		rt := m.routes[dst]
		f := fams[0]
		if dst.Addr().Is6() {
			f = fams[1]
		}
		what := describe(dst, rt)
		r := netlinkx.Route{Table: netlinkx.TableMain, Dst: dst.Masked(), Protocol: config.RouteProtocol, Type: netlinkx.RouteUnicast}
		var err error
		switch rt.Type {
		case dpmodel.RouteLocalWorkload:
			l, ok := hs.links[rt.InterfaceName]
			if !ok {
				err = fmt.Errorf("interface %q does not exist (yet)", rt.InterfaceName)
				break
			}
			r.LinkIndex, r.Scope = l.Index, netlinkx.ScopeLink
		case dpmodel.RouteLocalBlock:
			r.Type = netlinkx.RouteBlackhole
		case dpmodel.RouteRemoteBlock, dpmodel.RouteRemoteWorkload, dpmodel.RouteRemoteTunnel:
			err = m.remote(&r, rt, f, ipipIndex)
		default:
			err = fmt.Errorf("unknown route type %s", rt.Type)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", what, err))
			keep[r.Dst] = true
			continue
		}
		w := want{r: r, what: what}
		if rt.Encap == dpmodel.EncapNone && !rt.SameSubnet && rt.Type != dpmodel.RouteLocalWorkload && rt.Type != dpmodel.RouteLocalBlock {
			w.hint = fmt.Sprintf("node %q is outside this node's subnet and its pool does not encapsulate: set the pool's "+
				"vxlanMode or ipipMode to CrossSubnet or Always, or make the node addresses routable", rt.DstNode)
		}
		out[r.Dst] = w
	}
	return out, keep, errs
}

func (m *Manager) remote(r *netlinkx.Route, rt dpmodel.Route, f *family, ipipIndex int) error {
	switch rt.Encap {
	case dpmodel.EncapVXLAN:
		if f.vxlanIndex == 0 {
			return fmt.Errorf("VXLAN device %s is not up", f.device)
		}
		v, ok := m.vteps[rt.DstNode]
		tip := v.TunnelIPv4
		if f.v6 {
			tip = v.TunnelIPv6
		}
		if !ok || !tip.IsValid() {
			return fmt.Errorf("node %q has no %s VTEP", rt.DstNode, fam(f.v6))
		}
		r.LinkIndex = f.vxlanIndex
		if rt.Type == dpmodel.RouteRemoteTunnel && r.Dst.Addr() == tip {
			r.Scope = netlinkx.ScopeLink // the tunnel address itself: on the device, its neighbour entry resolves it
			return nil
		}
		r.Gw, r.OnLink = tip, true
	case dpmodel.EncapIPIP:
		if f.v6 {
			return errors.New("IPIP carries IPv4 only")
		}
		if ipipIndex == 0 {
			return fmt.Errorf("IPIP device %s is not configured (IPIP disabled or no local IPIP tunnel address)", IPIPDevice)
		}
		if !rt.DstNodeIP.IsValid() {
			return fmt.Errorf("node %q has no IPv4 address", rt.DstNode)
		}
		r.Gw, r.LinkIndex, r.OnLink = rt.DstNodeIP, ipipIndex, true
	case dpmodel.EncapNone:
		if !rt.DstNodeIP.IsValid() {
			return fmt.Errorf("node %q has no %s address", rt.DstNode, fam(f.v6))
		}
		r.Gw = rt.DstNodeIP
		if rt.SameSubnet && f.parent != 0 {
			r.LinkIndex, r.OnLink = f.parent, true
		}
	default:
		return fmt.Errorf("unknown encapsulation %s", rt.Encap)
	}
	return nil
}

func describe(dst netip.Prefix, rt dpmodel.Route) string {
	switch rt.Type {
	case dpmodel.RouteLocalWorkload:
		return fmt.Sprintf("%s dev %s (local pod)", dst, rt.InterfaceName)
	case dpmodel.RouteLocalBlock:
		return fmt.Sprintf("blackhole %s (local block)", dst)
	}
	return fmt.Sprintf("%s to node %q %s (%s, encap %s)", dst, rt.DstNode, rt.DstNodeIP, rt.Type, rt.Encap)
}

func prefixCompare(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// sameRoute reports whether the kernel's route k is the wanted route d.
func sameRoute(k, d netlinkx.Route) bool {
	kt := cmp.Or(k.Type, netlinkx.RouteUnicast)
	if k.Dst != d.Dst || kt != d.Type {
		return false
	}
	if d.Type == netlinkx.RouteBlackhole {
		return true // the kernel reports IPv6 blackholes on lo
	}
	return k.Gw == d.Gw && k.OnLink == d.OnLink && (d.LinkIndex == 0 || k.LinkIndex == d.LinkIndex)
}

// workloadLink reports whether idx is a pod interface (by the configured prefixes).
func (m *Manager) workloadLink(hs *hostState, idx int) bool {
	l, ok := hs.byIdx[idx]
	if !ok {
		return false
	}
	prefixes := m.cfg.InterfacePrefixes
	if len(prefixes) == 0 {
		prefixes = []string{config.DefaultInterfacePrefix}
	}
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(l.Name, p) })
}

// syncRoutes writes the wanted routes that differ and removes tortie's routes nobody wants. Routes of
// other protocols are never touched; one that holds a wanted destination is reported.
func (m *Manager) syncRoutes(hs *hostState, fams []*family, ipipIndex int) []error {
	wanted, keep, errs := m.desired(hs, fams, ipipIndex)
	programmed, removed := 0, 0
	defer func() {
		if programmed+removed > 0 {
			m.log.Info("routing: routes changed", "programmed", programmed, "removed", removed, "wanted", len(wanted))
		}
	}()
	ours := map[netip.Prefix]netlinkx.Route{}
	others := map[netip.Prefix]netlinkx.Route{}
	for _, r := range hs.routes {
		if r.Protocol == config.RouteProtocol {
			ours[r.Dst] = r
		} else if _, seen := others[r.Dst]; !seen {
			others[r.Dst] = r
		}
	}
	for _, dst := range slices.SortedFunc(maps.Keys(wanted), prefixCompare) {
		w := wanted[dst]
		if k, ok := ours[dst]; ok && sameRoute(k, w.r) {
			continue
		}
		if o, ok := others[dst]; ok {
			errs = append(errs, fmt.Errorf("route %s: the destination is held by a route of protocol %d (%s) that tortie does not own; remove it", w.what, o.Protocol, o))
			continue
		}
		if err := m.h.RouteReplace(w.r); err != nil {
			if w.hint != "" && (errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH)) {
				err = fmt.Errorf("%w (%s)", err, w.hint)
			}
			errs = append(errs, fmt.Errorf("route %s: %w", w.what, err))
			continue
		}
		programmed++
		m.log.Debug("routing: programmed route", "route", w.what)
	}
	for _, dst := range slices.SortedFunc(maps.Keys(ours), prefixCompare) {
		k := ours[dst]
		if _, ok := wanted[dst]; ok || keep[dst] {
			continue
		}
		if k.LinkIndex != 0 && m.workloadLink(hs, k.LinkIndex) {
			// The CNI plugin's route to a pod the calculation has not reported yet; it goes with the
			// pod's interface.
			continue
		}
		if err := m.h.RouteDel(k); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing route %s: %w", k, err))
			continue
		}
		removed++
		m.log.Debug("routing: removed route", "route", k.String())
	}
	return errs
}

// Cleanup removes everything this package owns: routes of tortie's protocol (both families), the VXLAN
// devices (with their neighbour and FDB entries), and this node's IPIP tunnel address from tunl0 when
// it is known (tunl0 itself belongs to the kernel, and other software may have put addresses on it). Idempotent; the recorded desired state is kept but the next Apply re-reads the host.
func (m *Manager) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.dirty = true
	var errs []error
	routes, err := m.h.RouteList(netlinkx.TableMain)
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if r.Protocol != config.RouteProtocol {
			continue
		}
		if err := m.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !netlinkx.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing route %s: %w", r, err))
		}
	}
	for _, name := range []string{config.VXLANDevice, config.VXLANDeviceV6} {
		l, err := m.h.LinkByName(name)
		if netlinkx.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Kind != "vxlan" {
			continue
		}
		if err := m.h.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing %s: %w", name, err))
		}
	}
	if ip := m.local.IPIP; ip.IsValid() {
		if l, err := m.h.LinkByName(IPIPDevice); err == nil && l.Kind == "ipip" {
			a := netlinkx.Addr{LinkIndex: l.Index, Prefix: netip.PrefixFrom(ip, 32)}
			if err := m.h.AddrDel(a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing address %s from %s: %w", a.Prefix, IPIPDevice, err))
			}
		}
	}
	return errors.Join(errs...)
}
