//go:build linux

package main

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
	lcni "github.com/tortie-net/tortie/linux/cni"
	"github.com/tortie-net/tortie/linux/cnitest"
)

var datastores = []string{"etcd", "kube"}

// newNode creates the test's node, with the datastore reachable from inside it.
func newNode(t *testing.T, c *cluster) *cnitest.Node {
	t.Helper()
	n := cnitest.NewNode(t, c.node, cnitest.PluginDir(t), cnitest.ReferencePluginDir)
	for _, a := range c.datastoreAddrs(t) {
		n.Forward(t, a)
	}
	return n
}

func addrOf(t testing.TB, r *types100.Result) netip.Addr {
	t.Helper()
	if len(r.IPs) == 0 {
		t.Fatal("result has no IPs")
	}
	a, ok := netip.AddrFromSlice(r.IPs[0].Address.IP)
	if !ok {
		t.Fatalf("bad IP %v", r.IPs[0].Address)
	}
	return a.Unmap()
}

// TestAddDelLifecycle: ADD returns a conformant result and records the endpoint; CHECK passes; DEL
// removes everything and is idempotent.
func TestAddDelLifecycle(t *testing.T) {
	for _, ds := range datastores {
		t.Run(ds, func(t *testing.T) {
			c := newCluster(t, ds)
			node := newNode(t, c)
			conf := c.conf(t, nil)
			pod := c.pod(t, "web-0", nil)
			ctx := ctxFor(t)

			r, err := node.Add(ctx, conf, pod)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			res, err := types100.GetResult(r)
			if err != nil {
				t.Fatal(err)
			}
			ip := addrOf(t, res)
			if !netip.MustParsePrefix("10.64.0.0/15").Contains(ip) {
				t.Errorf("address %s is not from the configured pools", ip)
			}
			hostIf := lcni.HostVethName("cali", c.namespace, "web-0")
			want := &types100.Result{
				CNIVersion: "1.1.0",
				Interfaces: []*types100.Interface{{Name: hostIf, Mac: "ee:ee:ee:ee:ee:ee"}, {Name: "eth0", Mac: res.Interfaces[1].Mac, Sandbox: pod.NS.Path()}},
				IPs: []*types100.IPConfig{{Interface: types100.Int(1), Address: net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)},
					Gateway: net.IPv4(169, 254, 1, 1).To4()}},
				Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: net.IPv4(169, 254, 1, 1).To4()}},
				DNS:    res.DNS,
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if !slices.Equal(res.DNS.Nameservers, []string{"10.96.0.10"}) {
				t.Errorf("DNS %+v, want the netconf's", res.DNS)
			}
			if _, err := net.ParseMAC(res.Interfaces[1].Mac); err != nil {
				t.Errorf("container MAC %q: %v", res.Interfaces[1].Mac, err)
			}
			// The printed result is valid JSON of the configured version with the required keys.
			raw, _ := json.Marshal(r)
			for _, k := range []string{`"cniVersion":"1.1.0"`, `"interfaces"`, `"sandbox"`, `"ips"`, `"interface":1`} {
				if !strings.Contains(string(raw), k) {
					t.Errorf("result JSON %s lacks %s", raw, k)
				}
			}
			if !slices.Contains(node.Links(t), hostIf) {
				t.Errorf("host veth %s missing from the node", hostIf)
			}
			handle := cni.HandleID(network, pod.ContainerID)
			if got := c.allocations(t)[handle]; !slices.Equal(got, []netip.Addr{ip}) {
				t.Errorf("IPAM handle %s holds %v, want [%s]", handle, got, ip)
			}

			switch ds {
			case "etcd":
				w := c.endpoint(t, "web-0")
				if w == nil {
					t.Fatal("no WorkloadEndpoint")
				}
				wantSpec := api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: c.node, Pod: "web-0", ContainerID: pod.ContainerID,
					Endpoint: "eth0", IPNetworks: []string{ip.String() + "/32"}, Profiles: []string{"kns." + c.namespace},
					InterfaceName: hostIf, MAC: res.Interfaces[1].Mac}
				if diff := cmp.Diff(wantSpec, w.Spec); diff != "" {
					t.Errorf("WorkloadEndpoint spec (-want +got):\n%s", diff)
				}
				if w.Labels[api.LabelNamespace] != c.namespace || w.Labels[api.LabelOrchestrator] != "k8s" {
					t.Errorf("WorkloadEndpoint labels %v", w.Labels)
				}
			case "kube":
				ann := c.annotations(t, "web-0")
				wantAnn := map[string]string{api.AnnotationPodIP: ip.String() + "/32", api.AnnotationPodIPs: ip.String() + "/32", api.AnnotationContainerID: pod.ContainerID}
				for k, v := range wantAnn {
					if ann[k] != v {
						t.Errorf("pod annotation %s=%q, want %q", k, ann[k], v)
					}
				}
				if w := c.endpoint(t, "web-0"); w == nil || !slices.Equal(w.Spec.IPNetworks, []string{ip.String() + "/32"}) {
					t.Errorf("WorkloadEndpoint view of the pod: %+v", w)
				}
			}

			if err := node.Check(ctx, conf, pod); err != nil {
				t.Errorf("CHECK after ADD: %v", err)
			}
			if err := node.Status(ctx, conf); err != nil {
				t.Errorf("STATUS: %v", err)
			}

			for i := range 2 {
				if err := node.Del(ctx, conf, pod); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			onlyBaseLinks(t, node)
			if a := c.allocations(t); len(a) != 0 {
				t.Errorf("allocations left after DEL: %v", a)
			}
			if h := c.handles(t); len(h) != 0 {
				t.Errorf("IPAM handles left after DEL: %v", h)
			}
			switch ds {
			case "etcd":
				if w := c.endpoint(t, "web-0"); w != nil {
					t.Errorf("WorkloadEndpoint left after DEL: %+v", w.Spec)
				}
			case "kube":
				ann := c.annotations(t, "web-0")
				if ann[api.AnnotationPodIP] != "" || ann[api.AnnotationContainerID] != "" {
					t.Errorf("pod annotations after DEL: %v", ann)
				}
			}
		})
	}
}

