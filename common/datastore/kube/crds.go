package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var gvrCRDs = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdFieldManager owns the fields EnsureCRDs applies (server-side apply).
const crdFieldManager = "tortie"

// DefaultCRDTimeout bounds EnsureCRDs when ctx has no deadline.
const DefaultCRDTimeout = 2 * time.Minute

// EnsureCRDs installs (or updates) every CustomResourceDefinition found in the *.yaml, *.yml and
// *.json files at the top of crds — os.DirFS("installer/kubernetes/crds") or an embedded copy — and
// waits until the API server serves them (condition Established). It is idempotent: it uses
// server-side apply, so running it again, or against CRDs Calico installed, converges on the given
// definitions. Documents of other kinds are ignored.
func (b *Backend) EnsureCRDs(ctx context.Context, crds fs.FS) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCRDTimeout)
		defer cancel()
	}
	defs, err := readCRDs(crds)
	if err != nil {
		return err
	}
	if len(defs) == 0 {
		return errors.New("installing CRDs: no CustomResourceDefinition found")
	}
	c := b.dyn.Resource(gvrCRDs)
	for _, d := range defs {
		callCtx, cancel := context.WithTimeout(ctx, b.timeout)
		_, err := c.Apply(callCtx, d.GetName(), d, metav1.ApplyOptions{FieldManager: crdFieldManager, Force: true})
		cancel()
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", d.GetName(), err)
		}
	}
	for _, d := range defs {
		if err := b.waitEstablished(ctx, d.GetName()); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) waitEstablished(ctx context.Context, name string) error {
	c := b.dyn.Resource(gvrCRDs)
	for {
		callCtx, cancel := context.WithTimeout(ctx, b.timeout)
		u, err := c.Get(callCtx, name, metav1.GetOptions{})
		cancel()
		if err == nil && crdEstablished(u) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("condition Established is not True")
			}
			return fmt.Errorf("waiting for CRD %s: %w (%w)", name, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// readCRDs decodes the CustomResourceDefinitions of the manifest files at the top of fsys, in file
// name order.
func readCRDs(fsys fs.FS) ([]*unstructured.Unstructured, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading CRD manifests: %w", err)
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(path.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading CRD manifest %s: %w", name, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for doc := 1; ; doc++ {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("CRD manifest %s, document %d: %w", name, doc, err)
			}
			u := &unstructured.Unstructured{Object: m}
			if len(m) == 0 || u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if u.GetName() == "" {
				return nil, fmt.Errorf("CRD manifest %s, document %d: metadata.name is empty", name, doc)
			}
			out = append(out, u)
		}
	}
	return out, nil
}
