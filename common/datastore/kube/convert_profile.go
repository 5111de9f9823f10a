package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// Namespace and ServiceAccount → Profile (Calico: libcalico-go/lib/backend/k8s/conversion/conversion.go,
// NamespaceToProfile and ServiceAccountToProfile).

// namespaceToProfile returns the profile kns.<ns>: its labels, prefixed pcns., are applied to the
// namespace's endpoints, and it allows all traffic, so that an endpoint no policy selects is open.
func namespaceToProfile(ns *corev1.Namespace) *api.Profile {
	labels := make(map[string]string, len(ns.Labels)+1)
	for k, v := range ns.Labels {
		labels[api.LabelPrefixNamespace+k] = v
	}
	labels[api.LabelPrefixNamespace+api.LabelName] = ns.Name
	p := api.NewProfile()
	p.Name = api.ProfilePrefixNamespace + ns.Name
	p.UID = ns.UID
	p.CreationTimestamp = ns.CreationTimestamp
	p.ResourceVersion = ns.ResourceVersion
	p.Spec = api.ProfileSpec{
		Ingress:       []api.Rule{{Action: api.Allow}},
		Egress:        []api.Rule{{Action: api.Allow}},
		LabelsToApply: labels,
	}
	return p
}

// serviceAccountToProfile returns the profile ksa.<ns>.<sa>: only labels (prefixed pcsa.), no rules.
func serviceAccountToProfile(sa *corev1.ServiceAccount) *api.Profile {
	labels := make(map[string]string, len(sa.Labels)+1)
	for k, v := range sa.Labels {
		labels[api.LabelPrefixServiceAccount+k] = v
	}
	labels[api.LabelPrefixServiceAccount+api.LabelName] = sa.Name
	p := api.NewProfile()
	p.Name = api.ProfilePrefixServiceAccount + sa.Namespace + "." + sa.Name
	p.UID = sa.UID
	p.CreationTimestamp = sa.CreationTimestamp
	p.ResourceVersion = sa.ResourceVersion
	p.Spec = api.ProfileSpec{LabelsToApply: labels}
	return p
}

// defaultAllowProfile is Calico's built-in projectcalico-default-allow profile, which host endpoints
// (and non-Kubernetes workloads) can list to allow all traffic. It is fixed, so its revision is too.
func defaultAllowProfile() *api.Profile {
	p := api.NewProfile()
	p.Name = api.DefaultAllowProfile
	p.ResourceVersion = "1"
	p.CreationTimestamp = metav1.Unix(0, 0)
	p.Spec = api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow}},
		Egress:  []api.Rule{{Action: api.Allow}},
	}
	return p
}

// parseProfileName says which Kubernetes object a profile name stands for: ("ns", namespace, "") for
// kns.<ns>, ("sa", namespace, sa) for ksa.<ns>.<sa> (namespace names never contain "."), or ok=false.
func parseProfileName(name string) (source, namespace, sa string, ok bool) {
	switch {
	case strings.HasPrefix(name, api.ProfilePrefixNamespace):
		ns := strings.TrimPrefix(name, api.ProfilePrefixNamespace)
		return "ns", ns, "", ns != ""
	case strings.HasPrefix(name, api.ProfilePrefixServiceAccount):
		ns, sa, found := strings.Cut(strings.TrimPrefix(name, api.ProfilePrefixServiceAccount), ".")
		return "sa", ns, sa, found && ns != "" && sa != ""
	}
	return "", "", "", false
}
