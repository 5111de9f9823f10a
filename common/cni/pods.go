package cni

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

var (
	gvrPods       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// KubePods reads pods and namespaces from the Kubernetes API (client-go's dynamic client, which the
// kube datastore already links, so the plugin binary carries no typed clientset).
type KubePods struct {
	dyn dynamic.Interface
}

// NewKubePods returns a PodSource over the API server rc points at.
func NewKubePods(rc *rest.Config) (*KubePods, error) {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", rc.Host, err)
	}
	return &KubePods{dyn: dyn}, nil
}

// Pod reads the pod and its namespace concurrently.
func (k *KubePods) Pod(ctx context.Context, namespace, name string) (*PodInfo, error) {
	type got struct {
		u   *unstructured.Unstructured
		err error
	}
	nsCh := make(chan got, 1)
	go func() {
		u, err := k.dyn.Resource(gvrNamespaces).Get(ctx, namespace, metav1.GetOptions{})
		nsCh <- got{u, err}
	}()
	pu, perr := k.dyn.Resource(gvrPods).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	ns := <-nsCh
	if perr != nil {
		return nil, kubeErr(fmt.Sprintf("reading pod %s/%s from the Kubernetes API", namespace, name), perr)
	}
	var pod corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pu.Object, &pod); err != nil {
		return nil, fmt.Errorf("decoding pod %s/%s: %w", namespace, name, err)
	}
	if ns.err != nil {
		return nil, kubeErr(fmt.Sprintf("reading namespace %s from the Kubernetes API", namespace), ns.err)
	}
	info := podInfo(&pod)
	info.NamespaceLabels = ns.u.GetLabels()
	info.NamespaceAnnotations = ns.u.GetAnnotations()
	return info, nil
}

func podInfo(pod *corev1.Pod) *PodInfo {
	info := &PodInfo{
		Namespace:      pod.Namespace,
		Name:           pod.Name,
		UID:            string(pod.UID),
		NodeName:       pod.Spec.NodeName,
		HostNetwork:    pod.Spec.HostNetwork,
		ServiceAccount: pod.Spec.ServiceAccountName,
		Labels:         pod.Labels,
		Annotations:    pod.Annotations,
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "" || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
				continue
			}
			proto := api.ProtocolTCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = api.ProtocolUDP
			case corev1.ProtocolSCTP:
				proto = api.ProtocolSCTP
			}
			info.Ports = append(info.Ports, api.WorkloadEndpointPort{
				Name: p.Name, Protocol: api.ProtocolFromString(proto), Port: uint16(p.ContainerPort),
				HostPort: uint16(max(p.HostPort, 0)), HostIP: p.HostIP,
			})
		}
	}
	return info
}

// kubeErr maps a Kubernetes API error: not found wraps datastore.ErrNotFound; forbidden and
// unauthorized are configuration problems (code 7 via the caller); anything else is taken as the API
// server being unreachable or overloaded, which a retry may fix.
func kubeErr(op string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, datastore.ErrNotFound, err)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return Errorf(CodeInvalidConfig, "%s: %v (check the RBAC rules and the credentials in the plugin's kubeconfig)", op, err)
	}
	return unreachable(fmt.Errorf("%s: %w", op, err))
}
