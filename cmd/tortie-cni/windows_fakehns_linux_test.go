//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cnitest"
	wcni "github.com/tortie-net/tortie/windows/cni"
	"github.com/tortie-net/tortie/windows/dataplane"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// The Windows plugin is tested here as containerd drives it: libcni executes the plugin binary — built
// with the tag tortie_fakehns, so that it runs windows/cni against the file-backed fake HNS named by
// $TORTIE_FAKE_HNS — and the test, playing the runtime and the agent, shares that fake HNS. IPAM runs
// against real etcd (embedded, or TORTIE_ETCD).

var winBuild struct {
	once sync.Once
	dir  string
	err  error
}

// winPluginDir builds the tortie_fakehns plugin once per test binary, installed as tortie and
// tortie-ipam.
func winPluginDir(t *testing.T) string {
	t.Helper()
	winBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "tortie-wincni-bin-")
		if err != nil {
			winBuild.err = err
			return
		}
		winBuild.dir = dir
		bin := filepath.Join(dir, "tortie-cni")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "tortie_fakehns", "-o", bin, "./cmd/tortie-cni")
		cmd.Dir = cnitest.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			winBuild.err = fmt.Errorf("go build -tags tortie_fakehns ./cmd/tortie-cni: %w\n%s", err, out)
			return
		}
		for _, n := range []string{"tortie", "tortie-ipam"} {
			if err := os.Symlink("tortie-cni", filepath.Join(dir, n)); err != nil {
				winBuild.err = err
				return
			}
		}
	})
	if winBuild.err != nil {
		t.Fatal(winBuild.err)
	}
	return winBuild.dir
}

func winPluginCleanup() {
	if winBuild.dir != "" {
		_ = os.RemoveAll(winBuild.dir)
	}
}

const (
	winNode     = "win1"
	winPoolCIDR = "10.88.0.0/16"
	winService  = "10.96.0.0/12"
)

// winRig is one Windows node: a fake HNS in a file, an etcd prefix with a pool, and a CNI config.
type winRig struct {
	t      *testing.T
	hns    *hcnfake.HNS
	be     datastore.Backend
	ipam   *ipam.Client
	cni    *libcni.CNIConfig
	list   *libcni.NetworkConfigList
	logDir string
	agent  *dataplane.Dataplane
	node   string
	cs     *kubernetes.Clientset // the Kubernetes datastore's API (nil with etcd)
}

func newWinRig(t *testing.T, extra map[string]any) *winRig { return newWinRigOn(t, "etcd", extra) }

// newWinRigOn makes a rig on the etcd or the Kubernetes ("kube") datastore.
func newWinRigOn(t *testing.T, kind string, extra map[string]any) *winRig {
	t.Helper()
	dir := winPluginDir(t)
	r := &winRig{t: t, logDir: t.TempDir(), node: winNode}
	path := filepath.Join(t.TempDir(), "hns.json")
	t.Setenv("TORTIE_FAKE_HNS", path)
	var err error
	if r.hns, err = hcnfake.Open(path, hcnfake.Options{}); err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	switch kind {
	case "etcd":
		eps := testenv.Etcd(t)
		prefix := fmt.Sprintf("/wincni-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
		if r.be, err = etcdBackend(eps, prefix); err != nil {
			t.Fatal(err)
		}
		keys = map[string]any{"datastore_type": "etcdv3", "etcd_endpoints": strings.Join(eps, ","), "etcd_key_prefix": prefix}
	case "kube":
		k := testenv.KubeAPIServer(t)
		be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
		if err != nil {
			t.Fatal(err)
		}
		r.be = be
		v, _ := kubeOnce.LoadOrStore(k, &sync.Once{})
		v.(*sync.Once).Do(func() {
			if err := be.EnsureCRDs(t.Context(), os.DirFS(filepath.Join(cnitest.ModuleRoot(t), "installer", "kubernetes", "crds"))); err != nil {
				t.Fatalf("EnsureCRDs: %v", err)
			}
			for _, p := range testPools {
				createPool(t, be, p.name, p.cidr)
			}
		})
		if r.cs, err = kubernetes.NewForConfig(k.RestConfig()); err != nil {
			t.Fatal(err)
		}
		// No controller creates the namespace's default service account here.
		_, err = r.cs.CoreV1().ServiceAccounts("default").Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating the default service account: %v", err)
		}
		// Pools and nodes are cluster-wide: a node of its own per test.
		r.node = fmt.Sprintf("win-%d", time.Now().UnixNano())
		keys = map[string]any{"datastore_type": "kubernetes", "kubernetes": map[string]any{"kubeconfig": k.Kubeconfig()}}
	default:
		t.Fatalf("unknown datastore %q", kind)
	}
	t.Cleanup(func() { r.be.Close() })
	createPool(t, r.be, "win-pool", winPoolCIDR)
	r.ipam = newIPAM(r.be)
	r.cni = libcni.NewCNIConfigWithCacheDir([]string{dir}, t.TempDir(), nil)
	plugin := map[string]any{
		"type": "tortie", "nodename": r.node, "nodename_file_optional": true, "mtu": 1450,
		"ipam_lock_file": filepath.Join(t.TempDir(), "ipam.lock"),
		"log_level":      "debug", "log_file_path": filepath.Join(r.logDir, "cni.log"),
		"ipam": map[string]any{"type": "tortie-ipam", "ipv4_pools": []string{"win-pool"}},
		"dns":  map[string]any{"nameservers": []string{"10.96.0.10"}, "search": []string{"svc.cluster.local"}},
		"policies": []any{
			map[string]any{"Name": "EndpointPolicy", "Value": map[string]any{"Type": "OutBoundNAT", "ExceptionList": []string{winService}}},
			map[string]any{"Name": "EndpointPolicy", "Value": map[string]any{"Type": "SDNROUTE", "DestinationPrefix": winService, "NeedEncap": true}},
		},
	}
	for k, v := range keys {
		plugin[k] = v
	}
	for k, v := range extra {
		plugin[k] = v
	}
	b, err := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "k8s-pod-network", "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	r.list = cnitest.ConfList(t, string(b))
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(r.logDir, "cni.log"))
			t.Logf("plugin log:\n%s", data)
			state, _ := os.ReadFile(path)
			t.Logf("fake HNS state:\n%s", state)
		}
	})
	return r
}

