package kube

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/testenv"
)

// TestCalicoObjectsOnTortieCRDs applies a Calico-written object of every kind, every field path of
// Calico's CRD set (common/api/testdata/calico-objects), to the real kube-apiserver with tortie's CRDs:
// it reads back unchanged (nothing pruned or rejected), tortie reads it, and a read-modify-write
// through tortie (a label added) leaves the stored spec and status as Calico wrote them.
func TestCalicoObjectsOnTortieCRDs(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ensureNamespace(t, cs, "calico-fixtures", nil)
	ctx := ctxFor(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "common", "api", "testdata", "calico-objects", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures (%v)", err)
	}
	for _, f := range files {
		crdKind := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(crdKind, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := yaml.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			want := &unstructured.Unstructured{Object: m}
			var info api.KindInfo
			for _, ki := range api.Kinds() {
				if ki.CRDKind == crdKind {
					info = ki
				}
			}
			if info.Kind == "" {
				t.Fatalf("no registered kind is stored as %s", crdKind)
			}
			var client dynamic.ResourceInterface = b.dyn.Resource(crdGVR(info))
			if info.Namespaced {
				client = b.dyn.Resource(crdGVR(info)).Namespace(want.GetNamespace())
			}
			created, err := client.Create(ctx, want.DeepCopy(), metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("the API server refused Calico's object: %v", err)
			}
			t.Cleanup(func() { _ = client.Delete(ctxFor(t), want.GetName(), metav1.DeleteOptions{}) })
			if st, ok := want.Object["status"]; ok && info.StatusSubresource {
				created.Object["status"] = st
				if created, err = client.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("the API server refused Calico's status: %v", err)
				}
			}
			check := func(stage string, u *unstructured.Unstructured) {
				t.Helper()
				for _, top := range []string{"spec", "status"} {
					if d := cmp.Diff(normalizeJSON(t, want.Object[top]), normalizeJSON(t, u.Object[top])); d != "" {
						t.Errorf("%s: %s differs from what Calico wrote (-Calico +stored):\n%s", stage, top, d)
					}
				}
			}
			check("read back", created)

			key := datastore.Key{Kind: info.Kind, Namespace: want.GetNamespace(), Name: want.GetName()}
			obj, err := b.Get(ctx, key)
			if err != nil {
				t.Fatalf("tortie cannot read Calico's object: %v", err)
			}
			obj.SetLabels(map[string]string{"touched-by": "tortie"})
			if _, err := b.Update(ctx, obj); err != nil {
				t.Fatalf("tortie's read-modify-write failed: %v", err)
			}
			after, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check("after tortie's read-modify-write", after)
		})
	}
}

// TestUnknownFieldsSurvive stores a custom resource with fields tortie's types do not know (as a newer
// Calico would, with its CRDs that keep them) and updates it through tortie: the unknown fields stay.
func TestUnknownFieldsSurvive(t *testing.T) {
	info, _ := api.LookupKind(api.KindFelixConfiguration)
	cur := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "FelixConfiguration",
		"metadata": map[string]any{"name": "default", "resourceVersion": "3"},
		"spec": map[string]any{
			"logSeverityScreen":        "Info",
			"futureKnob":               "on",
			"bpfConntrackTimeouts":     map[string]any{"tcpSynSent": "20s", "futureTimeout": "5s"},
			"failsafeInboundHostPorts": []any{map[string]any{"port": int64(22), "futureFlag": true}},
		},
	}}
	obj, err := fromCR(info, cur)
	if err != nil {
		t.Fatal(err)
	}
	fc := obj.(*api.FelixConfiguration)
	fc.Spec.LogSeverityScreen = "Debug"
	fc.Spec.BPFConntrackTimeouts.TCPSynSent = nil // cleared by the user: stays cleared
	w, err := toCR(info, fc)
	if err != nil {
		t.Fatal(err)
	}
	if err := carryUnknownFields(info, cur, w); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"logSeverityScreen":    "Debug",
		"futureKnob":           "on",
		"bpfConntrackTimeouts": map[string]any{"futureTimeout": "5s"},
		// Unknown fields inside list elements cannot be matched to the elements written; lists are
		// written as tortie has them.
		"failsafeInboundHostPorts": []any{map[string]any{"port": int64(22)}},
	}
	if d := cmp.Diff(want, w.Object["spec"]); d != "" {
		t.Errorf("spec written (-want +got):\n%s", d)
	}
}

// normalizeJSON round-trips v through JSON so that numbers compare alike (YAML and the API server
// decode them to different Go types).
func normalizeJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
