package controllers

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/health"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is a settable clock for the grace period.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	cs  kubernetes.Interface
	be  *kube.Backend
	clk *clock
	ic  *ipam.Client
}

// setup connects to the shared kube-apiserver with tortie's CRDs and creates a pool with cidr.
func setup(t *testing.T, cidr string) env {
	t.Helper()
	k := testenv.KubeAPIServer(t)
	be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if err := be.EnsureCRDs(t.Context(), os.DirFS("../../installer/kubernetes/crds")); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	pool := api.NewIPPool()
	pool.Name = "pool-" + strings.NewReplacer(".", "-", "/", "-").Replace(cidr)
	pool.Spec.CIDR = cidr
	pool.Spec.BlockSize = 28
	pool.Spec.NodeSelector = "all()"
	if _, err := be.Create(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return env{cs: cs, be: be, clk: clk, ic: ipam.New(be, ipam.WithClock(clk.Now))}
}

func (e env) node(t *testing.T, name string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.cs.CoreV1().Nodes().Create(t.Context(), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e env) namespace(t *testing.T, name string) {
	t.Helper()
	if _, err := e.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager here creates the default service account pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "default"}}
	if _, err := e.cs.CoreV1().ServiceAccounts(name).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e env) pod(t *testing.T, ns, name, node string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
	if _, err := e.cs.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allocate assigns one address from pool to a pod (as the CNI plugin does) or, with pod "", a VXLAN
// tunnel address of the node.
func (e env) allocate(t *testing.T, pool, node, ns, pod string) netip.Addr {
	t.Helper()
	args := ipam.AutoAssignArgs{Num4: 1, Hostname: node, IPv4Pools: []string{pool},
		Attrs: map[string]string{ipam.AttributeNode: node, ipam.AttributeTimestamp: ipam.Timestamp(e.clk.Now())}}
	if pod == "" {
		args.HandleID = "vxlan-tunnel-addr-" + node
		args.Attrs[ipam.AttributeType] = ipam.AttributeTypeVXLAN
		args.IntendedUse = api.IPPoolAllowedUseTunnel
	} else {
		args.HandleID = "k8s-pod-network." + ns + "-" + pod
		args.Attrs[ipam.AttributeNamespace], args.Attrs[ipam.AttributePod] = ns, pod
	}
	res, err := e.ic.AutoAssign(t.Context(), args)
	if err != nil {
		t.Fatal(err)
	}
	return res.Addrs()[0]
}

func (e env) allocated(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	_, err := e.ic.GetAssignmentAttributes(t.Context(), ip)
	if errors.Is(err, ipam.ErrNotAllocated) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func (e env) affinities(t *testing.T, node string) int {
	t.Helper()
	objs, _, err := e.be.List(t.Context(), datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if a := o.(*api.BlockAffinity); a.Spec.Node == node {
			n++
		}
	}
	return n
}

// now deletes a pod at once: without a kubelet, a graceful deletion would never finish.
var now = metav1.DeleteOptions{GracePeriodSeconds: new(int64)}

// eventually polls cond until it holds; the deadline is generous and is not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: did not happen", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A Node with pod allocations, a tunnel address and blocks is deleted: the node controller (driven by
// its informer) releases all of it and leaves the other node's pod alone.
func TestNodeDeletedReleasesEverything(t *testing.T) {
	e := setup(t, "10.211.0.0/16")
	const pool = "10.211.0.0/16"
	e.node(t, "nc-gone")
	e.node(t, "nc-stays")
	e.namespace(t, "nc")
	e.pod(t, "nc", "on-gone-1", "nc-gone")
	e.pod(t, "nc", "on-stays", "nc-stays")
	gone := []netip.Addr{e.allocate(t, pool, "nc-gone", "nc", "on-gone-1"), e.allocate(t, pool, "nc-gone", "nc", "on-gone-2"), e.allocate(t, pool, "nc-gone", "", "")}
	stays := e.allocate(t, pool, "nc-stays", "nc", "on-stays")
	if e.affinities(t, "nc-gone") == 0 {
		t.Fatal("setup: no affinity for nc-gone")
	}

	m := NewMetrics()
	nc := &NodeController{IPAM: e.ic, Kube: e.cs, Backend: e.be, NodeIsDatastoreNode: true, Metrics: m}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- nc.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	// The pod on the deleted node is still in the API (no pod garbage collector here): it counts as gone.
	if err := e.cs.CoreV1().Nodes().Delete(t.Context(), "nc-gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted node's addresses and affinities released", func() bool {
		for _, ip := range gone {
			if e.allocated(t, ip) {
				return false
			}
		}
		return e.affinities(t, "nc-gone") == 0
	})
	if !e.allocated(t, stays) || e.affinities(t, "nc-stays") == 0 {
		t.Error("the other node's allocation or affinity was released")
	}
	if got := testutil.ToFloat64(m.releasedAddrs); got != 3 {
		t.Errorf("released addresses metric = %v, want 3", got)
	}
	// Idempotent.
	if err := nc.Cleanup(t.Context(), "nc-gone"); err != nil {
		t.Fatal(err)
	}
}

// A pod is deleted but its address was never released: the collector releases it only once a grace
// period has passed since it first saw the leak, never before, and keeps a live pod's address and a
// just-allocated address whose pod has no IP in its status yet.
func TestLeakReclaimedAfterGraceNeverBefore(t *testing.T) {
	e := setup(t, "10.212.0.0/16")
	const pool = "10.212.0.0/16"
	e.node(t, "gc-node")
	e.namespace(t, "gc")
	e.pod(t, "gc", "live", "gc-node")
	e.pod(t, "gc", "doomed", "gc-node")
	live := e.allocate(t, pool, "gc-node", "gc", "live")
	leak := e.allocate(t, pool, "gc-node", "gc", "doomed")
	if err := e.cs.CoreV1().Pods("gc").Delete(t.Context(), "doomed", now); err != nil {
		t.Fatal(err)
	}
	const grace = 10 * time.Minute
	m := NewMetrics()
	gc := &IPAMGC{IPAM: e.ic, Kube: e.cs, Backend: e.be, NodeIsDatastoreNode: true, Grace: grace, Now: e.clk.Now, Metrics: m}

	steps := []struct {
		advance      time.Duration
		wantReleased bool
	}{
		{0, false},                   // the allocation is brand new: younger than the grace period
		{grace + time.Minute, false}, // old enough: first seen leaked (the baseline)
		{grace - time.Second, false}, // one second short of a grace period since the baseline
		{time.Second, true},          // a grace period since it was first seen
	}
	for i, s := range steps {
		e.clk.Add(s.advance)
		res, err := gc.RunOnce(t.Context())
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if res.Baseline && s.wantReleased {
			t.Errorf("round %d only recorded a baseline", i)
		}
		if got := !e.allocated(t, leak); got != s.wantReleased {
			t.Fatalf("round %d (+%s): released = %v, want %v", i, s.advance, got, s.wantReleased)
		}
		if !e.allocated(t, live) {
			t.Fatalf("round %d: the live pod's address was released", i)
		}
	}
	if testutil.ToFloat64(m.allocationsInUse) < 1 || testutil.ToFloat64(m.blocks) < 1 {
		t.Errorf("metrics: in use %v, blocks %v", testutil.ToFloat64(m.allocationsInUse), testutil.ToFloat64(m.blocks))
	}

	// A pod re-created under the same name before the release keeps its address: the re-check asks
	// the API server right before releasing.
	e.pod(t, "gc", "phoenix", "gc-node")
	ph := e.allocate(t, pool, "gc-node", "gc", "phoenix")
	if err := e.cs.CoreV1().Pods("gc").Delete(t.Context(), "phoenix", now); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(grace + time.Minute)
	if _, err := gc.RunOnce(t.Context()); err != nil { // baseline sees it leaked
		t.Fatal(err)
	}
	e.pod(t, "gc", "phoenix", "gc-node")
	e.clk.Add(grace)
	if _, err := gc.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !e.allocated(t, ph) {
		t.Error("the address of a pod that came back was released")
	}
}

// Two managers share the Lease. The first leads, sees the leak and is stopped mid-way (before the grace
// period ends); the second takes over and, a grace period after its own first sighting, releases it.
// Nothing is released early and nothing live is lost.
func TestLeaderChangeMidGCLosesNothing(t *testing.T) {
	e := setup(t, "10.213.0.0/16")
	const pool = "10.213.0.0/16"
	e.node(t, "le-node")
	e.namespace(t, "le")
	e.pod(t, "le", "live", "le-node")
	live := e.allocate(t, pool, "le-node", "le", "live")
	leaks := []netip.Addr{e.allocate(t, pool, "le-node", "le", "gone-1"), e.allocate(t, pool, "le-node", "le", "gone-2")}
	const grace = 10 * time.Minute
	e.clk.Add(grace + time.Minute) // the allocations are old

	start := func(id string) (*Manager, *health.Aggregator, context.CancelFunc, chan error) {
		h := health.New(nil)
		m, err := New(Options{Kube: e.cs, Backend: e.be, NodeIsDatastoreNode: true, Namespace: "default", Identity: id,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
			GCGrace: grace, GCInterval: 100 * time.Millisecond, Now: e.clk.Now, Health: h, Metrics: NewMetrics(),
			Enabled: []string{ControllerIPAM}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		return m, h, cancel, done
	}
	a, ha, stopA, doneA := start("replica-a")
	eventually(t, "replica-a leads", a.Leading)
	b, _, stopB, doneB := start("replica-b")
	defer func() { stopB(); <-doneB }()
	if !ha.Ready().OK || !ha.Live().OK {
		t.Errorf("replica-a health: ready %+v live %+v", ha.Ready(), ha.Live())
	}
	// Let a run rounds (its baseline holds the leaks), then stop it before a grace period has passed.
	time.Sleep(500 * time.Millisecond) //nolint:forbidigo // lets the leader run rounds; no assertion depends on it
	for _, ip := range leaks {
		if !e.allocated(t, ip) {
			t.Fatal("released before the grace period")
		}
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	eventually(t, "replica-b takes over", b.Leading)
	time.Sleep(300 * time.Millisecond) //nolint:forbidigo // b records its own baseline
	for _, ip := range leaks {
		if !e.allocated(t, ip) {
			t.Fatal("the new leader released before its own grace period")
		}
	}
	e.clk.Add(grace)
	eventually(t, "replica-b releases the leaks", func() bool {
		for _, ip := range leaks {
			if e.allocated(t, ip) {
				return false
			}
		}
		return true
	})
	if !e.allocated(t, live) {
		t.Error("the live pod's address was released")
	}
	lease, err := e.cs.CoordinationV1().Leases("default").Get(t.Context(), LeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "replica-b" {
		t.Errorf("lease holder: %v %v", lease, err)
	}
}

// With the etcd datastore, namespaces, service accounts, NetworkPolicies and pod labels are mirrored
// into etcd; what Kubernetes no longer has is removed.
func TestMirrorIntoEtcd(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	be, err := etcd.New(etcd.Config{Endpoints: testenv.Etcd(t), Prefix: "/mirror-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	e := env{cs: cs}
	e.namespace(t, "mirror")
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "mirror", Name: "deny-all"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := cs.NetworkingV1().NetworkPolicies("mirror").Create(t.Context(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A stale mirrored policy (its Kubernetes policy was deleted while nobody watched) and a user's own.
	for _, name := range []string{"knp.default.gone", "users-own"} {
		p := api.NewNetworkPolicy()
		p.Namespace, p.Name = "mirror", name
		p.Spec.Selector = "all()"
		if _, err := be.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	// The CNI plugin's endpoint for pod "web", with outdated labels.
	e.pod(t, "mirror", "web", "node1")
	wep := api.NewWorkloadEndpoint()
	wep.Namespace, wep.Name = "mirror", "node1-k8s-web-eth0"
	wep.Labels = map[string]string{"stale": "yes"}
	wep.Spec = api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: "node1", Pod: "web", Endpoint: "eth0", InterfaceName: "cali0123456789a"}
	if _, err := be.Create(t.Context(), wep); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("mirror").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"app": "web"}
	if _, err := cs.CoreV1().Pods("mirror").Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	m := &Mirror{Kube: cs, Backend: be, Kinds: []string{ControllerNamespace, ControllerServiceAccount, ControllerPolicy, ControllerWorkloadEndpoint}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	get := func(kind, ns, name string) api.Resource {
		o, err := be.Get(t.Context(), datastore.Key{Kind: kind, Namespace: ns, Name: name})
		if errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	eventually(t, "profiles, policy and labels mirrored", func() bool {
		nsp, _ := get(api.KindProfile, "", "kns.mirror").(*api.Profile)
		sap := get(api.KindProfile, "", "ksa.mirror.default")
		pol := get(api.KindNetworkPolicy, "mirror", "knp.default.deny-all")
		w, _ := get(api.KindWorkloadEndpoint, "mirror", "node1-k8s-web-eth0").(*api.WorkloadEndpoint)
		return nsp != nil && nsp.Spec.LabelsToApply["pcns.projectcalico.org/name"] == "mirror" && sap != nil && pol != nil &&
			get(api.KindNetworkPolicy, "mirror", "knp.default.gone") == nil && w != nil && w.Labels["app"] == "web" && w.Labels["stale"] == ""
	})
	if get(api.KindNetworkPolicy, "mirror", "users-own") == nil {
		t.Error("a policy tortie does not own was deleted")
	}
	// Deleting the Kubernetes policy removes the mirror.
	if err := cs.NetworkingV1().NetworkPolicies("mirror").Delete(t.Context(), "deny-all", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mirrored policy removed", func() bool { return get(api.KindNetworkPolicy, "mirror", "knp.default.deny-all") == nil })
}
