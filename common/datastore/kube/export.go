package kube

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/tortie-net/tortie/common/api"
)

// The conversions the Kubernetes datastore synthesises on the fly are also what tortie-controllers
// writes into etcd (Calico's etcd-mode kube-controllers do the same), so both datastores present the
// same objects. These wrappers export them.

// NamespaceProfile returns the profile kns.<namespace> for ns.
func NamespaceProfile(ns *corev1.Namespace) *api.Profile { return namespaceToProfile(ns) }

// ServiceAccountProfile returns the profile ksa.<namespace>.<name> for sa.
func ServiceAccountProfile(sa *corev1.ServiceAccount) *api.Profile {
	return serviceAccountToProfile(sa)
}

// PodEndpointLabels returns the labels the workload endpoint of pod carries (the pod's labels plus
// projectcalico.org/namespace, orchestrator and serviceaccount); ok is false for a pod that is no
// endpoint (unscheduled, host network).
func PodEndpointLabels(pod *corev1.Pod) (labels map[string]string, ok bool, err error) {
	wep, err := podToWorkloadEndpoint(pod)
	if err != nil || wep == nil {
		return nil, false, err
	}
	return wep.Labels, true, nil
}
