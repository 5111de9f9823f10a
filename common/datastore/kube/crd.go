package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// casRetries bounds the read-modify-write loops of unconditional updates and deletes, which retry
// when another writer slips in between the read and the write.
const casRetries = 10

// crdGVR is the custom resource of a kind: crd.projectcalico.org/v1, plural from the kind registry.
func crdGVR(info api.KindInfo) schema.GroupVersionResource {
	return api.CRDGroupVersion.WithResource(info.Plural)
}

// crdHandler stores one kind as crd.projectcalico.org/v1 custom resources.
type crdHandler struct {
	b    *Backend
	info api.KindInfo
	src  *source
}

func newCRDHandler(b *Backend, info api.KindInfo) *crdHandler {
	h := &crdHandler{b: b, info: info}
	h.src = &source{
		name:            "crd",
		gvr:             crdGVR(info),
		namespaced:      info.Namespaced,
		filterNamespace: true,
		convert:         func(u *unstructured.Unstructured) (api.Resource, error) { return fromCR(info, u) },
		keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
			return datastore.Key{Kind: info.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}, true
		},
	}
	return h
}

func (h *crdHandler) sources() []*source     { return []*source{h.src} }
func (h *crdHandler) static() []api.Resource { return nil }

func (h *crdHandler) get(ctx context.Context, op string, key datastore.Key) (api.Resource, error) {
	u, err := h.src.client(h.b, key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return h.decode(op, u)
}

func (h *crdHandler) decode(op string, u *unstructured.Unstructured) (api.Resource, error) {
	obj, err := fromCR(h.info, u)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	return obj, nil
}

func (h *crdHandler) create(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	u, err := toCR(h.info, calicoIPAMForm(obj))
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	created, err := h.src.client(h.b, obj.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return h.decode(op, created)
}

func (h *crdHandler) update(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	u, err := toCR(h.info, calicoIPAMForm(obj))
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	c := h.src.client(h.b, obj.GetNamespace())
	if obj.GetResourceVersion() != "" {
		// Compare-and-swap: the API server rejects a stale resourceVersion with 409 Conflict.
		updated, err := c.Update(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			return nil, wrapErr(op, err)
		}
		return h.decode(op, updated)
	}
	// Unconditional: custom resources require a resourceVersion on update, so read the current one
	// and retry if someone else wrote in between.
	for attempt := 0; ; attempt++ {
		cur, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return nil, wrapErr(op, err)
		}
		u.SetResourceVersion(cur.GetResourceVersion())
		updated, err := c.Update(ctx, u, metav1.UpdateOptions{})
		if err == nil {
			return h.decode(op, updated)
		}
		if !apierrors.IsConflict(err) || attempt >= casRetries {
			return nil, wrapErr(op, err)
		}
	}
}

func (h *crdHandler) delete(ctx context.Context, op string, key datastore.Key, revision string) (api.Resource, error) {
	return deleteWithPreconditions(ctx, op, h.src.client(h.b, key.Namespace), key.Name, revision,
		func(u *unstructured.Unstructured) (api.Resource, error) { return h.decode(op, u) })
}

// deleteWithPreconditions deletes an object and returns its last state. Kubernetes' DELETE does not
// return the object reliably, so the object is read first and deleted with its resourceVersion and
// UID as preconditions: what is returned is exactly what was deleted. With a revision it is a
// compare-and-delete; without one a concurrent write makes it read and try again.
func deleteWithPreconditions(ctx context.Context, op string, c resourceClient, name, revision string,
	decode func(*unstructured.Unstructured) (api.Resource, error)) (api.Resource, error) {
	for attempt := 0; ; attempt++ {
		cur, err := c.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, wrapErr(op, err)
		}
		if revision != "" && cur.GetResourceVersion() != revision {
			return nil, errorf(op, datastore.ErrConflict, "the stored revision is %s, not %s", cur.GetResourceVersion(), revision)
		}
		rv, uid := cur.GetResourceVersion(), cur.GetUID()
		err = c.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv, UID: &uid}})
		if err == nil {
			return decode(cur)
		}
		if revision == "" && apierrors.IsConflict(err) && attempt < casRetries {
			continue // changed between our read and the delete: read again
		}
		return nil, wrapErr(op, err)
	}
}