// TestTwoPodsPing: two pods on one node reach each other (UDP echo both ways).
func TestTwoPodsPing(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	a, b := c.pod(t, "a", nil), c.pod(t, "b", nil)
	var ips []netip.Addr
	for _, p := range []*cnitest.Pod{a, b} {
		r, err := node.Add(ctx, conf, p)
		if err != nil {
			t.Fatalf("ADD %s: %v", p.Name, err)
		}
		res, _ := types100.GetResult(r)
		ips = append(ips, addrOf(t, res))
	}
	cnitest.UDPEcho(t, b.NS, 7007)
	cnitest.UDPEcho(t, a.NS, 7007)
	if err := cnitest.UDPPing(a.NS, ips[1], 7007, 5*time.Second); err != nil {
		t.Errorf("a → b: %v", err)
	}
	if err := cnitest.UDPPing(b.NS, ips[0], 7007, 5*time.Second); err != nil {
		t.Errorf("b → a: %v", err)
	}
}

// TestCheckDetectsDamage: CHECK passes after ADD and fails, naming the problem, once the pod's
// default route is gone.
func TestCheckDetectsDamage(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	if _, err := node.Add(ctx, conf, pod); err != nil {
		t.Fatal(err)
	}
	if err := node.Check(ctx, conf, pod); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := pod.NS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IPv4(169, 254, 1, 1)})
	}); err != nil {
		t.Fatal(err)
	}
	err := node.Check(ctx, conf, pod)
	if cniCode(err) != cni.CodeCheckFailed || !strings.Contains(err.Error(), "default via 169.254.1.1") {
		t.Errorf("CHECK after deleting the default route: %v (code %d), want code %d naming the route", err, cniCode(err), cni.CodeCheckFailed)
	}
	// Releasing the address behind the plugin's back is reported too.
	if err := c.ipam.ReleaseByHandle(ctx, cni.HandleID(network, pod.ContainerID)); err != nil {
		t.Fatal(err)
	}
	if err := node.Check(ctx, conf, pod); err == nil || !strings.Contains(err.Error(), "IPAM handle") {
		t.Errorf("CHECK after releasing the address: %v", err)
	}
}

// TestDelWithoutNetns: DEL after the sandbox's namespace is gone still releases everything.
func TestDelWithoutNetns(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	if _, err := node.Add(ctx, conf, pod); err != nil {
		t.Fatal(err)
	}
	pod.Delete()
	for i := range 2 {
		if err := node.Del(ctx, conf, pod); err != nil {
			t.Fatalf("DEL #%d without netns: %v", i+1, err)
		}
	}
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations left: %v", a)
	}
	if c.endpoint(t, "p") != nil {
		t.Error("WorkloadEndpoint left")
	}
	// The kernel removes the host end with the namespace; give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for len(node.Links(t)) > 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	onlyBaseLinks(t, node)
}

