package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/dynamic"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// casRetries bounds the read-modify-write loops of unconditional updates and deletes, which retry
// when another writer slips in between the read and the write.
const casRetries = 10

// crdGVR is the custom resource of a kind: crd.projectcalico.org/v1, plural from the kind registry.
func crdGVR(info api.KindInfo) schema.GroupVersionResource {
	return api.CRDGroupVersion.WithResource(info.CRDPlural)
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
	c := h.src.client(h.b, obj.GetNamespace())
	created, err := c.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	if created, err = h.writeStatus(ctx, op, c, u, created); err != nil {
		return nil, err
	}
	return h.decode(op, created)
}

// writeStatus writes the status of want through the status subresource when the kind has one and the
// API server ignored it in the write that returned got.
func (h *crdHandler) writeStatus(ctx context.Context, op string, c dynamic.ResourceInterface, want, got *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if !h.info.StatusSubresource {
		return got, nil
	}
	ws, _, _ := unstructured.NestedFieldNoCopy(want.Object, "status")
	gs, _, _ := unstructured.NestedFieldNoCopy(got.Object, "status")
	if emptyJSON(ws) && emptyJSON(gs) || equality.Semantic.DeepEqual(ws, gs) {
		return got, nil
	}
	st := got.DeepCopy()
	if emptyJSON(ws) {
		unstructured.RemoveNestedField(st.Object, "status")
	} else {
		st.Object["status"] = ws
	}
	out, err := c.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		return nil, wrapErr(op+" (status)", err)
	}
	return out, nil
}

func emptyJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func (h *crdHandler) update(ctx context.Context, op string, obj api.Resource) (api.Resource, error) {
	u, err := toCR(h.info, calicoIPAMForm(obj))
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	c := h.src.client(h.b, obj.GetNamespace())
	cas := obj.GetResourceVersion() != ""
	if cas && !h.keepsUnknown() {
		// Compare-and-swap: the API server rejects a stale resourceVersion with 409 Conflict.
		updated, err := c.Update(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			return nil, wrapErr(op, err)
		}
		if updated, err = h.writeStatus(ctx, op, c, u, updated); err != nil {
			return nil, err
		}
		return h.decode(op, updated)
	}
	// Read the stored object: for an unconditional update (custom resources require a resourceVersion on
	// update) and to carry over fields tortie's types do not know. Retry if someone else wrote in between.
	for attempt := 0; ; attempt++ {
		cur, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return nil, wrapErr(op, err)
		}
		w := u.DeepCopy()
		if !cas {
			w.SetResourceVersion(cur.GetResourceVersion())
		}
		if h.keepsUnknown() {
			if err := carryUnknownFields(h.info, cur, w); err != nil {
				return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
			}
		}
		updated, err := c.Update(ctx, w, metav1.UpdateOptions{})
		if err == nil {
			if updated, err = h.writeStatus(ctx, op, c, w, updated); err != nil {
				return nil, err
			}
			return h.decode(op, updated)
		}
		if cas || !apierrors.IsConflict(err) || attempt >= casRetries {
			return nil, wrapErr(op, err)
		}
	}
}

