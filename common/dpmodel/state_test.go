package dpmodel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	pfx = netip.MustParsePrefix
	adr = netip.MustParseAddr
)

func TestApplyEnforcesOrdering(t *testing.T) {
	pol := PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "allow-web"}
	rule := Rule{Action: Allow, Protocol: 6, SrcIPSetIDs: []string{"s:web"}, DstPorts: []PortRange{{80, 80}}}
	ep := WorkloadEndpointUpdate{ID: WorkloadEndpointID{"x", "n1-k8s-a-eth0"}, Endpoint: WorkloadEndpoint{
		InterfaceName: "cali1", Tiers: []TierInfo{{Name: "default", DefaultAction: Deny, Ingress: []PolicyID{pol}}},
		ProfileIDs: []string{"kns.x"},
	}}
	for _, tc := range []struct {
		desc    string
		updates []Update
		wantErr error // of the last update
	}{
		{"rule before its IP set", []Update{PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}}}, ErrOrder},
		{"endpoint before its policy", []Update{
			ProfileUpdate{ID: "kns.x"}, ep}, ErrOrder},
		{"endpoint before its profile", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}}, ep}, ErrOrder},
		{"in order", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}},
			ProfileUpdate{ID: "kns.x"}, ep}, nil},
		{"IP set removed while referenced", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}},
			IPSetRemove{ID: "s:web"}}, ErrOrder},
		{"IP set removed after the policy stops referring to it", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}},
			PolicyUpdate{ID: pol, Policy: Policy{}}, IPSetRemove{ID: "s:web"}}, nil},
		{"policy removed while an endpoint lists it", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}},
			ProfileUpdate{ID: "kns.x"}, ep, PolicyRemove{ID: pol}}, ErrOrder},
		{"policy removed after the endpoint", []Update{
			IPSetUpdate{ID: "s:web", Type: IPSetNet}, PolicyUpdate{ID: pol, Policy: Policy{Inbound: []Rule{rule}}},
			ProfileUpdate{ID: "kns.x"}, ep, WorkloadEndpointRemove{ID: ep.ID}, PolicyRemove{ID: pol}, ProfileRemove{ID: "kns.x"},
			IPSetRemove{ID: "s:web"}}, nil},
		{"profile removed after the host endpoint that listed it", []Update{
			ProfileUpdate{ID: "kns.x"}, HostEndpointUpdate{ID: "h1", Endpoint: HostEndpoint{InterfaceName: "eth0", ProfileIDs: []string{"kns.x"}}},
			HostEndpointRemove{ID: "h1"}, ProfileRemove{ID: "kns.x"}}, nil},
		{"profile removed under a host endpoint", []Update{
			ProfileUpdate{ID: "kns.x"}, HostEndpointUpdate{ID: "h1", Endpoint: HostEndpoint{InterfaceName: "eth0", ProfileIDs: []string{"kns.x"}}},
			ProfileRemove{ID: "kns.x"}}, ErrOrder},
		{"VXLAN route before its VTEP", []Update{
			RouteUpdate{Dst: pfx("10.0.1.0/26"), Route: Route{Type: RouteRemoteBlock, Encap: EncapVXLAN, DstNode: "n2"}}}, ErrOrder},
		{"VTEP removed under its route", []Update{
			VTEPUpdate{Node: "n2"}, RouteUpdate{Dst: pfx("10.0.1.0/26"), Route: Route{Type: RouteRemoteBlock, Encap: EncapVXLAN, DstNode: "n2"}},
			VTEPRemove{Node: "n2"}}, ErrOrder},
		{"unmasked route", []Update{RouteUpdate{Dst: pfx("10.0.1.5/26")}}, ErrInvalid},
		{"delta on a missing set", []Update{IPSetDelta{ID: "nope"}}, ErrOrder},
		{"ip,port member that is a network", []Update{IPSetUpdate{ID: "n:x", Type: IPSetIPPort,
			Members: []Member{{Net: pfx("10.0.0.0/24"), Protocol: 6, Port: 80}}}}, ErrInvalid},
		{"net member with a port", []Update{IPSetUpdate{ID: "s:x", Type: IPSetNet,
			Members: []Member{{Net: pfx("10.0.0.1/32"), Port: 80}}}}, ErrInvalid},
		{"tier default action Allow", []Update{ProfileUpdate{ID: "kns.x"}, WorkloadEndpointUpdate{ID: ep.ID,
			Endpoint: WorkloadEndpoint{Tiers: []TierInfo{{Name: "t", DefaultAction: Allow}}}}}, ErrInvalid},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := NewState()
			last := len(tc.updates) - 1
			if err := s.ApplyAll(tc.updates[:last]); err != nil {
				t.Fatalf("setup: %v", err)
			}
			before := s.Clone()
			err := s.Apply(tc.updates[last])
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Apply(%s) = %v, want %v", tc.updates[last].Kind(), err, tc.wantErr)
			}
			if err != nil && !s.Equal(before) {
				t.Errorf("a refused update changed the state: %v", Diff(before, s))
			}
		})
	}
}