// TestDelAfterCrashedAdd: an ADD that died after allocating, leaving an address and a half-built
// host veth (both ends still in the node), is cleaned up by DEL.
func TestDelAfterCrashedAdd(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	handle := cni.HandleID(network, pod.ContainerID)
	if _, err := c.ipam.AutoAssign(ctx, ipam.AutoAssignArgs{Num4: 1, HandleID: handle, Hostname: c.node,
		IPv4Pools: []string{"tortie-cni-a"}, Attrs: map[string]string{ipam.AttributeNode: c.node}}); err != nil {
		t.Fatal(err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = lcni.HostVethName("cali", c.namespace, "p")
	if err := cnitest.Handle(t, node.NS).LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "crashed-peer", PeerTxQLen: -1}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := node.Del(ctx, conf, pod); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	onlyBaseLinks(t, node)
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations left: %v", a)
	}
}

// TestDelegatedHostLocal: with "ipam": {"type": "host-local"} tortie executes host-local from
// CNI_PATH for the address (as /32) and for its release.
func TestDelegatedHostLocal(t *testing.T) {
	if _, err := os.Stat(filepath.Join(cnitest.ReferencePluginDir, "host-local")); err != nil {
		testenv.Unavailable(t, "reference plugins missing (apt-get install containernetworking-plugins): %v", err)
	}
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	dataDir := t.TempDir()
	// Debian's host-local speaks CNI ≤ 1.0.0, and a delegate gets the whole configuration.
	conf := cnitest.ConfList(t, c.confJSON(t, "1.0.0", map[string]any{"ipam": map[string]any{"type": "host-local",
		"ranges": [][]map[string]any{{{"subnet": "10.72.0.0/24"}}}, "dataDir": dataDir}}))
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	r, err := node.Add(ctx, conf, pod)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	res, _ := types100.GetResult(r)
	ip := addrOf(t, res)
	if !netip.MustParsePrefix("10.72.0.0/24").Contains(ip) || res.IPs[0].Address.String() != ip.String()+"/32" {
		t.Errorf("address %s, want a /32 from host-local's 10.72.0.0/24", res.IPs[0].Address.String())
	}
	if _, err := os.Stat(filepath.Join(dataDir, network, ip.String())); err != nil {
		t.Errorf("host-local has no reservation for %s: %v", ip, err)
	}
	if err := node.Check(ctx, conf, pod); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := node.Del(ctx, conf, pod); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, network, ip.String())); err == nil {
		t.Errorf("host-local still reserves %s after DEL", ip)
	}
	onlyBaseLinks(t, node)
}

// TestDelOldSandbox: a DEL for a pod's previous sandbox keeps the new sandbox's endpoint and
// addresses, and releases only the old sandbox's.
func TestDelOldSandbox(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	old := c.pod(t, "p", nil)
	if _, err := node.Add(ctx, conf, old); err != nil {
		t.Fatal(err)
	}
	cur := c.pod(t, "p", nil) // same pod, new sandbox; the old one was not deleted yet
	if _, err := node.Add(ctx, conf, cur); err != nil {
		t.Fatal(err)
	}
	if err := node.Del(ctx, conf, old); err != nil {
		t.Fatal(err)
	}
	if w := c.endpoint(t, "p"); w == nil || w.Spec.ContainerID != cur.ContainerID {
		t.Fatalf("endpoint after the old sandbox's DEL: %+v", w)
	}
	allocs := c.allocations(t)
	if _, ok := allocs[cni.HandleID(network, old.ContainerID)]; ok {
		t.Error("the old sandbox's address was not released")
	}
	if _, ok := allocs[cni.HandleID(network, cur.ContainerID)]; !ok {
		t.Error("the new sandbox's address was released")
	}
	if err := node.Check(ctx, conf, cur); err != nil {
		t.Errorf("CHECK of the new sandbox: %v", err)
	}
}