// block is the node's IPAM block (the zero Prefix when it has none).
func (r *winRig) block() netip.Prefix {
	r.t.Helper()
	objs, _, err := r.be.List(r.t.Context(), datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, o := range objs {
		b := o.(*api.IPAMBlock)
		if b.Spec.Affinity != nil && *b.Spec.Affinity == "host:"+r.node {
			return netip.MustParsePrefix(b.Spec.CIDR)
		}
	}
	return netip.Prefix{}
}

// agentUp plays tortie-node: the Windows dataplane, on the same fake HNS, creates the overlay network
// for the node's block (claimed by node startup, or by the first ADD).
func (r *winRig) agentUp() netip.Prefix {
	r.t.Helper()
	blk := r.block()
	if !blk.IsValid() {
		res, err := r.ipam.EnsureBlock(r.t.Context(), ipam.EnsureBlockArgs{Hostname: r.node, IPv4: true, IPv4Pools: []string{"win-pool"}, HostReservedAttrIPv4s: ipam.WindowsHostReserved()})
		if err != nil {
			r.t.Fatal(err)
		}
		blk = res.IPv4
	}
	pool := netip.MustParsePrefix(winPoolCIDR)
	r.agent = dataplane.New(dataplane.Options{API: r.hns, ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix(winService)}})
	for _, u := range []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: r.node, VXLANEnabled: true, VXLANVNI: 4096, VXLANPort: 4789}},
		dpmodel.PoolUpdate{CIDR: pool, Pool: dpmodel.Pool{VXLANMode: dpmodel.EncapAlways, NATOutgoing: true}},
		dpmodel.RouteUpdate{Dst: blk, Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock, PoolCIDR: pool, NATOutgoing: true}},
	} {
		r.agent.OnUpdate(u)
	}
	if err := r.agent.Apply(r.t.Context()); err != nil {
		r.t.Fatalf("agent Apply: %v", err)
	}
	return blk
}

// winPod is a sandbox as the runtime passes it: containerd's namespace GUID, or Docker's "none".
type winPod struct {
	name, containerID, netns string
}

var winSeq struct {
	mu sync.Mutex
	n  int
}

func nextContainerID() string {
	winSeq.mu.Lock()
	defer winSeq.mu.Unlock()
	winSeq.n++
	return fmt.Sprintf("%08x%056x", os.Getpid(), winSeq.n)
}

// containerdPod creates the sandbox's HNS namespace, as containerd does before ADD.
func (r *winRig) containerdPod(name string) *winPod {
	r.t.Helper()
	ns, err := r.hns.CreateNamespace(r.t.Context(), &hcn.Namespace{Type: hcn.NamespaceGuest})
	if err != nil {
		r.t.Fatal(err)
	}
	r.kubePod(name)
	return &winPod{name: name, containerID: nextContainerID(), netns: ns.ID}
}

