package dataplane

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

func (r *rig) network(name string) *hcn.Network {
	r.t.Helper()
	n, err := r.hns.GetNetworkByName(r.t.Context(), name)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) endpoint(id string) *hcn.Endpoint {
	r.t.Helper()
	e, err := r.hns.GetEndpointByID(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

func remoteRoutes(t *testing.T, n *hcn.Network) []hcn.RemoteSubnetRouteSetting {
	t.Helper()
	var out []hcn.RemoteSubnetRouteSetting
	for _, p := range n.Policies {
		if p.Type == hcn.NetworkPolicyRemoteSubnetRoute {
			var s hcn.RemoteSubnetRouteSetting
			if err := json.Unmarshal(p.Settings, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func policyOf[T any](t *testing.T, e *hcn.Endpoint, typ hcn.EndpointPolicyType) []T {
	t.Helper()
	var out []T
	for _, p := range e.Policies {
		if p.Type == typ {
			var s T
			if err := json.Unmarshal(p.Settings, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func TestNetworkObjects(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	ext := r.network(config.HNSExternalNetwork)
	n := r.network(config.HNSOverlayNetwork)
	if ext.ID >= n.ID {
		t.Errorf("the External network (%s) must be created before the overlay network (%s)", ext.ID, n.ID)
	}
	if got := r.hns.Blips(); got != 1 {
		t.Errorf("%d connectivity blips, want 1 (the vSwitch, once)", got)
	}
	if diff := cmp.Diff("10.0.1.0/26", n.Ipams[0].Subnets[0].IpAddressPrefix); diff != "" {
		t.Errorf("subnet: %s", diff)
	}
	st := r.dp.Status()
	if !strings.HasPrefix(st.VTEPMAC, "00:15:5d:") || len(st.VTEPMAC) != 17 {
		t.Errorf("VTEP MAC %q, want the network's DR MAC in Linux form", st.VTEPMAC)
	}
	if st.TunnelAddress != netip.MustParseAddr("10.0.1.1") {
		t.Errorf("tunnel address %s", st.TunnelAddress)
	}
	want := []hcn.RemoteSubnetRouteSetting{{DestinationPrefix: "10.0.2.0/26", IsolationId: 4096, ProviderAddress: "192.0.2.20", DistributedRouterMacAddress: "66-77-88-99-aa-bb"}}
	if diff := cmp.Diff(want, remoteRoutes(t, n)); diff != "" {
		t.Errorf("remote routes (-want +got):\n%s", diff)
	}
	// The host endpoint.
	eps, err := r.hns.ListEndpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(eps, func(e hcn.Endpoint) bool { return e.Name == config.HNSHostEndpoint })
	if i < 0 || eps[i].IpConfigurations[0].IpAddress != "10.0.1.2" || eps[i].Flags&hcn.EndpointRemote == 0 {
		t.Fatalf("host endpoint: %+v", eps)
	}

	// A pod endpoint gets EncapOverhead, OutBoundNAT with every pool and the service range as
	// exceptions, the service SDNRoute, and keeps the CNI's ProviderAddress.
	pod := r.pod("10.0.1.5")
	r.update(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANEnabled: true, VXLANVNI: 4096, VXLANMTU: 1400}},
		dpmodel.PoolUpdate{CIDR: netip.MustParsePrefix("172.16.0.0/16"), Pool: dpmodel.Pool{}},
		dpmodel.ProfileUpdate{ID: "allow"},
		workload("a", "10.0.1.5", nil, "allow"))
	r.apply()
	e := r.endpoint(pod.ID)
	if got := policyOf[hcn.EncapOverheadSetting](t, e, hcn.EndpointPolicyEncapOverhead); len(got) != 1 || got[0].Overhead != 100 {
		t.Errorf("EncapOverhead = %+v, want 100 (1500 - VXLANMTU 1400)", got)
	}
	nat := policyOf[hcn.OutboundNATSetting](t, e, hcn.EndpointPolicyOutBoundNAT)
	if diff := cmp.Diff([]hcn.OutboundNATSetting{{Exceptions: []string{"10.0.0.0/16", "10.96.0.0/12", "172.16.0.0/16"}}}, nat); diff != "" {
		t.Errorf("OutBoundNAT (-want +got):\n%s", diff)
	}
	if got := policyOf[hcn.SDNRouteSetting](t, e, hcn.EndpointPolicySDNRoute); len(got) != 1 || got[0].DestinationPrefix != "10.96.0.0/12" || !got[0].NeedEncap {
		t.Errorf("SDNRoute = %+v", got)
	}
	if got := policyOf[hcn.ProviderAddressSetting](t, e, hcn.EndpointPolicyProviderAddress); len(got) != 1 {
		t.Errorf("the CNI's ProviderAddress policy was not kept: %+v", e.Policies)
	}
}

func TestRemoteRoutesFollowVTEPs(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	other := netip.MustParsePrefix("10.0.3.0/26")
	r.update(
		dpmodel.VTEPUpdate{Node: "lin1", VTEP: dpmodel.VTEP{TunnelIPv4: netip.MustParseAddr("10.0.2.0"), MACv4: "66:77:88:99:aa:cc", ParentIPv4: linuxIP.Addr()}},
		dpmodel.HostUpdate{Node: "lin2", Host: dpmodel.Host{IPv4: netip.MustParsePrefix("192.0.2.21/24")}},
		dpmodel.VTEPUpdate{Node: "lin2", VTEP: dpmodel.VTEP{TunnelIPv4: netip.MustParseAddr("10.0.3.0"), MACv4: "66:77:88:99:aa:dd", ParentIPv4: netip.MustParseAddr("192.0.2.21")}},
		dpmodel.RouteUpdate{Dst: other, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: dpmodel.EncapVXLAN, DstNode: "lin2", PoolCIDR: pool}},
	)
	r.hns.ResetCalls()
	r.apply()
	got := remoteRoutes(t, r.network(config.HNSOverlayNetwork))
	slices.SortFunc(got, func(a, b hcn.RemoteSubnetRouteSetting) int {
		return strings.Compare(a.DestinationPrefix, b.DestinationPrefix)
	})
	want := []hcn.RemoteSubnetRouteSetting{
		{DestinationPrefix: "10.0.2.0/26", IsolationId: 4096, ProviderAddress: "192.0.2.20", DistributedRouterMacAddress: "66-77-88-99-aa-cc"},
		{DestinationPrefix: "10.0.3.0/26", IsolationId: 4096, ProviderAddress: "192.0.2.21", DistributedRouterMacAddress: "66-77-88-99-aa-dd"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("remote routes (-want +got):\n%s", diff)
	}
	if c := r.hns.Calls()["ModifyNetworkPolicies"]; c != 2 {
		t.Errorf("%d ModifyNetworkPolicies calls, want 2 (one removal batch, one addition batch)", c)
	}
	r.update(dpmodel.RouteRemove{Dst: other}, dpmodel.RouteRemove{Dst: remoteBlock})
	r.apply()
	if got := remoteRoutes(t, r.network(config.HNSOverlayNetwork)); len(got) != 0 {
		t.Errorf("routes left after removal: %+v", got)
	}
}

// policyState returns updates giving workloads a (10.0.1.5) and b (10.0.1.6) a tier with a policy that
// allows TCP 80 in from set s:clients, and a profile allowing all out.
func policyState(clients ...string) []dpmodel.Update {
	var ms []dpmodel.Member
	for _, c := range clients {
		ms = append(ms, dpmodel.HostMember(netip.MustParseAddr(c)))
	}
	pid := dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "default", Name: "web"}
	tiers := []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{pid}}}
	return []dpmodel.Update{
		dpmodel.IPSetUpdate{ID: "s:clients", Type: dpmodel.IPSetNet, Members: ms},
		dpmodel.PolicyUpdate{ID: pid, Policy: dpmodel.Policy{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, Protocol: 6, SrcIPSetIDs: []string{"s:clients"}, DstPorts: []dpmodel.PortRange{{First: 80, Last: 80}}, ID: "web/in/0"}}}},
		dpmodel.ProfileUpdate{ID: "kns.default", Profile: dpmodel.Profile{Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/out/0"}}}},
		workload("a", "10.0.1.5", tiers, "kns.default"),
		workload("b", "10.0.1.6", tiers, "kns.default"),
	}
}

func tcp(src, dst string, port uint16) hcnfake.Packet {
	return hcnfake.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: 6, SrcPort: 40000, DstPort: port}
}

func TestPolicyCallsAndNoReapply(t *testing.T) {
	for _, tt := range []struct {
		name          string
		version       hcn.Version
		memberChanges int // ApplyEndpointPolicy calls when a set's membership changes
	}{
		{"setpolicy", hcn.Version{Major: 15, Minor: 1}, 0},
		{"address lists", hcn.Version{Major: 12, Minor: 0}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, hcnfake.Options{Version: tt.version}, Options{})
			r.pod("10.0.1.5")
			r.pod("10.0.1.6")
			r.pod("10.0.1.7")
			r.update(policyState("10.0.1.7")...)
			r.hns.ResetCalls()
			r.apply()
			if c := r.hns.Calls()["ApplyEndpointPolicy"]; c != 2 {
				t.Errorf("first apply: %d policy calls, want 2 (one per endpoint)", c)
			}
			if v := r.hns.Verdict(tcp("10.0.1.7", "10.0.1.5", 80)); !v.Allowed {
				t.Errorf("client → a:80 denied: %s", v.Reason)
			}
			if v := r.hns.Verdict(tcp("10.0.1.6", "10.0.1.5", 80)); v.Allowed {
				t.Errorf("b → a:80 allowed: %s", v.Reason)
			}

			// Nothing changed: no calls at all; a resync reads but writes nothing.
			r.hns.ResetCalls()
			r.apply()
			if c := r.hns.Calls(); len(c) != 0 {
				t.Errorf("Apply with nothing to do made calls: %v", c)
			}
			r.dp.QueueResync()
			r.apply()
			if c := r.hns.Calls()["ApplyEndpointPolicy"] + r.hns.Calls()["ModifyNetworkPolicies"]; c != 0 {
				t.Errorf("a resync of an unchanged host re-applied policy: %v", r.hns.Calls())
			}

			// Set membership change.
			r.hns.ResetCalls()
			r.update(dpmodel.IPSetDelta{ID: "s:clients", Added: []dpmodel.Member{dpmodel.HostMember(netip.MustParseAddr("10.0.1.6"))}})
			r.apply()
			if c := r.hns.Calls()["ApplyEndpointPolicy"]; c != tt.memberChanges {
				t.Errorf("membership change: %d policy calls, want %d", c, tt.memberChanges)
			}
			if v := r.hns.Verdict(tcp("10.0.1.6", "10.0.1.5", 80)); !v.Allowed {
				t.Errorf("b → a:80 denied after b joined the set: %s", v.Reason)
			}

			// A change that leaves the rendered ACLs equal (a rule ID, a label-only change) makes no call.
			r.hns.ResetCalls()
			r.update(dpmodel.ProfileUpdate{ID: "kns.default", Profile: dpmodel.Profile{Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/out/renamed"}}}})
			r.apply()
			if c := r.hns.Calls()["ApplyEndpointPolicy"]; c != 0 {
				t.Errorf("an equivalent profile re-applied ACLs %d times", c)
			}
		})
	}
}

func TestRecoveryAfterRestartAndReboot(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	r.pod("10.0.1.5")
	r.pod("10.0.1.7")
	r.update(policyState("10.0.1.7")...)
	r.apply()

	// HNS restart: endpoints are gone; the pods' CNI recreates them (here: the test), the agent's resync
	// puts the policy back.
	r.hns.Restart()
	r.dp.QueueResync()
	r.apply()
	if got := r.dp.Status().MissingEndpoints; len(got) != 2 {
		t.Errorf("missing endpoints after an HNS restart: %v, want a and b", got)
	}
	r.pod("10.0.1.5")
	r.pod("10.0.1.7")
	r.dp.QueueResync()
	r.apply()
	if v := r.hns.Verdict(tcp("10.0.1.7", "10.0.1.5", 80)); !v.Allowed || !strings.Contains(v.Reason, "allowed by") {
		t.Errorf("after restart: %+v", v)
	}
	if v := r.hns.Verdict(tcp("10.0.1.7", "10.0.1.5", 81)); v.Allowed {
		t.Errorf("after restart, policy not back: %+v", v)
	}
	if eps, _ := r.hns.ListEndpoints(t.Context()); !slices.ContainsFunc(eps, func(e hcn.Endpoint) bool { return e.Name == config.HNSHostEndpoint }) {
		t.Error("host endpoint not recreated after an HNS restart")
	}

	// Reboot: networks gone too.
	r.hns.Reboot()
	r.dp.QueueResync()
	r.apply()
	n := r.network(config.HNSOverlayNetwork)
	if len(remoteRoutes(t, n)) != 1 {
		t.Errorf("remote routes after a reboot: %+v", remoteRoutes(t, n))
	}
	r.network(config.HNSExternalNetwork)
}

func TestBlockChangeRecreatesNetworkWithoutBlip(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	before := r.network(config.HNSOverlayNetwork)
	r.update(dpmodel.RouteRemove{Dst: localBlock},
		dpmodel.RouteUpdate{Dst: netip.MustParsePrefix("10.0.1.64/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock, PoolCIDR: pool}})
	r.apply()
	after := r.network(config.HNSOverlayNetwork)
	if after.ID == before.ID || after.Ipams[0].Subnets[0].IpAddressPrefix != "10.0.1.64/26" {
		t.Errorf("network not recreated for the new block: %+v", after)
	}
	if got := r.hns.Blips(); got != 1 {
		t.Errorf("%d blips, want 1: the External network keeps the vSwitch", got)
	}
	r.update(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANVNI: 4097}})
	r.apply()
	if r.network(config.HNSOverlayNetwork).ID == after.ID {
		t.Error("network not recreated for a new VNI")
	}
}

func TestFailuresConverge(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	a := r.pod("10.0.1.5")
	r.pod("10.0.1.6")
	r.pod("10.0.1.7")
	boom := errors.New("HNS is busy")
	r.hns.FailWhen(func(call, object string) bool { return call == "ApplyEndpointPolicy" && object == a.ID }, boom)
	r.update(policyState("10.0.1.7")...)
	err := r.dp.Apply(t.Context())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), a.ID) || !strings.Contains(err.Error(), "default/a") {
		t.Fatalf("Apply error %v: want the HNS error naming the endpoint and workload", err)
	}
	if v := r.hns.Verdict(tcp("10.0.1.5", "10.0.1.6", 81)); v.Allowed {
		t.Errorf("b was not programmed although only a failed: %s", v.Reason)
	}
	r.hns.ClearFailures()
	r.hns.ResetCalls()
	r.apply() // the retry re-reads and converges
	if c := r.hns.Calls()["ApplyEndpointPolicy"]; c != 1 {
		t.Errorf("retry made %d policy calls, want 1 (only the endpoint that failed)", c)
	}

	// A failure while creating the network leaves nothing half made.
	r2 := newRig(t, hcnfake.Options{}, Options{})
	r2.hns.Reboot()
	r2.hns.FailNext("CreateNetwork", boom)
	r2.dp.QueueResync()
	if err := r2.dp.Apply(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Apply = %v", err)
	}
	r2.apply()
	if ns, _ := r2.hns.ListNetworks(t.Context()); len(ns) != 2 {
		t.Errorf("networks after the retry: %d, want 2", len(ns))
	}
}

func TestStaleEndpoints(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	attached := r.pod("10.0.1.9") // a pod whose WorkloadEndpoint has not arrived yet
	n := r.network(config.HNSOverlayNetwork)
	leaked, err := r.hns.CreateEndpoint(t.Context(), &hcn.Endpoint{Name: "leak", HostComputeNetwork: n.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: "10.0.1.10"}}})
	if err != nil {
		t.Fatal(err)
	}
	r.dp.QueueResync()
	r.apply()
	if _, err := r.hns.GetEndpointByID(t.Context(), leaked.ID); !hcn.IsNotFound(err) {
		t.Errorf("a detached endpoint no workload uses was kept: %v", err)
	}
	r.endpoint(attached.ID) // still there
}

func TestBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     dpmodel.Config
		version hcn.Version
		want    string
	}{
		{"low VNI", dpmodel.Config{NodeName: "win1", VXLANVNI: 4095}, hcn.Version{}, "vxlanVNI 4095"},
		{"port on old HNS", dpmodel.Config{NodeName: "win1", VXLANPort: 8472}, hcn.Version{Major: 10, Minor: 1}, "vxlanPort 8472"},
		{"no remote subnet", dpmodel.Config{NodeName: "win1"}, hcn.Version{Major: 9, Minor: 1}, "RemoteSubnetRoute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := hcnfake.New(hcnfake.Options{Version: tt.version})
			dp := New(Options{API: h})
			for _, u := range base() {
				dp.OnUpdate(u)
			}
			dp.OnUpdate(dpmodel.ConfigUpdate{Config: tt.cfg})
			err := dp.Apply(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want an error about %q", err, tt.want)
			}
			if ns, _ := h.ListNetworks(t.Context()); len(ns) != 0 {
				t.Errorf("bad config still created networks: %v", ns)
			}
		})
	}
	// A custom port where HNS has VxlanPort.
	h := hcnfake.New(hcnfake.Options{})
	dp := New(Options{API: h})
	for _, u := range base() {
		dp.OnUpdate(u)
	}
	dp.OnUpdate(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANPort: 8472}})
	if err := dp.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestCleanup(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	r.pod("10.0.1.5")
	ctx := t.Context()
	nat, err := r.hns.CreateNetwork(ctx, &hcn.Network{Name: "nat", Type: hcn.NetworkNAT})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.dp.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ns, _ := r.hns.ListNetworks(ctx)
	if len(ns) != 1 || ns[0].ID != nat.ID {
		t.Errorf("networks after Cleanup: %+v, want only the NAT network", ns)
	}
	if eps, _ := r.hns.ListEndpoints(ctx); len(eps) != 0 {
		t.Errorf("endpoints after Cleanup: %+v", eps)
	}
}

