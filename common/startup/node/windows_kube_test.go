package node

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
)

// TestKubernetesDatastoreWindowsVTEP: in the Kubernetes datastore (a real kube-apiserver) a Windows node's
// start-up writes the block's gateway as its VXLAN tunnel address annotation and no MAC; the published
// router MAC lands in the VXLANTunnelMACAddr annotation, the Node's other annotations stay, and publishing
// the same VTEP again writes nothing.
func TestKubernetesDatastoreWindowsVTEP(t *testing.T) {
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
	const nodeName = "kdd-win-1"
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/os": "windows"},
			Annotations: map[string]string{"example.com/keep": "me"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.9"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}) })
	pool := createPool(t, be, "win-vxlan", "10.93.0.0/16", func(s *api.IPPoolSpec) {
		s.VXLANMode, s.NodeSelector = api.EncapAlways, "kubernetes.io/os == 'windows'"
	})
	t.Cleanup(func() {
		_, _ = be.Delete(context.Background(), datastore.Key{Kind: api.KindIPPool, Name: pool.Name}, "")
	})

	o := windowsOptions(t, be, map[string]string{"NODENAME": nodeName, "IP": "10.0.0.9", "NO_DEFAULT_POOLS": "true"})
	o.Kube = cs
	o.Interfaces = autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{iface("eth0", 1500, "10.0.0.9/24")}}
	if _, err := Run(ctx, o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The cluster's other tests leave an IPIP pool that selects every node: a Windows node gets no
	// IPIP tunnel address from it.
	block := affineBlock(t, be, nodeName, netip.MustParsePrefix("10.93.0.0/16"))
	kn, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := kn.Annotations
	if a[api.NodeAnnotationIPv4VXLANTunnelAddr] != block.Addr().Next().String() || a[api.NodeAnnotationVXLANTunnelMACAddr] != "" {
		t.Fatalf("annotations after start-up %v: want the VXLAN address %s (gateway of %s) and no MAC", a, block.Addr().Next(), block)
	}
	if ipip, ok := a[api.NodeAnnotationIPv4IPIPTunnelAddr]; ok {
		t.Errorf("annotation %s=%q: a Windows node has no IPIP tunnel address", api.NodeAnnotationIPv4IPIPTunnelAddr, ipip)
	}

	for i, want := range []bool{true, false} {
		wrote, err := PublishWindowsVTEP(ctx, be, nodeName, block.Addr().Next(), "00-15-5D-AA-BB-CC", nil)
		if err != nil || wrote != want {
			t.Fatalf("publish #%d = %t, %v; want %t", i+1, wrote, err, want)
		}
	}
	kn, err = cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a = kn.Annotations
	if a[api.NodeAnnotationVXLANTunnelMACAddr] != "00:15:5d:aa:bb:cc" || a[api.NodeAnnotationIPv4VXLANTunnelAddr] != block.Addr().Next().String() ||
		a["example.com/keep"] != "me" || a[api.NodeAnnotationIPv4Address] != "10.0.0.9/24" {
		t.Errorf("annotations after publishing %v", a)
	}
}
