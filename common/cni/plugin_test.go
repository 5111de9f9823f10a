package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/ipam"
)

// fakeDataplane is a stateful Dataplane: interfaces by host name. fail makes Setup fail; panic makes
// it panic.
type fakeDataplane struct {
	mu     sync.Mutex
	ifs    map[string]InterfaceRequest
	fail   error
	panic  bool
	broken map[string]string // host name → what Check reports
}

func newFakeDataplane() *fakeDataplane {
	return &fakeDataplane{ifs: map[string]InterfaceRequest{}, broken: map[string]string{}}
}

func (d *fakeDataplane) HostIfName(ns, pod string) string { return "cali" + ns + pod }

func (d *fakeDataplane) Setup(_ context.Context, r InterfaceRequest) (*InterfaceResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.panic {
		panic("injected panic")
	}
	if d.fail != nil {
		return nil, d.fail
	}
	d.ifs[r.HostIfName] = r
	return &InterfaceResult{HostIfName: r.HostIfName, HostMAC: net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee},
		ContainerMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, SandboxPath: r.NetNS, Addresses: r.Addresses,
		GatewayV4: netip.MustParseAddr("169.254.1.1"), GatewayV6: netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")}, nil
}

func (d *fakeDataplane) Teardown(_ context.Context, netns, cont, host string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.ifs[host]; ok && (r.NetNS == netns || netns == "") {
		delete(d.ifs, host)
	}
	return nil
}

func (d *fakeDataplane) Check(_ context.Context, r InterfaceRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ifs[r.HostIfName]; !ok {
		return fmt.Errorf("%s is missing", r.HostIfName)
	}
	if b := d.broken[r.HostIfName]; b != "" {
		return errors.New(b)
	}
	return nil
}

type fakePods map[string]*PodInfo

func (f fakePods) Pod(_ context.Context, ns, name string) (*PodInfo, error) {
	p, ok := f[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, datastore.ErrNotFound)
	}
	return p, nil
}

// failingBackend fails writes of one kind.
type failingBackend struct {
	datastore.Backend
	failKind string
}

func (f *failingBackend) Create(ctx context.Context, obj api.Resource) (api.Resource, error) {
	if info, _ := api.KindOf(obj); info.Kind == f.failKind {
		return nil, fmt.Errorf("injected failure writing %s", f.failKind)
	}
	return f.Backend.Create(ctx, obj)
}

type env struct {
	t    *testing.T
	be   datastore.Backend
	mem  *memory.Backend
	ipam *ipam.Client
	dp   *fakeDataplane
	pods fakePods
	conf string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mem := memory.New()
	e := &env{t: t, be: mem, mem: mem, ipam: ipam.New(mem), dp: newFakeDataplane(), pods: fakePods{},
		conf: `{"cniVersion":"1.1.0","name":"net1","type":"tortie","nodename":"node-1","nodename_file_optional":true,"ipam":{"type":"tortie-ipam"}}`}
	e.pool("pool-a", "10.1.0.0/16")
	e.pool("pool-b", "10.2.0.0/16")
	return e
}

