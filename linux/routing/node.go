//go:build linux

package routing

import (
	"net/netip"

	"github.com/tortie-net/tortie/common/api"
)

// LocalTunnelsFromNode reads this node's tunnel addresses and VTEP MACs from its Node resource, where
// start-up (common/startup/node) records them. Unparseable fields read as unset.
func LocalTunnelsFromNode(n *api.Node) LocalTunnels {
	var l LocalTunnels
	if n == nil {
		return l
	}
	l.VXLANv4, _ = netip.ParseAddr(n.Spec.IPv4VXLANTunnelAddr)
	l.VXLANv6, _ = netip.ParseAddr(n.Spec.IPv6VXLANTunnelAddr)
	l.MACv4, l.MACv6 = n.Spec.VXLANTunnelMACAddr, n.Spec.VXLANTunnelMACAddrV6
	if n.Spec.BGP != nil {
		l.IPIP, _ = netip.ParseAddr(n.Spec.BGP.IPv4IPIPTunnelAddr)
	}
	return l
}