// resourceClient is the part of dynamic.ResourceInterface used by deleteWithPreconditions.
type resourceClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions, subresources ...string) error
}

// toCR converts a tortie object to its custom resource. The spec (and status) are copied through
// JSON unchanged. The custom resource carries name, namespace, labels, annotations and
// resourceVersion; owner references are kept in the projectcalico.org/metadata annotation as Calico
// does, so that Kubernetes' garbage collector never acts on them. uid and creationTimestamp are the
// custom resource's own (the API server assigns them).
func toCR(info api.KindInfo, obj api.Resource) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", info.Kind, obj.GetName(), err)
	}
	var m map[string]any
	// utiljson keeps integers as int64, which unstructured objects require.
	if err := utiljson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", info.Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(api.CRDAPIVersion)
	u.SetKind(info.Kind)

	md := map[string]any{"name": obj.GetName()}
	if obj.GetNamespace() != "" {
		md["namespace"] = obj.GetNamespace()
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		md["resourceVersion"] = rv
	}
	if l := obj.GetLabels(); len(l) > 0 {
		md["labels"] = stringMapToAny(l)
	}
	ann := maps.Clone(obj.GetAnnotations())
	delete(ann, api.AnnotationMetadata)
	if refs := obj.GetOwnerReferences(); len(refs) > 0 {
		extra, err := json.Marshal(metav1.ObjectMeta{OwnerReferences: refs})
		if err != nil {
			return nil, fmt.Errorf("encoding the metadata of %s %q: %w", info.Kind, obj.GetName(), err)
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[api.AnnotationMetadata] = string(extra)
	}
	if len(ann) > 0 {
		md["annotations"] = stringMapToAny(ann)
	}
	u.Object["metadata"] = md
	return u, nil
}

func stringMapToAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// fromCR converts a custom resource to the tortie object. A projectcalico.org/metadata annotation
// (written by Calico, or by toCR for owner references) is decoded: its labels and annotations are
// merged under the custom resource's own (older Calico releases kept them only there), and its owner
// references restored.
func fromCR(info api.KindInfo, u *unstructured.Unstructured) (api.Resource, error) {
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("decoding %s %q: %w", info.Kind, u.GetName(), err)
	}
	obj := info.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decoding %s %q: %w", info.Kind, u.GetName(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(api.GroupVersion.WithKind(info.Kind))
	if err := restoreMetadata(obj); err != nil {
		return nil, fmt.Errorf("decoding %s %q: %w", info.Kind, u.GetName(), err)
	}
	obj.SetManagedFields(nil)
	obj.SetGeneration(0)
	return obj, nil
}

// restoreMetadata applies and removes the projectcalico.org/metadata annotation.
func restoreMetadata(obj metav1.Object) error {
	ann := obj.GetAnnotations()
	raw, ok := ann[api.AnnotationMetadata]
	if !ok {
		return nil
	}
	ann = maps.Clone(ann)
	delete(ann, api.AnnotationMetadata)
	var stored metav1.ObjectMeta
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &stored); err != nil {
			return fmt.Errorf("annotation %s: %w", api.AnnotationMetadata, err)
		}
	}
	obj.SetLabels(mergeUnder(obj.GetLabels(), stored.Labels))
	obj.SetAnnotations(mergeUnder(ann, stored.Annotations))
	if len(obj.GetOwnerReferences()) == 0 && len(stored.OwnerReferences) > 0 {
		obj.SetOwnerReferences(stored.OwnerReferences)
	}
	return nil
}

// mergeUnder returns top with the keys of under that top lacks; nil when both are empty.
func mergeUnder(top, under map[string]string) map[string]string {
	if len(top) == 0 && len(under) == 0 {
		return nil
	}
	out := make(map[string]string, len(top)+len(under))
	maps.Copy(out, under)
	maps.Copy(out, top)
	return out
}
