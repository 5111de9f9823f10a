package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
)

// TestEtcdDatastore runs startup against a real etcd: a dual-stack VXLAN node, twice (the second run
// writes nothing), then a second node with the same address (refused), then VXLAN switched off.
func TestEtcdDatastore(t *testing.T) {
	if testing.Short() {
		t.Skip("real etcd")
	}
	endpoints := testenv.Etcd(t)
	be, err := etcd.New(etcd.Config{Endpoints: endpoints, Prefix: fmt.Sprintf("/node-startup-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })

	env := map[string]string{
		"NODENAME":              "etcd-node-1",
		"IP6":                   "autodetect",
		"AS":                    "64600",
		"CALICO_IPV4POOL_CIDR":  "10.60.0.0/16",
		"CALICO_IPV4POOL_VXLAN": "Always",
		"CALICO_IPV6POOL_CIDR":  "fd00:60::/48",
		"CALICO_IPV6POOL_VXLAN": "CrossSubnet",
		"CLUSTER_TYPE":          "k8s",
	}
	o := testOptions(t, be, env)
	o.IPv6Supported = func() bool { return true }
	o.Interfaces = hostIfaces("10.0.0.5/24", "fd00:1::5/64", "fe80::1/64")
	res := run(t, o)

	n := getNode(t, be, "etcd-node-1")
	if n.Spec.BGP == nil || n.Spec.BGP.IPv4Address != "10.0.0.5/24" || n.Spec.BGP.IPv6Address != "fd00:1::5/64" ||
		n.Spec.BGP.ASNumber == nil || *n.Spec.BGP.ASNumber != 64600 {
		t.Errorf("Node spec.bgp = %+v", n.Spec.BGP)
	}
	v4, v6 := n.Spec.IPv4VXLANTunnelAddr, n.Spec.IPv6VXLANTunnelAddr
	if !netip.MustParsePrefix("10.60.0.0/16").Contains(addrOf(v4)) || !netip.MustParsePrefix("fd00:60::/48").Contains(addrOf(v6)) {
		t.Errorf("VXLAN addresses %q %q", v4, v6)
	}
	if !validMAC(n.Spec.VXLANTunnelMACAddr) || !validMAC(n.Spec.VXLANTunnelMACAddrV6) || n.Spec.VXLANTunnelMACAddr == n.Spec.VXLANTunnelMACAddrV6 {
		t.Errorf("VXLAN MACs %q %q", n.Spec.VXLANTunnelMACAddr, n.Spec.VXLANTunnelMACAddrV6)
	}
	ic := ipam.New(be)
	for addr, want := range map[string]string{v4: "vxlan-tunnel-addr-etcd-node-1", v6: "vxlan-v6-tunnel-addr-etcd-node-1"} {
		alloc, err := ic.GetAssignmentAttributes(t.Context(), addrOf(addr))
		if err != nil || alloc.Handle != want || alloc.Attrs[ipam.AttributeNode] != "etcd-node-1" {
			t.Errorf("allocation of %s = %+v, %v; want handle %s", addr, alloc, err, want)
		}
	}
	got := map[string]string{}
	for _, p := range listPools(t, be) {
		got[p.Name] = p.Spec.CIDR + " " + string(p.Spec.VXLANMode)
	}
	if diff := cmp.Diff(map[string]string{"default-ipv4-ippool": "10.60.0.0/16 Always", "default-ipv6-ippool": "fd00:60::/48 CrossSubnet"}, got); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
	getObj[*api.FelixConfiguration](t, be, api.KindFelixConfiguration, "node.etcd-node-1")
	if ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default"); ci.Spec.ClusterType != "k8s" {
		t.Errorf("clusterType %q", ci.Spec.ClusterType)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1430" {
		t.Errorf("MTU file %s, want 1430 (IPv6 VXLAN overhead 70)", got)
	}
	if len(res.Changes) == 0 {
		t.Error("first run reported no changes")
	}

	before := revisions(t, be)
	o.Rand = seeded(9)
	if res := run(t, o); res.Changed() {
		t.Errorf("second run changed %q", res.Changes)
	}
	if diff := cmp.Diff(before, revisions(t, be)); diff != "" {
		t.Errorf("second run wrote to etcd (-before +after):\n%s", diff)
	}

	// Another node with the same address is refused.
	o2 := testOptions(t, be, map[string]string{"NODENAME": "etcd-node-2", "IP": "10.0.0.5/24"})
	if _, err := Run(t.Context(), o2); err == nil || !strings.Contains(err.Error(), `already used by node "etcd-node-1"`) {
		t.Errorf("second node with the same address: %v", err)
	}

	// VXLAN off in both pools: the addresses are released and cleared; the MACs stay.
	for _, name := range []string{DefaultIPv4PoolName, DefaultIPv6PoolName} {
		updatePool(t, be, name, func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapNever })
	}
	run(t, o)
	n2 := getNode(t, be, "etcd-node-1")
	if n2.Spec.IPv4VXLANTunnelAddr != "" || n2.Spec.IPv6VXLANTunnelAddr != "" || n2.Spec.VXLANTunnelMACAddr != n.Spec.VXLANTunnelMACAddr {
		t.Errorf("after VXLAN off: %+v", n2.Spec)
	}
	for _, h := range []string{"vxlan-tunnel-addr-etcd-node-1", "vxlan-v6-tunnel-addr-etcd-node-1"} {
		if ips, err := ic.IPsByHandle(t.Context(), h); err == nil && len(ips) > 0 {
			t.Errorf("handle %s still holds %v", h, ips)
		}
	}
	if got := readFile(t, o.Files.MTUFile); got != "1500" {
		t.Errorf("MTU file %s, want 1500 without encapsulation", got)
	}
}

// TestKubernetesDatastore runs startup against a real kube-apiserver with the CRDs installed: the
// Kubernetes Node appears while startup waits for it, the default pool comes from a real kubeadm-config
// ConfigMap, the address from the Node's InternalIP; the tortie fields land in the Node's annotations;
// a second run changes nothing.
func TestKubernetesDatastore(t *testing.T) {
	if testing.Short() {
		t.Skip("real kube-apiserver")
	}
	k := testenv.KubeAPIServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if err := be.EnsureCRDs(ctx, os.DirFS(crdDir(t))); err != nil {
		t.Fatalf("EnsureCRDs: %v", err)
	}
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, kubeadmConfigMap("10.70.0.0/16,fd00:70::/56"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ConfigMaps("kube-system").Delete(context.Background(), "kubeadm-config", metav1.DeleteOptions{})
	})

	const nodeName = "kdd-node-1"
	logger, waiting := newSignalLogger(t, "waiting for the Kubernetes Node to be registered")
	created := make(chan error, 1)
	go func() {
		select { // the kubelet registers the Node while startup waits for it
		case <-waiting:
		case <-ctx.Done():
			created <- ctx.Err()
			return
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/os": "linux"},
				Annotations: map[string]string{"example.com/keep": "me"}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}}},
		}, metav1.CreateOptions{})
		created <- err
	}()

	env := map[string]string{
		"NODENAME":                nodeName,
		"IP_AUTODETECTION_METHOD": "kubernetes-internal-ip",
		"CALICO_IPV4POOL_IPIP":    "Always",
		"AS":                      "64700",
	}
	o := testOptions(t, be, env)
	o.Kube = cs
	o.Logger = logger
	o.NodeWaitInterval = 100 * time.Millisecond
	o.Interfaces = autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{
		iface("eth1", 1500, "172.16.0.9/24"), iface("eth0", 1500, "10.0.0.5/24"),
	}}
	res, err := Run(ctx, o)
	if cerr := <-created; cerr != nil {
		t.Fatalf("creating the Kubernetes Node: %v", cerr)
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.DatastoreType != DatastoreKubernetes {
		t.Errorf("datastore type %q", res.DatastoreType)
	}

	kn, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := kn.Annotations
	tunnel := a[api.NodeAnnotationIPv4IPIPTunnelAddr]
	if a[api.NodeAnnotationIPv4Address] != "10.0.0.5/24" || a[api.NodeAnnotationASNumber] != "64700" || a["example.com/keep"] != "me" ||
		!netip.MustParsePrefix("10.70.0.0/16").Contains(addrOf(tunnel)) {
		t.Errorf("Node annotations = %v", a)
	}
	pool := getObj[*api.IPPool](t, be, api.KindIPPool, DefaultIPv4PoolName)
	if pool.Spec.CIDR != "10.70.0.0/16" || pool.Spec.IPIPMode != api.EncapAlways {
		t.Errorf("default pool %+v, want 10.70.0.0/16 from kubeadm-config with IPIP", pool.Spec)
	}
	if ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default"); ci.Spec.ClusterType != "kubeadm,kdd" ||
		ci.Spec.DatastoreReady == nil || !*ci.Spec.DatastoreReady {
		t.Errorf("ClusterInformation %+v", ci.Spec)
	}
	for _, name := range []string{"default"} {
		getObj[*api.FelixConfiguration](t, be, api.KindFelixConfiguration, name)
	}
	if _, err := be.Get(ctx, datastore.Key{Kind: api.KindFelixConfiguration, Name: "node." + nodeName}); err == nil {
		t.Error("per-node FelixConfiguration written in the Kubernetes datastore")
	}
	alloc, err := ipam.New(be).GetAssignmentAttributes(ctx, addrOf(tunnel))
	if err != nil || alloc.Handle != "ipip-tunnel-addr-"+nodeName || alloc.Attrs[ipam.AttributeType] != ipam.AttributeTypeIPIP {
		t.Errorf("tunnel allocation %+v, %v", alloc, err)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1480" {
		t.Errorf("MTU file %s, want 1480", got)
	}

	before := revisions(t, be)
	nodeRV := kn.ResourceVersion
	o.Rand = seeded(5)
	res2, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if res2.Changed() {
		t.Errorf("second run changed %q", res2.Changes)
	}
	if diff := cmp.Diff(before, revisions(t, be)); diff != "" {
		t.Errorf("second run wrote (-before +after):\n%s", diff)
	}
	if kn2, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err != nil || kn2.ResourceVersion != nodeRV {
		t.Errorf("the Kubernetes Node changed on the second run (rv %s → %s, %v)", nodeRV, kn2.ResourceVersion, err)
	}
}

// crdDir finds installer/kubernetes/crds from the module root.
func crdDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(data), "module github.com/tortie-net/tortie\n") {
			return filepath.Join(dir, "installer", "kubernetes", "crds")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found")
		}
		dir = parent
	}
}
