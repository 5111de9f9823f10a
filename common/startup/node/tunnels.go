package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/selector"
)

// tunnelKind is one kind of tunnel address (Calico's allocate-tunnel-addrs handles the same five).
type tunnelKind struct {
	attrType     string
	handlePrefix string
	family       int
	get          func(*api.Node) string
	set          func(*api.Node, string)
	// poolNeeds reports whether an enabled pool of the family that selects the node needs this address.
	poolNeeds func(*api.IPPool) bool
	// wanted reports whether the node wants this kind at all (WireGuard: only once Felix has published
	// a public key, and not in host-encryption mode).
	wanted func(s *starter, n *api.Node) bool
}

func encapOn(m api.EncapMode) bool { return m == api.EncapAlways || m == api.EncapCrossSubnet }

func always(*starter, *api.Node) bool { return true }

// tunnelKinds in Calico's order.
var tunnelKinds = []tunnelKind{
	{
		attrType: ipam.AttributeTypeWireguard, handlePrefix: "wireguard-tunnel-addr-", family: 4,
		get: func(n *api.Node) string {
			if n.Spec.Wireguard == nil {
				return ""
			}
			return n.Spec.Wireguard.InterfaceIPv4Address
		},
		set: func(n *api.Node, a string) {
			if n.Spec.Wireguard == nil {
				n.Spec.Wireguard = &api.NodeWireguardSpec{}
			}
			n.Spec.Wireguard.InterfaceIPv4Address = a
		},
		poolNeeds: func(*api.IPPool) bool { return true },
		wanted: func(s *starter, n *api.Node) bool {
			return n.Status.WireguardPublicKey != "" && !s.felix.wireguardHostEncryption
		},
	},
	{
		attrType: ipam.AttributeTypeWireguardV6, handlePrefix: "wireguard-v6-tunnel-addr-", family: 6,
		get: func(n *api.Node) string {
			if n.Spec.Wireguard == nil {
				return ""
			}
			return n.Spec.Wireguard.InterfaceIPv6Address
		},
		set: func(n *api.Node, a string) {
			if n.Spec.Wireguard == nil {
				n.Spec.Wireguard = &api.NodeWireguardSpec{}
			}
			n.Spec.Wireguard.InterfaceIPv6Address = a
		},
		poolNeeds: func(*api.IPPool) bool { return true },
		wanted: func(s *starter, n *api.Node) bool {
			return n.Status.WireguardPublicKeyV6 != "" && !s.felix.wireguardHostEncryption
		},
	},
	{
		attrType: ipam.AttributeTypeIPIP, handlePrefix: "ipip-tunnel-addr-", family: 4,
		get: func(n *api.Node) string {
			if n.Spec.BGP == nil {
				return ""
			}
			return n.Spec.BGP.IPv4IPIPTunnelAddr
		},
		set: func(n *api.Node, a string) {
			if n.Spec.BGP == nil {
				n.Spec.BGP = &api.NodeBGPSpec{}
			}
			n.Spec.BGP.IPv4IPIPTunnelAddr = a
		},
		poolNeeds: func(p *api.IPPool) bool { return encapOn(p.Spec.IPIPMode) },
		wanted:    always,
	},
	{
		attrType: ipam.AttributeTypeVXLAN, handlePrefix: "vxlan-tunnel-addr-", family: 4,
		get:       func(n *api.Node) string { return n.Spec.IPv4VXLANTunnelAddr },
		set:       func(n *api.Node, a string) { n.Spec.IPv4VXLANTunnelAddr = a },
		poolNeeds: func(p *api.IPPool) bool { return encapOn(p.Spec.VXLANMode) },
		wanted:    always,
	},
	{
		attrType: ipam.AttributeTypeVXLANV6, handlePrefix: "vxlan-v6-tunnel-addr-", family: 6,
		get:       func(n *api.Node) string { return n.Spec.IPv6VXLANTunnelAddr },
		set:       func(n *api.Node, a string) { n.Spec.IPv6VXLANTunnelAddr = a },
		poolNeeds: func(p *api.IPPool) bool { return encapOn(p.Spec.VXLANMode) },
		wanted:    always,
	},
}

