package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

var (
	gvrNodes           = corev1.SchemeGroupVersion.WithResource("nodes")
	gvrPods            = corev1.SchemeGroupVersion.WithResource("pods")
	gvrNamespaces      = corev1.SchemeGroupVersion.WithResource("namespaces")
	gvrServiceAccounts = corev1.SchemeGroupVersion.WithResource("serviceaccounts")
	gvrK8sNetPols      = networkingv1.SchemeGroupVersion.WithResource("networkpolicies")
)

// newHandlers maps every kind to how it is stored: the synthesised kinds to Kubernetes objects, every
// other registered kind to its custom resource.
func newHandlers(b *Backend) map[string]handler {
	hs := map[string]handler{}
	for _, info := range api.Kinds() {
		switch info.Kind {
		case api.KindNode:
			hs[info.Kind] = newNodeHandler(b)
		case api.KindWorkloadEndpoint:
			hs[info.Kind] = newWEPHandler(b)
		case api.KindProfile:
			hs[info.Kind] = newProfileHandler(b)
		case api.KindNetworkPolicy:
			hs[info.Kind] = newNetworkPolicyHandler(b, info)
		default:
			hs[info.Kind] = newCRDHandler(b, info)
		}
	}
	return hs
}

// fromUnstructured converts an unstructured Kubernetes object to its typed form.
func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", u.GetKind(), nameOf(u), err)
	}
	return &out, nil
}

func nameOf(u metav1.Object) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

// annotationPatch is a JSON merge patch of metadata.annotations ("" removes an annotation unless
// keepEmpty), with resourceVersion as a compare-and-swap precondition when it is not empty.
func annotationPatch(resourceVersion string, annotations map[string]string, keepEmpty bool) ([]byte, error) {
	ann := make(map[string]any, len(annotations))
	for k, v := range annotations {
		if v == "" && !keepEmpty {
			ann[k] = nil
		} else {
			ann[k] = v
		}
	}
	md := map[string]any{"annotations": ann}
	if resourceVersion != "" {
		md["resourceVersion"] = resourceVersion
	}
	return json.Marshal(map[string]any{"metadata": md})
}

// ---- Node ----

type nodeHandler struct {
	b   *Backend
	src *source
}

func newNodeHandler(b *Backend) *nodeHandler {
	return &nodeHandler{b: b, src: &source{
		name: "node", gvr: gvrNodes,
		keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
			return datastore.Key{Kind: api.KindNode, Name: u.GetName()}, true
		},
		convert: func(u *unstructured.Unstructured) (api.Resource, error) {
			n, err := fromUnstructured[corev1.Node](u)
			if err != nil {
				return nil, err
			}
			return k8sNodeToNode(n), nil
		},
	}}
}

func (h *nodeHandler) sources() []*source     { return []*source{h.src} }
func (h *nodeHandler) static() []api.Resource { return nil }

func (h *nodeHandler) get(ctx context.Context, op string, key datastore.Key) (api.Resource, error) {
	u, err := h.b.dyn.Resource(gvrNodes).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return convertOrErr(op, h.src, u)
}

const nodeWritesMsg = "in the Kubernetes datastore a Node is the Kubernetes Node of the same name: the kubelet " +
	"(or kubectl) creates and deletes it, and tortie only updates its projectcalico.org/* annotations"

func (h *nodeHandler) create(_ context.Context, op string, _ api.Resource) (api.Resource, error) {
	return nil, errorf(op, datastore.ErrUnsupported, "%s", nodeWritesMsg)
}

func (h *nodeHandler) delete(_ context.Context, op string, _ datastore.Key, _ string) (api.Resource, error) {
	return nil, errorf(op, datastore.ErrUnsupported, "%s", nodeWritesMsg)
}

// update writes the node's tortie fields to the Kubernetes Node's annotations with a merge patch;
// with a resourceVersion the patch carries it and the API server rejects a stale one (409). Labels
// and everything else of the Kubernetes Node are left alone.
func (h *nodeHandler) update(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	node, ok := obj.(*api.Node)
	if !ok {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %T is not a Node", op, obj)
	}
	ann, err := nodeAnnotations(node)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	patch, err := annotationPatch(node.ResourceVersion, ann, false)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	u, err := h.b.dyn.Resource(gvrNodes).Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return convertOrErr(op, h.src, u)
}