func TestGapsAreCounted(t *testing.T) {
	r := newRig(t, hcnfake.Options{}, Options{})
	r.pod("10.0.1.5")
	pid := dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "default", Name: "p"}
	r.update(
		dpmodel.IPSetUpdate{ID: "np:sctp", Type: dpmodel.IPSetIPPort, Members: []dpmodel.Member{{Net: netip.MustParsePrefix("10.0.1.5/32"), Protocol: 132, Port: 80}}},
		dpmodel.PolicyUpdate{ID: pid, Policy: dpmodel.Policy{Inbound: []dpmodel.Rule{
			{Action: dpmodel.Log, ID: "p/in/0"},
			{Action: dpmodel.Deny, Protocol: 1, ICMP: &dpmodel.ICMPMatch{Type: 8}, ID: "p/in/1"},
			{Action: dpmodel.Allow, NotProtocol: 17, ID: "p/in/2"}, // exact: UDP goes on to p/in/3
			{Action: dpmodel.Allow, Protocol: 6, ID: "p/in/3"},
			{Action: dpmodel.Allow, Protocol: 132, DstPorts: []dpmodel.PortRange{{First: 80, Last: 80}}, ID: "p/in/4"},
			{Action: dpmodel.Allow, Protocol: 6, NotDstNamedPortIPSetIDs: []string{"np:sctp"}, ID: "p/in/5"},
		}}},
		workload("a", "10.0.1.5", []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{pid}}}),
	)
	r.apply()
	want := map[string]int{gapLogSkipped: 1, gapDenyWidened: 1, gapAllowNarrowed: 2}
	if diff := cmp.Diff(want, r.dp.Status().Gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
	// ICMP echo is denied (all ICMP is), TCP allowed, UDP denied (the narrowed allow), never more.
	src := "10.0.2.5"
	if v := r.hns.Verdict(hcnfake.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("10.0.1.5"), Protocol: 1}); v.Allowed {
		t.Errorf("ICMP allowed: %s", v.Reason)
	}
	if v := r.hns.Verdict(tcp(src, "10.0.1.5", 22)); !v.Allowed {
		t.Errorf("TCP denied: %s", v.Reason)
	}
	// notProtocol is exact: UDP is not allowed by p/in/2 and nothing later allows it; GRE is.
	if v := r.hns.Verdict(hcnfake.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("10.0.1.5"), Protocol: 17, SrcPort: 1, DstPort: 53}); v.Allowed {
		t.Errorf("UDP allowed: %s", v.Reason)
	}
	if v := r.hns.Verdict(hcnfake.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("10.0.1.5"), Protocol: 47}); !v.Allowed {
		t.Errorf("GRE denied: %s", v.Reason)
	}
}