// TunnelHandle returns the IPAM handle of a node's tunnel address of the given allocation type
// (ipam.AttributeTypeIPIP, …): ipip-tunnel-addr-<node>, vxlan-tunnel-addr-<node>,
// vxlan-v6-tunnel-addr-<node>, wireguard-tunnel-addr-<node>, wireguard-v6-tunnel-addr-<node>.
func TunnelHandle(attrType, node string) string {
	for _, k := range tunnelKinds {
		if k.attrType == attrType {
			return k.handlePrefix + node
		}
	}
	return ""
}

// ensureTunnelAddrs is step 6, Calico's allocate-tunnel-addrs run once: for each kind, the enabled
// pools (not disabled, not being deleted, allowing Tunnel use, selecting this node) that need it are
// found; an address is kept when it is still allocated to this node for this purpose inside one of
// them, else (re)allocated from them under the kind's handle; a kind no pool needs has its address
// released and cleared. A node with a VXLAN address gets a VXLAN MAC, which is never changed once set.
// The Node is written once, at the end; if that fails the addresses allocated in this run are
// released again.
func (s *starter) ensureTunnelAddrs(ctx context.Context) (err error) {
	node, err := s.getNode(ctx)
	if err != nil {
		return fmt.Errorf("reading Node %q for its tunnel addresses: %w", s.name, err)
	}
	objs, _, err := s.o.Backend.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return fmt.Errorf("listing IP pools for the tunnel addresses: %w", err)
	}
	pools := make([]*api.IPPool, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*api.IPPool); ok {
			pools = append(pools, p)
		}
	}
	ic := ipam.New(s.o.Backend, ipam.WithLogger(s.log))

	var assigned []string // handles allocated in this run
	defer func() {
		if err == nil {
			return
		}
		for _, h := range assigned {
			if rerr := ic.ReleaseByHandle(context.WithoutCancel(ctx), h); rerr != nil && !errors.Is(rerr, ipam.ErrHandleNotFound) {
				s.log.Error("could not release a tunnel address after a failed startup", "handle", h, "error", rerr)
			}
		}
	}()

	desired := map[string]string{}
	for _, k := range tunnelKinds {
		handle := k.handlePrefix + s.name
		cur := k.get(node)
		var cidrs []netip.Prefix
		if k.wanted(s, node) && !s.windowsIPIP(node, pools, k) { // windows.go: Windows has no IPIP
			cidrs = s.tunnelPools(node, pools, k)
		}
		tr := TunnelResult{Type: k.attrType, Handle: handle}
		for _, c := range cidrs {
			tr.Pools = append(tr.Pools, c.String())
		}
		ensure, release := s.tunnelFuncs(k) // windows.go: a Windows node's VXLAN address is its block's gateway
		if len(cidrs) > 0 {
			addr, action, err := ensure(ctx, ic, k, handle, cidrs, cur)
			if err != nil {
				return err
			}
			if action == TunnelAssigned {
				assigned = append(assigned, handle)
			}
			desired[k.attrType], tr.Address, tr.Action = addr, addr, action
		} else {
			if err := release(ctx, ic, k, handle, cur); err != nil {
				return err
			}
			desired[k.attrType], tr.Action = "", TunnelNone
			if cur != "" {
				tr.Action = TunnelReleased
			}
		}
		if tr.Action != TunnelNone {
			s.log.Info("tunnel address", "type", k.attrType, "handle", handle, "address", tr.Address, "action", string(tr.Action))
		}
		s.res.Tunnels = append(s.res.Tunnels, tr)
	}

	mac4, err := randomMAC(s.o.Rand)
	if err != nil {
		return fmt.Errorf("generating a VXLAN MAC address: %w", err)
	}
	mac6, err := randomMAC(s.o.Rand)
	if err != nil {
		return fmt.Errorf("generating a VXLAN MAC address: %w", err)
	}
	n, err := s.mutateNode(ctx, func(n *api.Node) error {
		for _, k := range tunnelKinds {
			if k.get(n) != desired[k.attrType] {
				k.set(n, desired[k.attrType])
			}
		}
		if n.Spec.IPv4VXLANTunnelAddr != "" && !validMAC(n.Spec.VXLANTunnelMACAddr) && s.o.GOOS != "windows" { // Windows: PublishWindowsVTEP
			n.Spec.VXLANTunnelMACAddr = mac4
		}
		if n.Spec.IPv6VXLANTunnelAddr != "" && !validMAC(n.Spec.VXLANTunnelMACAddrV6) {
			n.Spec.VXLANTunnelMACAddrV6 = mac6
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the tunnel addresses on Node %q: %w", s.name, err)
	}
	s.res.VXLANTunnelMAC, s.res.VXLANTunnelMACV6 = n.Spec.VXLANTunnelMACAddr, n.Spec.VXLANTunnelMACAddrV6
	return nil
}

// tunnelPools returns the CIDRs of the pools that need a tunnel address of kind k on this node.
func (s *starter) tunnelPools(node *api.Node, pools []*api.IPPool, k tunnelKind) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range pools {
		c, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			continue // reported by the pool step
		}
		c = c.Masked()
		if c.Addr().Is4() != (k.family == 4) {
			continue
		}
		if len(p.Spec.AllowedUses) > 0 && !slices.Contains(p.Spec.AllowedUses, api.IPPoolAllowedUseTunnel) {
			continue
		}
		if p.Spec.Disabled || p.DeletionTimestamp != nil || !k.poolNeeds(p) {
			continue
		}
		sel, err := selector.Parse(p.Spec.NodeSelector)
		if err != nil {
			s.warn(fmt.Sprintf("IP pool %q has an invalid nodeSelector (%v); not using it for tunnel addresses", p.Name, err))
			continue
		}
		if !sel.Evaluate(node.Labels) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// ensureTunnelAddr keeps or (re)allocates one tunnel address and returns it.
func (s *starter) ensureTunnelAddr(ctx context.Context, ic *ipam.Client, k tunnelKind, handle string, cidrs []netip.Prefix, cur string) (string, TunnelAction, error) {
	release := true
	if cur != "" {
		addr := addrOf(cur)
		if !addr.IsValid() {
			s.warn(fmt.Sprintf("Node %q has an unparsable %s %q; allocating a new one", s.name, k.attrType, cur))
		} else {
			alloc, err := ic.GetAssignmentAttributes(ctx, addr)
			switch {
			case errors.Is(err, ipam.ErrNotAllocated):
				s.log.Info("the tunnel address is not allocated in IPAM; allocating a new one", "type", k.attrType, "address", cur)
			case err != nil:
				return "", "", fmt.Errorf("reading the IPAM allocation of tunnel address %s (%s): %w", cur, k.attrType, err)
			case alloc.Attrs[ipam.AttributeType] == k.attrType && alloc.Attrs[ipam.AttributeNode] == s.name:
				if inAny(addr, cidrs) {
					return addr.String(), TunnelKept, nil
				}
				s.log.Info("the tunnel address is not in a pool that needs it; replacing it", "type", k.attrType, "address", cur)
			default:
				// Allocated to something else (a pod, another node): leave it to its owner.
				s.warn(fmt.Sprintf("Node %q's %s %s is allocated to handle %q (attributes %v); allocating a new one",
					s.name, k.attrType, cur, alloc.Handle, alloc.Attrs))
				release = false
			}
		}
	}
	if release {
		// Also covers a Node that lost its reference while the allocation still exists.
		if err := ic.ReleaseByHandle(ctx, handle); err != nil && !errors.Is(err, ipam.ErrHandleNotFound) {
			return "", "", fmt.Errorf("releasing the old tunnel address (handle %q): %w", handle, err)
		}
	}
	args := ipam.AutoAssignArgs{
		HandleID:    handle,
		Attrs:       map[string]string{ipam.AttributeNode: s.name, ipam.AttributeType: k.attrType},
		Hostname:    s.name,
		IntendedUse: api.IPPoolAllowedUseTunnel,
	}
	var pools []string
	for _, c := range cidrs {
		pools = append(pools, c.String())
	}
	if k.family == 4 {
		args.Num4, args.IPv4Pools = 1, pools
		if s.o.GOOS == "windows" {
			// A block a Windows node claims must keep its network, gateway, host-endpoint and
			// broadcast addresses out of IPAM, as the CNI plugin does on Windows.
			args.HostReservedAttrIPv4s = ipam.WindowsHostReserved()
		}
	} else {
		args.Num6, args.IPv6Pools = 1, pools
	}
	res, err := ic.AutoAssign(ctx, args)
	got := append(res.IPv4, res.IPv6...)
	if err != nil || len(got) == 0 {
		if len(got) > 0 {
			_ = ic.ReleaseByHandle(context.WithoutCancel(ctx), handle)
		}
		if err == nil {
			err = fmt.Errorf("the pools are full (%v)", res.Msgs)
		}
		return "", "", fmt.Errorf("allocating a %s for node %q from %s: %w", k.attrType, s.name, quoteList(pools), err)
	}
	a := got[0].Addr().String()
	s.change("allocated %s %s (handle %s)", k.attrType, a, handle)
	return a, TunnelAssigned, nil
}

// releaseTunnelAddr releases a tunnel address no pool needs any more. Beyond the handle, an address the
// Node still names is released directly when IPAM shows it under our handle (the handle object was
// lost) or with no owner at all (an allocation from before handles were used).
func (s *starter) releaseTunnelAddr(ctx context.Context, ic *ipam.Client, k tunnelKind, handle, cur string) error {
	err := ic.ReleaseByHandle(ctx, handle)
	switch {
	case err == nil:
		s.change("released %s (handle %s)", k.attrType, handle)
		return nil
	case !errors.Is(err, ipam.ErrHandleNotFound):
		return fmt.Errorf("releasing the %s (handle %q): %w", k.attrType, handle, err)
	}
	addr := addrOf(cur)
	if !addr.IsValid() {
		return nil
	}
	alloc, err := ic.GetAssignmentAttributes(ctx, addr)
	switch {
	case errors.Is(err, ipam.ErrNotAllocated):
		return nil
	case err != nil:
		return fmt.Errorf("reading the IPAM allocation of tunnel address %s (%s): %w", cur, k.attrType, err)
	case alloc.Handle == handle || (alloc.Handle == "" && len(alloc.Attrs) == 0):
		opt := ipam.ReleaseOptions{Address: addr, Handle: alloc.Handle}
		if _, err := ic.ReleaseIPs(ctx, opt); err != nil {
			return fmt.Errorf("releasing tunnel address %s (%s): %w", cur, k.attrType, err)
		}
		s.change("released %s %s", k.attrType, cur)
	default:
		s.warn(fmt.Sprintf("Node %q's old %s %s now belongs to handle %q; leaving it", s.name, k.attrType, cur, alloc.Handle))
	}
	return nil
}

func inAny(a netip.Addr, cidrs []netip.Prefix) bool {
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

// randomMAC returns a random locally administered unicast MAC (the first octet's low bits are 10).
func randomMAC(r io.Reader) (string, error) {
	b := make(net.HardwareAddr, 6)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	b[0] = b[0]&^0x01 | 0x02
	return b.String(), nil
}

// validMAC reports whether s is a 6-byte MAC address.
func validMAC(s string) bool {
	m, err := net.ParseMAC(s)
	return err == nil && len(m) == 6
}
