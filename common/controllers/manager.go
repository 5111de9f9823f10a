package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/health"
	"github.com/tortie-net/tortie/common/ipam"
)

// Controller names for ENABLED_CONTROLLERS (Calico's kube-controllers names).
const (
	ControllerNode             = "node"
	ControllerIPAM             = "ipam"
	ControllerNamespace        = "namespace"
	ControllerServiceAccount   = "serviceaccount"
	ControllerWorkloadEndpoint = "workloadendpoint"
	ControllerPolicy           = "policy"
)

// LeaseName is the leader-election Lease (in the controllers' namespace).
const LeaseName = "tortie-controllers"

// Options configure a Manager.
type Options struct {
	Kube    kubernetes.Interface
	Backend datastore.Backend
	// NodeIsDatastoreNode: Kubernetes datastore (the tortie Node is the Kubernetes Node).
	NodeIsDatastoreNode bool
	// Enabled controllers; nil means node and ipam.
	Enabled []string
	// Namespace and Identity of the leader-election Lease holder.
	Namespace, Identity string
	// Lease timings; zero values are client-go's usual 15s/10s/2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	GCGrace, GCInterval                       time.Duration
	// Now is the clock of the garbage collector's grace period (tests); nil means time.Now.
	Now     func() time.Time
	IPAM    []ipam.Option
	Health  *health.Aggregator
	Metrics *Metrics
	Log     *slog.Logger
}

// Manager runs the enabled controllers while it holds the leader Lease.
type Manager struct {
	o Options

	mu      sync.Mutex
	leading bool
}

// New checks the options.
func New(o Options) (*Manager, error) {
	if o.Kube == nil || o.Backend == nil {
		return nil, errors.New("controllers: a Kubernetes client and a datastore are required")
	}
	if o.Enabled == nil {
		o.Enabled = []string{ControllerNode, ControllerIPAM}
	}
	for _, c := range o.Enabled {
		switch c {
		case ControllerNode, ControllerIPAM:
		case ControllerNamespace, ControllerServiceAccount, ControllerWorkloadEndpoint, ControllerPolicy:
			if o.NodeIsDatastoreNode {
				return nil, fmt.Errorf("ENABLED_CONTROLLERS: %q mirrors Kubernetes into etcd and only applies to DATASTORE_TYPE=etcdv3", c)
			}
		default:
			return nil, fmt.Errorf("ENABLED_CONTROLLERS: unknown controller %q; known: node, ipam, namespace, serviceaccount, workloadendpoint, policy", c)
		}
	}
	if o.Namespace == "" || o.Identity == "" {
		return nil, errors.New("controllers: the Lease namespace and holder identity are required (POD_NAMESPACE, POD_NAME)")
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Health == nil {
		o.Health = health.New(nil)
	}
	return &Manager{o: o}, nil
}

// Leading reports whether this manager holds the Lease.
func (m *Manager) Leading() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leading
}

// Run campaigns for the Lease until ctx ends, running the controllers whenever it leads. Losing the
// Lease stops them; the manager then campaigns again.
func (m *Manager) Run(ctx context.Context) error {
	ready := m.o.Health.Register("controllers", 0, true)
	live := m.o.Health.Register("leader-election", 3*max(m.o.LeaseDuration, 10*time.Second), false)
	ready.SetReady(true, "campaigning or leading")
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: m.o.Namespace, Name: LeaseName},
		Client:     m.o.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.o.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   m.o.LeaseDuration,
			RenewDeadline:   m.o.RenewDeadline,
			RetryPeriod:     m.o.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					m.setLeading(true)
					m.o.Log.Info("leading", "identity", m.o.Identity)
					if err := m.lead(lctx, live.Beat); err != nil && lctx.Err() == nil {
						m.o.Log.Error("controllers stopped", "error", err.Error())
					}
				},
				OnStoppedLeading: func() {
					m.setLeading(false)
					m.o.Log.Info("not leading", "identity", m.o.Identity)
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		stop := make(chan struct{})
		go func() { // heartbeat while campaigning; leading beats from the controllers
			t := time.NewTicker(m.o.RetryPeriod)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if !m.Leading() {
						live.Beat()
					}
				}
			}
		}()
		le.Run(ctx)
		close(stop)
	}
	return nil
}

func (m *Manager) setLeading(v bool) {
	m.mu.Lock()
	m.leading = v
	m.mu.Unlock()
	m.o.Metrics.leader(v)
}

// lead runs the enabled controllers until ctx ends.
func (m *Manager) lead(ctx context.Context, beat func()) error {
	opts := append([]ipam.Option{ipam.WithLogger(m.o.Log)}, m.o.IPAM...)
	if m.o.Now != nil {
		opts = append(opts, ipam.WithClock(m.o.Now))
	}
	ic := ipam.New(m.o.Backend, opts...)
	g, gctx := errgroup.WithContext(ctx)
	if slices.Contains(m.o.Enabled, ControllerNode) {
		nc := &NodeController{IPAM: ic, Kube: m.o.Kube, Backend: m.o.Backend, NodeIsDatastoreNode: m.o.NodeIsDatastoreNode,
			Log: m.o.Log.With("controller", "node"), Metrics: m.o.Metrics}
		g.Go(func() error { return nc.Run(gctx, beat) })
	}
	if slices.Contains(m.o.Enabled, ControllerIPAM) {
		gc := &IPAMGC{IPAM: ic, Kube: m.o.Kube, Backend: m.o.Backend, NodeIsDatastoreNode: m.o.NodeIsDatastoreNode,
			Grace: m.o.GCGrace, Now: m.o.Now, Log: m.o.Log.With("controller", "ipam"), Metrics: m.o.Metrics}
		g.Go(func() error { return gc.Run(gctx, m.o.GCInterval, beat) })
	}
	var mirrored []string
	for _, c := range m.o.Enabled {
		switch c {
		case ControllerNamespace, ControllerServiceAccount, ControllerWorkloadEndpoint, ControllerPolicy:
			mirrored = append(mirrored, c)
		}
	}
	if len(mirrored) > 0 {
		mi := &Mirror{Kube: m.o.Kube, Backend: m.o.Backend, Kinds: mirrored, Log: m.o.Log.With("controller", "mirror")}
		g.Go(func() error { return mi.Run(gctx, beat) })
	}
	return g.Wait()
}
