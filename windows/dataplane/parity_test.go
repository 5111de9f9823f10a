package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

var (
	locals    = []string{"10.0.1.5", "10.0.1.6", "10.0.1.7"}
	nonLocals = []string{"10.0.2.5", "10.0.2.6", "8.8.8.8", "192.0.2.10"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// genState returns random sets, policies, profiles and the workloads of locals.
func genState(r *rand.Rand) []dpmodel.Update {
	all := append(append([]string{}, locals...), nonLocals...)
	us := []dpmodel.Update{dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANEnabled: true, VXLANVNI: 4096, VXLANPort: 4789,
		DefaultEndpointToHostAction: pick(r, []string{"", "Drop", "Accept", "Return"})}}}
	netSets := []string{"s:a", "s:b", "s:c"}
	for _, id := range netSets {
		var ms []dpmodel.Member
		for _, a := range all {
			if r.IntN(2) == 0 {
				ms = append(ms, dpmodel.HostMember(netip.MustParseAddr(a)))
			}
		}
		if r.IntN(3) == 0 {
			ms = append(ms, dpmodel.Member{Net: netip.MustParsePrefix("10.0.2.0/28")})
		}
		us = append(us, dpmodel.IPSetUpdate{ID: id, Type: dpmodel.IPSetNet, Members: ms})
	}
	var named []dpmodel.Member
	for _, a := range locals {
		if r.IntN(2) == 0 {
			named = append(named, dpmodel.Member{Net: netip.PrefixFrom(netip.MustParseAddr(a), 32), Protocol: 6, Port: pick(r, []uint16{80, 8080})})
		}
	}
	us = append(us, dpmodel.IPSetUpdate{ID: "n:http", Type: dpmodel.IPSetIPPort, Members: named})

	nets := []netip.Prefix{netip.MustParsePrefix("10.0.1.4/30"), netip.MustParsePrefix("10.0.2.0/24"), netip.MustParsePrefix("8.0.0.0/7"),
		netip.MustParsePrefix("10.0.1.6/32"), netip.MustParsePrefix("fd00::/64")}
	ranges := [][]dpmodel.PortRange{{{First: 80, Last: 80}}, {{First: 53, Last: 53}, {First: 8000, Last: 8100}}, {{First: 1, Last: 442}}}
	rule := func(id string) dpmodel.Rule {
		ru := dpmodel.Rule{ID: id, Action: pick(r, []dpmodel.Action{dpmodel.Allow, dpmodel.Allow, dpmodel.Deny, dpmodel.Deny, dpmodel.Pass, dpmodel.Log})}
		ru.Protocol = pick(r, []uint8{0, 0, 6, 6, 17, 1})
		side := func(nets_, notNets *[]netip.Prefix, sets, notSets *[]string) {
			switch r.IntN(6) {
			case 0:
				*nets_ = []netip.Prefix{pick(r, nets)}
			case 1:
				*notNets = []netip.Prefix{pick(r, nets), pick(r, nets)}
			case 2:
				*sets = []string{pick(r, netSets)}
			case 3:
				*notSets = []string{pick(r, netSets)}
			case 4:
				*sets = []string{pick(r, netSets), pick(r, netSets)}
			}
		}
		side(&ru.SrcNets, &ru.NotSrcNets, &ru.SrcIPSetIDs, &ru.NotSrcIPSetIDs)
		side(&ru.DstNets, &ru.NotDstNets, &ru.DstIPSetIDs, &ru.NotDstIPSetIDs)
		if ru.Protocol == 6 || ru.Protocol == 17 {
			switch r.IntN(5) {
			case 0:
				ru.DstPorts = pick(r, ranges)
			case 1:
				ru.NotDstPorts = pick(r, ranges)
			case 2:
				ru.SrcPorts = pick(r, ranges)
			case 3:
				if ru.Protocol == 6 {
					ru.DstNamedPortIPSetIDs = []string{"n:http"}
					if r.IntN(2) == 0 {
						ru.DstPorts = []dpmodel.PortRange{{First: 443, Last: 443}}
					}
				}
			case 4:
				if ru.Protocol == 6 {
					ru.NotDstNamedPortIPSetIDs = []string{"n:http"}
				}
			}
		}
		switch r.IntN(12) {
		case 0:
			if ru.Protocol == 0 {
				ru.NotProtocol = pick(r, []uint8{6, 17})
			}
		case 1:
			ru.Protocol = 1
			ru.SrcPorts, ru.DstPorts, ru.NotDstPorts, ru.DstNamedPortIPSetIDs = nil, nil, nil, nil
			ru.ICMP = &dpmodel.ICMPMatch{Type: 8}
		case 2:
			ru.IPVersion = 6
		}
		return ru
	}
	rules := func(prefix string) []dpmodel.Rule {
		var out []dpmodel.Rule
		for i := range r.IntN(4) {
			out = append(out, rule(fmt.Sprintf("%s/%d", prefix, i)))
		}
		return out
	}
	var tiers []dpmodel.TierInfo
	for t := range 1 + r.IntN(3) {
		ti := dpmodel.TierInfo{Name: fmt.Sprintf("t%d", t), DefaultAction: pick(r, []dpmodel.Action{dpmodel.Deny, dpmodel.Pass})}
		for p := range 1 + r.IntN(2) {
			id := dpmodel.PolicyID{Tier: ti.Name, Kind: "GlobalNetworkPolicy", Name: fmt.Sprintf("p%d", p)}
			us = append(us, dpmodel.PolicyUpdate{ID: id, Policy: dpmodel.Policy{Inbound: rules(id.String() + "/in"), Outbound: rules(id.String() + "/out")}})
			if r.IntN(4) != 0 {
				ti.Ingress = append(ti.Ingress, id)
			}
			if r.IntN(4) != 0 {
				ti.Egress = append(ti.Egress, id)
			}
		}
		tiers = append(tiers, ti)
	}
	if r.IntN(3) == 0 {
		// A `*` host endpoint with applyOnForward policy: traffic through the host needs it too.
		var fwd []dpmodel.TierInfo
		for _, t := range tiers {
			if r.IntN(2) == 0 {
				fwd = append(fwd, t)
			}
		}
		us = append(us, dpmodel.HostEndpointUpdate{ID: "win1-all", Endpoint: dpmodel.HostEndpoint{InterfaceName: "*", ForwardTiers: fwd}})
	}
	us = append(us, dpmodel.ProfileUpdate{ID: "kns.default", Profile: dpmodel.Profile{Inbound: rules("kns/in"), Outbound: rules("kns/out")}})
	us = append(us, dpmodel.ProfileUpdate{ID: "allow-all", Profile: dpmodel.Profile{
		Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "allow/in"}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "allow/out"}}}})
	for i, ip := range locals {
		var wt []dpmodel.TierInfo
		for _, t := range tiers {
			if r.IntN(3) != 0 {
				wt = append(wt, t)
			}
		}
		profiles := []string{"kns.default"}
		if r.IntN(2) == 0 {
			profiles = append(profiles, "allow-all")
		}
		us = append(us, workload(fmt.Sprintf("w%d", i), ip, wt, profiles...))
	}
	return us
}