// TestPoolAnnotations: the namespace's and the pod's ipv4pools annotations choose the pool (pod
// over namespace over netconf); ipAddrs asks for one address.
func TestPoolAnnotations(t *testing.T) {
	c := newCluster(t, "kube")
	ns, err := c.cs.CoreV1().Namespaces().Get(ctxFor(t), c.namespace, metaGet)
	if err != nil {
		t.Fatal(err)
	}
	ns.Annotations = map[string]string{api.AnnotationIPv4Pools: `["tortie-cni-b"]`}
	if _, err := c.cs.CoreV1().Namespaces().Update(ctxFor(t), ns, metaUpdate); err != nil {
		t.Fatal(err)
	}
	node := newNode(t, c)
	conf := c.conf(t, map[string]any{"ipam": map[string]any{"type": "calico-ipam", "ipv4_pools": []string{"tortie-cni-a"}}})
	ctx := ctxFor(t)
	for _, tc := range []struct {
		pod  string
		ann  map[string]string
		want string
	}{
		{"from-namespace", nil, "10.65.0.0/16"},
		{"from-pod", map[string]string{api.AnnotationIPv4Pools: `["10.64.0.0/16"]`}, "10.64.0.0/16"},
		{"ipaddrs", map[string]string{api.AnnotationIPAddrs: `["10.65.200.7"]`}, "10.65.200.7/32"},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			pod := c.pod(t, tc.pod, tc.ann)
			r, err := node.Add(ctx, conf, pod)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			res, _ := types100.GetResult(r)
			if ip := addrOf(t, res); !netip.MustParsePrefix(tc.want).Contains(ip) {
				t.Errorf("address %s, want one in %s", ip, tc.want)
			}
			if got := c.annotations(t, tc.pod)[api.AnnotationPodIP]; got != addrOf(t, res).String()+"/32" {
				t.Errorf("podIP annotation %q", got)
			}
		})
	}
	// An address that is taken fails the ADD and leaves nothing.
	pod := c.pod(t, "taken", map[string]string{api.AnnotationIPAddrs: `["10.65.200.7"]`})
	_, err = node.Add(ctx, conf, pod)
	if cniCode(err) != cni.CodeIPAMFailed || !strings.Contains(err.Error(), "10.65.200.7") {
		t.Errorf("ADD of a taken address: %v (code %d)", err, cniCode(err))
	}
	if _, ok := c.allocations(t)[cni.HandleID(network, pod.ContainerID)]; ok {
		t.Error("the failed ADD kept an allocation")
	}
}

// TestBadNetconf: an invalid configuration is code 7 with a message naming the key.
func TestBadNetconf(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	for _, tc := range []struct {
		extra map[string]any
		code  uint
		want  string
	}{
		{map[string]any{"mtu": 10}, cni.CodeInvalidConfig, `"mtu"`},
		{map[string]any{"datastore_type": "zookeeper"}, cni.CodeInvalidConfig, `"datastore_type"`},
		{map[string]any{"ipam": map[string]any{"type": "tortie-ipam", "ipv4_pools": []string{"fd00::/64"}}}, cni.CodeInvalidConfig, `"ipam.ipv4_pools"`},
		{map[string]any{"device_type": "netkit"}, cni.CodeUnsupportedField, `"device_type"`},
	} {
		_, err := node.Add(ctx, c.conf(t, tc.extra), pod)
		if cniCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: ADD error %v (code %d), want code %d naming %s", tc.extra, err, cniCode(err), tc.code, tc.want)
		}
	}
	onlyBaseLinks(t, node)
}

// TestDatastoreDown: with etcd stopped STATUS says 50 and ADD fails with 11, leaving no interface
// and no allocation; with etcd back both work.
func TestDatastoreDown(t *testing.T) {
	testenv.RequireRoot(t)
	proc := testenv.EtcdProcess(t)
	c := newCluster(t, "etcd")
	c.keys["etcd_endpoints"] = strings.Join(proc.Endpoints(), ",")
	be, err := etcdBackend(proc.Endpoints(), c.keys["etcd_key_prefix"].(string))
	if err != nil {
		t.Fatal(err)
	}
	c.be = be
	for _, p := range testPools {
		createPool(t, be, p.name, p.cidr)
	}
	c.ipam = newIPAM(be)
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)

	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	err = node.Status(ctx, conf)
	if cniCode(err) != cni.CodePluginNotAvailable {
		t.Errorf("STATUS with etcd down: %v (code %d), want 50", err, cniCode(err))
	}
	pod := c.pod(t, "p", nil)
	start := time.Now()
	_, err = node.Add(ctx, conf, pod)
	if cniCode(err) != cni.CodeTryAgainLater {
		t.Errorf("ADD with etcd down: %v (code %d), want 11", err, cniCode(err))
	}
	t.Logf("ADD with etcd down failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	onlyBaseLinks(t, node)
	if links := cnitest.LinkNames(t, pod.NS); slices.Contains(links, "eth0") {
		t.Errorf("pod has eth0 after a failed ADD: %v", links)
	}

	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitReady(); err != nil {
		t.Fatal(err)
	}
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations after the failed ADD: %v", a)
	}
	if h := c.handles(t); len(h) != 0 {
		t.Errorf("IPAM handles after the failed ADD: %v", h)
	}
	if err := node.Status(ctx, conf); err != nil {
		t.Errorf("STATUS with etcd back: %v", err)
	}
	if _, err := node.Add(ctx, conf, pod); err != nil {
		t.Errorf("ADD with etcd back: %v", err)
	}
}

