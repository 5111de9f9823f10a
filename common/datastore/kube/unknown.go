package kube

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

// carryUnknownFields copies into w the fields of the stored custom resource cur under spec and status
// that tortie's type for the kind cannot hold, where w does not set them: a field added by a newer
// Calico survives a read-modify-write through tortie. Fields tortie knows are never copied, so clearing
// a known field still clears it.
func carryUnknownFields(info api.KindInfo, cur, w *unstructured.Unstructured) error {
	known, err := knownProjection(info, cur)
	if err != nil {
		return err
	}
	for _, top := range []string{"spec", "status"} {
		stored, ok := cur.Object[top].(map[string]any)
		if !ok {
			continue
		}
		kn, _ := known[top].(map[string]any)
		extra := objutil.UnknownPart(stored, kn)
		if extra == nil {
			continue
		}
		dst, ok := w.Object[top].(map[string]any)
		if !ok {
			dst = map[string]any{}
			w.Object[top] = dst
		}
		objutil.MergeAbsent(dst, extra.(map[string]any))
	}
	return nil
}

// knownProjection is cur as tortie's type sees it: decoded into the Go type and encoded again.
func knownProjection(info api.KindInfo, cur *unstructured.Unstructured) (map[string]any, error) {
	data, err := cur.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("reading stored %s %q: %w", info.Kind, cur.GetName(), err)
	}
	obj := info.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("reading stored %s %q: %w", info.Kind, cur.GetName(), err)
	}
	data, err = json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("reading stored %s %q: %w", info.Kind, cur.GetName(), err)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading stored %s %q: %w", info.Kind, cur.GetName(), err)
	}
	return m, nil
}
