package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// On a Windows node the VXLAN tunnel endpoint is the HNS overlay network's: HNS answers to the network's
// distributed router MAC at the network's gateway, the first address of the node's IPAM block. So the
// node's VXLAN tunnel address is not an IPAM allocation of its own but that gateway (kept out of IPAM by
// the Windows block reservation, under windows-reserved-ipam-handle), and its VXLAN MAC is not random
// but the router MAC, which exists only once the Windows dataplane has created the network; the agent
// then publishes both with PublishWindowsVTEP. Calico for Windows publishes the same pair.

// Windows has no IPIP: HNS offers overlay (VXLAN) and L2Bridge networks, and Calico for Windows runs
// VXLAN or BGP without encapsulation only. A Windows node therefore gets no IPIP tunnel address even
// when an IPIP pool selects it (the address would be published on the Node and Linux nodes would
// tunnel to it, into nothing), and one it holds — from when the node ran Linux, or from a version
// without this rule — is released by the ordinary release path.

// windowsIPIP reports whether kind k is the IPIP address of a Windows node, which never has one. When
// IPIP pools select the node it says so: their pods cannot be reached from other nodes over IPIP.
func (s *starter) windowsIPIP(node *api.Node, pools []*api.IPPool, k tunnelKind) bool {
	if s.o.GOOS != "windows" || k.attrType != ipam.AttributeTypeIPIP {
		return false
	}
	if cidrs := s.tunnelPools(node, pools, k); len(cidrs) > 0 {
		var names []string
		for _, p := range pools {
			if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && slices.Contains(cidrs, c.Masked()) {
				names = append(names, fmt.Sprintf("%s (%s, ipipMode %s)", p.Name, p.Spec.CIDR, p.Spec.IPIPMode))
			}
		}
		s.warn(fmt.Sprintf("IPIP cannot serve Windows node %q: IPIP pools select it (%s), but Windows has no IPIP (HNS runs VXLAN only), "+
			"so the node gets no IPIP tunnel address and these pools cannot carry its pods' traffic; give them a nodeSelector that "+
			"excludes Windows nodes (e.g. \"kubernetes.io/os != 'windows'\") and give Windows nodes a pool with vxlanMode",
			s.name, strings.Join(names, ", ")), "node", s.name)
	}
	return true
}

// windowsVXLAN reports whether kind k is the IPv4 VXLAN address of a Windows node.
func (s *starter) windowsVXLAN(k tunnelKind) bool {
	return s.o.GOOS == "windows" && k.attrType == ipam.AttributeTypeVXLAN
}

// tunnelFuncs returns how kind k's address is kept or released on this node.
func (s *starter) tunnelFuncs(k tunnelKind) (
	ensure func(context.Context, *ipam.Client, tunnelKind, string, []netip.Prefix, string) (string, TunnelAction, error),
	release func(context.Context, *ipam.Client, tunnelKind, string, string) error,
) {
	if s.windowsVXLAN(k) {
		return s.ensureWindowsVXLANAddr, s.releaseWindowsVXLANAddr
	}
	return s.ensureTunnelAddr, s.releaseTunnelAddr
}

// ensureWindowsVXLANAddr makes sure the node has an IPv4 block from the VXLAN pools that select it
// (claiming one with the Windows reservation if it has none: the HNS network needs its subnet before
// the first pod) and returns the block's first address. An IPAM allocation under the node's VXLAN
// handle (from an older version, or from when the node ran Linux) is released.
func (s *starter) ensureWindowsVXLANAddr(ctx context.Context, ic *ipam.Client, k tunnelKind, handle string, cidrs []netip.Prefix, cur string) (string, TunnelAction, error) {
	pools := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		pools = append(pools, c.String())
	}
	res, err := ic.EnsureBlock(ctx, ipam.EnsureBlockArgs{
		Hostname: s.name, IPv4: true, IPv4Pools: pools, IntendedUse: api.IPPoolAllowedUseWorkload,
		HostReservedAttrIPv4s: ipam.WindowsHostReserved(),
	})
	if err != nil {
		return "", "", fmt.Errorf("ensuring an IPAM block for Windows node %q's HNS overlay network from %s (the pools need to allow workloads): %w",
			s.name, quoteList(pools), err)
	}
	if err := s.releaseVXLANHandle(ctx, ic, handle); err != nil {
		return "", "", err
	}
	addr := res.IPv4.Addr().Next().String()
	if cur == addr {
		return addr, TunnelKept, nil
	}
	s.change("set %s to %s, the gateway of block %s (the HNS overlay network's)", k.attrType, addr, res.IPv4)
	return addr, TunnelAssigned, nil
}

// releaseWindowsVXLANAddr is the release of a Windows node's VXLAN address when no pool needs it: the
// address itself belongs to the block's reservation, only a stray allocation under the handle goes.
func (s *starter) releaseWindowsVXLANAddr(ctx context.Context, ic *ipam.Client, _ tunnelKind, handle, _ string) error {
	return s.releaseVXLANHandle(ctx, ic, handle)
}

func (s *starter) releaseVXLANHandle(ctx context.Context, ic *ipam.Client, handle string) error {
	err := ic.ReleaseByHandle(ctx, handle)
	switch {
	case err == nil:
		s.change("released the IPAM allocation of handle %s (a Windows node's VXLAN address is its block's gateway)", handle)
	case !errors.Is(err, ipam.ErrHandleNotFound):
		return fmt.Errorf("releasing the old VXLAN tunnel address (handle %q): %w", handle, err)
	}
	return nil
}

// PublishWindowsVTEP records a Windows node's VXLAN tunnel endpoint on its Node once the HNS overlay
// network exists: spec.ipv4VXLANTunnelAddr = addr (the block's first address) and
// spec.vxlanTunnelMACAddr = mac (the network's distributed router MAC), so that other nodes' VXLAN
// routes, neighbour and forwarding entries lead to what HNS answers to. It writes nothing when the Node
// already holds both, never creates a Node, and retries compare-and-swap conflicts (other fields are
// kept). It reports whether it wrote.
func PublishWindowsVTEP(ctx context.Context, be datastore.Backend, nodeName string, addr netip.Addr, mac string, log *slog.Logger) (bool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return false, fmt.Errorf("publishing the VXLAN tunnel endpoint of Node %q: MAC %q is not a 6-byte MAC address", nodeName, mac)
	}
	if !addr.Is4() {
		return false, fmt.Errorf("publishing the VXLAN tunnel endpoint of Node %q: tunnel address %s is not IPv4", nodeName, addr)
	}
	s := &starter{o: Options{Backend: be}, log: log, res: &Result{}, name: nodeName}
	if _, err := s.getNode(ctx); err != nil {
		return false, fmt.Errorf("publishing the VXLAN tunnel endpoint: reading Node %q: %w", nodeName, err)
	}
	want := hw.String()
	_, err = s.mutateNode(ctx, func(n *api.Node) error {
		n.Spec.IPv4VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddr = addr.String(), want
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("publishing the VXLAN tunnel endpoint %s %s: %w", addr, want, err)
	}
	return len(s.res.Changes) > 0, nil
}
