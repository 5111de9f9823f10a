package calc

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
)

func node(name, ip, ipip, vxlan string) *api.Node {
	n := api.NewNode()
	n.Name = name
	n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: ip, IPv4IPIPTunnelAddr: ipip}
	n.Spec.IPv4VXLANTunnelAddr = vxlan
	return n
}

func pool(name, cidr string, ipip, vxlan api.EncapMode, nat bool) *api.IPPool {
	p := api.NewIPPool()
	p.Name = name
	p.Spec = api.IPPoolSpec{CIDR: cidr, IPIPMode: ipip, VXLANMode: vxlan, NATOutgoing: nat}
	return p
}

func block(cidr, host string) *api.IPAMBlock {
	b := api.NewIPAMBlock()
	b.Name = api.CIDRToName(cidr)
	aff := "host:" + host
	b.Spec = api.IPAMBlockSpec{CIDR: cidr, Affinity: &aff}
	return b
}

func TestRoutes(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(node("n1", "192.168.1.1/24", "", ""), node("n2", "192.168.1.2/24", "", ""), node("n3", "192.168.9.3/24", "", ""))
	w.put(pool("p", "10.0.0.0/16", api.EncapCrossSubnet, api.EncapNever, true))
	w.put(block("10.0.1.0/26", "n1"), block("10.0.2.0/26", "n2"), block("10.0.3.0/26", "n3"))
	w.put(namespace("x", nil))
	w.put(pod("x", "a", "n1", "10.0.1.5", nil), pod("x", "b", "n1", "10.0.2.7", nil), // b borrowed from n2's block
		pod("x", "c", "n3", "10.0.2.9", nil), pod("x", "d", "n2", "10.0.2.10", nil)) // c borrowed; d in its own block
	pcidr := netip.MustParsePrefix("10.0.0.0/16")
	want := map[netip.Prefix]dpmodel.Route{
		netip.MustParsePrefix("10.0.1.0/26"): {Type: dpmodel.RouteLocalBlock, PoolCIDR: pcidr, NATOutgoing: true},
		netip.MustParsePrefix("10.0.2.0/26"): {Type: dpmodel.RouteRemoteBlock, DstNode: "n2", DstNodeIP: netip.MustParseAddr("192.168.1.2"),
			SameSubnet: true, Encap: dpmodel.EncapNone, PoolCIDR: pcidr, NATOutgoing: true},
		netip.MustParsePrefix("10.0.3.0/26"): {Type: dpmodel.RouteRemoteBlock, DstNode: "n3", DstNodeIP: netip.MustParseAddr("192.168.9.3"),
			Encap: dpmodel.EncapIPIP, PoolCIDR: pcidr, NATOutgoing: true},
		netip.MustParsePrefix("10.0.1.5/32"): {Type: dpmodel.RouteLocalWorkload, InterfaceName: "calia", PoolCIDR: pcidr, NATOutgoing: true},
		netip.MustParsePrefix("10.0.2.7/32"): {Type: dpmodel.RouteLocalWorkload, InterfaceName: "calib", Borrowed: true, PoolCIDR: pcidr, NATOutgoing: true},
		netip.MustParsePrefix("10.0.2.9/32"): {Type: dpmodel.RouteRemoteWorkload, DstNode: "n3", DstNodeIP: netip.MustParseAddr("192.168.9.3"),
			Encap: dpmodel.EncapIPIP, Borrowed: true, PoolCIDR: pcidr, NATOutgoing: true},
	}
	opts := cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})
	if diff := cmp.Diff(want, w.state.Routes, opts); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[netip.Prefix]dpmodel.Pool{pcidr: {IPIPMode: dpmodel.EncapCrossSubnet, NATOutgoing: true}}, w.state.Pools, opts); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
	if len(w.state.Hosts) != 3 {
		t.Errorf("hosts: %v", w.state.Hosts)
	}
	w.checkScratch()

	// Switch the pool to VXLAN Always: without VTEPs the remote routes cannot be programmed; once the
	// nodes have tunnel addresses, the VTEPs come before the routes (State.Apply checks).
	w.put(pool("p", "10.0.0.0/16", api.EncapNever, api.EncapAlways, false))
	if _, ok := w.state.Routes[netip.MustParsePrefix("10.0.2.0/26")]; ok {
		t.Error("VXLAN route without a VTEP")
	}
	w.put(node("n2", "192.168.1.2/24", "", "10.0.2.0"), node("n3", "192.168.9.3/24", "", "10.0.3.0"))
	r := w.state.Routes[netip.MustParsePrefix("10.0.3.0/26")]
	if r.Encap != dpmodel.EncapVXLAN || r.DstNode != "n3" {
		t.Errorf("route to n3's block: %+v, want VXLAN via n3", r)
	}
	if v := w.state.VTEPs["n3"]; v.TunnelIPv4 != netip.MustParseAddr("10.0.3.0") || v.ParentIPv4 != netip.MustParseAddr("192.168.9.3") || v.MACv4 == "" {
		t.Errorf("VTEP of n3: %+v", v)
	}
	if rt := w.state.Routes[netip.MustParsePrefix("10.0.3.0/32")]; rt.Type != dpmodel.RouteRemoteTunnel || rt.Encap != dpmodel.EncapVXLAN {
		t.Errorf("tunnel address route: %+v", rt)
	}
	if _, ok := w.state.VTEPs["n1"]; ok {
		t.Error("own VTEP emitted")
	}
	w.checkScratch()
	// Removing a node's tunnel address removes its routes before its VTEP.
	w.put(node("n3", "192.168.9.3/24", "", ""))
	if _, ok := w.state.VTEPs["n3"]; ok {
		t.Error("VTEP of n3 remains")
	}
	w.del(block("10.0.2.0/26", "n2"))
	if _, ok := w.state.Routes[netip.MustParsePrefix("10.0.2.0/26")]; ok {
		t.Error("route of a deleted block remains")
	}
	if rt := w.state.Routes[netip.MustParsePrefix("10.0.2.7/32")]; rt.Borrowed {
		t.Errorf("address of a deleted block still borrowed: %+v", rt)
	}
	w.checkScratch()
}
