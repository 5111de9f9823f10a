package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

var (
	localBlock  = netip.MustParsePrefix("10.0.1.0/26")
	remoteBlock = netip.MustParsePrefix("10.0.2.0/26")
	pool        = netip.MustParsePrefix("10.0.0.0/16")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/12")
	nodeIP      = netip.MustParsePrefix("192.0.2.10/24")
	linuxIP     = netip.MustParsePrefix("192.0.2.20/24")
)

// base is the state of a Windows node win1 with a block, a pool, and a Linux peer lin1 with a VTEP and
// a block.
func base() []dpmodel.Update {
	return []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANEnabled: true, VXLANVNI: 4096, VXLANPort: 4789}},
		dpmodel.PoolUpdate{CIDR: pool, Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapAlways, NATOutgoing: true}},
		dpmodel.HostUpdate{Node: "win1", Host: dpmodel.Host{IPv4: nodeIP}},
		dpmodel.HostUpdate{Node: "lin1", Host: dpmodel.Host{IPv4: linuxIP}},
		dpmodel.RouteUpdate{Dst: localBlock, Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock, PoolCIDR: pool, NATOutgoing: true}},
		dpmodel.VTEPUpdate{Node: "lin1", VTEP: dpmodel.VTEP{TunnelIPv4: netip.MustParseAddr("10.0.2.0"), MACv4: "66:77:88:99:aa:bb", ParentIPv4: linuxIP.Addr()}},
		dpmodel.RouteUpdate{Dst: remoteBlock, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: dpmodel.EncapVXLAN, DstNode: "lin1", DstNodeIP: linuxIP.Addr(), PoolCIDR: pool, NATOutgoing: true}},
	}
}

type rig struct {
	t   *testing.T
	hns *hcnfake.HNS
	dp  *Dataplane
}

func newRig(t *testing.T, hopts hcnfake.Options, opts Options) *rig {
	t.Helper()
	h := hcnfake.New(hopts)
	opts.API = h
	if opts.ServiceCIDRs == nil {
		opts.ServiceCIDRs = []netip.Prefix{serviceCIDR}
	}
	r := &rig{t: t, hns: h, dp: New(opts)}
	r.update(base()...)
	r.apply()
	return r
}

func (r *rig) update(us ...dpmodel.Update) {
	for _, u := range us {
		r.dp.OnUpdate(u)
	}
}

func (r *rig) apply() {
	r.t.Helper()
	if err := r.dp.Apply(r.t.Context()); err != nil {
		r.t.Fatalf("Apply: %v", err)
	}
}

// pod creates the HNS endpoint of a pod as the CNI does (endpoint, namespace, attach).
func (r *rig) pod(ip string) *hcn.Endpoint {
	r.t.Helper()
	ctx := r.t.Context()
	n, err := r.hns.GetNetworkByName(ctx, "tortie-vxlan")
	if err != nil {
		r.t.Fatal(err)
	}
	a := netip.MustParseAddr(ip)
	e, err := r.hns.CreateEndpoint(ctx, &hcn.Endpoint{Name: "pod-" + ip, HostComputeNetwork: n.ID, MacAddress: macFor(a),
		IpConfigurations: []hcn.IPConfig{{IpAddress: ip, PrefixLength: 26}},
		Policies:         []hcn.EndpointPolicy{hcn.NewEndpointPolicy(hcn.EndpointPolicyProviderAddress, hcn.ProviderAddressSetting{ProviderAddress: "192.0.2.10"})}})
	if err != nil {
		r.t.Fatal(err)
	}
	ns, err := r.hns.CreateNamespace(ctx, &hcn.Namespace{Type: hcn.NamespaceGuest})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.hns.AddNamespaceEndpoint(ctx, ns.ID, e.ID); err != nil {
		r.t.Fatal(err)
	}
	return e
}

func workload(name, ip string, tiers []dpmodel.TierInfo, profiles ...string) dpmodel.WorkloadEndpointUpdate {
	return dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "default", Name: name}, Endpoint: dpmodel.WorkloadEndpoint{
		Pod: name, InterfaceName: "eth0", IPv4Nets: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(ip), 32)},
		Tiers: tiers, ProfileIDs: profiles,
	}}
}

// ---- the reference evaluator: dpmodel's semantics, written from its documentation ----

type pkt struct {
	src, dst         netip.Addr
	proto            uint8
	srcPort, dstPort uint16
	icmpType         uint8
}

func inNets(a netip.Addr, ns []netip.Prefix) bool {
	return slices.ContainsFunc(ns, func(p netip.Prefix) bool { return p.Contains(a) })
}

func inSet(s *dpmodel.State, id string, a netip.Addr) bool {
	set := s.IPSets[id]
	return set != nil && slices.ContainsFunc(set.Members, func(m dpmodel.Member) bool { return m.Protocol == 0 && m.Net.Contains(a) })
}

func inNamedSet(s *dpmodel.State, id string, a netip.Addr, proto uint8, port uint16) bool {
	set := s.IPSets[id]
	return set != nil && slices.ContainsFunc(set.Members, func(m dpmodel.Member) bool {
		return m.Net.Contains(a) && m.Protocol == proto && m.Port == port
	})
}

