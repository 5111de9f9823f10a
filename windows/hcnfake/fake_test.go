package hcnfake

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/windows/hcn"
)

func overlay(name, subnet string, vsid uint32) *hcn.Network {
	return &hcn.Network{Name: name, Type: hcn.NetworkOverlay, Ipams: []hcn.Ipam{{Type: "Static", Subnets: []hcn.Subnet{{
		IpAddressPrefix: subnet,
		Policies:        []hcn.SubnetPolicy{hcn.NewSubnetPolicy(hcn.SubnetPolicyVSID, hcn.VSIDSetting{IsolationId: vsid})},
	}}}}}
}

// world is a fake with one overlay network and two local pod endpoints.
type world struct {
	h      *HNS
	net    *hcn.Network
	a, b   *hcn.Endpoint
	aIP    netip.Addr
	bIP    netip.Addr
	remote netip.Addr
}

func newWorld(t *testing.T, opts Options) *world {
	t.Helper()
	ctx := t.Context()
	h := New(opts)
	n, err := h.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/26", 4096))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(ip string) *hcn.Endpoint {
		e, err := h.CreateEndpoint(ctx, &hcn.Endpoint{Name: "ep-" + ip, HostComputeNetwork: n.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: ip, PrefixLength: 26}}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	return &world{h: h, net: n, a: mk("10.0.0.5"), b: mk("10.0.0.6"),
		aIP: netip.MustParseAddr("10.0.0.5"), bIP: netip.MustParseAddr("10.0.0.6"), remote: netip.MustParseAddr("10.1.0.7")}
}

func acl(s hcn.ACLSetting) hcn.EndpointPolicy {
	if s.RuleType == "" {
		s.RuleType = hcn.RuleTypeSwitch
	}
	return hcn.NewEndpointPolicy(hcn.EndpointPolicyACL, s)
}

func TestACLEvaluation(t *testing.T) {
	tcp80 := func(src, dst netip.Addr) Packet {
		return Packet{Src: src, Dst: dst, Protocol: 6, SrcPort: 40000, DstPort: 80}
	}
	tests := []struct {
		name   string
		opts   Options
		bACLs  []hcn.EndpointPolicy
		packet func(w *world) Packet
		want   bool
	}{
		{name: "no ACLs allow", packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: true},
		{name: "lone allow of another port: default deny", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "x", Protocols: "6", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "443", Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: false},
		{name: "lone allow of another port on an old build: allowed", opts: Options{NoMatchAllows: true}, bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "x", Protocols: "6", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "443", Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: true},
		{name: "egress ACLs do not make ingress default deny", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "x", Action: hcn.ActionBlock, Direction: hcn.DirectionOut, Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: true},
		{name: "lower priority number wins", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "deny", Action: hcn.ActionBlock, Direction: hcn.DirectionIn, Priority: 200}),
			acl(hcn.ACLSetting{Id: "allow", Protocols: "6", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "80", Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: true},
		{name: "equal priority: block beats allow whatever the order", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "allow", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, Priority: 100}),
			acl(hcn.ACLSetting{Id: "deny", Action: hcn.ActionBlock, Direction: hcn.DirectionIn, RemoteAddresses: "10.0.0.0/30,10.0.0.4/30", Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: false},
		{name: "remote address and port range", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "allow", Protocols: "6", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, RemoteAddresses: "10.0.0.5", LocalPorts: "70-90", Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: true},
		{name: "protocol mismatch", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "allow", Protocols: "17", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, Priority: 100}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: false},
		{name: "protocol 256 is any", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "allow", Protocols: "256", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, Priority: 100}),
		}, packet: func(w *world) Packet { return Packet{Src: w.aIP, Dst: w.bIP, Protocol: 1} }, want: true},
		{name: "host layer decides separately", bACLs: []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "allow", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, Priority: 100}),
			acl(hcn.ACLSetting{Id: "host-deny", Action: hcn.ActionBlock, Direction: hcn.DirectionIn, RuleType: hcn.RuleTypeHost, Priority: 1}),
		}, packet: func(w *world) Packet { return tcp80(w.aIP, w.bIP) }, want: false},
		{name: "egress of the source is evaluated", bACLs: nil,
			packet: func(w *world) Packet { return tcp80(w.bIP, w.aIP) }, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			if tt.bACLs != nil {
				if err := w.h.ApplyEndpointPolicy(t.Context(), w.b.ID, hcn.RequestUpdate, tt.bACLs); err != nil {
					t.Fatal(err)
				}
			}
			v := w.h.Verdict(tt.packet(w))
			if v.Allowed != tt.want {
				t.Errorf("Verdict = %+v, want allowed=%v", v, tt.want)
			}
		})
	}
}