// keepsUnknown reports whether updates of the kind carry over stored fields tortie's types do not know
// (a newer Calico's, when its CRDs are installed). IPAM objects are written on the CNI plugin's hot path
// and hold nothing beyond tortie's types, so they skip the extra read.
func (h *crdHandler) keepsUnknown() bool {
	switch h.info.Kind {
	case api.KindIPAMBlock, api.KindIPAMHandle, api.KindBlockAffinity:
		return false
	}
	return true
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

// toCR converts a tortie object to its custom resource as Calico's Kubernetes datastore stores it: the
// spec (and status) copied through JSON unchanged; on the custom resource only name, namespace,
// resourceVersion, the labels and annotations Calico owns (keys containing "projectcalico.org/" or
// "operator.tigera.io/") and the projectcalico.org/metadata annotation, which holds the object's
// metadata as JSON (labels, annotations, owner references, ...; the name too for tiered policies, whose
// stored name Calico once prefixed). Kubernetes never sees the user's labels, annotations or owner
// references on the custom resource, so its garbage collector never acts on them. uid and
// creationTimestamp are the custom resource's own (the API server assigns them).
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
	u.SetKind(info.CRDKind)

	stored, err := metadataAnnotation(info, obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the metadata of %s %q: %w", info.Kind, obj.GetName(), err)
	}
	md := map[string]any{"name": obj.GetName()}
	if obj.GetNamespace() != "" {
		md["namespace"] = obj.GetNamespace()
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		md["resourceVersion"] = rv
	}
	if l := calicoOwned(obj.GetLabels()); len(l) > 0 {
		md["labels"] = stringMapToAny(l)
	}
	ann := calicoOwned(obj.GetAnnotations())
	if ann == nil {
		ann = map[string]string{}
	}
	ann[api.AnnotationMetadata] = stored
	md["annotations"] = stringMapToAny(ann)
	u.Object["metadata"] = md
	return u, nil
}

// metadataAnnotation is the value of the projectcalico.org/metadata annotation: obj's metadata without
// what the custom resource itself carries (namespace, resourceVersion, uid) and, except for tiered
// policies, without the name.
func metadataAnnotation(info api.KindInfo, obj api.Resource) (string, error) {
	var om metav1.ObjectMeta
	if acc, ok := obj.(metav1.ObjectMetaAccessor); ok {
		acc.GetObjectMeta().(*metav1.ObjectMeta).DeepCopyInto(&om)
	} else {
		return "", fmt.Errorf("%T has no ObjectMeta", obj)
	}
	om.Namespace, om.ResourceVersion, om.UID = "", "", ""
	om.ManagedFields = nil
	om.Generation = 0
	delete(om.Annotations, api.AnnotationMetadata)
	if len(om.Annotations) == 0 {
		om.Annotations = nil
	}
	if !api.IsTieredPolicyKind(info.Kind) {
		om.Name = ""
	}
	data, err := json.Marshal(&om)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// calicoOwned returns the entries of m whose keys Calico keeps on the custom resource itself.
func calicoOwned(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if strings.Contains(k, "projectcalico.org/") || strings.Contains(k, "operator.tigera.io/") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func stringMapToAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// fromCR converts a custom resource to the tortie object. A projectcalico.org/metadata annotation
// (written by Calico or by toCR) is decoded and removed: its labels and annotations are merged over the
// custom resource's own (older Calico releases kept them only there), its owner references and creation
// timestamp restored. The custom resource's name stays the object's name, also for tiered policies
// whose annotation records it: a pre-v3.32 "default.<name>" policy reads as "default.<name>" (see
// docs/compatibility.md).
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
func restoreMetadata(obj api.Resource) error {
	ann := obj.GetAnnotations()
	raw, ok := ann[api.AnnotationMetadata]
	var stored metav1.ObjectMeta
	if ok {
		ann = maps.Clone(ann)
		delete(ann, api.AnnotationMetadata)
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &stored); err != nil {
				return fmt.Errorf("annotation %s: %w", api.AnnotationMetadata, err)
			}
		}
		obj.SetLabels(mergeUnder(stored.Labels, obj.GetLabels()))
		obj.SetAnnotations(mergeUnder(stored.Annotations, ann))
		if len(obj.GetOwnerReferences()) == 0 && len(stored.OwnerReferences) > 0 {
			obj.SetOwnerReferences(stored.OwnerReferences)
		}
		if !stored.CreationTimestamp.IsZero() {
			obj.SetCreationTimestamp(stored.CreationTimestamp)
		}
		if len(stored.Finalizers) > 0 && len(obj.GetFinalizers()) == 0 {
			obj.SetFinalizers(stored.Finalizers)
		}
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
