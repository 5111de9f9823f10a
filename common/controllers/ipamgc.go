package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// DefaultGracePeriod is how long an allocation must stay without an owner before it is released
// (Calico's kube-controllers use the same 15 minutes).
const DefaultGracePeriod = 15 * time.Minute

// IPAMGC releases what IPAM holds for pods and nodes that no longer exist.
//
// A round observes the cluster, runs ipam.Check and keeps its report as the baseline. Once a grace
// period has passed since the baseline, the next round releases only what both reports found (the same
// allocation at the same sequence number, the same object at the same revision: ipam.Report.Persisting),
// after asking the API server once more, right before the release, whether each allocation's pod
// exists. Every release is guarded by the allocation's sequence number, so an address handed out again
// in between is never touched.
//
// The baseline lives in memory only: a new leader starts with none, so a leader change delays a release
// by one grace period and can never make one happen early; what a stopped leader had found is found
// again. An IPAMGC is not safe for concurrent use; Run it in one goroutine.
type IPAMGC struct {
	IPAM    *ipam.Client
	Kube    kubernetes.Interface
	Backend datastore.Backend
	// NodeIsDatastoreNode: the datastore's Node is the Kubernetes Node (Kubernetes datastore).
	NodeIsDatastoreNode bool
	Grace               time.Duration
	Now                 func() time.Time
	Log                 *slog.Logger
	Metrics             *Metrics

	baseline   *ipam.Report
	baselineAt time.Time
}

// GCResult says what a round did.
type GCResult struct {
	// Baseline is true when the round only recorded what it found.
	Baseline bool
	// Candidates counts the leaked allocations the round would release (after the re-check).
	Candidates int
	Released   ipam.ReleaseSummary
}

func (g *IPAMGC) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

func (g *IPAMGC) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

func (g *IPAMGC) grace() time.Duration {
	if g.Grace <= 0 {
		return DefaultGracePeriod
	}
	return g.Grace
}

// RunOnce runs one round.
func (g *IPAMGC) RunOnce(ctx context.Context) (GCResult, error) {
	w, err := observe(ctx, g.Kube, g.Backend, g.NodeIsDatastoreNode)
	if err != nil {
		return GCResult{}, fmt.Errorf("IPAM garbage collection: %w", err)
	}
	rep, err := g.IPAM.Check(ctx, w.live, ipam.WithLeakGracePeriod(g.grace()))
	if err != nil {
		return GCResult{}, fmt.Errorf("IPAM garbage collection: %w", err)
	}
	n := len(rep.Leaked)
	rep.Leaked = slices.DeleteFunc(rep.Leaked, w.owned)
	rep.Summary.Leaked = len(rep.Leaked)
	rep.Summary.InUse += n - len(rep.Leaked) // pods that have their address but not yet in their status
	g.Metrics.observe(rep)
	now := g.now()
	if g.baseline == nil || now.Sub(g.baselineAt) < g.grace() {
		if g.baseline == nil {
			g.baseline, g.baselineAt = &rep, now
		}
		return GCResult{Baseline: true}, nil
	}
	due := rep.Persisting(*g.baseline)
	g.baseline, g.baselineAt = &rep, now
	// Right before releasing: ask for each pod once more (a pod created since the listing, a watch
	// cache that was behind).
	var keep []ipam.Allocation
	for _, a := range due.Leaked {
		ns, pod := a.Attrs[ipam.AttributeNamespace], a.Attrs[ipam.AttributePod]
		if ns == "" || pod == "" {
			keep = append(keep, a)
			continue
		}
		p, err := g.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			keep = append(keep, a)
		case err != nil:
			return GCResult{}, fmt.Errorf("IPAM garbage collection: re-checking pod %s/%s before releasing %s: %w", ns, pod, a.IP, err)
		case !podAlive(p, w.live.Nodes):
			keep = append(keep, a)
		}
	}
	due.Leaked = keep
	due.Summary.Leaked = len(keep)
	res := GCResult{Candidates: len(keep)}
	if due.Clean() {
		return res, nil
	}
	sum, err := g.IPAM.ReleaseFromReport(ctx, due)
	res.Released = sum
	g.Metrics.released(sum)
	for _, a := range keep {
		g.log().Info("released leaked IPAM allocation", "ip", a.IP.String(), "handle", a.Handle,
			"pod", a.Attrs[ipam.AttributeNamespace]+"/"+a.Attrs[ipam.AttributePod], "node", a.Attrs[ipam.AttributeNode])
	}
	if err != nil {
		return res, fmt.Errorf("IPAM garbage collection: releasing: %w", err)
	}
	return res, nil
}

// Run runs a round every interval until ctx ends; beat is called after every round (liveness).
func (g *IPAMGC) Run(ctx context.Context, interval time.Duration, beat func()) error {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := g.RunOnce(ctx); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			g.log().Error("IPAM garbage collection round failed; retrying at the next", "error", err.Error())
		}
		if beat != nil {
			beat()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
