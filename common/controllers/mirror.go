package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
)

// Mirror copies Kubernetes state into an etcd datastore, as Calico's etcd-mode kube-controllers do:
// namespaces → profiles kns.<ns>, service accounts → profiles ksa.<ns>.<sa>, NetworkPolicies →
// knp.default.<name> policies, and pod labels → the labels of the pods' workload endpoints (the CNI
// plugin creates the endpoints). Each kind is reconciled as a whole: what Kubernetes has is written,
// what tortie owns (by name prefix) and Kubernetes lacks is deleted, endpoints whose pod changed labels
// are updated. A reconcile runs on every change (coalesced) and every resync period.
type Mirror struct {
	Kube    kubernetes.Interface
	Backend datastore.Backend
	// Kinds to mirror: ControllerNamespace, ControllerServiceAccount, ControllerPolicy,
	// ControllerWorkloadEndpoint.
	Kinds  []string
	Resync time.Duration
	Log    *slog.Logger
}

func (m *Mirror) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Run watches the Kubernetes objects and reconciles until ctx ends; beat is called after every pass.
func (m *Mirror) Run(ctx context.Context, beat func()) error {
	f := informers.NewSharedInformerFactory(m.Kube, 0)
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { trigger(kick) },
		UpdateFunc: func(any, any) { trigger(kick) },
		DeleteFunc: func(any) { trigger(kick) },
	}
	nsL := f.Core().V1().Namespaces().Lister()
	saL := f.Core().V1().ServiceAccounts().Lister()
	npL := f.Networking().V1().NetworkPolicies().Lister()
	podL := f.Core().V1().Pods().Lister()
	var synced []cache.InformerSynced
	for _, k := range m.Kinds {
		var inf cache.SharedIndexInformer
		switch k {
		case ControllerNamespace:
			inf = f.Core().V1().Namespaces().Informer()
		case ControllerServiceAccount:
			inf = f.Core().V1().ServiceAccounts().Informer()
		case ControllerPolicy:
			inf = f.Networking().V1().NetworkPolicies().Informer()
		case ControllerWorkloadEndpoint:
			inf = f.Core().V1().Pods().Informer()
		default:
			return fmt.Errorf("mirror: unknown kind %q", k)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
		synced = append(synced, inf.HasSynced)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	resync := m.Resync
	if resync <= 0 {
		resync = 5 * time.Minute
	}
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		if err := m.reconcile(ctx, nsL.List, saL.List, npL.List, podL.List); err != nil && ctx.Err() == nil {
			m.log().Error("mirroring Kubernetes into the datastore; retrying", "error", err.Error())
		}
		if beat != nil {
			beat()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-t.C:
		}
	}
}