func (e *env) pool(name, cidr string) {
	e.t.Helper()
	p := api.NewIPPool()
	p.Name = name
	p.Spec.CIDR = cidr
	api.SetDefaults(p)
	if _, err := e.mem.Create(context.Background(), p); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) plugin(conf string) *Plugin {
	e.t.Helper()
	if conf == "" {
		conf = e.conf
	}
	c, err := ParseNetConf([]byte(conf), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var pods PodSource
	if len(e.pods) > 0 {
		pods = e.pods
	}
	return &Plugin{Conf: c, Host: Host{ReadFile: fakeFiles{}.read, MTUFile: "/none"}, Backend: e.be, IPAM: ipam.New(e.be), Dataplane: e.dp, Pods: pods}
}

func cmdArgs(id, pod, stdin string) *CmdArgs {
	return &CmdArgs{ContainerID: id, Netns: "/var/run/netns/" + id, IfName: "eth0",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=" + pod, StdinData: []byte(stdin)}
}

func code(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func (e *env) handleIPs(handle string) []netip.Addr {
	e.t.Helper()
	ips, err := e.ipam.IPsByHandle(context.Background(), handle)
	if errors.Is(err, ipam.ErrHandleNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return ips
}

func (e *env) wep(name string) *api.WorkloadEndpoint {
	e.t.Helper()
	o, err := e.be.Get(context.Background(), datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: "ns", Name: name})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*api.WorkloadEndpoint)
}

func TestAddDel(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.pods["ns/web"] = &PodInfo{Namespace: "ns", Name: "web", NodeName: "node-1", ServiceAccount: "sa1",
		Labels: map[string]string{"app": "web"}, NamespaceLabels: map[string]string{}}
	p := e.plugin(`{"cniVersion":"1.1.0","name":"net1","type":"tortie","nodename":"node-1","nodename_file_optional":true,"mtu":1400,
	  "dns":{"nameservers":["10.96.0.10"]}}`)
	res, err := p.Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	ips := e.handleIPs("net1.c1")
	if len(ips) != 1 || !netip.MustParsePrefix("10.0.0.0/8").Contains(ips[0]) {
		t.Fatalf("handle holds %v", ips)
	}
	want := &types100.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*types100.Interface{{Name: "calinsweb", Mac: "ee:ee:ee:ee:ee:ee"}, {Name: "eth0", Mac: "02:00:00:00:00:01", Sandbox: "/var/run/netns/c1"}},
		IPs:        []*types100.IPConfig{{Interface: types100.Int(1), Address: *prefixToIPNet(netip.PrefixFrom(ips[0], 32)), Gateway: net.ParseIP("169.254.1.1").To4()}},
		Routes:     []*types.Route{{Dst: *prefixToIPNet(netip.MustParsePrefix("0.0.0.0/0")), GW: net.ParseIP("169.254.1.1").To4()}},
		DNS:        types.DNS{Nameservers: []string{"10.96.0.10"}},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if r := e.dp.ifs["calinsweb"]; r.MTU != 1400 || len(r.Addresses) != 1 {
		t.Errorf("interface request %+v", r)
	}
	w := e.wep("node--1-k8s-web-eth0")
	if w == nil {
		t.Fatal("no WorkloadEndpoint")
	}
	wantSpec := api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: "node-1", Pod: "web", ContainerID: "c1", Endpoint: "eth0",
		ServiceAccountName: "sa1", IPNetworks: []string{ips[0].String() + "/32"}, Profiles: []string{"kns.ns", "ksa.ns.sa1"},
		InterfaceName: "calinsweb", MAC: "02:00:00:00:00:01"}
	if diff := cmp.Diff(wantSpec, w.Spec); diff != "" {
		t.Errorf("WEP spec (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app": "web", api.LabelNamespace: "ns", api.LabelOrchestrator: "k8s", api.LabelServiceAccount: "sa1"}, w.Labels); diff != "" {
		t.Errorf("WEP labels (-want +got):\n%s", diff)
	}

	// A DEL for an older sandbox of the same pod keeps the WEP but releases that sandbox's handle.
	if err := e.plugin("").Del(ctx, cmdArgs("old", "web", "")); err != nil {
		t.Fatal(err)
	}
	if e.wep("node--1-k8s-web-eth0") == nil || len(e.handleIPs("net1.c1")) != 1 {
		t.Fatal("DEL of another container removed this one's state")
	}
	for i := range 2 {
		if err := e.plugin("").Del(ctx, cmdArgs("c1", "web", "")); err != nil {
			t.Fatalf("DEL %d: %v", i, err)
		}
		if e.wep("node--1-k8s-web-eth0") != nil || e.handleIPs("net1.c1") != nil || len(e.dp.ifs) != 0 {
			t.Fatalf("DEL %d left state behind", i)
		}
	}
}

func TestAddFailuresLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env)
		code  uint
	}{
		{"dataplane", func(e *env) { e.dp.fail = errors.New("eth0 exists") }, CodeDataplaneFailed},
		{"panic", func(e *env) { e.dp.panic = true }, CodeInternal},
		{"endpoint write", func(e *env) { e.be = &failingBackend{Backend: e.mem, failKind: api.KindWorkloadEndpoint} }, CodeTryAgainLater},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			_, err := e.plugin("").Add(t.Context(), cmdArgs("c1", "web", ""))
			if code(err) != tc.code {
				t.Fatalf("error %v (code %d), want code %d", err, code(err), tc.code)
			}
			if ips := e.handleIPs("net1.c1"); ips != nil {
				t.Errorf("failed ADD left addresses %v", ips)
			}
			if len(e.dp.ifs) != 0 {
				t.Errorf("failed ADD left interfaces %v", e.dp.ifs)
			}
			blocks, _, _ := e.mem.List(t.Context(), datastore.ListOptions{Kind: api.KindIPAMBlock})
			for _, b := range blocks {
				for _, a := range b.(*api.IPAMBlock).Spec.Allocations {
					if a != nil {
						t.Errorf("block %s still has an allocation", b.GetName())
					}
				}
			}
		})
	}
}