func convertOrErr(op string, s *source, u *unstructured.Unstructured) (api.Resource, error) {
	obj, err := s.convert(u)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	if obj == nil {
		return nil, errorf(op, datastore.ErrNotFound, "%s %s stands for no %s", u.GetKind(), nameOf(u), s.name)
	}
	return obj, nil
}

// ---- WorkloadEndpoint ----

type wepHandler struct {
	b   *Backend
	src *source
}

func newWEPHandler(b *Backend) *wepHandler {
	return &wepHandler{b: b, src: &source{
		name: "pod", gvr: gvrPods, namespaced: true, filterNamespace: true,
		keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
			node, _, _ := unstructured.NestedString(u.Object, "spec", "nodeName")
			hostNet, _, _ := unstructured.NestedBool(u.Object, "spec", "hostNetwork")
			if node == "" || hostNet {
				return datastore.Key{}, false
			}
			return datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: u.GetNamespace(),
				Name: api.WorkloadEndpointName(node, api.OrchestratorKubernetes, u.GetName(), endpointName)}, true
		},
		convert: func(u *unstructured.Unstructured) (api.Resource, error) {
			pod, err := fromUnstructured[corev1.Pod](u)
			if err != nil {
				return nil, err
			}
			wep, err := podToWorkloadEndpoint(pod)
			if wep == nil || err != nil {
				return nil, err
			}
			return wep, nil
		},
	}}
}

func (h *wepHandler) sources() []*source     { return []*source{h.src} }
func (h *wepHandler) static() []api.Resource { return nil }

// podName returns the pod a workload endpoint name stands for, or ErrNotFound.
func podName(op, name string) (string, error) {
	_, orch, pod, ep, err := api.ParseWorkloadEndpointName(name)
	if err != nil {
		return "", errorf(op, datastore.ErrNotFound, "%v", err)
	}
	if orch != api.OrchestratorKubernetes || ep != endpointName {
		return "", errorf(op, datastore.ErrNotFound,
			"only Kubernetes pods' %s endpoints (<node>-k8s-<pod>-%s) exist in the Kubernetes datastore", endpointName, endpointName)
	}
	return pod, nil
}

// getPod reads the pod behind a workload endpoint name and converts it; ErrNotFound when the pod is
// missing, or is not on the node the name says (or is not an endpoint at all).
func (h *wepHandler) getPod(ctx context.Context, op, namespace, name string) (*unstructured.Unstructured, api.Resource, error) {
	pod, err := podName(op, name)
	if err != nil {
		return nil, nil, err
	}
	u, err := h.b.dyn.Resource(gvrPods).Namespace(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, nil, wrapErr(op, err)
	}
	wep, err := convertOrErr(op, h.src, u)
	if err != nil {
		return nil, nil, err
	}
	if wep.GetName() != name {
		return nil, nil, errorf(op, datastore.ErrNotFound, "pod %s/%s is the endpoint %q", namespace, pod, wep.GetName())
	}
	return u, wep, nil
}

func (h *wepHandler) get(ctx context.Context, op string, key datastore.Key) (api.Resource, error) {
	_, wep, err := h.getPod(ctx, op, key.Namespace, key.Name)
	return wep, err
}

// create and update record the endpoint's addresses and container in the pod's annotations (what
// Calico's CNI writes). The pod is the endpoint, so create never fails with ErrAlreadyExists.
//
// A WorkloadEndpoint can only be "created" for a pod that exists and is scheduled: otherwise Create
// fails with an error wrapping both datastore.ErrUnsupported (the Kubernetes datastore cannot store a
// free-standing endpoint) and datastore.ErrNotFound (the pod is missing).
func (h *wepHandler) create(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	out, err := h.write(ctx, op, obj)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, fmt.Errorf("%w (a WorkloadEndpoint is a pod's view and can only be written for an existing, "+
			"scheduled pod: %w)", err, datastore.ErrUnsupported)
	}
	return out, err
}

func (h *wepHandler) update(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	return h.write(ctx, op, obj)
}