// kubePod creates the Pod object (scheduled to the node) in the Kubernetes datastore, where the
// WorkloadEndpoint is the pod's annotations.
func (r *winRig) kubePod(name string) {
	r.t.Helper()
	if r.cs == nil {
		return
	}
	_, err := r.cs.CoreV1().Pods("default").Create(r.t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: r.node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		r.t.Fatalf("creating pod %s: %v", name, err)
	}
	r.t.Cleanup(func() { _ = r.cs.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// dockerPod starts the infra container, as Docker does before ADD.
func (r *winRig) dockerPod(name string) *winPod {
	r.t.Helper()
	r.kubePod(name)
	p := &winPod{name: name, containerID: nextContainerID(), netns: "none"}
	if _, err := r.hns.AddContainer(p.containerID, ""); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (p *winPod) rt() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.containerID, NetNS: p.netns, IfName: "eth0", Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", p.name}, {"K8S_POD_INFRA_CONTAINER_ID", p.containerID},
	}}
}

func (r *winRig) add(p *winPod) (*types100.Result, error) {
	res, err := r.cni.AddNetworkList(r.t.Context(), r.list, p.rt())
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

func (r *winRig) endpoints() []hcn.Endpoint {
	r.t.Helper()
	eps, err := r.hns.ListEndpoints(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	return slices.DeleteFunc(eps, func(e hcn.Endpoint) bool { return e.Flags&hcn.EndpointRemote != 0 })
}

func (r *winRig) endpoint(p *winPod) *hcn.Endpoint {
	for _, e := range r.endpoints() {
		if e.Name == wcni.EndpointName(p.containerID, "tortie-vxlan") {
			return &e
		}
	}
	return nil
}

// podAllocations returns the node's allocations other than Windows's reserved addresses: handle →
// addresses.
func (r *winRig) podAllocations() map[string][]netip.Addr {
	r.t.Helper()
	al := r.allocations()
	delete(al, ipam.WindowsReservedHandle)
	return al
}

// allocations returns every allocation in the node's blocks: handle → addresses.
func (r *winRig) allocations() map[string][]netip.Addr {
	r.t.Helper()
	objs, _, err := r.be.List(r.t.Context(), datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]netip.Addr{}
	for _, o := range objs {
		b := o.(*api.IPAMBlock)
		if b.Spec.Affinity == nil || *b.Spec.Affinity != "host:"+r.node {
			continue // another node's (the Kubernetes datastore is shared by the tests)
		}
		cidr := netip.MustParsePrefix(b.Spec.CIDR)
		for ord, idx := range b.Spec.Allocations {
			if idx == nil {
				continue
			}
			at := b.Spec.Attributes[*idx]
			if at.HandleID == nil {
				continue
			}
			a := cidr.Addr()
			for range ord {
				a = a.Next()
			}
			out[*at.HandleID] = append(out[*at.HandleID], a)
		}
	}
	return out
}

// reserved returns the addresses held by Windows's reserved handle in blk.
func (r *winRig) reserved(blk netip.Prefix) []netip.Addr {
	r.t.Helper()
	return slices.DeleteFunc(r.allocations()[ipam.WindowsReservedHandle], func(a netip.Addr) bool { return !blk.Contains(a) })
}

func (r *winRig) wep(p *winPod) *api.WorkloadEndpoint {
	o, err := r.be.Get(r.t.Context(), datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: "default",
		Name: api.WorkloadEndpointName(r.node, "k8s", p.name, "eth0")})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return o.(*api.WorkloadEndpoint)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestWindowsCNIBootstrap: before the agent created the overlay network, ADD fails with code 11 and
// leaves no endpoint and no address, but the block it claimed keeps Windows's reserved addresses (the
// first three and the last); STATUS says not ready. Once the agent created the network for that block,
// the retried ADD succeeds with the first free address.
func TestWindowsCNIBootstrap(t *testing.T) {
	r := newWinRig(t, nil)
	ctx := t.Context()
	if err := r.cni.GetStatusNetworkList(ctx, r.list); cniCode(err) != 50 || !strings.Contains(err.Error(), "tortie-vxlan does not exist") {
		t.Errorf("STATUS without the network: %v, want code 50 naming the network", err)
	}
	p := r.containerdPod("boot")
	_, err := r.add(p)
	if cniCode(err) != 11 || !strings.Contains(err.Error(), "tortie-vxlan does not exist yet") {
		t.Fatalf("ADD without the network: %v (code %d), want code 11 naming the network", err, cniCode(err))
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after the failed ADD: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after the failed ADD: %v", al)
	}
	blk := r.block()
	if !blk.IsValid() {
		t.Fatal("the ADD claimed no block for the node")
	}
	first := blk.Addr()
	want := []netip.Addr{first, first.Next(), first.Next().Next(), lastAddr(blk)}
	if diff := cmp.Diff(want, r.reserved(blk), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("reserved addresses of block %s (-want +got):\n%s", blk, diff)
	}

	r.agentUp()
	if err := r.cni.GetStatusNetworkList(ctx, r.list); err != nil {
		t.Errorf("STATUS with the network: %v", err)
	}
	res, err := r.add(p)
	if err != nil {
		t.Fatalf("retried ADD: %v", err)
	}
	// IPAM hands out ordinals in order and a released one goes to the back of the line: the failed
	// ADD had the first free address, the retry gets the next.
	if got := res.IPs[0].Address.IP.String(); got != first.Next().Next().Next().Next().String() {
		t.Errorf("pod address %s, want %s (the reserved three and the failed ADD's address come first)", got, first.Next().Next().Next().Next())
	}
}

// TestWindowsCNIContainerd drives ADD, CHECK, DEL (twice) in containerd's flow: the endpoint is created
// in the overlay network with the pod's address, gateway, MAC, DNS and policies, attached to the
// sandbox's HNS namespace, and recorded as the pod's WorkloadEndpoint.
func TestWindowsCNIContainerd(t *testing.T) {
	r := newWinRig(t, nil)
	ctx := t.Context()
	blk := r.agentUp()
	p := r.containerdPod("web")
	res, err := r.add(p)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	a := netip.MustParseAddr(res.IPs[0].Address.IP.String())
	gw := blk.Addr().Next()
	if !blk.Contains(a) || a == gw || a == gw.Next() || a == lastAddr(blk) {
		t.Errorf("pod address %s: want a non-reserved address of %s", a, blk)
	}
	if res.IPs[0].Gateway.String() != gw.String() || len(res.Routes) != 1 || res.Routes[0].GW.String() != gw.String() {
		t.Errorf("gateway %v, routes %v; want %s", res.IPs[0].Gateway, res.Routes, gw)
	}
	name := wcni.EndpointName(p.containerID, "tortie-vxlan")
	b4 := a.As4()
	wantMAC := fmt.Sprintf("0E-2A-%02X-%02X-%02X-%02X", b4[0], b4[1], b4[2], b4[3])
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != name || res.Interfaces[1].Sandbox != p.netns ||
		!strings.EqualFold(strings.ReplaceAll(res.Interfaces[1].Mac, ":", "-"), wantMAC) {
		t.Errorf("interfaces %+v, want host %s and eth0 in %s with MAC %s", res.Interfaces, name, p.netns, wantMAC)
	}
	e := r.endpoint(p)
	if e == nil {
		t.Fatalf("no HNS endpoint %s", name)
	}
	if e.HostComputeNamespace != p.netns || e.MacAddress != wantMAC {
		t.Errorf("endpoint namespace %q MAC %q, want %q %q", e.HostComputeNamespace, e.MacAddress, p.netns, wantMAC)
	}
	if diff := cmp.Diff([]hcn.IPConfig{{IpAddress: a.String(), PrefixLength: uint8(blk.Bits())}}, e.IpConfigurations); diff != "" {
		t.Errorf("endpoint addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(hcn.DNS{ServerList: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}}, e.Dns); diff != "" {
		t.Errorf("endpoint DNS (-want +got):\n%s", diff)
	}
	var types []hcn.EndpointPolicyType
	for _, pol := range e.Policies {
		types = append(types, pol.Type)
		if pol.Type == hcn.EndpointPolicyOutBoundNAT {
			var s hcn.OutboundNATSetting
			_ = json.Unmarshal(pol.Settings, &s)
			if diff := cmp.Diff([]string{winPoolCIDR, winService}, s.Exceptions); diff != "" {
				t.Errorf("OutBoundNAT exceptions (-want +got):\n%s", diff)
			}
		}
	}
	wantTypes := []hcn.EndpointPolicyType{hcn.EndpointPolicyProviderAddress, hcn.EndpointPolicyOutBoundNAT, hcn.EndpointPolicySDNRoute, hcn.EndpointPolicyACL}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("endpoint policy types (-want +got):\n%s", diff)
	}
	// Until the agent renders its policy, the pod is closed inbound and open outbound.
	host := netip.MustParseAddr("192.0.2.99")
	if v := r.hns.Verdict(hcnfake.Packet{Src: host, Dst: a, Protocol: 6, DstPort: 80}); v.Allowed {
		t.Errorf("inbound before the agent's policy: %+v, want denied by the CNI's default deny", v)
	}
	if v := r.hns.Verdict(hcnfake.Packet{Src: a, Dst: netip.MustParseAddr("8.8.8.8"), Protocol: 17, DstPort: 53}); !v.Allowed {
		t.Errorf("outbound before the agent's policy: %+v", v)
	}
	if w := r.wep(p); w == nil || !slices.Equal(w.Spec.IPNetworks, []string{a.String() + "/32"}) || w.Spec.InterfaceName != name || w.Spec.ContainerID != p.containerID {
		t.Errorf("WorkloadEndpoint %+v", w)
	}
	// The agent's pass keeps the attached endpoint even before it knows the workload.
	if err := r.agent.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	r.agent.QueueResync()
	if err := r.agent.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if r.endpoint(p) == nil {
		t.Fatal("the agent deleted the pod's attached endpoint")
	}
	// Once the agent knows the workload (a profile allowing all inbound), its policy replaces the CNI's
	// default deny in one call, and the CNI's ProviderAddress, NAT and route stay.
	r.agent.OnUpdate(dpmodel.ProfileUpdate{ID: "kns.default", Profile: dpmodel.Profile{
		Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/in/0"}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/out/0"}}}})
	r.agent.OnUpdate(dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "default", Name: p.name}, Endpoint: dpmodel.WorkloadEndpoint{
		Pod: p.name, InterfaceName: name, IPv4Nets: []netip.Prefix{netip.PrefixFrom(a, 32)}, ProfileIDs: []string{"kns.default"}}})
	r.hns.ResetCalls()
	if err := r.agent.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.hns.Calls()["ApplyEndpointPolicy"]; n != 1 {
		t.Errorf("the agent made %d ApplyEndpointPolicy calls, want 1", n)
	}
	if v := r.hns.Verdict(hcnfake.Packet{Src: host, Dst: a, Protocol: 6, DstPort: 80}); !v.Allowed {
		t.Errorf("inbound after the agent's policy: %+v, want allowed by the profile", v)
	}
	types = nil
	for _, pol := range r.endpoint(p).Policies {
		if len(types) == 0 || types[len(types)-1] != pol.Type {
			types = append(types, pol.Type)
		}
	}
	wantTypes = []hcn.EndpointPolicyType{hcn.EndpointPolicyProviderAddress, hcn.EndpointPolicyEncapOverhead, hcn.EndpointPolicyOutBoundNAT, hcn.EndpointPolicySDNRoute, hcn.EndpointPolicyACL}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("endpoint policy types after the agent's pass (-want +got):\n%s", diff)
	}

	if err := r.cni.CheckNetworkList(ctx, r.list, p.rt()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	// CHECK reports an endpoint that HNS lost.
	if err := r.hns.DeleteEndpoint(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	err = r.cni.CheckNetworkList(ctx, r.list, p.rt())
	if cniCode(err) != 100 || !strings.Contains(err.Error(), name) {
		t.Errorf("CHECK without the endpoint: %v, want code 100 naming %s", err, name)
	}

	for i := range 2 {
		if err := r.cni.DelNetworkList(ctx, r.list, p.rt()); err != nil {
			t.Fatalf("DEL %d: %v", i+1, err)
		}
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after DEL: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after DEL: %v", al)
	}
	if w := r.wep(p); w != nil {
		t.Errorf("WorkloadEndpoint after DEL: %+v", w)
	}
}

// TestWindowsCNIDocker drives the Docker flow: CNI_NETNS "none", the endpoint hot-attached to the infra
// container CNI_CONTAINERID.
func TestWindowsCNIDocker(t *testing.T) {
	r := newWinRig(t, map[string]any{"windows_disable_default_deny_all_policy": true, "vxlan_mac_prefix": "0E-2B"})
	ctx := t.Context()
	r.agentUp()
	p := r.dockerPod("legacy")
	res, err := r.add(p)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	e := r.endpoint(p)
	if e == nil || e.HostComputeNamespace == "" {
		t.Fatalf("endpoint %+v: want one attached to the infra container", e)
	}
	if !strings.HasPrefix(e.MacAddress, "0E-2B-") || slices.ContainsFunc(e.Policies, func(p hcn.EndpointPolicy) bool { return p.Type == hcn.EndpointPolicyACL }) {
		t.Errorf("endpoint MAC %s, policies %+v: want the configured prefix and no default deny", e.MacAddress, e.Policies)
	}
	if res.Interfaces[1].Sandbox != "none" {
		t.Errorf("sandbox %q", res.Interfaces[1].Sandbox)
	}
	// dockershim and cri-dockerd repeat ADD to learn a running pod's address: the same answer, and
	// nothing allocated or created again.
	again, err := r.add(p)
	if err != nil {
		t.Fatalf("repeated ADD: %v", err)
	}
	if diff := cmp.Diff(res, again); diff != "" {
		t.Errorf("repeated ADD's result (-first +again):\n%s", diff)
	}
	if al := r.podAllocations(); len(al) != 1 || len(al["k8s-pod-network."+p.containerID]) != 1 {
		t.Errorf("allocations after the repeated ADD: %v", al)
	}
	if again := r.endpoint(p); again == nil || again.ID != e.ID || len(r.endpoints()) != 1 {
		t.Errorf("endpoints after the repeated ADD: %+v, want only %s", r.endpoints(), e.ID)
	}
	if err := r.cni.CheckNetworkList(ctx, r.list, p.rt()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	for i := range 2 {
		if err := r.cni.DelNetworkList(ctx, r.list, p.rt()); err != nil {
			t.Fatalf("DEL %d: %v", i+1, err)
		}
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after DEL: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after DEL: %v", al)
	}
}

// TestWindowsCNIFailedAdd: an ADD that fails at any HNS step leaves no endpoint, no allocation and no
// WorkloadEndpoint; an ADD that failed in the WorkloadEndpoint write also removes its endpoint.
func TestWindowsCNIFailedAdd(t *testing.T) {
	r := newWinRig(t, nil)
	r.agentUp()
	cases := []struct {
		name string
		pod  func() *winPod
		fail string
	}{
		{"create endpoint", func() *winPod { return r.containerdPod("a") }, "CreateEndpoint"},
		{"attach to namespace", func() *winPod { return r.containerdPod("b") }, "AddNamespaceEndpoint"},
		{"hot attach", func() *winPod { return r.dockerPod("c") }, "HotAttachEndpoint"},
		{"infra container missing", func() *winPod { return &winPod{name: "d", containerID: nextContainerID(), netns: "none"} }, ""},
		{"namespace missing", func() *winPod {
			return &winPod{name: "e", containerID: nextContainerID(), netns: "01234567-89ab-4cde-8f01-23456789abcd"}
		}, ""},
		{"bad netns", func() *winPod { return &winPod{name: "f", containerID: nextContainerID(), netns: "/var/run/netns/x"} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod()
			if tc.fail != "" {
				r.hns.FailNext(tc.fail, errors.New("injected HNS failure"))
			}
			if _, err := r.add(p); err == nil {
				t.Fatal("ADD succeeded")
			} else if tc.fail != "" && !strings.Contains(err.Error(), "injected HNS failure") {
				t.Errorf("ADD error %v does not carry the HNS error", err)
			}
			if eps := r.endpoints(); len(eps) != 0 {
				t.Errorf("endpoints after the failed ADD: %+v", eps)
			}
			if al := r.podAllocations(); len(al) != 0 {
				t.Errorf("allocations after the failed ADD: %v", al)
			}
			if w := r.wep(p); w != nil {
				t.Errorf("WorkloadEndpoint after the failed ADD: %+v", w)
			}
			r.hns.ClearFailures()
		})
	}
}

// TestWindowsCNIGC: GC removes the endpoints and addresses of sandboxes that are not valid any more, and
// keeps the others and the agent's host endpoint.
func TestWindowsCNIGC(t *testing.T) {
	r := newWinRig(t, nil)
	ctx := t.Context()
	r.agentUp()
	keep, gone := r.containerdPod("keep"), r.dockerPod("gone")
	for _, p := range []*winPod{keep, gone} {
		if _, err := r.add(p); err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
	}
	err := r.cni.GCNetworkList(ctx, r.list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.containerID, IfName: "eth0"}}})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	var names []string
	for _, e := range r.endpoints() {
		names = append(names, e.Name)
	}
	if diff := cmp.Diff([]string{wcni.EndpointName(keep.containerID, "tortie-vxlan")}, names); diff != "" {
		t.Errorf("endpoints after GC (-want +got):\n%s", diff)
	}
	all, _ := r.hns.ListEndpoints(ctx)
	if !slices.ContainsFunc(all, func(e hcn.Endpoint) bool { return e.Name == "tortie-vxlan_ep" }) {
		t.Error("GC removed the agent's host endpoint")
	}
	al := r.podAllocations()
	if len(al) != 1 || al["k8s-pod-network."+keep.containerID] == nil {
		t.Errorf("allocations after GC: %v, want only %s's", al, keep.name)
	}
}

