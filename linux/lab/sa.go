//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
)

// Service accounts and endpoint profiles. A lab service account is what a Kubernetes ServiceAccount is
// to Calico: the profile ksa.<ns>.<name> whose labelsToApply are its labels prefixed pcsa. (plus
// pcsa.projectcalico.org/name), written the way tortie-controllers mirrors ServiceAccounts into etcd.
// A pod with a service account gets on its WorkloadEndpoint what Calico's CNI plugin and the Kubernetes
// datastore give it: spec.serviceAccountName, the label projectcalico.org/serviceaccount and the
// profiles [kns.<ns>, ksa.<ns>.<sa>]. `pod profiles` replaces that profile list (what a non-Kubernetes
// orchestrator may write), for rehearsing profiles.

// ParseServiceAccountID reads NS/NAME.
func ParseServiceAccountID(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", fmt.Errorf("service account %q: want NAMESPACE/NAME", s)
	}
	if err := checkDNSLabel("namespace", ns); err != nil {
		return "", "", fmt.Errorf("service account %q: %w", s, err)
	}
	if err := checkDNSLabel("service account name", name); err != nil {
		return "", "", fmt.Errorf("service account %q: %w", s, err)
	}
	return ns, name, nil
}

// CheckProfileName refuses what cannot name a Profile (a DNS-1123 subdomain, as Calico's resource names).
func CheckProfileName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("profile %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func (l *Lab) writeServiceAccountProfile(ctx context.Context, ns, name string, labels map[string]string) error {
	if ko, ok := l.obj.(kubeObjects); ok {
		return ko.putServiceAccount(ctx, ns, name, labels) // kube.go: the datastore derives the profile
	}
	p := kube.ServiceAccountProfile(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}})
	p.ResourceVersion = ""
	return l.putProfile(ctx, p)
}

// putProfile creates or replaces a profile.
func (l *Lab) putProfile(ctx context.Context, p *api.Profile) error {
	for attempt := 0; ; attempt++ {
		cur, err := l.be.Get(ctx, datastore.Key{Kind: api.KindProfile, Name: p.Name})
		switch {
		case errors.Is(err, datastore.ErrNotFound):
			_, err = l.be.Create(ctx, p)
		case err == nil:
			upd := p.DeepCopy()
			upd.ResourceVersion, upd.UID, upd.CreationTimestamp = cur.GetResourceVersion(), cur.GetUID(), cur.GetCreationTimestamp()
			_, err = l.be.Update(ctx, upd)
		}
		if err == nil {
			return nil
		}
		if attempt >= 5 || !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrAlreadyExists) {
			return fmt.Errorf("writing Profile %s: %w", p.Name, err)
		}
	}
}

// endpointIdentityOwned refuses what the Kubernetes datastore cannot express: there the Pods are the
// truth and the kube datastore derives each endpoint's profiles from its namespace and service account,
// so an endpoint's profile list cannot be set.
func (l *Lab) endpointIdentityOwned(what string) error {
	if l.s.Datastore == "kubernetes" {
		return fmt.Errorf("%s: not possible with --datastore kubernetes (that datastore derives an endpoint's profiles "+
			"from its Pod's namespace and service account, as Calico's does); use --datastore embedded or etcd", what)
	}
	return nil
}

// AddServiceAccount adds a service account with labels to a namespace.
func (l *Lab) AddServiceAccount(ctx context.Context, id string, labels map[string]string) error {
	ns, name, err := ParseServiceAccountID(id)
	if err != nil {
		return err
	}
	if _, ok := l.s.Namespaces[ns]; !ok {
		return fmt.Errorf("service account %s: no namespace %q; `tortie-lab ns add %s` first", id, ns, ns)
	}
	if _, ok := l.s.ServiceAccounts[id]; ok {
		return fmt.Errorf("service account %s exists; `sa label %s k=v...` changes its labels", id, id)
	}
	if err := l.writeServiceAccountProfile(ctx, ns, name, labels); err != nil {
		return fmt.Errorf("service account %s: %w", id, err)
	}
	l.s.ServiceAccounts[id] = labels
	return l.s.save(l.dir)
}

// LabelServiceAccount replaces a service account's labels.
func (l *Lab) LabelServiceAccount(ctx context.Context, id string, labels map[string]string) error {
	ns, name, err := ParseServiceAccountID(id)
	if err != nil {
		return err
	}
	if _, ok := l.s.ServiceAccounts[id]; !ok {
		return fmt.Errorf("no service account %q (service accounts: %s)", id, strings.Join(slices.Sorted(maps.Keys(l.s.ServiceAccounts)), " "))
	}
	if err := l.writeServiceAccountProfile(ctx, ns, name, labels); err != nil {
		return fmt.Errorf("service account %s: %w", id, err)
	}
	l.s.ServiceAccounts[id] = labels
	return l.s.save(l.dir)
}

