package kube

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
	"github.com/tortie-net/tortie/common/testenv"
)

// syncedKinds covers every way a kind is stored: custom resources (IPPool), custom resources merged
// with Kubernetes objects (NetworkPolicy), synthesised from two resources (Profile) and from one
// (WorkloadEndpoint, Node).
var syncedKinds = []datastore.ListOptions{
	{Kind: api.KindIPPool},
	{Kind: api.KindNetworkPolicy},
	{Kind: api.KindProfile},
	{Kind: api.KindWorkloadEndpoint},
	{Kind: api.KindNode},
}

// world makes changes of every synced kind through the backend and client-go.
type world struct {
	t  *testing.T
	b  *Backend
	cs kubernetes.Interface
	ns string
}

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// change makes round i's changes: new objects of every kind, updates of the previous round's, and
// deletions of the round before that.
func (w *world) change(i int) {
	w.t.Helper()
	ctx := ctxFor(w.t)
	// IPPool: create, update the previous one, delete the one before.
	p := api.NewIPPool()
	p.Name = fmt.Sprintf("pool-%d", i)
	p.Spec.CIDR = fmt.Sprintf("10.%d.0.0/16", 100+i)
	_, err := w.b.Create(ctx, p)
	w.must(err)
	if i > 0 {
		prev, err := w.b.Get(ctx, datastore.Key{Kind: api.KindIPPool, Name: fmt.Sprintf("pool-%d", i-1)})
		w.must(err)
		prev.SetLabels(map[string]string{"round": fmt.Sprint(i)})
		_, err = w.b.Update(ctx, prev)
		w.must(err)
	}
	if i > 1 {
		_, err = w.b.Delete(ctx, datastore.Key{Kind: api.KindIPPool, Name: fmt.Sprintf("pool-%d", i-2)}, "")
		w.must(err)
	}
	// NetworkPolicy: a custom resource and a Kubernetes policy.
	np := api.NewNetworkPolicy()
	np.Namespace, np.Name = w.ns, fmt.Sprintf("np-%d", i)
	np.Spec.Selector = fmt.Sprintf("round == '%d'", i)
	_, err = w.b.Create(ctx, np)
	w.must(err)
	_, err = w.cs.NetworkingV1().NetworkPolicies(w.ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("knp-%d", i), Namespace: w.ns},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"round": fmt.Sprint(i)}}},
	}, metav1.CreateOptions{})
	w.must(err)
	if i > 0 {
		w.must(w.cs.NetworkingV1().NetworkPolicies(w.ns).Delete(ctx, fmt.Sprintf("knp-%d", i-1), metav1.DeleteOptions{}))
	}
	// Profile: namespace labels and a service account.
	n, err := w.cs.CoreV1().Namespaces().Get(ctx, w.ns, metav1.GetOptions{})
	w.must(err)
	n.Labels["round"] = fmt.Sprint(i)
	_, err = w.cs.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{})
	w.must(err)
	_, err = w.cs.CoreV1().ServiceAccounts(w.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa-%d", i)}}, metav1.CreateOptions{})
	w.must(err)
	// WorkloadEndpoint: a new pod, the CNI writing the previous one's address, and a pod deleted.
	createPod(w.t, w.cs, testPod(w.ns, fmt.Sprintf("pod-%d", i), "node-1"))
	if i > 0 {
		key := datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: w.ns,
			Name: api.WorkloadEndpointName("node-1", "k8s", fmt.Sprintf("pod-%d", i-1), "eth0")}
		wep, err := w.b.Get(ctx, key)
		w.must(err)
		wep.(*api.WorkloadEndpoint).Spec.IPNetworks = []string{fmt.Sprintf("10.65.0.%d/32", i)}
		_, err = w.b.Update(ctx, wep)
		w.must(err)
	}
	if i > 1 {
		w.must(w.cs.CoreV1().Pods(w.ns).Delete(ctx, fmt.Sprintf("pod-%d", i-2), metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	}
	// Node: annotations written through the backend.
	node, err := w.b.Get(ctx, datastore.Key{Kind: api.KindNode, Name: "node-1"})
	w.must(err)
	node.(*api.Node).Spec.IPv4VXLANTunnelAddr = fmt.Sprintf("10.65.1.%d", i)
	_, err = w.b.Update(ctx, node)
	w.must(err)
}

// listAll reads every synced kind fresh from the datastore.
func listAll(ctx context.Context, b datastore.Backend) ([]api.Resource, error) {
	var all []api.Resource
	for _, k := range syncedKinds {
		objs, _, err := b.List(ctx, k)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// converge waits until the receiver is in sync and holds exactly what a fresh List returns.
func converge(t *testing.T, c *syncertest.Cache, b datastore.Backend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kinds := make([]string, len(syncedKinds))
	for i, k := range syncedKinds {
		kinds[i] = k.Kind
	}
	var diff string
	for {
		if c.Status() == datastore.InSync {
			want, err := listAll(ctx, b)
			if err == nil {
				if diff = c.Diff(want, kinds...); diff == "" {
					return
				}
			} else {
				diff = err.Error()
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("receiver did not converge (status %s):\n%s", c.Status(), diff)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func noProblems(t *testing.T, c *syncertest.Cache) {
	t.Helper()
	for _, p := range c.Problems() {
		t.Errorf("stream problem: %s", p)
	}
}

// TestSyncerRestarts runs the generic syncer over the Kubernetes datastore through an API server
// restart and an etcd restart: the receiver must converge to a fresh List each time, with nothing
// lost, duplicated, or deleted and re-added.
func TestSyncerRestarts(t *testing.T) {
	k := testenv.NewKubeAPIServer(t) // private: this test stops and starts it
	b := newBackend(t, k)
	cs := clientset(t, k)
	const ns = "sync"
	ensureNamespace(t, cs, ns, map[string]string{"round": "none"})
	createNode(t, cs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}})
	w := &world{t: t, b: b, cs: cs, ns: ns}
	w.change(0)

	c := syncertest.New()
	s := datastore.NewSyncer(b, c, syncedKinds, datastore.WithBackoff(50*time.Millisecond, time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("syncer Run: %v", err)
		}
	})

	converge(t, c, b)
	if st := c.Statuses(); len(st) != 3 || st[0] != datastore.WaitForDatastore || st[1] != datastore.ResyncInProgress || st[2] != datastore.InSync {
		t.Errorf("statuses %v, want WaitForDatastore, ResyncInProgress, InSync", st)
	}
	w.change(1)
	converge(t, c, b)
	noProblems(t, c)

	t.Run("APIServerRestart", func(t *testing.T) {
		// A plain watch ends with an error (not a compaction) when the API server goes away.
		rawW, err := b.Watch(ctxFor(t), datastore.ListOptions{Kind: api.KindNetworkPolicy}, "")
		if err != nil {
			t.Fatal(err)
		}
		defer rawW.Stop()

		mark := c.Mark()
		if err := k.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-rawW.Events():
			if !ok || ev.Type != datastore.Error || ev.Err == nil || errors.Is(ev.Err, datastore.ErrCompacted) {
				t.Errorf("watch after the API server stopped: %v %v (open %v), want an Error event", ev.Type, ev.Err, ok)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("watch: no error event after the API server stopped")
		}
		if err := b.Ping(ctxFor(t)); err == nil {
			t.Errorf("Ping succeeded with the API server stopped")
		}
		if err := c.WaitFor(ctxFor(t), func(c *syncertest.Cache) bool { return c.Status() == datastore.ResyncInProgress }); err != nil {
			t.Fatalf("the syncer did not notice the API server stopping: %v", err)
		}
		time.Sleep(time.Second) // a few failed relists
		if err := k.StartAPIServer(); err != nil {
			t.Fatal(err)
		}
		converge(t, c, b)
		if ups := c.UpdatesSince(mark); len(ups) != 0 {
			t.Errorf("nothing changed, yet the restart produced %d updates: %v", len(ups), ups)
		}
		w.change(2)
		converge(t, c, b)
		noProblems(t, c)
	})

	t.Run("EtcdRestart", func(t *testing.T) {
		mark := c.Mark()
		if err := k.StopEtcd(); err != nil {
			t.Fatal(err)
		}
		pingCtx, cancelPing := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancelPing()
		for b.Ping(pingCtx) == nil && pingCtx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
		if pingCtx.Err() != nil {
			t.Errorf("Ping kept succeeding with etcd stopped")
		}
		time.Sleep(time.Second)
		if err := k.StartEtcd(); err != nil {
			t.Fatal(err)
		}
		if err := k.WaitReady(); err != nil {
			t.Fatal(err)
		}
		converge(t, c, b)
		if ups := c.UpdatesSince(mark); len(ups) != 0 {
			t.Errorf("nothing changed, yet the etcd restart produced %d updates: %v", len(ups), ups)
		}
		w.change(3)
		converge(t, c, b)
		noProblems(t, c)
	})
}