func (h *wepHandler) write(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	wep, ok := obj.(*api.WorkloadEndpoint)
	if !ok {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %T is not a WorkloadEndpoint", op, obj)
	}
	_, cur, err := h.getPod(ctx, op, wep.Namespace, wep.Name)
	if err != nil {
		return nil, err
	}
	if wep.ResourceVersion != "" && wep.ResourceVersion != cur.GetResourceVersion() {
		return nil, errorf(op, datastore.ErrConflict, "the pod's resourceVersion is %s, not %s",
			cur.GetResourceVersion(), wep.ResourceVersion)
	}
	return h.patch(ctx, op, wep.Namespace, cur.(*api.WorkloadEndpoint).Spec.Pod, wep.ResourceVersion, workloadEndpointAnnotations(wep))
}

// patch writes the CNI annotations through the pod's status subresource, as Calico's CNI does: the
// CNI plugin then needs only "patch pods/status", not the right to change pod specs.
func (h *wepHandler) patch(ctx context.Context, op, namespace, pod, rv string, ann map[string]string) (api.Resource, error) {
	body, err := annotationPatch(rv, ann, true)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	u, err := h.b.dyn.Resource(gvrPods).Namespace(namespace).Patch(ctx, pod, types.MergePatchType, body,
		metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return convertOrErr(op, h.src, u)
}

// delete records that the pod has lost its addresses: the CNI annotations are set to "" (as Calico's
// CNI does on DEL). The endpoint stays listed, without addresses, for as long as the pod exists. The
// returned object is the endpoint as it was before.
func (h *wepHandler) delete(ctx context.Context, op string, key datastore.Key, revision string) (api.Resource, error) {
	_, cur, err := h.getPod(ctx, op, key.Namespace, key.Name)
	if err != nil {
		return nil, err
	}
	if revision != "" && revision != cur.GetResourceVersion() {
		return nil, errorf(op, datastore.ErrConflict, "the pod's resourceVersion is %s, not %s", cur.GetResourceVersion(), revision)
	}
	ann := map[string]string{api.AnnotationPodIP: "", api.AnnotationPodIPs: "", api.AnnotationContainerID: ""}
	if _, err := h.patch(ctx, op, key.Namespace, cur.(*api.WorkloadEndpoint).Spec.Pod, revision, ann); err != nil {
		return nil, err
	}
	return cur, nil
}

// ---- Profile ----

type profileHandler struct {
	b      *Backend
	ns, sa *source
}

func newProfileHandler(b *Backend) *profileHandler {
	return &profileHandler{
		b: b,
		ns: &source{name: "ns", gvr: gvrNamespaces, keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
			return datastore.Key{Kind: api.KindProfile, Name: api.NamespaceProfileName(u.GetName())}, true
		}, convert: func(u *unstructured.Unstructured) (api.Resource, error) {
			ns, err := fromUnstructured[corev1.Namespace](u)
			if err != nil {
				return nil, err
			}
			return namespaceToProfile(ns), nil
		}},
		// Profile is cluster-scoped: ServiceAccounts of every namespace are always read.
		sa: &source{name: "sa", gvr: gvrServiceAccounts, namespaced: true, keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
			return datastore.Key{Kind: api.KindProfile, Name: api.ServiceAccountProfileName(u.GetNamespace(), u.GetName())}, true
		}, convert: func(u *unstructured.Unstructured) (api.Resource, error) {
			sa, err := fromUnstructured[corev1.ServiceAccount](u)
			if err != nil {
				return nil, err
			}
			return serviceAccountToProfile(sa), nil
		}},
	}
}

func (h *profileHandler) sources() []*source     { return []*source{h.ns, h.sa} }
func (h *profileHandler) static() []api.Resource { return []api.Resource{defaultAllowProfile()} }