// drMAC returns the overlay network's DrMacAddress as HNS reports it, in Linux form.
func (r *rig) drMAC() string {
	r.t.Helper()
	for _, p := range r.network(config.HNSOverlayNetwork).Policies {
		if p.Type == hcn.NetworkPolicyDrMacAddress {
			var s hcn.DrMacAddressSetting
			if err := json.Unmarshal(p.Settings, &s); err != nil {
				r.t.Fatal(err)
			}
			return strings.ToLower(strings.ReplaceAll(s.Address, "-", ":"))
		}
	}
	r.t.Fatal("the overlay network has no DrMacAddress")
	return ""
}

// TestVTEPReported: the VTEP (block's first address, the network's router MAC) is handed over once the
// network exists, not again while it is unchanged, and again after a reboot recreates the network with
// another router MAC and after the block changes.
func TestVTEPReported(t *testing.T) {
	var got []VTEP
	r := newRig(t, hcnfake.Options{}, Options{OnVTEP: func(v VTEP) { got = append(got, v) }})
	first := VTEP{TunnelAddress: netip.MustParseAddr("10.0.1.1"), MAC: r.drMAC()}
	if diff := cmp.Diff([]VTEP{first}, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("VTEPs after the first Apply (-want +got):\n%s", diff)
	}
	if st := r.dp.Status(); st.VTEPMAC != first.MAC || st.TunnelAddress != first.TunnelAddress {
		t.Errorf("Status VTEP %s %s, want %+v", st.TunnelAddress, st.VTEPMAC, first)
	}
	r.dp.QueueResync()
	r.apply()
	r.hns.Restart() // endpoints lost, the network (and its MAC) stays
	r.dp.QueueResync()
	r.apply()
	if len(got) != 1 {
		t.Fatalf("VTEP reported again although unchanged: %+v", got)
	}

	r.hns.Reboot()
	r.dp.QueueResync()
	r.apply()
	second := VTEP{TunnelAddress: first.TunnelAddress, MAC: r.drMAC()}
	if second.MAC == first.MAC {
		t.Fatalf("the fake gave the recreated network the same router MAC %s; the test needs another", first.MAC)
	}
	r.update(dpmodel.RouteRemove{Dst: localBlock},
		dpmodel.RouteUpdate{Dst: netip.MustParsePrefix("10.0.1.64/26"), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock, PoolCIDR: pool}})
	r.apply()
	third := VTEP{TunnelAddress: netip.MustParseAddr("10.0.1.65"), MAC: r.drMAC()}
	if diff := cmp.Diff([]VTEP{first, second, third}, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("VTEPs (-want +got):\n%s", diff)
	}

	// A handler set later gets the current VTEP at the next Apply.
	var late []VTEP
	r.dp.SetVTEPHandler(func(v VTEP) { late = append(late, v) })
	r.dp.QueueResync()
	r.apply()
	if len(late) != 1 || late[0] != third {
		t.Errorf("SetVTEPHandler: got %+v, want [%+v]", late, third)
	}
}