// TestWindowsCNIBadConfig: Windows keys tortie cannot honour are refused before anything is allocated.
func TestWindowsCNIBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra map[string]any
		code  uint
		want  string
	}{
		{"l2bridge", map[string]any{"mode": "windows-bgp"}, 2, `"mode"="windows-bgp"`},
		{"mac prefix", map[string]any{"vxlan_mac_prefix": "0E2A"}, 7, `"vxlan_mac_prefix"`},
		{"policy type", map[string]any{"policies": []any{map[string]any{"Name": "EndpointPolicy", "Value": map[string]any{"Type": "ACL"}}}}, 2, `policies[0].Value.Type`},
		{"service range", map[string]any{"policies": []any{map[string]any{"Name": "EndpointPolicy", "Value": map[string]any{"Type": "SDNROUTE", "DestinationPrefix": "10.96.0.0"}}}}, 7, `policies[0].Value.DestinationPrefix`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newWinRig(t, tc.extra)
			r.agentUp()
			_, err := r.add(r.containerdPod("p"))
			if cniCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ADD: %v (code %d), want code %d naming %s", err, cniCode(err), tc.code, tc.want)
			}
			if al := r.podAllocations(); len(al) != 0 {
				t.Errorf("allocations: %v", al)
			}
		})
	}
}