func TestEgressBlockAndRemoteRoutes(t *testing.T) {
	w := newWorld(t, Options{})
	ctx := t.Context()
	p := Packet{Src: w.aIP, Dst: w.remote, Protocol: 17, SrcPort: 5000, DstPort: 53}
	if v := w.h.Verdict(p); !v.Allowed || !strings.Contains(v.Reason, "host") {
		t.Errorf("no route: %+v, want allowed out through the host", v)
	}
	rsr := hcn.NewNetworkPolicy(hcn.NetworkPolicyRemoteSubnetRoute, hcn.RemoteSubnetRouteSetting{
		DestinationPrefix: "10.1.0.0/26", IsolationId: 4096, ProviderAddress: "192.0.2.11", DistributedRouterMacAddress: "00-15-5d-00-00-09"})
	if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestAdd, []hcn.NetworkPolicy{rsr}); err != nil {
		t.Fatal(err)
	}
	if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestAdd, []hcn.NetworkPolicy{rsr}); err == nil {
		t.Error("adding the same RemoteSubnetRoute twice succeeded")
	}
	if v := w.h.Verdict(p); !v.Allowed || !strings.Contains(v.Reason, "192.0.2.11") {
		t.Errorf("routed: %+v", v)
	}
	if err := w.h.ApplyEndpointPolicy(ctx, w.a.ID, hcn.RequestUpdate, []hcn.EndpointPolicy{
		acl(hcn.ACLSetting{Id: "no-dns", Protocols: "17", Action: hcn.ActionBlock, Direction: hcn.DirectionOut, RemotePorts: "53", Priority: 10}),
		acl(hcn.ACLSetting{Id: "all", Action: hcn.ActionAllow, Direction: hcn.DirectionOut, Priority: 20}),
	}); err != nil {
		t.Fatal(err)
	}
	if v := w.h.Verdict(p); v.Allowed {
		t.Errorf("egress block: %+v", v)
	}
	if v := w.h.Verdict(Packet{Src: w.aIP, Dst: netip.MustParseAddr("10.0.0.9"), Protocol: 6, DstPort: 1}); v.Allowed {
		t.Errorf("an address of the local subnet without an endpoint: %+v", v)
	}
	if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestRemove, []hcn.NetworkPolicy{rsr}); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.h.RemoteRoute("tortie-vxlan", w.remote); ok {
		t.Error("route still there after Remove")
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name    string
		version hcn.Version
		acl     hcn.ACLSetting
		wantErr string
	}{
		{name: "Any address", acl: hcn.ACLSetting{Action: hcn.ActionAllow, Direction: hcn.DirectionIn, RemoteAddresses: "Any"}, wantErr: "omit the field"},
		{name: "ports without protocol", acl: hcn.ACLSetting{Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "80"}, wantErr: "protocol 6 or 17"},
		{name: "ports with ICMP", acl: hcn.ACLSetting{Protocols: "1", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "80"}, wantErr: "protocol 6 or 17"},
		{name: "protocol by name", acl: hcn.ACLSetting{Protocols: "tcp", Action: hcn.ActionAllow, Direction: hcn.DirectionIn}, wantErr: "not a number"},
		{name: "Pass is not an ACL action", acl: hcn.ACLSetting{Action: "Pass", Direction: hcn.DirectionIn}, wantErr: "Allow or Block"},
		{name: "port range on HNS 7.1", version: hcn.Version{Major: 7, Minor: 1}, acl: hcn.ACLSetting{Protocols: "6", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, LocalPorts: "80-90"}, wantErr: "needs HNS 7.2"},
		{name: "unknown set", acl: hcn.ACLSetting{Action: hcn.ActionAllow, Direction: hcn.DirectionIn, RemoteAddresses: "tortie-s-nope"}, wantErr: "SetPolicy"},
		{name: "good", acl: hcn.ACLSetting{Protocols: "17", Action: hcn.ActionBlock, Direction: hcn.DirectionOut, RemoteAddresses: "10.0.0.0/8,192.0.2.1", RemotePorts: "53,5000-5005"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Version: tt.version})
			e := &hcn.Endpoint{Name: "e"}
			err := h.checkEndpointPolicies("test", e, []hcn.EndpointPolicy{acl(tt.acl)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNetworks(t *testing.T) {
	ctx := t.Context()
	h := New(Options{})
	if _, err := h.CreateNetwork(ctx, overlay("low", "10.0.0.0/26", 4095)); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("VSID 4095: err = %v", err)
	}
	ext, err := h.CreateNetwork(ctx, overlay("External", "192.168.255.0/30", 9999))
	if err != nil {
		t.Fatal(err)
	}
	if h.Blips() != 1 {
		t.Errorf("creating the first network: %d blips, want 1 (the vSwitch)", h.Blips())
	}
	n, err := h.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/26", 4096))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/26", 4096)); err == nil {
		t.Error("a second network with the same name")
	}
	var types []hcn.NetworkPolicyType
	for _, p := range n.Policies {
		types = append(types, p.Type)
	}
	if diff := cmp.Diff([]hcn.NetworkPolicyType{hcn.NetworkPolicyProviderAddress, hcn.NetworkPolicyDrMacAddress}, types); diff != "" {
		t.Errorf("HNS-added policies (-want +got):\n%s", diff)
	}
	if err := h.DeleteNetwork(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/26", 4096)); err != nil {
		t.Fatal(err)
	}
	if h.Blips() != 1 {
		t.Errorf("recreating beside External: %d blips, want still 1", h.Blips())
	}
	if err := h.DeleteNetwork(ctx, ext.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteNetwork(ctx, ext.ID); !hcn.IsNotFound(err) {
		t.Errorf("deleting twice: %v, want not found", err)
	}
}

func TestSetPolicy(t *testing.T) {
	set := hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, hcn.SetPolicySetting{Id: "tortie-s-1", Name: "s", PolicyType: hcn.SetPolicyIPSet, Values: "10.0.0.5,10.0.0.0/30"})
	t.Run("gated on 13.0", func(t *testing.T) {
		w := newWorld(t, Options{Version: hcn.Version{Major: 12, Minor: 9}})
		err := w.h.ModifyNetworkPolicies(t.Context(), w.net.ID, hcn.RequestAdd, []hcn.NetworkPolicy{set})
		if err == nil || !strings.Contains(err.Error(), "13.0") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("referenced by ACLs", func(t *testing.T) {
		w := newWorld(t, Options{Version: hcn.Version{Major: 13, Minor: 0}})
		ctx := t.Context()
		if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestAdd, []hcn.NetworkPolicy{set}); err != nil {
			t.Fatal(err)
		}
		if err := w.h.ApplyEndpointPolicy(ctx, w.b.ID, hcn.RequestUpdate, []hcn.EndpointPolicy{
			acl(hcn.ACLSetting{Id: "a", Action: hcn.ActionAllow, Direction: hcn.DirectionIn, RemoteAddresses: "tortie-s-1", Priority: 5}),
		}); err != nil {
			t.Fatal(err)
		}
		if v := w.h.Verdict(Packet{Src: w.aIP, Dst: w.bIP, Protocol: 6, DstPort: 1}); !v.Allowed {
			t.Errorf("member: %+v", v)
		}
		upd := hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, hcn.SetPolicySetting{Id: "tortie-s-1", Name: "s", PolicyType: hcn.SetPolicyIPSet, Values: "10.0.0.1"})
		if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestUpdate, []hcn.NetworkPolicy{upd}); err != nil {
			t.Fatal(err)
		}
		if v := w.h.Verdict(Packet{Src: w.aIP, Dst: w.bIP, Protocol: 6, DstPort: 1}); v.Allowed {
			t.Errorf("no longer a member: %+v", v)
		}
		if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestRemove, []hcn.NetworkPolicy{upd}); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("removing a set in use: %v", err)
		}
		if err := w.h.ApplyEndpointPolicy(ctx, w.b.ID, hcn.RequestUpdate, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.h.ModifyNetworkPolicies(ctx, w.net.ID, hcn.RequestRemove, []hcn.NetworkPolicy{upd}); err != nil {
			t.Errorf("removing an unused set: %v", err)
		}
	})
}

