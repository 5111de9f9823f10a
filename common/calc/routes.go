package calc

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
)

type poolInfo struct {
	cidr netip.Prefix
	pool dpmodel.Pool
}

type nodeInfo struct {
	v4, v6           netip.Prefix // underlay address with its subnet's prefix length
	ipipAddr         netip.Addr
	vxlanV4, vxlanV6 netip.Addr
	macV4, macV6     string
}

type blockInfo struct {
	cidr netip.Prefix
	node string // affinity host:<node>; "" when none
}

// routeInputs are the resources routes are calculated from. They are small (pools, nodes, blocks), so
// routes are recomputed from them and diffed against what was sent whenever one changes.
type routeInputs struct {
	pools  map[string]poolInfo
	nodes  map[string]nodeInfo
	blocks map[string]blockInfo
}

func newRouteInputs() routeInputs {
	return routeInputs{pools: map[string]poolInfo{}, nodes: map[string]nodeInfo{}, blocks: map[string]blockInfo{}}
}

func encapMode(m api.EncapMode) dpmodel.EncapMode {
	switch m {
	case api.EncapAlways:
		return dpmodel.EncapAlways
	case api.EncapCrossSubnet:
		return dpmodel.EncapCrossSubnet
	}
	return dpmodel.EncapNever
}

func (r *routeInputs) apply(k datastore.Key, del bool, v api.Resource) {
	switch k.Kind {
	case api.KindIPPool:
		p, ok := v.(*api.IPPool)
		if del || !ok {
			delete(r.pools, k.Name)
			return
		}
		cidr, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			delete(r.pools, k.Name)
			return
		}
		r.pools[k.Name] = poolInfo{cidr: cidr.Masked(), pool: dpmodel.Pool{
			IPIPMode: encapMode(p.Spec.IPIPMode), VXLANMode: encapMode(p.Spec.VXLANMode),
			NATOutgoing: p.Spec.NATOutgoing, Disabled: p.Spec.Disabled,
		}}
	case api.KindNode:
		n, ok := v.(*api.Node)
		if del || !ok {
			delete(r.nodes, k.Name)
			return
		}
		var ni nodeInfo
		if b := n.Spec.BGP; b != nil {
			ni.v4 = parseHostPrefix(b.IPv4Address)
			ni.v6 = parseHostPrefix(b.IPv6Address)
			ni.ipipAddr, _ = netip.ParseAddr(b.IPv4IPIPTunnelAddr)
		}
		ni.vxlanV4, _ = netip.ParseAddr(n.Spec.IPv4VXLANTunnelAddr)
		ni.vxlanV6, _ = netip.ParseAddr(n.Spec.IPv6VXLANTunnelAddr)
		ni.macV4 = cmp.Or(n.Spec.VXLANTunnelMACAddr, dpmodel.DerivedVTEPMAC(n.Name).String())
		ni.macV6 = cmp.Or(n.Spec.VXLANTunnelMACAddrV6, dpmodel.DerivedVTEPMAC(n.Name+"-v6").String())
		r.nodes[k.Name] = ni
	case api.KindIPAMBlock:
		b, ok := v.(*api.IPAMBlock)
		if del || !ok || b.Spec.Deleted {
			delete(r.blocks, k.Name)
			return
		}
		cidr, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil {
			delete(r.blocks, k.Name)
			return
		}
		bi := blockInfo{cidr: cidr.Masked()}
		if b.Spec.Affinity != nil {
			if n, ok := strings.CutPrefix(*b.Spec.Affinity, "host:"); ok {
				bi.node = n
			}
		}
		r.blocks[k.Name] = bi
	}
}

// parseHostPrefix reads "10.0.0.5/24" (address and subnet) or a bare address (as a host prefix).
func parseHostPrefix(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return netip.Prefix{}
}

