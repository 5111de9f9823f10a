package dptest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// The universe RandomState draws from, small so that two random states overlap (and a diff between
// them holds adds, changes and removes of every kind). A dataplane whose host needs more than the
// state (e.g. the workload interfaces cali0..cali4 for local routes) prepares it in its factory.
const (
	// RandomNode is the local node's name in random states.
	RandomNode = "node-a"
	// RandomInterfaces is how many workload interfaces (cali0 … cali4) random states use.
	RandomInterfaces = 5
)

// RandomState returns a contract-respecting state with every kind of object: IP sets (net and
// ip,port), policies and profiles whose rules refer to them, workload and host endpoints listing them,
// pools, remote hosts with VTEPs, and routes of every type (VXLAN ones through their VTEPs).
func RandomState(r *rand.Rand) *dpmodel.State {
	s := dpmodel.NewState()
	must := func(u dpmodel.Update) {
		if err := s.Apply(u); err != nil {
			panic(fmt.Sprintf("dptest.RandomState built a bad update: %v", err))
		}
	}
	half := func() bool { return r.IntN(2) == 0 }
	must(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: RandomNode, InterfacePrefixes: []string{"cali"},
		VXLANEnabled: true, VXLANPort: 4789, VXLANVNI: 4096 + r.IntN(2), DefaultEndpointToHostAction: "Drop"}})

	var sets, portSets []string
	for i := range 6 {
		if half() {
			continue
		}
		id := fmt.Sprintf("s:%d", i)
		var ms []dpmodel.Member
		for j := range r.IntN(4) {
			ms = append(ms, dpmodel.HostMember(netip.AddrFrom4([4]byte{10, 65, byte(i), byte(1 + j + r.IntN(3))})))
		}
		if half() {
			ms = append(ms, dpmodel.Member{Net: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24)})
		}
		must(dpmodel.IPSetUpdate{ID: id, Type: dpmodel.IPSetNet, Members: ms})
		sets = append(sets, id)
	}
	for i := range 2 {
		if half() {
			continue
		}
		id := fmt.Sprintf("n:%d", i)
		ms := []dpmodel.Member{{Net: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, 9, byte(1 + r.IntN(3))}), 32),
			Protocol: 6, Port: uint16(8080 + r.IntN(2))}}
		must(dpmodel.IPSetUpdate{ID: id, Type: dpmodel.IPSetIPPort, Members: ms})
		portSets = append(portSets, id)
	}
	rule := func() dpmodel.Rule {
		ru := dpmodel.Rule{Action: dpmodel.Action(1 + r.IntN(4))}
		switch r.IntN(4) {
		case 0:
			ru.Protocol, ru.DstPorts = 6, []dpmodel.PortRange{{First: 80, Last: uint16(80 + r.IntN(2)*10)}}
		case 1:
			ru.SrcNets = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
		case 2:
			ru.Protocol, ru.ICMP = 1, &dpmodel.ICMPMatch{Type: 8}
		}
		if len(sets) > 0 && half() {
			ru.SrcIPSetIDs = []string{sets[r.IntN(len(sets))]}
		}
		if len(portSets) > 0 && r.IntN(4) == 0 {
			ru.Protocol = 6
			ru.DstNamedPortIPSetIDs = []string{portSets[r.IntN(len(portSets))]}
		}
		return ru
	}
	var pols []dpmodel.PolicyID
	for i := range 5 {
		if half() {
			continue
		}
		id := dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: fmt.Sprint("p", i)}
		if i%2 == 1 {
			id.Kind, id.Namespace = "NetworkPolicy", "ns1"
		}
		must(dpmodel.PolicyUpdate{ID: id, Policy: dpmodel.Policy{Inbound: []dpmodel.Rule{rule()},
			Outbound: []dpmodel.Rule{rule(), rule()}[:r.IntN(3)]}})
		pols = append(pols, id)
	}
	var profs []string
	for i := range 3 {
		if half() {
			continue
		}
		id := fmt.Sprint("kns.ns", i)
		must(dpmodel.ProfileUpdate{ID: id, Profile: dpmodel.Profile{Inbound: []dpmodel.Rule{rule()},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Allow}}}})
		profs = append(profs, id)
	}
	tier := func() []dpmodel.TierInfo {
		t := dpmodel.TierInfo{Name: "default", DefaultAction: dpmodel.Deny}
		for _, p := range pols {
			if half() {
				t.Ingress = append(t.Ingress, p)
			} else if half() {
				t.Egress = append(t.Egress, p)
			}
		}
		if len(t.Ingress)+len(t.Egress) == 0 {
			return nil
		}
		return []dpmodel.TierInfo{t}
	}
	profiles := func() []string {
		if len(profs) == 0 {
			return nil
		}
		return []string{profs[r.IntN(len(profs))]}
	}
	for i := range RandomInterfaces {
		if half() {
			continue
		}
		addr := netip.AddrFrom4([4]byte{10, 65, 0, byte(10 + i)})
		iface := fmt.Sprint("cali", i)
		must(dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "ns1", Name: fmt.Sprintf("%s-k8s-pod%d-eth0", RandomNode, i)},
			Endpoint: dpmodel.WorkloadEndpoint{Pod: fmt.Sprint("pod", i), InterfaceName: iface,
				MAC: fmt.Sprintf("ee:ee:ee:ee:ee:%02x", i), IPv4Nets: []netip.Prefix{netip.PrefixFrom(addr, 32)},
				Tiers: tier(), ProfileIDs: profiles()}})
		must(dpmodel.RouteUpdate{Dst: netip.PrefixFrom(addr, 32), Route: dpmodel.Route{Type: dpmodel.RouteLocalWorkload,
			InterfaceName: iface, PoolCIDR: netip.MustParsePrefix("10.65.0.0/16"), NATOutgoing: true}})
	}
	if half() {
		must(dpmodel.HostEndpointUpdate{ID: RandomNode + "-eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "eth0",
			ExpectedIPs: []netip.Addr{netip.MustParseAddr("192.168.0.1")}, Tiers: tier(), ProfileIDs: profiles()}})
	}
	if half() {
		must(dpmodel.RouteUpdate{Dst: netip.MustParsePrefix("10.65.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock,
			PoolCIDR: netip.MustParsePrefix("10.65.0.0/16")}})
	}
	for i := range 3 {
		if half() {
			continue
		}
		node := fmt.Sprint("node-", string(rune('b'+i)))
		parent := netip.AddrFrom4([4]byte{192, 168, 0, byte(2 + i)})
		must(dpmodel.HostUpdate{Node: node, Host: dpmodel.Host{IPv4: netip.PrefixFrom(parent, 24)}})
		encap := dpmodel.Encap(r.IntN(3))
		if encap == dpmodel.EncapVXLAN || half() {
			must(dpmodel.VTEPUpdate{Node: node, VTEP: dpmodel.VTEP{
				TunnelIPv4: netip.AddrFrom4([4]byte{10, 65, byte(1 + i), 0}), MACv4: fmt.Sprintf("66:00:00:00:%02x:%02x", i, r.IntN(2)),
				ParentIPv4: parent}})
		}
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(1 + i), 0}), 26)
		must(dpmodel.RouteUpdate{Dst: block, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: encap, DstNode: node,
			DstNodeIP: parent, SameSubnet: half(), PoolCIDR: netip.MustParsePrefix("10.65.0.0/16"), NATOutgoing: true}})
		if half() {
			borrowed := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, 0, byte(100 + i)}), 32)
			must(dpmodel.RouteUpdate{Dst: borrowed, Route: dpmodel.Route{Type: dpmodel.RouteRemoteWorkload, Encap: encap,
				DstNode: node, DstNodeIP: parent, Borrowed: true}})
		}
	}
	if half() {
		must(dpmodel.PoolUpdate{CIDR: netip.MustParsePrefix("10.65.0.0/16"), Pool: dpmodel.Pool{
			VXLANMode: dpmodel.EncapMode(r.IntN(3)), NATOutgoing: half()}})
	}
	return s
}