func packets() []pkt {
	all := append(append([]string{}, locals...), nonLocals...)
	var out []pkt
	for _, s := range all {
		for _, d := range all {
			sa, da := netip.MustParseAddr(s), netip.MustParseAddr(d)
			if s == d || (!localBlock.Contains(sa) && !localBlock.Contains(da)) {
				continue
			}
			out = append(out,
				pkt{src: sa, dst: da, proto: 6, srcPort: 40000, dstPort: 80},
				pkt{src: sa, dst: da, proto: 6, srcPort: 40000, dstPort: 8080},
				pkt{src: sa, dst: da, proto: 6, srcPort: 53, dstPort: 443},
				pkt{src: sa, dst: da, proto: 17, srcPort: 40000, dstPort: 53},
				pkt{src: sa, dst: da, proto: 1, icmpType: 8},
			)
		}
	}
	return out
}

// TestRandomPolicyParity: for random policy states (and DefaultEndpointToHostAction), every packet's verdict through this dataplane's
// ACLs on the fake HNS equals the reference evaluator's when every rule is expressible, and is never
// more permissive when some are not.
func TestRandomPolicyParity(t *testing.T) {
	modes := []struct {
		name  string
		h     hcnfake.Options
		o     Options
		seeds uint64
	}{
		{"setpolicy", hcnfake.Options{}, Options{}, 150},
		{"address lists", hcnfake.Options{Version: hcn.Version{Major: 12, Minor: 0}}, Options{}, 150},
		{"tiny chunks", hcnfake.Options{}, Options{ChunkSize: 3, DisableSetPolicy: true}, 40},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			exactStates, checked, throughAllowed := 0, 0, 0
			for seed := range mode.seeds {
				r := rand.New(rand.NewPCG(seed, 7))
				rg := newRig(t, mode.h, mode.o)
				for _, ip := range locals {
					rg.pod(ip)
				}
				us := genState(r)
				rg.update(us...)
				rg.apply()
				exact := true
				for kind, n := range rg.dp.Status().Gaps {
					if n > 0 && kind != gapLogSkipped {
						exact = false
					}
				}
				if exact {
					exactStates++
				}
				s := rg.dp.state
				for _, p := range packets() {
					// Felix's workload-to-host chain: egress policy, then DefaultEndpointToHostAction
					// (Drop by default) for packets to the host's addresses.
					a := s.Config.DefaultEndpointToHostAction
					dropped := p.dst.String() == "192.0.2.10" && localBlock.Contains(p.src) && (a == "" || a == "Drop")
					want := !dropped
					// Through the host (between a local pod and anything but local pods and the host):
					// the host endpoints' forward policy must allow too.
					local := func(a netip.Addr) bool { return localBlock.Contains(a) || a.String() == "192.0.2.10" }
					gated := false
					for _, h := range s.HostEndpoints {
						for _, in := range []bool{true, false} {
							to, from := p.dst, p.src
							if !in {
								to, from = p.src, p.dst
							}
							if !localBlock.Contains(to) || local(from) {
								continue
							}
							allowed, restricted := refGate(s, h.ForwardTiers, in, p)
							gated = gated || restricted
							if !allowed {
								want = false
							}
						}
					}
					for _, w := range s.Workloads {
						if w.IPv4Nets[0].Addr() == p.src && !refAllows(s, w, false, p) {
							want = false
						}
						if w.IPv4Nets[0].Addr() == p.dst && p.src.String() != "192.0.2.10" && !refAllows(s, w, true, p) {
							want = false
						}
					}
					v := rg.hns.Verdict(hcnfake.Packet{Src: p.src, Dst: p.dst, Protocol: p.proto, SrcPort: p.srcPort, DstPort: p.dstPort})
					checked++
					if exact && want && gated {
						throughAllowed++
					}
					switch {
					case v.Allowed && !want:
						t.Fatalf("seed %d: %+v: HNS allows (%s), the reference denies: fail-open", seed, p, v.Reason)
					case exact && v.Allowed != want:
						t.Fatalf("seed %d: %+v: HNS says %v (%s), the reference %v", seed, p, v.Allowed, v.Reason, want)
					}
				}
			}
			t.Logf("%d packets checked; %d of %d states rendered exactly; %d allowed through a host endpoint's forward policy in them",
				checked, exactStates, mode.seeds, throughAllowed)
			if throughAllowed == 0 {
				t.Error("no exact state allowed traffic through a host endpoint's forward policy: the generator no longer exercises it")
			}
			if exactStates < int(mode.seeds)/5 {
				t.Errorf("only %d states were exact: the generator no longer exercises exact parity", exactStates)
			}
		})
	}
}
