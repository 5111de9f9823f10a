package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// calicoObjectsDir holds one crd.projectcalico.org/v1 object per Calico kind with every field path of
// Calico's CRD set (written from the recorded field lists, with values Calico's schema accepts).
const calicoObjectsDir = "testdata/calico-objects"

// loadCalicoObject reads the fixture of a kind as generic JSON.
func loadCalicoObject(t *testing.T, kind string) ([]byte, map[string]any) {
	t.Helper()
	path := filepath.Join(calicoObjectsDir, kind+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("every Calico kind needs a fixture: %v", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	return data, m
}

// valuePaths lists the field paths set in a JSON value, in the notation of schemaPaths.
func valuePaths(prefix string, v any, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := joinPath(prefix, k)
			out[p] = true
			valuePaths(p, x, out)
		}
	case []any:
		for _, x := range v {
			out[prefix+"[]"] = true
			valuePaths(prefix+"[]", x, out)
		}
	}
}

// TestCalicoObjectsRoundTrip decodes Calico's objects into tortie's types and encodes them again: every
// field survives unchanged. It also checks that each fixture sets every field path of Calico's CRD.
func TestCalicoObjectsRoundTrip(t *testing.T) {
	calico := loadCalicoPaths(t)
	var kinds []string
	for k := range calico {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			data, want := loadCalicoObject(t, kind)
			set := map[string]bool{}
			for _, top := range []string{"spec", "status"} {
				if v, ok := want[top]; ok {
					set[top] = true
					valuePaths(top, v, set)
				}
			}
			var unset []string
			for p := range calico[kind] {
				// Map values are written "{}" in the field lists and under their key in objects.
				if !set[p] && !strings.Contains(p, "{}") {
					unset = append(unset, p)
				}
			}
			sort.Strings(unset)
			if len(unset) > 0 {
				t.Errorf("the fixture leaves %d field paths unset:\n%s", len(unset), strings.Join(unset, "\n"))
			}

			objs, err := Decode(data, kind+".yaml")
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(objs) != 1 {
				t.Fatalf("Decode returned %d objects", len(objs))
			}
			// Decode drops status (what a user writes has none); the stored form keeps it.
			obj := objs[0]
			if st, ok := want["status"]; ok {
				js, _ := json.Marshal(map[string]any{"status": st})
				if err := json.Unmarshal(js, obj); err != nil {
					t.Fatalf("decoding status: %v", err)
				}
			}
			js, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			for _, top := range []string{"spec", "status"} {
				if d := cmp.Diff(want[top], got[top]); d != "" {
					t.Errorf("%s changed in a decode/encode round trip (-Calico +tortie):\n%s", top, d)
				}
			}
		})
	}
}