func TestAddDatastoreNotReady(t *testing.T) {
	e := newEnv(t)
	ci := api.NewClusterInformation()
	ci.Name = "default"
	f := false
	ci.Spec.DatastoreReady = &f
	if _, err := e.mem.Create(t.Context(), ci); err != nil {
		t.Fatal(err)
	}
	_, err := e.plugin("").Add(t.Context(), cmdArgs("c1", "web", ""))
	if code(err) != CodeTryAgainLater || !strings.Contains(err.Error(), "datastoreReady") {
		t.Fatalf("got %v", err)
	}
	if e.handleIPs("net1.c1") != nil {
		t.Error("allocated while not ready")
	}
}

func TestAddDatastoreDown(t *testing.T) {
	e := newEnv(t)
	f := dstest.NewFaulty(e.mem)
	f.Down(true)
	e.be = f
	p := e.plugin("")
	_, err := p.Add(t.Context(), cmdArgs("c1", "web", ""))
	if code(err) != CodeTryAgainLater {
		t.Errorf("ADD: %v (code %d), want 11", err, code(err))
	}
	if len(e.dp.ifs) != 0 {
		t.Error("interface left")
	}
	if err := p.Status(t.Context(), &CmdArgs{}); code(err) != CodePluginNotAvailable {
		t.Errorf("STATUS: %v, want code 50", err)
	}
	f.Up()
	if err := p.Status(t.Context(), &CmdArgs{}); err != nil {
		t.Errorf("STATUS with the datastore up: %v", err)
	}
}