func inRanges(p uint16, rs []dpmodel.PortRange) bool {
	return slices.ContainsFunc(rs, func(r dpmodel.PortRange) bool { return r.Contains(p) })
}

func sideMatches(s *dpmodel.State, a netip.Addr, port uint16, proto uint8, nets, notNets []netip.Prefix, sets, notSets []string,
	ports, notPorts []dpmodel.PortRange, named, notNamed []string) bool {
	if len(nets) > 0 && !inNets(a, nets) {
		return false
	}
	if inNets(a, notNets) {
		return false
	}
	for _, id := range sets {
		if !inSet(s, id, a) {
			return false
		}
	}
	for _, id := range notSets {
		if inSet(s, id, a) {
			return false
		}
	}
	hasPort := proto == 6 || proto == 17 || proto == 132
	if len(ports) > 0 || len(named) > 0 {
		if !hasPort {
			return false
		}
		ok := inRanges(port, ports) || slices.ContainsFunc(named, func(id string) bool { return inNamedSet(s, id, a, proto, port) })
		if !ok {
			return false
		}
	}
	if len(notPorts) > 0 || len(notNamed) > 0 {
		if !hasPort {
			return false
		}
		if inRanges(port, notPorts) || slices.ContainsFunc(notNamed, func(id string) bool { return inNamedSet(s, id, a, proto, port) }) {
			return false
		}
	}
	return true
}

func ruleMatches(s *dpmodel.State, r *dpmodel.Rule, p pkt) bool {
	if r.IPVersion == 6 {
		return false
	}
	if r.Protocol != 0 && r.Protocol != p.proto {
		return false
	}
	if r.NotProtocol != 0 && r.NotProtocol == p.proto {
		return false
	}
	if r.ICMP != nil && (p.proto != 1 || p.icmpType != r.ICMP.Type) {
		return false
	}
	if r.NotICMP != nil && p.proto == 1 && p.icmpType == r.NotICMP.Type {
		return false
	}
	return sideMatches(s, p.src, p.srcPort, p.proto, r.SrcNets, r.NotSrcNets, r.SrcIPSetIDs, r.NotSrcIPSetIDs, r.SrcPorts, r.NotSrcPorts, r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs) &&
		sideMatches(s, p.dst, p.dstPort, p.proto, r.DstNets, r.NotDstNets, r.DstIPSetIDs, r.NotDstIPSetIDs, r.DstPorts, r.NotDstPorts, r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs)
}

// refAllows evaluates one direction of workload w: tiers with policies in that direction, then profiles;
// Allow and Deny decide, Pass skips to the next tier (profile), Log continues; the end of a tier is its
// default action, the end of the profiles denies.
func refAllows(s *dpmodel.State, w dpmodel.WorkloadEndpoint, ingress bool, p pkt) bool {
	for _, t := range w.Tiers {
		ids := t.Egress
		if ingress {
			ids = t.Ingress
		}
		if len(ids) == 0 {
			continue
		}
		passed := false
	tier:
		for _, id := range ids {
			pol := s.Policies[id]
			rules := pol.Outbound
			if ingress {
				rules = pol.Inbound
			}
			for i := range rules {
				if !ruleMatches(s, &rules[i], p) {
					continue
				}
				switch rules[i].Action {
				case dpmodel.Allow:
					return true
				case dpmodel.Deny:
					return false
				case dpmodel.Pass:
					passed = true
					break tier
				}
			}
		}
		if !passed && t.DefaultAction != dpmodel.Pass {
			return false
		}
	}
	for _, id := range w.ProfileIDs {
		pr := s.Profiles[id]
		rules := pr.Outbound
		if ingress {
			rules = pr.Inbound
		}
	profile:
		for i := range rules {
			if !ruleMatches(s, &rules[i], p) {
				continue
			}
			switch rules[i].Action {
			case dpmodel.Allow:
				return true
			case dpmodel.Deny:
				return false
			case dpmodel.Pass:
				break profile
			}
		}
	}
	return false
}

// refGate evaluates a host endpoint's forward tiers for a packet through the host: Allow and Deny
// decide, Pass skips to the next tier; passing beyond the last tier (a Pass rule or a Pass default)
// denies; with no tier that has policies in that direction the host endpoint does not restrict.
func refGate(s *dpmodel.State, tiers []dpmodel.TierInfo, ingress bool, p pkt) (allowed, restricted bool) {
	for _, t := range tiers {
		ids := t.Egress
		if ingress {
			ids = t.Ingress
		}
		if len(ids) == 0 {
			continue
		}
		restricted = true
		passed := false
	tier:
		for _, id := range ids {
			pol := s.Policies[id]
			rules := pol.Outbound
			if ingress {
				rules = pol.Inbound
			}
			for i := range rules {
				if !ruleMatches(s, &rules[i], p) {
					continue
				}
				switch rules[i].Action {
				case dpmodel.Allow:
					return true, true
				case dpmodel.Deny:
					return false, true
				case dpmodel.Pass:
					passed = true
					break tier
				}
			}
		}
		if !passed && t.DefaultAction != dpmodel.Pass {
			return false, true
		}
	}
	return !restricted, restricted
}

func (p pkt) String() string {
	return fmt.Sprintf("%s:%d -> %s:%d proto %d icmp %d", p.src, p.srcPort, p.dst, p.dstPort, p.proto, p.icmpType)
}