// poolFor returns the most specific pool containing a.
func (r *routeInputs) poolFor(a netip.Addr) (poolInfo, bool) {
	var best poolInfo
	found := false
	for _, p := range r.pools {
		if p.cidr.Contains(a) && (!found || p.cidr.Bits() > best.cidr.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// blockFor returns the block containing a.
func (r *routeInputs) blockFor(a netip.Addr) (blockInfo, bool) {
	for _, b := range r.blocks {
		if b.cidr.Contains(a) {
			return b, true
		}
	}
	return blockInfo{}, false
}

func encapFor(p dpmodel.Pool, sameSubnet bool) dpmodel.Encap {
	switch {
	case p.VXLANMode == dpmodel.EncapAlways, p.VXLANMode == dpmodel.EncapCrossSubnet && !sameSubnet:
		return dpmodel.EncapVXLAN
	case p.IPIPMode == dpmodel.EncapAlways, p.IPIPMode == dpmodel.EncapCrossSubnet && !sameSubnet:
		return dpmodel.EncapIPIP
	}
	return dpmodel.EncapNone
}

// desiredRoutes computes the routes, VTEPs, pools and hosts of this node from the current inputs.
func (c *Calculator) desiredRoutes() (map[netip.Prefix]dpmodel.Route, map[string]dpmodel.VTEP, map[netip.Prefix]dpmodel.Pool, map[string]dpmodel.Host) {
	r := &c.routes
	me := c.cfg.NodeName
	self := r.nodes[me]
	pools := map[netip.Prefix]dpmodel.Pool{}
	for _, p := range r.pools {
		pools[p.cidr] = p.pool
	}
	hosts := map[string]dpmodel.Host{}
	vteps := map[string]dpmodel.VTEP{}
	for name, n := range r.nodes {
		if n.v4.IsValid() || n.v6.IsValid() {
			hosts[name] = dpmodel.Host{IPv4: n.v4, IPv6: n.v6}
		}
		if name == me {
			continue
		}
		v := dpmodel.VTEP{}
		if n.vxlanV4.IsValid() && n.v4.IsValid() {
			v.TunnelIPv4, v.MACv4, v.ParentIPv4 = n.vxlanV4, n.macV4, n.v4.Addr()
		}
		if n.vxlanV6.IsValid() && n.v6.IsValid() {
			v.TunnelIPv6, v.MACv6, v.ParentIPv6 = n.vxlanV6, n.macV6, n.v6.Addr()
		}
		if v.TunnelIPv4.IsValid() || v.TunnelIPv6.IsValid() {
			vteps[name] = v
		}
	}
	routes := map[netip.Prefix]dpmodel.Route{}
	// via fills in the remote fields of a route towards node, or returns false when the node cannot be
	// reached (unknown address, or VXLAN without its VTEP).
	via := func(rt *dpmodel.Route, dst netip.Prefix, node string, forceEncap *dpmodel.Encap) bool {
		n, ok := r.nodes[node]
		if !ok {
			return false
		}
		under := n.v4
		mine := self.v4
		if dst.Addr().Is6() {
			under, mine = n.v6, self.v6
		}
		if !under.IsValid() {
			return false
		}
		rt.DstNode, rt.DstNodeIP = node, under.Addr()
		rt.SameSubnet = mine.IsValid() && mine.Masked().Contains(under.Addr())
		if forceEncap != nil {
			rt.Encap = *forceEncap
		} else {
			pool, _ := r.poolFor(dst.Addr())
			rt.Encap = encapFor(pool.pool, rt.SameSubnet)
			if dst.Addr().Is6() && rt.Encap == dpmodel.EncapIPIP {
				rt.Encap = dpmodel.EncapNone // IPIP is IPv4 only
			}
		}
		if rt.Encap == dpmodel.EncapVXLAN {
			v, ok := vteps[node]
			if !ok || (dst.Addr().Is4() && !v.TunnelIPv4.IsValid()) || (dst.Addr().Is6() && !v.TunnelIPv6.IsValid()) {
				return false
			}
		}
		return true
	}
	withPool := func(rt *dpmodel.Route, a netip.Addr) {
		if p, ok := r.poolFor(a); ok {
			rt.PoolCIDR, rt.NATOutgoing = p.cidr, p.pool.NATOutgoing
		}
	}
	for _, b := range r.blocks {
		if b.node == "" {
			continue
		}
		rt := dpmodel.Route{}
		withPool(&rt, b.cidr.Addr())
		if b.node == me {
			rt.Type = dpmodel.RouteLocalBlock
		} else {
			rt.Type = dpmodel.RouteRemoteBlock
			if !via(&rt, b.cidr, b.node, nil) {
				continue
			}
		}
		routes[b.cidr] = rt
	}
	for name, n := range r.nodes {
		if name == me {
			continue
		}
		ipip, vx := dpmodel.EncapIPIP, dpmodel.EncapVXLAN
		for _, t := range []struct {
			a     netip.Addr
			encap *dpmodel.Encap
		}{{n.ipipAddr, &ipip}, {n.vxlanV4, &vx}, {n.vxlanV6, &vx}} {
			if !t.a.IsValid() {
				continue
			}
			dst := netip.PrefixFrom(t.a, t.a.BitLen())
			rt := dpmodel.Route{Type: dpmodel.RouteRemoteTunnel}
			withPool(&rt, t.a)
			if via(&rt, dst, name, t.encap) {
				routes[dst] = rt
			}
		}
	}
	for _, e := range c.all.entities {
		if e.kind != kindWorkload {
			continue
		}
		for _, n := range e.nets {
			if !n.IsSingleIP() {
				continue
			}
			b, inBlock := r.blockFor(n.Addr())
			rt := dpmodel.Route{Borrowed: inBlock && b.node != e.node.Value()}
			withPool(&rt, n.Addr())
			if e.local {
				rt.Type = dpmodel.RouteLocalWorkload
				if le := c.endpoints[e.key]; le != nil && le.wep != nil {
					rt.InterfaceName = le.wep.Spec.InterfaceName
				}
				routes[n] = rt
				continue
			}
			if !rt.Borrowed {
				continue // covered by its node's block route
			}
			rt.Type = dpmodel.RouteRemoteWorkload
			if via(&rt, n, e.node.Value(), nil) {
				routes[n] = rt
			}
		}
	}
	return routes, vteps, pools, hosts
}

func prefixCompare(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// flushRoutes appends the route, VTEP, pool and host changes: pools and hosts first, VTEP adds before
// the routes that use them, route removes, route adds and changes, then VTEP, host and pool removes.
func (c *Calculator) flushRoutes(out []dpmodel.Update) []dpmodel.Update {
	q := &c.seq
	routes, vteps, pools, hosts := c.desiredRoutes()
	for _, p := range slices.SortedFunc(maps.Keys(pools), prefixCompare) {
		if old, ok := q.sentPools[p]; !ok || old != pools[p] {
			out = append(out, dpmodel.PoolUpdate{CIDR: p, Pool: pools[p]})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(hosts)) {
		if old, ok := q.sentHosts[n]; !ok || old != hosts[n] {
			out = append(out, dpmodel.HostUpdate{Node: n, Host: hosts[n]})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(vteps)) {
		if old, ok := q.sentVTEPs[n]; !ok || old != vteps[n] {
			out = append(out, dpmodel.VTEPUpdate{Node: n, VTEP: vteps[n]})
		}
	}
	for _, d := range slices.SortedFunc(maps.Keys(q.sentRoutes), prefixCompare) {
		if _, ok := routes[d]; !ok {
			out = append(out, dpmodel.RouteRemove{Dst: d})
		}
	}
	for _, d := range slices.SortedFunc(maps.Keys(routes), prefixCompare) {
		if old, ok := q.sentRoutes[d]; !ok || old != routes[d] {
			out = append(out, dpmodel.RouteUpdate{Dst: d, Route: routes[d]})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(q.sentVTEPs)) {
		if _, ok := vteps[n]; !ok {
			out = append(out, dpmodel.VTEPRemove{Node: n})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(q.sentHosts)) {
		if _, ok := hosts[n]; !ok {
			out = append(out, dpmodel.HostRemove{Node: n})
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(q.sentPools), prefixCompare) {
		if _, ok := pools[p]; !ok {
			out = append(out, dpmodel.PoolRemove{CIDR: p})
		}
	}
	q.sentRoutes, q.sentVTEPs, q.sentPools, q.sentHosts = routes, vteps, pools, hosts
	return out
}