func TestAnnotations(t *testing.T) {
	e := newEnv(t)
	e.pods["ns/a"] = &PodInfo{Namespace: "ns", Name: "a", Annotations: map[string]string{api.AnnotationIPv4Pools: `["pool-b"]`},
		NamespaceAnnotations: map[string]string{api.AnnotationIPv4Pools: `["pool-a"]`}}
	e.pods["ns/b"] = &PodInfo{Namespace: "ns", Name: "b", NamespaceAnnotations: map[string]string{api.AnnotationIPv4Pools: `["10.2.0.0/16"]`}}
	e.pods["ns/c"] = &PodInfo{Namespace: "ns", Name: "c", Annotations: map[string]string{api.AnnotationIPAddrs: `["10.1.7.7"]`}}
	e.pods["ns/d"] = &PodInfo{Namespace: "ns", Name: "d", Annotations: map[string]string{api.AnnotationIPAddrs: `["10.1.7.7"]`}}
	e.pods["ns/e"] = &PodInfo{Namespace: "ns", Name: "e", Annotations: map[string]string{api.AnnotationIPv4Pools: `["nope"]`}}
	e.pods["ns/f"] = &PodInfo{Namespace: "ns", Name: "f", Annotations: map[string]string{api.AnnotationIPv4Pools: `pool-a`}}
	for _, tc := range []struct {
		pod  string
		in   string // CIDR the address must be in
		code uint
	}{
		{"a", "10.2.0.0/16", 0},
		{"b", "10.2.0.0/16", 0},
		{"c", "10.1.7.7/32", 0},
		{"d", "", CodeIPAMFailed}, // the address is taken
		{"e", "", CodeIPAMFailed},
		{"f", "", CodeInvalidConfig},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			res, err := e.plugin("").Add(t.Context(), cmdArgs("c-"+tc.pod, tc.pod, ""))
			if tc.code != 0 {
				if code(err) != tc.code {
					t.Fatalf("error %v (code %d), want code %d", err, code(err), tc.code)
				}
				if e.handleIPs("net1.c-"+tc.pod) != nil {
					t.Error("failed ADD kept addresses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
			if !netip.MustParsePrefix(tc.in).Contains(a.Unmap()) {
				t.Errorf("got %s, want an address in %s", a, tc.in)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res, err := e.plugin("").Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		conf := strings.TrimSuffix(e.conf, "}") + `,"prevResult":` + mustJSON(t, res) + "}"
		return e.plugin(conf).Check(ctx, cmdArgs("c1", "web", ""))
	}
	if err := check(); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	e.dp.broken["calinsweb"] = "route 10.1.0.0/32 is missing"
	if err := check(); code(err) != CodeCheckFailed || !strings.Contains(err.Error(), "route") {
		t.Errorf("CHECK with a broken interface: %v", err)
	}
	delete(e.dp.broken, "calinsweb")
	if err := e.ipam.ReleaseByHandle(ctx, "net1.c1"); err != nil {
		t.Fatal(err)
	}
	if err := check(); code(err) != CodeCheckFailed || !strings.Contains(err.Error(), "net1.c1") {
		t.Errorf("CHECK after the addresses were released: %v", err)
	}
	if err := e.plugin("").Check(ctx, cmdArgs("c1", "web", "")); code(err) != CodeInvalidConfig {
		t.Errorf("CHECK without prevResult: %v", err)
	}
}

func mustJSON(t *testing.T, r types.Result) string {
	t.Helper()
	var b strings.Builder
	if err := r.PrintTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, id := range []string{"keep", "stale"} {
		if _, err := e.plugin("").Add(ctx, cmdArgs(id, "pod-"+id, "")); err != nil {
			t.Fatal(err)
		}
	}
	// Another node's pod, another network, and a tunnel address must survive.
	other := `{"cniVersion":"1.1.0","name":"net1","nodename":"node-2","nodename_file_optional":true}`
	if _, err := e.plugin(other).Add(ctx, cmdArgs("remote", "pod-remote", "")); err != nil {
		t.Fatal(err)
	}
	net2 := `{"cniVersion":"1.1.0","name":"net2","nodename":"node-1","nodename_file_optional":true}`
	if _, err := e.plugin(net2).Add(ctx, cmdArgs("stale", "pod-net2", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ipam.AutoAssign(ctx, ipam.AutoAssignArgs{Num4: 1, HandleID: "vxlan-tunnel-addr-node-1", Hostname: "node-1",
		Attrs: map[string]string{ipam.AttributeNode: "node-1"}, IntendedUse: api.IPPoolAllowedUseTunnel}); err != nil {
		t.Fatal(err)
	}

	if err := e.plugin("").GC(ctx, &CmdArgs{}); code(err) != CodeInvalidConfig {
		t.Errorf("GC without valid-attachments: %v", err)
	}
	gc := `{"cniVersion":"1.1.0","name":"net1","nodename":"node-1","nodename_file_optional":true,
	  "cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]}`
	if err := e.plugin(gc).GC(ctx, &CmdArgs{}); err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]bool{"net1.keep": true, "net1.stale": false, "net1.remote": true, "net2.stale": true, "vxlan-tunnel-addr-node-1": true} {
		if got := e.handleIPs(h) != nil; got != want {
			t.Errorf("handle %s allocated=%v, want %v", h, got, want)
		}
	}
}

func TestIPAMPlugin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conf := `{"cniVersion":"1.0.0","name":"net1","type":"bridge","nodename":"node-1","ipam":{"type":"tortie-ipam","assign_ipv4":"true","ipv4_pools":["pool-b"]}}`
	a := &CmdArgs{ContainerID: "x1", IfName: "eth0", Args: "IP=10.2.3.4"}
	res, err := e.plugin(conf).IPAMAdd(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	// As calico-ipam: an address asked for by name is a /32, and each address gets a route.
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.2.3.4/32" {
		t.Fatalf("IPs %v, want 10.2.3.4/32", res.IPs)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "10.2.3.4/32" || res.Routes[0].GW != nil {
		t.Errorf("routes %v, want one to 10.2.3.4/32", res.Routes)
	}
	auto, err := e.plugin(conf).IPAMAdd(ctx, &CmdArgs{ContainerID: "x3", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(auto.IPs) != 1 || auto.IPs[0].Address.IP.To4() == nil || auto.IPs[0].Address.Mask.String() != "ffffffc0" {
		t.Fatalf("IPs %v, want one address with its block's prefix (/26)", auto.IPs)
	}
	if len(auto.Routes) != 1 || auto.Routes[0].Dst.String() != auto.IPs[0].Address.String() {
		t.Errorf("routes %v, want one to %v", auto.Routes, auto.IPs[0].Address.String())
	}
	if err := e.plugin(conf).IPAMDel(ctx, &CmdArgs{ContainerID: "x3", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	// The same address again is refused and leaves nothing for x2.
	if _, err := e.plugin(conf).IPAMAdd(ctx, &CmdArgs{ContainerID: "x2", IfName: "eth0", Args: "IP=10.2.3.4"}); code(err) != CodeIPAMFailed {
		t.Errorf("duplicate address: %v", err)
	}
	if e.handleIPs("net1.x2") != nil {
		t.Error("x2 kept an allocation")
	}
	if err := e.plugin(conf).IPAMCheck(ctx, a); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	for range 2 {
		if err := e.plugin(conf).IPAMDel(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.plugin(conf).IPAMCheck(ctx, a); code(err) != CodeCheckFailed {
		t.Errorf("CHECK after DEL: %v", err)
	}
}

// delegateRecorder is a Delegate that hands out fixed addresses and records calls.
type delegateRecorder struct {
	calls []string
	addr  string
}

func (d *delegateRecorder) Add(_ context.Context, plugin string, _ []byte) (types.Result, error) {
	d.calls = append(d.calls, "ADD "+plugin)
	ipn := prefixToIPNet(netip.MustParsePrefix(d.addr))
	return &types100.Result{CNIVersion: "1.0.0", IPs: []*types100.IPConfig{{Address: *ipn}}}, nil
}

func (d *delegateRecorder) rec(verb, plugin string) error {
	d.calls = append(d.calls, verb+" "+plugin)
	return nil
}
func (d *delegateRecorder) Check(_ context.Context, p string, _ []byte) error {
	return d.rec("CHECK", p)
}
func (d *delegateRecorder) Del(_ context.Context, p string, _ []byte) error { return d.rec("DEL", p) }
func (d *delegateRecorder) GC(_ context.Context, p string, _ []byte) error  { return d.rec("GC", p) }
func (d *delegateRecorder) Status(_ context.Context, p string, _ []byte) error {
	return d.rec("STATUS", p)
}

func TestDelegatedIPAM(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conf := `{"cniVersion":"1.1.0","name":"net1","nodename":"node-1","nodename_file_optional":true,"ipam":{"type":"host-local","subnet":"10.9.0.0/24"}}`
	d := &delegateRecorder{addr: "10.9.0.7/24"}
	p := e.plugin(conf)
	p.Delegate = d
	res, err := p.Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	if res.IPs[0].Address.String() != "10.9.0.7/32" {
		t.Errorf("address %s, want the delegate's as a host prefix", res.IPs[0].Address.String())
	}
	e.dp.fail = errors.New("boom")
	p = e.plugin(conf)
	p.Delegate = d
	if _, err := p.Add(ctx, cmdArgs("c2", "web2", "")); err == nil {
		t.Fatal("ADD succeeded")
	}
	p = e.plugin(conf)
	p.Delegate = d
	if err := p.Del(ctx, cmdArgs("c1", "web", "")); err != nil {
		t.Fatal(err)
	}
	if err := p.Status(ctx, &CmdArgs{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADD host-local", "ADD host-local", "DEL host-local", "DEL host-local", "STATUS host-local"}
	if !slices.Equal(d.calls, want) {
		t.Errorf("delegate calls %q, want %q", d.calls, want)
	}
}