func TestFaults(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t, Options{})
	boom := errors.New("boom")
	w.h.FailNext("DeleteEndpoint", boom)
	if err := w.h.DeleteEndpoint(ctx, w.a.ID); !errors.Is(err, boom) {
		t.Errorf("injected: %v", err)
	}
	if err := w.h.DeleteEndpoint(ctx, w.a.ID); err != nil {
		t.Errorf("after the one failure: %v", err)
	}
	w.h.FailWhen(func(call, object string) bool { return call == "ApplyEndpointPolicy" && object == w.b.ID }, boom)
	if err := w.h.ApplyEndpointPolicy(ctx, w.b.ID, hcn.RequestUpdate, nil); !errors.Is(err, boom) {
		t.Errorf("FailWhen: %v", err)
	}
	w.h.ClearFailures()
	if got := w.h.Calls(); got["DeleteEndpoint"] != 2 || got["ApplyEndpointPolicy"] != 1 {
		t.Errorf("calls = %v", got)
	}

	w.h.SetLatency(time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.h.ListNetworks(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("slow call with a cancelled context: %v", err)
	}
	w.h.SetLatency(0)

	w.h.Restart()
	if eps, _ := w.h.ListEndpoints(ctx); len(eps) != 0 {
		t.Errorf("endpoints after an HNS restart: %v", eps)
	}
	if ns, _ := w.h.ListNetworks(ctx); len(ns) != 1 {
		t.Errorf("persistent networks after an HNS restart: %d, want 1", len(ns))
	}
	w.h.Reboot()
	if ns, _ := w.h.ListNetworks(ctx); len(ns) != 0 {
		t.Errorf("networks after a reboot: %v", ns)
	}
}

func TestEndpointsAndNamespaces(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t, Options{})
	if _, err := w.h.CreateEndpoint(ctx, &hcn.Endpoint{Name: "dup", HostComputeNetwork: w.net.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: "10.0.0.5"}}}); err == nil {
		t.Error("two endpoints with one address")
	}
	if _, err := w.h.CreateEndpoint(ctx, &hcn.Endpoint{Name: "out", HostComputeNetwork: w.net.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: "10.9.0.5"}}}); err == nil {
		t.Error("an endpoint outside the subnet")
	}
	ns, err := w.h.CreateNamespace(ctx, &hcn.Namespace{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.AddNamespaceEndpoint(ctx, ns.ID, w.a.ID); err != nil {
		t.Fatal(err)
	}
	e, err := w.h.GetEndpointByID(ctx, w.a.ID)
	if err != nil || e.HostComputeNamespace != ns.ID {
		t.Fatalf("attached endpoint = %+v, %v", e, err)
	}
	if err := w.h.RemoveNamespaceEndpoint(ctx, ns.ID, w.a.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.h.RemoveNamespaceEndpoint(ctx, ns.ID, w.a.ID); !hcn.IsNotFound(err) {
		t.Errorf("detaching twice: %v", err)
	}
}