// TestDatastoreDownKube: the same with the kube-apiserver stopped (a private one, so other tests
// are not disturbed).
func TestDatastoreDownKube(t *testing.T) {
	testenv.RequireRoot(t)
	k := testenv.NewKubeAPIServer(t)
	c := newClusterOn(t, "kube", k)
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)

	if err := k.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := node.Status(ctx, conf); cniCode(err) != cni.CodePluginNotAvailable {
		t.Errorf("STATUS with the API server down: %v (code %d), want 50", err, cniCode(err))
	}
	start := time.Now()
	_, err := node.Add(ctx, conf, pod)
	if cniCode(err) != cni.CodeTryAgainLater {
		t.Errorf("ADD with the API server down: %v (code %d), want 11", err, cniCode(err))
	}
	t.Logf("ADD with the API server down failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	onlyBaseLinks(t, node)
	if links := cnitest.LinkNames(t, pod.NS); slices.Contains(links, "eth0") {
		t.Errorf("pod has eth0 after a failed ADD: %v", links)
	}

	if err := k.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := k.WaitReady(); err != nil {
		t.Fatal(err)
	}
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations after the failed ADD: %v", a)
	}
	if err := node.Status(ctx, conf); err != nil {
		t.Errorf("STATUS with the API server back: %v", err)
	}
	if _, err := node.Add(ctx, conf, pod); err != nil {
		t.Errorf("ADD with the API server back: %v", err)
	}
}

// TestFailureAfterIPAMReleases: an ADD that fails after allocating (the container already has an
// eth0) releases the address and leaves no interface.
func TestFailureAfterIPAMReleases(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	h := cnitest.Handle(t, pod.NS)
	la := netlink.NewLinkAttrs()
	la.Name = "eth0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0-peer", PeerTxQLen: -1}); err != nil {
		t.Fatal(err)
	}
	_, err := node.Add(ctx, conf, pod)
	if cniCode(err) != cni.CodeDataplaneFailed || !strings.Contains(err.Error(), "eth0") {
		t.Errorf("ADD into a sandbox that has eth0: %v (code %d), want %d", err, cniCode(err), cni.CodeDataplaneFailed)
	}
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations after the failed ADD: %v", a)
	}
	if hs := c.handles(t); len(hs) != 0 {
		t.Errorf("handles after the failed ADD: %v", hs)
	}
	if c.endpoint(t, "p") != nil {
		t.Error("WorkloadEndpoint written by a failed ADD")
	}
	onlyBaseLinks(t, node)
}

// TestGC: GC releases the allocation of an attachment that is not valid (its libcni cache entry is
// lost, so only the plugin can find it) and keeps the valid one's.
func TestGC(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, nil)
	ctx := ctxFor(t)
	keep, stale := c.pod(t, "keep", nil), c.pod(t, "stale", nil)
	for _, p := range []*cnitest.Pod{keep, stale} {
		if _, err := node.Add(ctx, conf, p); err != nil {
			t.Fatal(err)
		}
	}
	cache := filepath.Join(node.CacheDir, "results", network+"-"+stale.ContainerID+"-eth0")
	if err := os.Remove(cache); err != nil {
		t.Fatalf("removing the libcni cache entry: %v", err)
	}
	if err := node.GC(ctx, conf, keep); err != nil {
		t.Fatalf("GC: %v", err)
	}
	allocs := c.allocations(t)
	if _, ok := allocs[cni.HandleID(network, stale.ContainerID)]; ok {
		t.Error("GC kept the stale attachment's address")
	}
	if _, ok := allocs[cni.HandleID(network, keep.ContainerID)]; !ok {
		t.Error("GC released the valid attachment's address")
	}
	if err := node.Check(ctx, conf, keep); err != nil {
		t.Errorf("CHECK of the kept pod after GC: %v", err)
	}
}

