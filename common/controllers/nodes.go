package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// NodeController cleans up after a Kubernetes Node is deleted: the tortie Node (etcd datastore only;
// in the Kubernetes datastore the tortie Node is the Kubernetes Node), the node's block affinities, its
// tunnel addresses and the addresses of the pods that ran on it. Nothing waits for a grace period: a
// deleted node's pods cannot be running. Allocations of pods that still live (on another node) are
// kept. At start it also cleans up every node the datastore knows but Kubernetes does not (deletions
// missed while no controller ran).
type NodeController struct {
	IPAM    *ipam.Client
	Kube    kubernetes.Interface
	Backend datastore.Backend
	// NodeIsDatastoreNode: the datastore's Node is the Kubernetes Node (Kubernetes datastore).
	NodeIsDatastoreNode bool
	Log                 *slog.Logger
	Metrics             *Metrics
}

func (c *NodeController) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Run watches Kubernetes Nodes until ctx ends; beat is called as events are handled (liveness).
func (c *NodeController) Run(ctx context.Context, beat func()) error {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "tortie-node-cleanup"})
	defer q.ShutDown()
	f := informers.NewSharedInformerFactory(c.Kube, 0)
	inf := f.Core().V1().Nodes().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				q.Add(n.Name)
			}
		},
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	// Nodes deleted while nobody watched.
	stale, err := c.staleNodes(ctx, inf.GetStore())
	if err != nil {
		c.log().Error("listing nodes to clean up", "error", err.Error())
	}
	for _, n := range stale {
		q.Add(n)
	}
	go wait.UntilWithContext(ctx, func(context.Context) {
		if beat != nil {
			beat()
		}
	}, 10*time.Second)
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		name, quit := q.Get()
		if quit {
			return nil
		}
		if _, exists, _ := inf.GetStore().GetByKey(name); exists {
			q.Forget(name)
			q.Done(name) // re-created since
			continue
		}
		err := c.Cleanup(ctx, name)
		if err != nil && ctx.Err() == nil {
			c.log().Error("cleaning up after a deleted node; retrying", "node", name, "error", err.Error())
			q.AddRateLimited(name)
		} else {
			q.Forget(name)
		}
		q.Done(name)
	}
}

// staleNodes lists nodes the datastore or IPAM knows (Nodes, block affinities) that Kubernetes does not.
func (c *NodeController) staleNodes(ctx context.Context, store cache.Store) ([]string, error) {
	known := map[string]bool{}
	objs, _, err := c.Backend.List(ctx, datastore.ListOptions{Kind: api.KindNode})
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if n, ok := o.(*api.Node); ok && orchestratedByKubernetes(n) {
			known[n.Name] = true
		}
	}
	affs, _, err := c.Backend.List(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil {
		return nil, err
	}
	for _, o := range affs {
		if a, ok := o.(*api.BlockAffinity); ok && a.Spec.Node != "" && (a.Spec.Type == "" || a.Spec.Type == api.AffinityTypeHost) {
			known[a.Spec.Node] = true
		}
	}
	var out []string
	for n := range known {
		if _, exists, _ := store.GetByKey(n); !exists {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Cleanup removes what node left behind. It is idempotent. It refuses when Kubernetes has the node.
func (c *NodeController) Cleanup(ctx context.Context, node string) error {
	if _, err := c.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
		return nil // re-created: nothing to clean up
	}
	if !c.NodeIsDatastoreNode {
		_, err := c.Backend.Delete(ctx, datastore.Key{Kind: api.KindNode, Name: node}, "")
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("deleting tortie node %q: %w", node, err)
		}
	}
	w, err := observe(ctx, c.Kube, c.Backend, c.NodeIsDatastoreNode)
	if err != nil {
		return fmt.Errorf("cleaning up node %q: %w", node, err)
	}
	delete(w.live.Nodes, node)
	rep, err := c.IPAM.Check(ctx, w.live)
	if err != nil {
		return fmt.Errorf("cleaning up node %q: %w", node, err)
	}
	// Only what belongs to this node: its allocations (by attribute or by the block's affinity) whose
	// pod does not live elsewhere, and its affinities.
	due := ipam.Report{CheckedAt: rep.CheckedAt}
	for _, a := range rep.Leaked {
		if (a.Attrs[ipam.AttributeNode] == node || a.Affinity == api.AffinityTypeHost+":"+node) && !w.owned(a) {
			due.Leaked = append(due.Leaked, a)
		}
	}
	for _, nb := range rep.OrphanNodes {
		if nb.Node == node {
			due.OrphanNodes = append(due.OrphanNodes, nb)
		}
	}
	for _, sa := range rep.StaleAffinities {
		if sa.Node == node {
			due.StaleAffinities = append(due.StaleAffinities, sa)
		}
	}
	if due.Clean() {
		return nil
	}
	sum, err := c.IPAM.ReleaseFromReport(ctx, due)
	c.Metrics.released(sum)
	c.log().Info("cleaned up after deleted node", "node", node, "addresses_released", sum.Released, "affinities_released", sum.AffinitiesReleased)
	if err != nil {
		return fmt.Errorf("cleaning up node %q: %w", node, err)
	}
	// Blocks the node owned may now be empty and unaffine: they go at the garbage collector's next
	// rounds (EmptyBlocks, after the grace period), as any empty block does.
	return nil
}