func (h *profileHandler) get(ctx context.Context, op string, key datastore.Key) (api.Resource, error) {
	if key.Name == api.DefaultAllowProfile {
		return defaultAllowProfile(), nil
	}
	src, ns, sa, ok := parseProfileName(key.Name)
	if !ok {
		return nil, errorf(op, datastore.ErrNotFound, "profiles in the Kubernetes datastore are %s<namespace>, %s<namespace>.<serviceaccount> and %s",
			api.ProfilePrefixNamespace, api.ProfilePrefixServiceAccount, api.DefaultAllowProfile)
	}
	var (
		u   *unstructured.Unstructured
		err error
		s   = h.ns
	)
	if src == "ns" {
		u, err = h.b.dyn.Resource(gvrNamespaces).Get(ctx, ns, metav1.GetOptions{})
	} else {
		s = h.sa
		u, err = h.b.dyn.Resource(gvrServiceAccounts).Namespace(ns).Get(ctx, sa, metav1.GetOptions{})
	}
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return convertOrErr(op, s, u)
}

const profileWritesMsg = "in the Kubernetes datastore profiles are read-only views of namespaces (kns.<ns>) and " +
	"service accounts (ksa.<ns>.<sa>): change their labels with kubectl, and use policies for rules"

func (h *profileHandler) create(_ context.Context, op string, _ api.Resource) (api.Resource, error) {
	return nil, errorf(op, datastore.ErrUnsupported, "%s", profileWritesMsg)
}

func (h *profileHandler) update(_ context.Context, op string, _ api.Resource) (api.Resource, error) {
	return nil, errorf(op, datastore.ErrUnsupported, "%s", profileWritesMsg)
}

func (h *profileHandler) delete(_ context.Context, op string, _ datastore.Key, _ string) (api.Resource, error) {
	return nil, errorf(op, datastore.ErrUnsupported, "%s", profileWritesMsg)
}

// ---- NetworkPolicy: custom resources plus Kubernetes NetworkPolicies ----

type networkPolicyHandler struct {
	*crdHandler
	knp *source
}

func newNetworkPolicyHandler(b *Backend, info api.KindInfo) *networkPolicyHandler {
	return &networkPolicyHandler{
		crdHandler: newCRDHandler(b, info),
		knp: &source{name: "knp", gvr: gvrK8sNetPols, namespaced: true, filterNamespace: true,
			keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
				return datastore.Key{Kind: api.KindNetworkPolicy, Namespace: u.GetNamespace(),
					Name: api.K8sNetworkPolicyNamePrefix + u.GetName()}, true
			},
			convert: func(u *unstructured.Unstructured) (api.Resource, error) {
				np, err := fromUnstructured[networkingv1.NetworkPolicy](u)
				if err != nil {
					return nil, err
				}
				return k8sNetworkPolicyToPolicy(b.log, np)
			}},
	}
}

func (h *networkPolicyHandler) sources() []*source { return []*source{h.src, h.knp} }

func isKNPName(name string) bool { return strings.HasPrefix(name, api.K8sNetworkPolicyNamePrefix) }

func (h *networkPolicyHandler) get(ctx context.Context, op string, key datastore.Key) (api.Resource, error) {
	if !isKNPName(key.Name) {
		return h.crdHandler.get(ctx, op, key)
	}
	name := strings.TrimPrefix(key.Name, api.K8sNetworkPolicyNamePrefix)
	u, err := h.b.dyn.Resource(gvrK8sNetPols).Namespace(key.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return convertOrErr(op, h.knp, u)
}

const knpWritesMsg = "policies named " + api.K8sNetworkPolicyNamePrefix + "<name> are Kubernetes NetworkPolicies " +
	"(networking.k8s.io/v1): change them with kubectl"

func (h *networkPolicyHandler) create(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	if isKNPName(obj.GetName()) {
		return nil, errorf(op, datastore.ErrUnsupported, "%s", knpWritesMsg)
	}
	return h.crdHandler.create(ctx, op, obj)
}

func (h *networkPolicyHandler) update(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	if isKNPName(obj.GetName()) {
		return nil, errorf(op, datastore.ErrUnsupported, "%s", knpWritesMsg)
	}
	return h.crdHandler.update(ctx, op, obj)
}

func (h *networkPolicyHandler) delete(ctx context.Context, op string, key datastore.Key, revision string) (api.Resource, error) {
	if isKNPName(key.Name) {
		return nil, errorf(op, datastore.ErrUnsupported, "%s", knpWritesMsg)
	}
	return h.crdHandler.delete(ctx, op, key, revision)
}