// DeleteServiceAccount deletes a service account and its profile. As in Kubernetes, pods that run as
// it keep running; their endpoints keep naming the profile, which no longer exists.
func (l *Lab) DeleteServiceAccount(ctx context.Context, id string) error {
	ns, name, err := ParseServiceAccountID(id)
	if err != nil {
		return err
	}
	if _, ok := l.s.ServiceAccounts[id]; !ok {
		return fmt.Errorf("no service account %q", id)
	}
	prof := api.ServiceAccountProfileName(ns, name)
	if ko, ok := l.obj.(kubeObjects); ok {
		if err := ko.deleteServiceAccount(ctx, ns, name); err != nil {
			return fmt.Errorf("service account %s: %w", id, err)
		}
	} else if _, err := l.be.Delete(ctx, datastore.Key{Kind: api.KindProfile, Name: prof}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("service account %s: deleting Profile %s: %w", id, prof, err)
	}
	delete(l.s.ServiceAccounts, id)
	return l.s.save(l.dir)
}

// deleteNamespaceServiceAccounts removes a namespace's service accounts (DeleteNamespace: Kubernetes
// deletes them with their namespace).
func (l *Lab) deleteNamespaceServiceAccounts(ctx context.Context, ns string) error {
	for _, id := range slices.Sorted(maps.Keys(l.s.ServiceAccounts)) {
		if strings.HasPrefix(id, ns+"/") {
			if err := l.DeleteServiceAccount(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) checkServiceAccount(pod, ns, sa string) error {
	if sa == "" {
		return nil
	}
	if err := checkDNSLabel("--sa", sa); err != nil {
		return fmt.Errorf("pod %s: %w", pod, err)
	}
	if _, ok := l.s.ServiceAccounts[ns+"/"+sa]; !ok {
		return fmt.Errorf("pod %s: no service account %s/%s; `tortie-lab sa add %s/%s` first", pod, ns, sa, ns, sa)
	}
	return nil
}

// DefaultProfiles are the profiles a Kubernetes pod's endpoint lists: its namespace's, then its
// service account's.
func (p *Pod) DefaultProfiles() []string {
	out := []string{api.NamespaceProfileName(p.Namespace)}
	if p.ServiceAccount != "" {
		out = append(out, api.ServiceAccountProfileName(p.Namespace, p.ServiceAccount))
	}
	return out
}

// setEndpointIdentity puts the pod's service account and profiles on its WorkloadEndpoint.
func setEndpointIdentity(w *api.WorkloadEndpoint, p *Pod) {
	w.Spec.ServiceAccountName = p.ServiceAccount
	delete(w.Labels, api.LabelServiceAccount)
	if p.ServiceAccount != "" && len(validation.IsValidLabelValue(p.ServiceAccount)) == 0 {
		w.Labels[api.LabelServiceAccount] = p.ServiceAccount
	}
	w.Spec.Profiles = p.DefaultProfiles()
	if p.Profiles != nil {
		w.Spec.Profiles = slices.Clone(p.Profiles)
	}
}

// SetPodProfiles replaces the profiles on a pod's endpoint; nil puts back the pod's defaults
// (DefaultProfiles). The profiles need not exist: an endpoint naming a missing profile is denied
// everything until it does, as in Calico.
func (l *Lab) SetPodProfiles(ctx context.Context, id string, profiles []string) error {
	if err := l.endpointIdentityOwned("pod profiles " + id); err != nil {
		return err
	}
	p, err := l.pod(id)
	if err != nil {
		return err
	}
	if profiles != nil && len(profiles) == 0 {
		return fmt.Errorf("pod %s: give at least one profile (or put back the defaults)", id)
	}
	seen := map[string]bool{}
	for _, name := range profiles {
		if err := CheckProfileName(name); err != nil {
			return fmt.Errorf("pod %s: %w", id, err)
		}
		if seen[name] {
			return fmt.Errorf("pod %s: profile %q is listed twice", id, name)
		}
		seen[name] = true
	}
	old := p.Profiles
	p.Profiles = slices.Clone(profiles)
	if err := l.writeEndpoint(ctx, l.s.Nodes[p.Node-1], p); err != nil {
		p.Profiles = old
		return err
	}
	return l.s.save(l.dir)
}