func trigger(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (m *Mirror) reconcile(ctx context.Context,
	nsList func(labels.Selector) ([]*corev1.Namespace, error),
	saList func(labels.Selector) ([]*corev1.ServiceAccount, error),
	npList func(labels.Selector) ([]*networkingv1.NetworkPolicy, error),
	podList func(labels.Selector) ([]*corev1.Pod, error),
) error {
	var errs []error
	everything := labels.Everything()
	if slices.Contains(m.Kinds, ControllerNamespace) || slices.Contains(m.Kinds, ControllerServiceAccount) {
		want := map[string]api.Resource{}
		var prefixes []string
		if slices.Contains(m.Kinds, ControllerNamespace) {
			prefixes = append(prefixes, api.ProfilePrefixNamespace)
			nss, err := nsList(everything)
			if err != nil {
				return err
			}
			for _, ns := range nss {
				p := kube.NamespaceProfile(ns)
				want[p.Name] = p
			}
		}
		if slices.Contains(m.Kinds, ControllerServiceAccount) {
			prefixes = append(prefixes, api.ProfilePrefixServiceAccount)
			sas, err := saList(everything)
			if err != nil {
				return err
			}
			for _, sa := range sas {
				p := kube.ServiceAccountProfile(sa)
				want[p.Name] = p
			}
		}
		errs = append(errs, m.sync(ctx, api.KindProfile, prefixes, want))
	}
	if slices.Contains(m.Kinds, ControllerPolicy) {
		nps, err := npList(everything)
		if err != nil {
			return err
		}
		want := map[string]api.Resource{}
		for _, np := range nps {
			p, warnings, err := api.ConvertK8sNetworkPolicy(np)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, w := range warnings {
				m.log().Warn("Kubernetes NetworkPolicy rule dropped", "policy", np.Namespace+"/"+np.Name, "reason", w)
			}
			want[p.Namespace+"/"+p.Name] = p
		}
		errs = append(errs, m.sync(ctx, api.KindNetworkPolicy, []string{api.K8sNetworkPolicyNamePrefix}, want))
	}
	if slices.Contains(m.Kinds, ControllerWorkloadEndpoint) {
		pods, err := podList(everything)
		if err != nil {
			return err
		}
		errs = append(errs, m.syncEndpointLabels(ctx, pods))
	}
	return errors.Join(errs...)
}

// mirrored strips what the datastore sets, so that desired and stored objects compare by content.
func content(r api.Resource) (map[string]string, any) {
	v := reflect.ValueOf(r).Elem().FieldByName("Spec")
	var spec any
	if v.IsValid() {
		spec = v.Interface()
	}
	return r.GetLabels(), spec
}

// sync makes the datastore's objects of kind whose names start with one of prefixes equal want (keyed
// by namespace/name for namespaced kinds, name otherwise).
func (m *Mirror) sync(ctx context.Context, kind string, prefixes []string, want map[string]api.Resource) error {
	objs, _, err := m.Backend.List(ctx, datastore.ListOptions{Kind: kind})
	if err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	owned := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	key := func(r api.Resource) string {
		if r.GetNamespace() != "" {
			return r.GetNamespace() + "/" + r.GetName()
		}
		return r.GetName()
	}
	var errs []error
	have := map[string]api.Resource{}
	for _, r := range objs {
		if !owned(r.GetName()) {
			continue
		}
		have[key(r)] = r
		if _, keep := want[key(r)]; !keep {
			_, err := m.Backend.Delete(ctx, datastore.Key{Kind: kind, Namespace: r.GetNamespace(), Name: r.GetName()}, r.GetResourceVersion())
			if err != nil && !errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
				errs = append(errs, fmt.Errorf("deleting %s %s: %w", kind, key(r), err))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		w := want[k]
		// The Kubernetes object's metadata is not the datastore's.
		w.SetResourceVersion("")
		w.SetUID("")
		cur, exists := have[k]
		switch {
		case !exists:
			if _, err := m.Backend.Create(ctx, w); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
				errs = append(errs, fmt.Errorf("creating %s %s: %w", kind, k, err))
			}
		default:
			wl, ws := content(w)
			cl, cs := content(cur)
			if maps.Equal(wl, cl) && reflect.DeepEqual(ws, cs) {
				continue
			}
			w.SetResourceVersion(cur.GetResourceVersion())
			if _, err := m.Backend.Update(ctx, w); err != nil && !errors.Is(err, datastore.ErrConflict) {
				errs = append(errs, fmt.Errorf("updating %s %s: %w", kind, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// syncEndpointLabels gives every Kubernetes workload endpoint its pod's current labels.
func (m *Mirror) syncEndpointLabels(ctx context.Context, pods []*corev1.Pod) error {
	byPod := map[string]*corev1.Pod{}
	for _, p := range pods {
		byPod[p.Namespace+"/"+p.Name] = p
	}
	objs, _, err := m.Backend.List(ctx, datastore.ListOptions{Kind: api.KindWorkloadEndpoint})
	if err != nil {
		return fmt.Errorf("listing workload endpoints: %w", err)
	}
	var errs []error
	for _, o := range objs {
		wep, ok := o.(*api.WorkloadEndpoint)
		if !ok || wep.Spec.Orchestrator != api.OrchestratorKubernetes || wep.Spec.Pod == "" {
			continue
		}
		pod := byPod[wep.Namespace+"/"+wep.Spec.Pod]
		if pod == nil {
			continue // the CNI plugin's DEL removes it
		}
		want, ok, err := kube.PodEndpointLabels(pod)
		if err != nil || !ok || maps.Equal(want, wep.Labels) {
			continue
		}
		upd := wep.DeepCopy()
		upd.Labels = want
		if _, err := m.Backend.Update(ctx, upd); err != nil && !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			errs = append(errs, fmt.Errorf("updating the labels of workload endpoint %s/%s: %w", wep.Namespace, wep.Name, err))
		}
	}
	return errors.Join(errs...)
}
