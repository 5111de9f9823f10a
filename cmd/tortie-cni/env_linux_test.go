//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cnitest"
)

func TestMain(m *testing.M) {
	code := testenv.Run(m)
	cnitest.Cleanup()
	winPluginCleanup()
	os.Exit(code)
}

const network = "k8s-pod-network"

// Pools every test cluster has. In the Kubernetes datastore pools are cluster-wide and shared by the
// tests of this binary; each test uses its own node name, so it gets its own blocks.
var testPools = []struct{ name, cidr string }{
	{"tortie-cni-a", "10.64.0.0/16"},
	{"tortie-cni-b", "10.65.0.0/16"},
	{"tortie-cni-v6", "fd00:64::/64"},
}

// cluster is one datastore seen by the tests: etcd (a key prefix of its own in the shared embedded
// etcd) or Kubernetes (the shared kube-apiserver, a namespace of its own).
type cluster struct {
	kind      string // "etcd" or "kube"
	be        datastore.Backend
	ipam      *ipam.Client
	node      string // node name the plugin runs as
	namespace string // pods' namespace
	cs        *kubernetes.Clientset
	keys      map[string]any // datastore keys for the plugin's configuration
	lockFile  string
	logFile   string
	kubeHost  string // host:port of the kube-apiserver
}

// datastoreAddrs are the host:port pairs the plugin connects to.
func (c *cluster) datastoreAddrs(t testing.TB) []string {
	t.Helper()
	if c.kind == "kube" {
		return []string{c.kubeHost}
	}
	var out []string
	for _, e := range strings.Split(c.keys["etcd_endpoints"].(string), ",") {
		u, err := url.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u.Host)
	}
	return out
}

var kubeOnce sync.Map // *testenv.KubeAPI → error of EnsureCRDs and pools

var nameRE = regexp.MustCompile(`[^a-z0-9]+`)

// testID is a short DNS-safe name for t.
func testID(t testing.TB) string {
	s := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(s) > 40 {
		s = s[len(s)-40:]
		s = strings.Trim(s, "-")
	}
	return s
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newCluster(t *testing.T, kind string) *cluster {
	t.Helper()
	return newClusterOn(t, kind, nil)
}

// newClusterOn is newCluster with a given kube-apiserver (nil: the shared one).
func newClusterOn(t *testing.T, kind string, k *testenv.KubeAPI) *cluster {
	t.Helper()
	testenv.RequireRoot(t)
	id := testID(t)
	dir := t.TempDir()
	c := &cluster{kind: kind, node: "node-" + id, namespace: "ns-" + id, lockFile: filepath.Join(dir, "ipam.lock"), logFile: filepath.Join(dir, "cni.log")}
	t.Cleanup(func() {
		if data, err := os.ReadFile(c.logFile); err == nil && t.Failed() {
			if len(data) > 8000 {
				data = data[len(data)-8000:]
			}
			t.Logf("plugin log (tail):\n%s", data)
		}
	})
	ctx := ctxFor(t)
	switch kind {
	case "etcd":
		eps := testenv.Etcd(t)
		prefix := "/" + id
		be, err := etcd.New(etcd.Config{Endpoints: eps, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		c.be = be
		c.keys = map[string]any{"datastore_type": "etcdv3", "etcd_endpoints": strings.Join(eps, ","), "etcd_key_prefix": prefix}
		for _, p := range testPools {
			createPool(t, be, p.name, p.cidr)
		}
	case "kube":
		if k == nil {
			k = testenv.KubeAPIServer(t)
		}
		be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		c.be = be
		v, _ := kubeOnce.LoadOrStore(k, &sync.Once{})
		v.(*sync.Once).Do(func() {
			if err := be.EnsureCRDs(ctx, os.DirFS(filepath.Join(cnitest.ModuleRoot(t), "installer", "kubernetes", "crds"))); err != nil {
				t.Fatalf("EnsureCRDs: %v", err)
			}
			for _, p := range testPools {
				createPool(t, be, p.name, p.cidr)
			}
		})
		c.cs, err = kubernetes.NewForConfig(k.RestConfig())
		if err != nil {
			t.Fatal(err)
		}
		c.keys = map[string]any{"datastore_type": "kubernetes", "kubernetes": map[string]any{"kubeconfig": k.Kubeconfig()}}
		u, err := url.Parse(k.Host())
		if err != nil {
			t.Fatal(err)
		}
		c.kubeHost = u.Host
		c.createNamespace(t, nil)
	default:
		t.Fatalf("unknown datastore %q", kind)
	}
	c.ipam = ipam.New(c.be)
	return c
}

func createPool(t testing.TB, be datastore.Backend, name, cidr string) {
	t.Helper()
	p := api.NewIPPool()
	p.Name = name
	p.Spec.CIDR = cidr
	p.Spec.NATOutgoing = true
	api.SetDefaults(p)
	if _, err := be.Create(ctxFor(t), p); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
		t.Fatalf("creating IPPool %s: %v", name, err)
	}
}

// createNamespace creates the test's namespace (and its default service account, which no
// controller creates here).
func (c *cluster) createNamespace(t testing.TB, annotations map[string]string) {
	t.Helper()
	ctx := ctxFor(t)
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.namespace, Annotations: annotations,
		Labels: map[string]string{"team": "cni"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", c.namespace, err)
	}
	_, err = c.cs.CoreV1().ServiceAccounts(c.namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating service account: %v", err)
	}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), c.namespace, metav1.DeleteOptions{})
	})
}