// TestIPAMPluginWithBridge: the reference bridge plugin uses tortie-ipam (exec'd as its delegate)
// for its addresses; DEL releases them. (ptp cannot: it puts the IPAM result's gateway on the host
// side, and tortie-ipam, like calico-ipam, returns none.)
func TestIPAMPluginWithBridge(t *testing.T) {
	if _, err := os.Stat(filepath.Join(cnitest.ReferencePluginDir, "bridge")); err != nil {
		testenv.Unavailable(t, "reference plugins missing (apt-get install containernetworking-plugins): %v", err)
	}
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	ipamConf := map[string]any{"type": "tortie-ipam", "ipv4_pools": []string{"tortie-cni-b"}, "nodename": c.node}
	for k, v := range c.keys {
		ipamConf[k] = v
	}
	plugin := map[string]any{"type": "bridge", "bridge": "tortie-br", "isGateway": false, "ipMasq": false, "mtu": 1400, "ipam": ipamConf,
		"nodename": c.node, "nodename_file_optional": true, "ipam_lock_file": c.lockFile}
	for k, v := range c.keys {
		plugin[k] = v
	}
	raw, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": network, "plugins": []any{plugin}})
	conf := cnitest.ConfList(t, string(raw))
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	r, err := node.Add(ctx, conf, pod)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	res, _ := types100.GetResult(r)
	ip := addrOf(t, res)
	if !netip.MustParsePrefix("10.65.0.0/16").Contains(ip) {
		t.Errorf("bridge got %s, want an address from tortie-cni-b", ip)
	}
	if got := c.allocations(t)[cni.HandleID(network, pod.ContainerID)]; !slices.Equal(got, []netip.Addr{ip}) {
		t.Errorf("handle holds %v, want [%s]", got, ip)
	}
	if err := node.Check(ctx, conf, pod); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := node.Del(ctx, conf, pod); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if a := c.allocations(t); len(a) != 0 {
		t.Errorf("allocations after DEL: %v", a)
	}
}

// TestCalicoNames: a Calico conflist ("type": "calico", "calico-ipam") works unchanged.
func TestCalicoNames(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, map[string]any{"type": "calico", "ipam": map[string]any{"type": "calico-ipam", "assign_ipv4": "true"}})
	ctx := ctxFor(t)
	pod := c.pod(t, "p", nil)
	if _, err := node.Add(ctx, conf, pod); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := node.Del(ctx, conf, pod); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	onlyBaseLinks(t, node)
}

// TestDualStack: assign_ipv6 gives the pod an address of each family; both are reachable from the
// other pod.
func TestDualStack(t *testing.T) {
	c := newCluster(t, "etcd")
	node := newNode(t, c)
	conf := c.conf(t, map[string]any{"ipam": map[string]any{"type": "tortie-ipam", "assign_ipv6": "true",
		"ipv4_pools": []string{"tortie-cni-a"}, "ipv6_pools": []string{"tortie-cni-v6"}}})
	ctx := ctxFor(t)
	a, b := c.pod(t, "a", nil), c.pod(t, "b", nil)
	var bIPs []netip.Addr
	for _, p := range []*cnitest.Pod{a, b} {
		r, err := node.Add(ctx, conf, p)
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		res, _ := types100.GetResult(r)
		if len(res.IPs) != 2 || len(res.Routes) != 2 {
			t.Fatalf("result %+v, want two addresses and two default routes", res)
		}
		bIPs = bIPs[:0]
		for _, ip := range res.IPs {
			x, _ := netip.AddrFromSlice(ip.Address.IP)
			bIPs = append(bIPs, x.Unmap())
		}
	}
	cnitest.UDPEcho(t, b.NS, 7008)
	for _, ip := range bIPs {
		if err := cnitest.UDPPing(a.NS, ip, 7008, 5*time.Second); err != nil {
			t.Errorf("a → b %s: %v", ip, err)
		}
	}
	if err := node.Check(ctx, conf, a); err != nil {
		t.Errorf("CHECK: %v", err)
	}
}
