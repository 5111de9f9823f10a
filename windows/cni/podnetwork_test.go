package cni

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

var (
	block   = netip.MustParsePrefix("10.0.1.0/26")
	pool    = netip.MustParsePrefix("10.0.0.0/16")
	service = netip.MustParsePrefix("10.96.0.0/12")
)

// node is a fake HNS with the agent's overlay network for block.
func node(t *testing.T) *hcnfake.HNS {
	t.Helper()
	return nodeAt(t, hcn.Version{})
}

// nodeAt is node with HNS version v (the fake's default when zero).
func nodeAt(t *testing.T, v hcn.Version) *hcnfake.HNS {
	t.Helper()
	h := hcnfake.New(hcnfake.Options{Version: v})
	_, err := h.CreateNetwork(t.Context(), &hcn.Network{Name: "tortie-vxlan", Type: hcn.NetworkOverlay, Ipams: []hcn.Ipam{{Type: "Static", Subnets: []hcn.Subnet{{
		IpAddressPrefix: block.String(),
		Routes:          []hcn.Route{{NextHop: "10.0.1.1", DestinationPrefix: "0.0.0.0/0"}},
		Policies:        []hcn.SubnetPolicy{hcn.NewSubnetPolicy(hcn.SubnetPolicyVSID, hcn.VSIDSetting{IsolationId: 4096})},
	}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func podNet(h *hcnfake.HNS, containerID string, natOutgoing bool) *PodNetwork {
	return &PodNetwork{API: h, Containers: h, ContainerID: containerID,
		Conf: Conf{ServiceCIDRs: []netip.Prefix{service}, MACPrefix: [2]byte{0x0e, 0x2a}, DefaultDeny: true},
		Pools: func(context.Context) (map[netip.Prefix]dpmodel.Pool, error) {
			return map[netip.Prefix]dpmodel.Pool{pool: {NATOutgoing: natOutgoing}}, nil
		}}
}

func request(netns, addr string) cnicore.InterfaceRequest {
	return cnicore.InterfaceRequest{NetNS: netns, ContainerIfName: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}}
}

func namespace(t *testing.T, h *hcnfake.HNS) string {
	t.Helper()
	ns, err := h.CreateNamespace(t.Context(), &hcn.Namespace{Type: hcn.NamespaceGuest})
	if err != nil {
		t.Fatal(err)
	}
	return ns.ID
}

func TestSetupTeardownContainerd(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	ns := namespace(t, h)
	pn := podNet(h, "c1", true)
	res, err := pn.Setup(ctx, request(ns, "10.0.1.7/32"))
	if err != nil {
		t.Fatal(err)
	}
	want := &cnicore.InterfaceResult{HostIfName: "c1_tortie-vxlan", ContainerMAC: net.HardwareAddr{0x0e, 0x2a, 10, 0, 1, 7}, SandboxPath: ns,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.7/32")}, GatewayV4: netip.MustParseAddr("10.0.1.1")}
	if diff := cmp.Diff(want, res, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	eps, _ := h.ListEndpoints(ctx)
	if len(eps) != 1 || eps[0].HostComputeNamespace != ns || eps[0].Name != "c1_tortie-vxlan" {
		t.Fatalf("endpoints %+v", eps)
	}
	var got []string
	for _, p := range eps[0].Policies {
		got = append(got, string(p.Type)+" "+string(p.Settings))
	}
	wantPols := []string{
		`ProviderAddress {"ProviderAddress":"192.0.2.10"}`,
		`OutBoundNAT {"Exceptions":["10.0.0.0/16","10.96.0.0/12"]}`,
		`SDNRoute {"DestinationPrefix":"10.96.0.0/12","NeedEncap":true}`,
		`ACL {"Id":"tortie-cni-default-deny","Protocols":"256","Action":"Block","Direction":"In","RuleType":"Switch","Priority":65500}`,
	}
	if diff := cmp.Diff(wantPols, got); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	if err := pn.Check(ctx, request(ns, "10.0.1.7/32")); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := pn.Check(ctx, request(ns, "10.0.1.8/32")); err == nil || !strings.Contains(err.Error(), "want 10.0.1.8") {
		t.Errorf("Check of another address: %v", err)
	}
	for range 2 {
		if err := pn.Teardown(ctx, ns, "eth0", pn.HostIfName("default", "p")); err != nil {
			t.Fatal(err)
		}
	}
	if eps, _ := h.ListEndpoints(ctx); len(eps) != 0 {
		t.Errorf("endpoints after Teardown: %+v", eps)
	}
}

// TestSetupNoNAT: a pod of a pool without natOutgoing gets no OutBoundNAT, and without default deny no
// ACL.
func TestSetupNoNAT(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	pn := podNet(h, "c1", false)
	pn.Conf.DefaultDeny = false
	if _, err := pn.Setup(ctx, request(namespace(t, h), "10.0.1.7/32")); err != nil {
		t.Fatal(err)
	}
	eps, _ := h.ListEndpoints(ctx)
	var types []hcn.EndpointPolicyType
	for _, p := range eps[0].Policies {
		types = append(types, p.Type)
	}
	if diff := cmp.Diff([]hcn.EndpointPolicyType{hcn.EndpointPolicyProviderAddress, hcn.EndpointPolicySDNRoute}, types); diff != "" {
		t.Errorf("policy types (-want +got):\n%s", diff)
	}
}

// TestSetupReplacesLeftovers: an endpoint of an earlier attempt of the same sandbox, and a leaked one
// holding the pod's address, are removed; the host endpoint and other pods' endpoints are not.
func TestSetupReplacesLeftovers(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	n, _ := h.GetNetworkByName(ctx, "tortie-vxlan")
	mk := func(name, ip string, flags hcn.EndpointFlags) string {
		e, err := h.CreateEndpoint(ctx, &hcn.Endpoint{Name: name, HostComputeNetwork: n.ID, Flags: flags, IpConfigurations: []hcn.IPConfig{{IpAddress: ip}}})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	mk("c1_tortie-vxlan", "10.0.1.9", 0)
	leaked := mk("old_tortie-vxlan", "10.0.1.7", 0)
	oldNS := namespace(t, h)
	if err := h.AddNamespaceEndpoint(ctx, oldNS, leaked); err != nil {
		t.Fatal(err)
	}
	mk("tortie-vxlan_ep", "10.0.1.2", hcn.EndpointRemote)
	mk("other_tortie-vxlan", "10.0.1.10", 0)
	if _, err := podNet(h, "c1", true).Setup(ctx, request(namespace(t, h), "10.0.1.7/32")); err != nil {
		t.Fatal(err)
	}
	eps, _ := h.ListEndpoints(ctx)
	var names []string
	for _, e := range eps {
		names = append(names, e.Name+"="+e.IpConfigurations[0].IpAddress)
	}
	if diff := cmp.Diff([]string{"tortie-vxlan_ep=10.0.1.2", "other_tortie-vxlan=10.0.1.10", "c1_tortie-vxlan=10.0.1.7"}, names); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

func TestSetupErrors(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	ns := namespace(t, h)
	empty := hcnfake.New(hcnfake.Options{})
	for _, tc := range []struct {
		name string
		h    *hcnfake.HNS
		req  cnicore.InterfaceRequest
		code uint
		want string
	}{
		{"no network", empty, request(ns, "10.0.1.7/32"), cnicore.CodeTryAgainLater, "tortie-vxlan does not exist yet"},
		{"outside the block", h, request(ns, "10.0.2.7/32"), 0, "outside 10.0.1.0/26"},
		{"ipv6", h, cnicore.InterfaceRequest{NetNS: ns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.7/32"), netip.MustParsePrefix("fd00::7/128")}},
			cnicore.CodeInvalidConfig, "IPv4 only"},
		{"join an unknown infra container", h, request("container:abc", "10.0.1.7/32"), cnicore.CodeUnknownContainer, "infra container abc has no HNS endpoint abc_tortie-vxlan"},
		{"join no container", h, request("container:", "10.0.1.7/32"), cnicore.CodeInvalidEnvironment, "does not name a container"},
		{"linux netns", h, request("/var/run/netns/x", "10.0.1.7/32"), cnicore.CodeInvalidEnvironment, "neither"},
		{"no namespace", h, request("01234567-89ab-4cde-8f01-23456789abcd", "10.0.1.7/32"), 0, "attaching the HNS endpoint"},
		{"no container", h, request("none", "10.0.1.7/32"), 0, "container (compute system)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := podNet(tc.h, "c1", true).Setup(ctx, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup: %v, want an error containing %q", err, tc.want)
			}
			var te *types.Error
			if tc.code != 0 && (!errors.As(err, &te) || te.Code != tc.code) {
				t.Errorf("code: %v, want %d", err, tc.code)
			}
			if eps, _ := tc.h.ListEndpoints(ctx); len(eps) != 0 {
				t.Errorf("endpoints after a failed Setup: %+v", eps)
			}
		})
	}
}

func TestDockerFlowAndGC(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	if _, err := h.AddContainer("infra1", ""); err != nil {
		t.Fatal(err)
	}
	d := podNet(h, "infra1", true)
	if _, err := d.Setup(ctx, request("none", "10.0.1.7/32")); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(ctx, request("none", "10.0.1.7/32")); err != nil {
		t.Errorf("Check: %v", err)
	}
	c := podNet(h, "c2", true)
	ns := namespace(t, h)
	if _, err := c.Setup(ctx, request(ns, "10.0.1.8/32")); err != nil {
		t.Fatal(err)
	}
	if err := c.GC(ctx, []types.GCAttachment{{ContainerID: "c2", IfName: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	eps, _ := h.ListEndpoints(ctx)
	if len(eps) != 1 || eps[0].Name != "c2_tortie-vxlan" {
		t.Errorf("endpoints after GC: %+v", eps)
	}
	if err := d.Teardown(ctx, "none", "eth0", ""); err != nil {
		t.Errorf("Teardown of a collected endpoint: %v", err)
	}
	if err := c.Status(ctx); err != nil {
		t.Errorf("Status: %v", err)
	}
	if err := podNet(hcnfake.New(hcnfake.Options{}), "x", true).Status(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Status without the network: %v", err)
	}
}

func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf string
		want Conf
		code uint
		err  string
	}{
		{name: "defaults", conf: `{}`, want: Conf{MACPrefix: [2]byte{0x0e, 0x2a}, DefaultDeny: true}},
		{name: "calico windows template", conf: `{"mode": "vxlan", "vxlan_mac_prefix": "0E-2B", "vxlan_vni": 4096, "windows_use_single_network": true,
			"windows_disable_default_deny_all_policy": "true", "windows_loopback_DSR": false,
			"dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
			"policies": [{"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT", "ExceptionList": ["10.96.0.0/12"]}},
			             {"Name": "EndpointPolicy", "Value": {"Type": "SDNROUTE", "DestinationPrefix": "10.96.0.0/12", "NeedEncap": true}},
			             {"Name": "EndpointPolicy", "Value": {"Type": "SDNRoute", "Settings": {"DestinationPrefix": "10.97.0.1/16", "NeedEncap": true}}}]}`,
			want: Conf{ServiceCIDRs: []netip.Prefix{service, netip.MustParsePrefix("10.97.0.0/16")}, MACPrefix: [2]byte{0x0e, 0x2b},
				DNS: &hcn.DNS{ServerList: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}}, Ignored: []string{"vxlan_vni"}}},
		{name: "loopback DSR", conf: `{"windows_loopback_DSR": true}`, want: Conf{MACPrefix: [2]byte{0x0e, 0x2a}, DefaultDeny: true, LoopbackDSR: true}},
		{name: "bad loopback DSR", conf: `{"windows_loopback_DSR": "sometimes"}`, code: cnicore.CodeInvalidConfig, err: `"windows_loopback_DSR" is "sometimes"`},
		{name: "l2bridge", conf: `{"mode": "windows-bgp"}`, code: cnicore.CodeUnsupportedField, err: `"mode"`},
		{name: "several networks", conf: `{"windows_use_single_network": false}`, code: cnicore.CodeUnsupportedField, err: "windows_use_single_network"},
		{name: "bad bool", conf: `{"windows_disable_default_deny_all_policy": "maybe"}`, code: cnicore.CodeInvalidConfig, err: "windows_disable_default_deny_all_policy"},
		{name: "bad mac prefix", conf: `{"vxlan_mac_prefix": "0E-2A-00"}`, code: cnicore.CodeInvalidConfig, err: "vxlan_mac_prefix"},
		{name: "bad policy name", conf: `{"policies": [{"Name": "NetworkPolicy", "Value": {}}]}`, code: cnicore.CodeInvalidConfig, err: "policies[0].Name"},
		{name: "bad exception", conf: `{"policies": [{"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT", "ExceptionList": ["x"]}}]}`, code: cnicore.CodeInvalidConfig, err: "ExceptionList"},
		{name: "no encap", conf: `{"policies": [{"Name": "EndpointPolicy", "Value": {"Type": "ROUTE", "DestinationPrefix": "10.96.0.0/12", "NeedEncap": false}}]}`, code: cnicore.CodeUnsupportedField, err: "NeedEncap"},
		{name: "other policy", conf: `{"policies": [{"Name": "EndpointPolicy", "Value": {"Type": "ACL"}}]}`, code: cnicore.CodeUnsupportedField, err: "policies[0].Value.Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.conf), &m); err != nil {
				t.Fatal(err)
			}
			m["cniVersion"], m["name"], m["type"], m["nodename"] = "1.1.0", "net", "tortie", "n"
			b, _ := json.Marshal(m)
			nc, err := cnicore.ParseNetConf(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseConf(nc)
			if tc.err != "" {
				var te *types.Error
				if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Msg, tc.err) {
					t.Fatalf("error %v, want code %d containing %q", err, tc.code, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// racingAgent is HNS with an agent that deletes a new endpoint before the CNI attaches it (it was
// neither attached nor a known workload's), times times.
type racingAgent struct {
	*hcnfake.HNS
	times int
}

func (r *racingAgent) AddNamespaceEndpoint(ctx context.Context, ns, ep string) error {
	if r.times > 0 {
		r.times--
		if err := r.DeleteEndpoint(ctx, ep); err != nil {
			return err
		}
	}
	return r.HNS.AddNamespaceEndpoint(ctx, ns, ep)
}

// TestSetupEndpointVanishes: an endpoint the agent deletes between create and attach is created once
// more; if it vanishes again, Setup fails and leaves nothing.
func TestSetupEndpointVanishes(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		times int
		ok    bool
	}{{1, true}, {2, false}} {
		h := node(t)
		pn := podNet(h, "c1", true)
		pn.API = &racingAgent{HNS: h, times: tc.times}
		ns := namespace(t, h)
		_, err := pn.Setup(ctx, request(ns, "10.0.1.7/32"))
		if (err == nil) != tc.ok {
			t.Fatalf("vanishing %d times: Setup error %v, want success %v", tc.times, err, tc.ok)
		}
		eps, _ := h.ListEndpoints(ctx)
		if tc.ok && (len(eps) != 1 || eps[0].HostComputeNamespace != ns) {
			t.Errorf("endpoints %+v, want one attached to %s", eps, ns)
		}
		if !tc.ok && len(eps) != 0 {
			t.Errorf("endpoints after a failed Setup: %+v", eps)
		}
		if n := h.Calls()["CreateEndpoint"]; n != 2 {
			t.Errorf("CreateEndpoint called %d times, want 2 (one retry)", n)
		}
	}
}

// TestDockerJoin: an application container with CNI_NETNS "container:<infra>" joins the infra
// container's endpoint (hot attach, nothing created), CHECK passes, its Teardown detaches only; the
// endpoint stays the infra container's. A join never creates or deletes an endpoint, even when the
// attach fails or the addresses disagree.
func TestDockerJoin(t *testing.T) {
	ctx := t.Context()
	h := node(t)
	for _, c := range [][2]string{{"infra1", ""}, {"app1", "infra1"}, {"app2", "infra1"}} {
		if _, err := h.AddContainer(c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	infra := podNet(h, "infra1", true)
	want, err := infra.Setup(ctx, request("none", "10.0.1.7/32"))
	if err != nil {
		t.Fatal(err)
	}
	eps, _ := h.ListEndpoints(ctx)
	if len(eps) != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	ep := eps[0]

	app := podNet(h, "app1", true)
	if owner, hostIf := app.Joins("container:infra1"); owner != "infra1" || hostIf != "infra1_tortie-vxlan" {
		t.Errorf("Joins = %q, %q", owner, hostIf)
	}
	if owner, _ := app.Joins("none"); owner != "" {
		t.Errorf("Joins(none) = %q", owner)
	}
	got, err := app.Setup(ctx, request("container:infra1", "10.0.1.7/32"))
	if err != nil {
		t.Fatal(err)
	}
	want.SandboxPath = "container:infra1"
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("join result (-want +got):\n%s", diff)
	}
	if attached, _ := h.ContainerEndpoints("app1"); len(attached) != 1 || attached[0] != ep.ID {
		t.Errorf("app1's endpoints %v, want [%s]", attached, ep.ID)
	}
	if eps, _ := h.ListEndpoints(ctx); len(eps) != 1 {
		t.Errorf("a join created an endpoint: %+v", eps)
	}
	if err := app.Check(ctx, cnicore.InterfaceRequest{NetNS: "container:infra1", Addresses: want.Addresses, ContainerMAC: want.ContainerMAC}); err != nil {
		t.Errorf("Check: %v", err)
	}
	// Without delegated addresses (an IPAM plugin other than tortie's) the endpoint's are taken.
	if _, err := podNet(h, "app2", true).Setup(ctx, cnicore.InterfaceRequest{NetNS: "container:infra1"}); err != nil {
		t.Errorf("join without addresses: %v", err)
	}

	h.FailNext("HotAttachEndpoint", errors.New("injected HNS failure"))
	if _, err := podNet(h, "app2", true).Setup(ctx, request("container:infra1", "10.0.1.7/32")); err == nil || !strings.Contains(err.Error(), "injected HNS failure") {
		t.Errorf("join with a failing attach: %v", err)
	}
	if _, err := podNet(h, "app2", true).Setup(ctx, request("container:infra1", "10.0.1.9/32")); err == nil || !strings.Contains(err.Error(), "IPAM holds 10.0.1.9") {
		t.Errorf("join with another address: %v", err)
	}
	if eps, _ := h.ListEndpoints(ctx); len(eps) != 1 || eps[0].ID != ep.ID {
		t.Errorf("endpoints after failed joins %+v, want the infra container's only", eps)
	}

	for i := range 2 {
		if err := app.Teardown(ctx, "container:infra1", "eth0", ""); err != nil {
			t.Fatalf("Teardown %d: %v", i+1, err)
		}
	}
	if attached, _ := h.ContainerEndpoints("app1"); len(attached) != 0 {
		t.Errorf("app1's endpoints after its Teardown: %v", attached)
	}
	e, err := h.GetEndpointByID(ctx, ep.ID)
	if err != nil || e.HostComputeNamespace == "" {
		t.Fatalf("the infra endpoint after the application container left: %+v, %v; want it attached", e, err)
	}
	if err := infra.Check(ctx, request("none", "10.0.1.7/32")); err != nil {
		t.Errorf("infra Check after the application container left: %v", err)
	}
	if err := infra.Teardown(ctx, "none", "eth0", ""); err != nil {
		t.Fatal(err)
	}
	if eps, _ := h.ListEndpoints(ctx); len(eps) != 0 {
		t.Errorf("endpoints after the infra container's Teardown: %+v", eps)
	}
	// The pod is gone: a late DEL of an application container succeeds and changes nothing.
	if err := app.Teardown(ctx, "container:infra1", "eth0", ""); err != nil {
		t.Errorf("late Teardown: %v", err)
	}
	if err := app.Check(ctx, request("container:infra1", "10.0.1.7/32")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Check after the pod is gone: %v", err)
	}
}

// TestLoopbackDSR: with windows_loopback_DSR the pod's endpoint gets OutBoundNAT with its own address as
// the one Destination — where HNS supports DSR (the fake rejects the policy elsewhere, as HNS does);
// on an older HNS the pod is set up without it.
func TestLoopbackDSR(t *testing.T) {
	ctx := t.Context()
	dsr := func(e hcn.Endpoint) []string {
		var out []string
		for _, p := range e.Policies {
			var s hcn.OutboundNATSetting
			if p.Type == hcn.EndpointPolicyOutBoundNAT && hcn.DecodeSettings(string(p.Type), p.Settings, &s) == nil {
				out = append(out, s.Destinations...)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		version hcn.Version
		want    []string
	}{
		{"Windows Server 2022", hcn.Version{Major: 13, Minor: 3}, []string{"10.0.1.7"}},
		{"Windows Server 2019 before KB4571748", hcn.Version{Major: 9, Minor: 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := nodeAt(t, tc.version)
			ns := namespace(t, h)
			pn := podNet(h, "c1", true)
			pn.Conf.LoopbackDSR = true
			if _, err := pn.Setup(ctx, request(ns, "10.0.1.7/32")); err != nil {
				t.Fatal(err)
			}
			eps, _ := h.ListEndpoints(ctx)
			if len(eps) != 1 {
				t.Fatalf("endpoints %+v", eps)
			}
			if diff := cmp.Diff(tc.want, dsr(eps[0])); diff != "" {
				t.Errorf("OutBoundNAT destinations (-want +got):\n%s", diff)
			}
			// The fake refuses what HNS refuses.
			err := h.ApplyEndpointPolicy(ctx, eps[0].ID, hcn.RequestAdd, []hcn.EndpointPolicy{
				hcn.NewEndpointPolicy(hcn.EndpointPolicyOutBoundNAT, hcn.OutboundNATSetting{Destinations: []string{"10.0.1.7"}})})
			if (err == nil) != (tc.want != nil) {
				t.Errorf("adding a loopback DSR policy directly: %v", err)
			}
		})
	}
}