// conf returns a conflist with the tortie plugin for this cluster; extra keys are merged into the
// plugin's configuration (a nil value deletes a key).
func (c *cluster) conf(t testing.TB, extra map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	return cnitest.ConfList(t, c.confJSON(t, "1.1.0", extra))
}

func (c *cluster) confJSON(t testing.TB, version string, extra map[string]any) string {
	t.Helper()
	plugin := map[string]any{
		"type":                   "tortie",
		"nodename":               c.node,
		"nodename_file_optional": true,
		"ipam_lock_file":         c.lockFile,
		"mtu":                    1450,
		"log_level":              "debug",
		"log_file_path":          c.logFile,
		"ipam":                   map[string]any{"type": "tortie-ipam", "ipv4_pools": []string{"tortie-cni-a", "tortie-cni-b"}},
		"dns":                    map[string]any{"nameservers": []string{"10.96.0.10"}, "search": []string{"svc.cluster.local"}},
	}
	for k, v := range c.keys {
		plugin[k] = v
	}
	for k, v := range extra {
		if v == nil {
			delete(plugin, k)
		} else {
			plugin[k] = v
		}
	}
	b, err := json.Marshal(map[string]any{"cniVersion": version, "name": network, "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pod creates a sandbox for a pod of the test's namespace; in the Kubernetes datastore the Pod object
// too (scheduled to the test's node), with the given annotations.
func (c *cluster) pod(t testing.TB, name string, annotations map[string]string) *cnitest.Pod {
	t.Helper()
	p := cnitest.NewPod(t, c.namespace, name)
	if c.kind == "kube" {
		obj := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace, Annotations: annotations, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: c.node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		}
		var created *corev1.Pod
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			// A freshly started API server sometimes times out the first writes while it settles.
			created, err = c.cs.CoreV1().Pods(c.namespace).Create(ctxFor(t), obj, metav1.CreateOptions{})
			if err == nil || !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
				break
			}
		}
		if err != nil {
			t.Fatalf("creating pod %s/%s: %v", c.namespace, name, err)
		}
		p.UID = string(created.UID)
	}
	return p
}

// allocations returns this node's allocations: handle → addresses, read from every IPAM block.
func (c *cluster) allocations(t testing.TB) map[string][]netip.Addr {
	t.Helper()
	objs, _, err := c.be.List(ctxFor(t), datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		t.Fatalf("listing IPAM blocks: %v", err)
	}
	out := map[string][]netip.Addr{}
	for _, o := range objs {
		b := o.(*api.IPAMBlock)
		cidr := netip.MustParsePrefix(b.Spec.CIDR)
		for ord, idx := range b.Spec.Allocations {
			if idx == nil {
				continue
			}
			at := b.Spec.Attributes[*idx]
			if at.Secondary[ipam.AttributeNode] != c.node || at.HandleID == nil {
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

// handles lists this node's IPAMHandle objects for the network.
func (c *cluster) handles(t testing.TB) []string {
	t.Helper()
	objs, _, err := c.be.List(ctxFor(t), datastore.ListOptions{Kind: api.KindIPAMHandle})
	if err != nil {
		t.Fatalf("listing IPAM handles: %v", err)
	}
	allocs := c.allocations(t)
	var out []string
	for _, o := range objs {
		h := o.(*api.IPAMHandle)
		if _, mine := allocs[h.Spec.HandleID]; mine || strings.HasPrefix(h.Spec.HandleID, network+"."+fmt.Sprintf("%08x", os.Getpid())) {
			out = append(out, h.Spec.HandleID)
		}
	}
	slices.Sort(out)
	return out
}

func (c *cluster) wepName(pod string) string {
	return api.WorkloadEndpointName(c.node, "k8s", pod, "eth0")
}

// endpoint reads the pod's WorkloadEndpoint (nil when missing).
func (c *cluster) endpoint(t testing.TB, pod string) *api.WorkloadEndpoint {
	t.Helper()
	o, err := c.be.Get(ctxFor(t), datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: c.namespace, Name: c.wepName(pod)})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading WorkloadEndpoint of %s: %v", pod, err)
	}
	return o.(*api.WorkloadEndpoint)
}

// annotations reads the pod's annotations (Kubernetes datastore).
func (c *cluster) annotations(t testing.TB, pod string) map[string]string {
	t.Helper()
	p, err := c.cs.CoreV1().Pods(c.namespace).Get(ctxFor(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading pod %s: %v", pod, err)
	}
	return p.Annotations
}

// cniCode returns the CNI error code in err (0 when there is none).
func cniCode(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// onlyBaseLinks fails unless the node has no pod interfaces.
func onlyBaseLinks(t testing.TB, node *cnitest.Node) {
	t.Helper()
	links := node.Links(t)
	slices.Sort(links)
	if want := []string{"lo", "uplink0", "uplink1"}; !slices.Equal(links, want) {
		t.Errorf("node links %v, want only %v", links, want)
	}
}

var (
	metaGet    = metav1.GetOptions{}
	metaUpdate = metav1.UpdateOptions{}
)

func etcdBackend(endpoints []string, prefix string) (datastore.Backend, error) {
	return etcd.New(etcd.Config{Endpoints: endpoints, Prefix: prefix})
}

func newIPAM(be datastore.Backend) *ipam.Client { return ipam.New(be) }