func TestIPSetDelta(t *testing.T) {
	s := NewState()
	m := func(a string) Member { return HostMember(adr(a)) }
	must(t, s.Apply(IPSetUpdate{ID: "s:a", Type: IPSetNet, Members: []Member{m("10.0.0.2"), m("10.0.0.1"), m("10.0.0.1")}}))
	must(t, s.Apply(IPSetDelta{ID: "s:a", Added: []Member{m("10.0.0.3")}, Removed: []Member{m("10.0.0.1")}}))
	want := []Member{m("10.0.0.2"), m("10.0.0.3")}
	if diff := cmp.Diff(want, s.IPSets["s:a"].Members, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if err := s.Apply(IPSetDelta{ID: "s:a", Added: []Member{m("10.0.0.9")}, Removed: []Member{m("10.0.0.9")}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("add and remove of one member: %v", err)
	}
	// A set emptied by a delta equals one sent empty.
	must(t, s.Apply(IPSetDelta{ID: "s:a", Removed: want}))
	empty := NewState()
	must(t, empty.Apply(IPSetUpdate{ID: "s:a", Type: IPSetNet}))
	if !s.Equal(empty) {
		t.Errorf("a set emptied by a delta differs from an empty set: %v", Diff(empty, s))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// randomState builds a contract-respecting state from a seed, over a small universe of IDs so that two
// random states overlap.
func randomState(r *rand.Rand) *State {
	s := NewState()
	cfg := Config{NodeName: "n1", VXLANVNI: 4096 + r.IntN(2)}
	must2(s.Apply(ConfigUpdate{Config: cfg}))
	var sets []string
	for i := range 6 {
		if r.IntN(2) == 0 {
			continue
		}
		id := fmt.Sprintf("s:%d", i)
		var ms []Member
		for j := range r.IntN(4) {
			ms = append(ms, HostMember(netip.AddrFrom4([4]byte{10, 0, byte(i), byte(j + r.IntN(3))})))
		}
		must2(s.Apply(IPSetUpdate{ID: id, Type: IPSetNet, Members: ms}))
		sets = append(sets, id)
	}
	rule := func() Rule {
		ru := Rule{Action: Action(1 + r.IntN(4))}
		if len(sets) > 0 && r.IntN(2) == 0 {
			ru.SrcIPSetIDs = []string{sets[r.IntN(len(sets))]}
		}
		return ru
	}
	var pols []PolicyID
	for i := range 5 {
		if r.IntN(2) == 0 {
			continue
		}
		id := PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: fmt.Sprint("p", i)}
		must2(s.Apply(PolicyUpdate{ID: id, Policy: Policy{Inbound: []Rule{rule()}, Outbound: []Rule{rule(), rule()}[:r.IntN(3)]}}))
		pols = append(pols, id)
	}
	var profs []string
	for i := range 3 {
		if r.IntN(2) == 0 {
			continue
		}
		id := fmt.Sprint("kns.", i)
		must2(s.Apply(ProfileUpdate{ID: id, Profile: Profile{Inbound: []Rule{rule()}}}))
		profs = append(profs, id)
	}
	for i := range 5 {
		if r.IntN(2) == 0 {
			continue
		}
		var tier TierInfo
		tier.Name, tier.DefaultAction = "default", Deny
		for _, p := range pols {
			if r.IntN(2) == 0 {
				tier.Ingress = append(tier.Ingress, p)
			}
		}
		var ps []string
		if len(profs) > 0 {
			ps = []string{profs[r.IntN(len(profs))]}
		}
		must2(s.Apply(WorkloadEndpointUpdate{ID: WorkloadEndpointID{"ns", fmt.Sprint("we", i)},
			Endpoint: WorkloadEndpoint{InterfaceName: fmt.Sprint("cali", i), Tiers: []TierInfo{tier}, ProfileIDs: ps}}))
	}
	for i := range 3 {
		if r.IntN(2) == 0 {
			continue
		}
		node := fmt.Sprint("n", i+2)
		must2(s.Apply(HostUpdate{Node: node, Host: Host{IPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 0, byte(i + 2)}), 24)}}))
		must2(s.Apply(VTEPUpdate{Node: node, VTEP: VTEP{MACv4: fmt.Sprintf("66:00:00:00:00:%02x", r.IntN(2))}}))
		dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 26)
		must2(s.Apply(RouteUpdate{Dst: dst, Route: Route{Type: RouteRemoteBlock, Encap: Encap(2 * r.IntN(2)), DstNode: node}}))
	}
	if r.IntN(2) == 0 {
		must2(s.Apply(PoolUpdate{CIDR: pfx("10.0.0.0/8"), Pool: Pool{VXLANMode: EncapMode(r.IntN(3)), NATOutgoing: true}}))
	}
	return s
}

func must2(err error) {
	if err != nil {
		panic(err)
	}
}

// TestDiffRespectsContract replays the diff between random pairs of states: every diff must apply
// without breaking the ordering contract and reach the target exactly.
func TestDiffRespectsContract(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 1))
		from, to := randomState(r), randomState(r)
		got := from.Clone()
		if err := got.ApplyAll(Diff(from, to)); err != nil {
			t.Fatalf("seed %d: diff does not apply: %v", seed, err)
		}
		if !got.Equal(to) {
			t.Fatalf("seed %d: diff did not reach the target; remaining %v", seed, Diff(got, to))
		}
		if d := Diff(to, to.Clone()); len(d) != 0 {
			t.Fatalf("seed %d: diff of equal states = %v", seed, d)
		}
		snap := NewState()
		if err := snap.ApplyAll(to.Snapshot()); err != nil || !snap.Equal(to) {
			t.Fatalf("seed %d: snapshot replay: %v", seed, err)
		}
	}
}