// TestWindowsCNIProductionBuild: the plugin as released (no tortie_fakehns tag) does not contain the
// fake HNS, on Windows or Linux.
func TestWindowsCNIProductionBuild(t *testing.T) {
	for _, goos := range []string{"windows", "linux"} {
		cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "./cmd/tortie-cni")
		cmd.Dir = cnitest.ModuleRoot(t)
		cmd.Env = append(os.Environ(), "GOOS="+goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list (GOOS=%s): %v\n%s", goos, err, out)
		}
		if strings.Contains(string(out), "windows/hcnfake") {
			t.Errorf("GOOS=%s: cmd/tortie-cni depends on windows/hcnfake", goos)
		}
		if goos == "windows" && !strings.Contains(string(out), "tortie/windows/cni\n") {
			t.Errorf("GOOS=windows: cmd/tortie-cni does not use windows/cni")
		}
	}
}

// TestWindowsCNIDelAfterSandboxGone: DEL succeeds and removes the endpoint and the address when the
// runtime already removed the sandbox (the HNS namespace, or the infra container), and when HNS lost the
// endpoint in a restart.
func TestWindowsCNIDelAfterSandboxGone(t *testing.T) {
	r := newWinRig(t, nil)
	ctx := t.Context()
	r.agentUp()
	cd, dk, lost := r.containerdPod("cd"), r.dockerPod("dk"), r.containerdPod("lost")
	for _, p := range []*winPod{cd, dk, lost} {
		if _, err := r.add(p); err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
	}
	if err := r.hns.DeleteNamespace(ctx, cd.netns); err != nil {
		t.Fatal(err)
	}
	r.hns.RemoveContainer(dk.containerID)
	if err := r.hns.DeleteEndpoint(ctx, r.endpoint(lost).ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*winPod{cd, dk, lost} {
		if err := r.cni.DelNetworkList(ctx, r.list, p.rt()); err != nil {
			t.Errorf("DEL %s: %v", p.name, err)
		}
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after DEL: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after DEL: %v", al)
	}
}

// TestWindowsCNIKubernetes runs containerd's and Docker's flows on the Kubernetes datastore (the Windows
// manifests' default): the WorkloadEndpoint is the pod's annotations, cleared by DEL.
func TestWindowsCNIKubernetes(t *testing.T) {
	r := newWinRigOn(t, "kube", nil)
	ctx := t.Context()
	r.agentUp()
	for _, p := range []*winPod{r.containerdPod(fmt.Sprintf("kcd-%d", time.Now().UnixNano())), r.dockerPod(fmt.Sprintf("kdk-%d", time.Now().UnixNano()))} {
		res, err := r.add(p)
		if err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
		a := res.IPs[0].Address.IP.String()
		if w := r.wep(p); w == nil || !slices.Equal(w.Spec.IPNetworks, []string{a + "/32"}) {
			t.Errorf("WorkloadEndpoint of %s: %+v, want %s", p.name, w, a)
		}
		if r.endpoint(p) == nil {
			t.Errorf("no HNS endpoint for %s", p.name)
		}
		if err := r.cni.CheckNetworkList(ctx, r.list, p.rt()); err != nil {
			t.Errorf("CHECK %s: %v", p.name, err)
		}
		for range 2 {
			if err := r.cni.DelNetworkList(ctx, r.list, p.rt()); err != nil {
				t.Fatalf("DEL %s: %v", p.name, err)
			}
		}
		if r.endpoint(p) != nil {
			t.Errorf("HNS endpoint of %s after DEL", p.name)
		}
		if w := r.wep(p); w != nil && len(w.Spec.IPNetworks) > 0 {
			t.Errorf("WorkloadEndpoint of %s after DEL: %+v", p.name, w.Spec)
		}
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after DEL: %v", al)
	}
	dockerJoinFlow(t, r, fmt.Sprintf("kjoin-%d", time.Now().UnixNano()))
}

// appContainer starts an application container of Docker pod infra, in the infra container's
// compartment, as dockershim and cri-dockerd do before its ADD with CNI_NETNS "container:<infra>".
func (r *winRig) appContainer(infra *winPod) *winPod {
	r.t.Helper()
	p := &winPod{name: infra.name, containerID: nextContainerID(), netns: "container:" + infra.containerID}
	if _, err := r.hns.AddContainer(p.containerID, infra.containerID); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// dockerJoinFlow drives a Docker pod with two application containers through libcni: infra ADD, the
// application containers' ADDs with CNI_NETNS container:<infra> (attached to the infra container's
// endpoint: no second endpoint, no second address, the WorkloadEndpoint still the infra container's),
// CHECK of each, the application containers' DELs (detach only, twice), the infra DEL (no endpoint, no
// allocation, no WorkloadEndpoint). An application container's ADD whose infra container has no
// endpoint fails with code 3 and creates nothing.
func dockerJoinFlow(t *testing.T, r *winRig, name string) {
	ctx := t.Context()
	infra := r.dockerPod(name)
	res, err := r.add(infra)
	if err != nil {
		t.Fatalf("infra ADD: %v", err)
	}
	ep := r.endpoint(infra)
	if ep == nil {
		t.Fatal("no endpoint after the infra ADD")
	}
	apps := []*winPod{r.appContainer(infra), r.appContainer(infra)}
	for _, app := range apps {
		got, err := r.add(app)
		if err != nil {
			t.Fatalf("application container ADD: %v", err)
		}
		want := *res
		want.Interfaces = []*types100.Interface{
			res.Interfaces[0],
			{Name: "eth0", Mac: res.Interfaces[1].Mac, Sandbox: app.netns},
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("application container's result (-infra's, with its sandbox +got):\n%s", diff)
		}
		if attached, _ := r.hns.ContainerEndpoints(app.containerID); !slices.Equal(attached, []string{ep.ID}) {
			t.Errorf("endpoints attached to the application container: %v, want [%s]", attached, ep.ID)
		}
	}
	if eps := r.endpoints(); len(eps) != 1 {
		t.Errorf("endpoints after the application containers' ADDs: %+v, want the infra container's only", eps)
	}
	handle := "k8s-pod-network." + infra.containerID
	if al := r.podAllocations(); len(al) != 1 || len(al[handle]) != 1 {
		t.Errorf("allocations after the application containers' ADDs: %v, want one address under %s", al, handle)
	}
	if w := r.wep(infra); w == nil || w.Spec.ContainerID != infra.containerID || !slices.Equal(w.Spec.IPNetworks, []string{res.IPs[0].Address.IP.String() + "/32"}) {
		t.Errorf("WorkloadEndpoint after the application containers' ADDs: %+v, want the infra container's", w)
	}
	for _, p := range []*winPod{infra, apps[0], apps[1]} {
		if err := r.cni.CheckNetworkList(ctx, r.list, p.rt()); err != nil {
			t.Errorf("CHECK of %s: %v", p.netns, err)
		}
	}

	for _, app := range apps {
		for i := range 2 {
			if err := r.cni.DelNetworkList(ctx, r.list, app.rt()); err != nil {
				t.Fatalf("application container DEL %d: %v", i+1, err)
			}
		}
		if attached, _ := r.hns.ContainerEndpoints(app.containerID); len(attached) != 0 {
			t.Errorf("endpoints still attached to the application container after its DEL: %v", attached)
		}
		r.hns.RemoveContainer(app.containerID)
	}
	if e := r.endpoint(infra); e == nil || e.ID != ep.ID || e.HostComputeNamespace == "" {
		t.Fatalf("the infra container's endpoint after the application containers' DELs: %+v, want %s attached", e, ep.ID)
	}
	if al := r.podAllocations(); len(al[handle]) != 1 {
		t.Errorf("allocations after the application containers' DELs: %v", al)
	}
	if w := r.wep(infra); w == nil || len(w.Spec.IPNetworks) == 0 {
		t.Errorf("WorkloadEndpoint after the application containers' DELs: %+v", w)
	}
	if err := r.cni.CheckNetworkList(ctx, r.list, infra.rt()); err != nil {
		t.Errorf("infra CHECK after the application containers left: %v", err)
	}
	if err := r.cni.DelNetworkList(ctx, r.list, infra.rt()); err != nil {
		t.Fatalf("infra DEL: %v", err)
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after the infra DEL: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after the infra DEL: %v", al)
	}
	if w := r.wep(infra); w != nil && len(w.Spec.IPNetworks) > 0 {
		t.Errorf("WorkloadEndpoint after the infra DEL: %+v", w.Spec)
	}

	// The infra container is gone (the pod is being deleted) or never got its endpoint: an
	// application container's ADD fails with code 3 and creates and allocates nothing.
	late := &winPod{name: name, containerID: nextContainerID(), netns: "container:" + infra.containerID}
	_, err = r.add(late)
	if cniCode(err) != 3 || !strings.Contains(err.Error(), infra.containerID) || !strings.Contains(err.Error(), "nothing was attached") {
		t.Errorf("ADD joining a container without an endpoint: %v (code %d), want code 3 naming it", err, cniCode(err))
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after the refused ADD: %+v", eps)
	}
	if al := r.podAllocations(); len(al) != 0 {
		t.Errorf("allocations after the refused ADD: %v", al)
	}
	if w := r.wep(infra); w != nil && len(w.Spec.IPNetworks) > 0 {
		t.Errorf("WorkloadEndpoint after the refused ADD: %+v", w.Spec)
	}
}

func TestWindowsCNIDockerApplicationContainers(t *testing.T) {
	r := newWinRig(t, nil)
	r.agentUp()
	dockerJoinFlow(t, r, "joined")
}

// loopbackDSR returns the Destinations of an endpoint's OutBoundNAT policies (the loopback DSR one).
func loopbackDSR(e *hcn.Endpoint) []string {
	var out []string
	for _, p := range e.Policies {
		var s hcn.OutboundNATSetting
		if p.Type == hcn.EndpointPolicyOutBoundNAT && hcn.DecodeSettings(string(p.Type), p.Settings, &s) == nil {
			out = append(out, s.Destinations...)
		}
	}
	return out
}

// TestWindowsCNILoopbackDSR: with windows_loopback_DSR the pod's endpoint gets the loopback DSR
// OutBoundNAT (its own address as the Destination), and the agent's passes keep it beside its own
// OutBoundNAT: one call to replace the CNI's default deny, none after.
func TestWindowsCNILoopbackDSR(t *testing.T) {
	r := newWinRig(t, map[string]any{"windows_loopback_DSR": true})
	ctx := t.Context()
	r.agentUp()
	p := r.containerdPod("dsr")
	res, err := r.add(p)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	a := netip.MustParseAddr(res.IPs[0].Address.IP.String())
	if got := loopbackDSR(r.endpoint(p)); !slices.Equal(got, []string{a.String()}) {
		t.Fatalf("loopback DSR destinations after ADD: %v, want [%s]", got, a)
	}
	r.agent.OnUpdate(dpmodel.ProfileUpdate{ID: "kns.default", Profile: dpmodel.Profile{
		Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/in/0"}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, ID: "kns/out/0"}}}})
	r.agent.OnUpdate(dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "default", Name: p.name}, Endpoint: dpmodel.WorkloadEndpoint{
		Pod: p.name, InterfaceName: wcni.EndpointName(p.containerID, "tortie-vxlan"), IPv4Nets: []netip.Prefix{netip.PrefixFrom(a, 32)}, ProfileIDs: []string{"kns.default"}}})
	for i, want := range []int{1, 0} {
		r.hns.ResetCalls()
		if i > 0 {
			r.agent.QueueResync()
		}
		if err := r.agent.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		if n := r.hns.Calls()["ApplyEndpointPolicy"]; n != want {
			t.Errorf("agent pass %d made %d ApplyEndpointPolicy calls, want %d", i+1, n, want)
		}
		e := r.endpoint(p)
		if got := loopbackDSR(e); !slices.Equal(got, []string{a.String()}) {
			t.Errorf("loopback DSR destinations after agent pass %d: %v, want [%s]", i+1, got, a)
		}
		nats := 0
		for _, pol := range e.Policies {
			if pol.Type == hcn.EndpointPolicyOutBoundNAT {
				nats++
			}
		}
		if nats != 2 {
			t.Errorf("agent pass %d: %d OutBoundNAT policies, want the agent's and the loopback DSR one", i+1, nats)
		}
	}
	if err := r.cni.CheckNetworkList(ctx, r.list, p.rt()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := r.cni.DelNetworkList(ctx, r.list, p.rt()); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if eps := r.endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after DEL: %+v", eps)
	}
}