// TestEndpointToHostAndHostEndpoints: DefaultEndpointToHostAction Drop (the default) denies pods'
// traffic to the host's addresses even when their egress policy allows it, as Felix's workload-to-host
// chain does; Accept and Return leave it to the policy. Host endpoint policy is counted as a gap (the
// host's own traffic crosses no HNS endpoint) and changes no pod verdict.
func TestEndpointToHostAndHostEndpoints(t *testing.T) {
	allowAll := dpmodel.ProfileUpdate{ID: "allow-all", Profile: dpmodel.Profile{
		Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "in"}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "out"}}}}
	host := "192.0.2.10" // the node's address and the fake's provider address
	for _, tt := range []struct {
		action string
		toHost bool
	}{{"", false}, {"Drop", false}, {"Accept", true}, {"Return", true}} {
		t.Run("action="+tt.action, func(t *testing.T) {
			r := newRig(t, hcnfake.Options{}, Options{})
			r.pod("10.0.1.5")
			r.update(allowAll, workload("a", "10.0.1.5", nil, "allow-all"),
				dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "win1", VXLANEnabled: true, VXLANVNI: 4096, DefaultEndpointToHostAction: tt.action}})
			r.apply()
			if v := r.hns.Verdict(tcp("10.0.1.5", host, 10250)); v.Allowed != tt.toHost {
				t.Errorf("pod -> host: allowed %t (%s), want %t", v.Allowed, v.Reason, tt.toHost)
			}
			if v := r.hns.Verdict(tcp("10.0.1.5", "10.0.2.5", 80)); !v.Allowed {
				t.Errorf("pod -> remote pod: %s", v.Reason)
			}
			if v := r.hns.Verdict(tcp(host, "10.0.1.5", 8080)); !v.Allowed {
				t.Errorf("host -> pod: %s", v.Reason)
			}
			if n := r.dp.Status().Gaps[gapHostEndpoint]; n != 0 {
				t.Errorf("%d host endpoint gaps without host endpoints", n)
			}
		})
	}

	r := newRig(t, hcnfake.Options{}, Options{})
	r.pod("10.0.1.5")
	tier := dpmodel.TierInfo{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "host"}}}
	r.update(allowAll, workload("a", "10.0.1.5", nil, "allow-all"),
		dpmodel.PolicyUpdate{ID: tier.Ingress[0], Policy: dpmodel.Policy{Inbound: []dpmodel.Rule{{Action: dpmodel.Deny, ID: "deny"}}}},
		dpmodel.HostEndpointUpdate{ID: "win1-eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "*", Tiers: []dpmodel.TierInfo{tier}}},
		dpmodel.HostEndpointUpdate{ID: "win1-bare", Endpoint: dpmodel.HostEndpoint{InterfaceName: "eth1"}})
	r.apply()
	if n := r.dp.Status().Gaps[gapHostEndpoint]; n != 1 {
		t.Errorf("%d host endpoint gaps, want 1 (the endpoint with policy)", n)
	}
	if v := r.hns.Verdict(tcp("10.0.1.5", "10.0.2.5", 80)); !v.Allowed {
		t.Errorf("pod -> remote pod with a host endpoint: %s", v.Reason)
	}
	if r.dp.Status().Gaps[gapHostForward] != 0 {
		t.Errorf("forward gap without forward policy: %v", r.dp.Status().Gaps)
	}

	// applyOnForward policy of a `*` host endpoint: traffic through the host needs its verdict and the
	// pod's (Felix's FORWARD chain); traffic between local pods and to or from the host does not.
	r.pod("10.0.1.6")
	r.pod("10.0.1.7")
	fwdID := dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "fwd"}
	fwd := dpmodel.TierInfo{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{fwdID}, Egress: []dpmodel.PolicyID{fwdID}}
	port := func(p uint16) []dpmodel.PortRange { return []dpmodel.PortRange{{First: p, Last: p}} }
	deny80 := dpmodel.ProfileUpdate{ID: "deny-80", Profile: dpmodel.Profile{
		Inbound:  []dpmodel.Rule{{Action: dpmodel.Deny, Protocol: 6, DstPorts: port(80), ID: "d80"}, {Action: dpmodel.Allow, ID: "rest"}},
		Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "out"}}}}
	r.update(deny80, workload("b", "10.0.1.6", nil, "allow-all"), workload("c", "10.0.1.7", nil, "deny-80"),
		dpmodel.PolicyUpdate{ID: fwdID, Policy: dpmodel.Policy{
			Inbound: []dpmodel.Rule{
				{Action: dpmodel.Pass, Protocol: 6, DstPorts: port(443), ID: "fwd-pass"}, // nothing to pass to: deny
				{Action: dpmodel.Allow, Protocol: 6, SrcNets: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}, ID: "fwd-in"},
			},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, DstNets: []netip.Prefix{netip.MustParsePrefix("8.0.0.0/8")}, ID: "fwd-out"}},
		}},
		dpmodel.HostEndpointUpdate{ID: "win1-eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "*", Tiers: []dpmodel.TierInfo{tier}, ForwardTiers: []dpmodel.TierInfo{fwd}}})
	r.apply()
	check := func(src, dst string, p uint16, want bool) {
		t.Helper()
		if v := r.hns.Verdict(tcp(src, dst, p)); v.Allowed != want {
			t.Errorf("%s -> %s:%d: allowed %t (%s), want %t", src, dst, p, v.Allowed, v.Reason, want)
		}
	}
	check("10.0.2.5", "10.0.1.5", 80, true)   // both allow
	check("10.0.2.5", "10.0.1.7", 80, false)  // the host endpoint allows, the pod denies
	check("8.8.8.8", "10.0.1.5", 80, false)   // the pod allows, the host endpoint denies
	check("10.0.2.5", "10.0.1.5", 443, false) // Pass with no further host endpoint tier
	check("10.0.1.6", "10.0.1.5", 443, true)  // local: the pod's policy only
	check(host, "10.0.1.5", 443, true)
	check("10.0.1.5", "8.8.8.8", 80, true)
	check("10.0.1.5", "10.0.2.5", 80, false)
	check("10.0.1.5", "10.0.1.6", 80, true)
	if g := r.dp.Status().Gaps; g[gapHostForward] != 0 || g[gapHostForwardWidened] != 0 || g[gapHostEndpoint] != 1 {
		t.Errorf("gaps %v: a `*` host endpoint's forward policy is exact", g)
	}

	// A named interface: the same policy applied to all traffic through the host, counted.
	r.update(dpmodel.HostEndpointUpdate{ID: "win1-eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "Ethernet0", ForwardTiers: []dpmodel.TierInfo{fwd}}})
	r.apply()
	check("10.0.2.5", "10.0.1.5", 80, true)
	check("8.8.8.8", "10.0.1.5", 80, false)
	if g := r.dp.Status().Gaps; g[gapHostForwardWidened] != 1 {
		t.Errorf("gaps %v, want the named interface's forward policy counted as widened", g)
	}

	// preDNAT policy cannot be evaluated (it sees the destination before the load balancer): traffic
	// into the pods through the host is denied; egress keeps the forward policy.
	pre := dpmodel.TierInfo{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{tier.Ingress[0]}}
	r.update(dpmodel.HostEndpointUpdate{ID: "win1-eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "*", PreDNATTiers: []dpmodel.TierInfo{pre}, ForwardTiers: []dpmodel.TierInfo{fwd}}})
	r.apply()
	check("10.0.2.5", "10.0.1.5", 80, false)
	check("10.0.1.6", "10.0.1.5", 80, true)
	check("10.0.1.5", "8.8.8.8", 80, true)
	if g := r.dp.Status().Gaps; g[gapHostForward] != 1 {
		t.Errorf("gaps %v, want the preDNAT host endpoint counted", g)
	}

	// Removed: back to the pods' policy alone.
	r.update(dpmodel.HostEndpointRemove{ID: "win1-eth0"})
	r.apply()
	check("8.8.8.8", "10.0.1.5", 80, true)
	check("10.0.1.5", "10.0.2.5", 80, true)
}
