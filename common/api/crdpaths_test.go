package api

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Calico's crd.projectcalico.org/v1 field lists are facts recorded from Calico's published CRDs
// (libcalico-go/config/crd in github.com/projectcalico/calico): one file per kind, one line per field path
// with its schema type. Regenerate them from a Calico checkout with
//
//	TORTIE_CALICO_CRDS=/path/to/calico/libcalico-go/config/crd go test ./common/api -run TestRecordCalicoCRDPaths
const calicoPathsDir = "testdata/calico-crd-paths"

// schemaPaths lists every field path below the root of a CRD's schema with a short type: string,
// integer, number, boolean, object, array, int-or-string, or "preserve" for a subtree whose unknown fields
// are kept. Array items are written "[]", map values "{}": spec.ingress[].action, spec.labelsToApply{}.
// metadata, apiVersion and kind are left out: the API server owns them.
func schemaPaths(root *apiextensionsv1.JSONSchemaProps) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(prefix string, s *apiextensionsv1.JSONSchemaProps) {
		if prefix != "" {
			out[prefix] = schemaType(s)
		}
		if s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields {
			return
		}
		for name, p := range s.Properties {
			if prefix == "" && (name == "metadata" || name == "apiVersion" || name == "kind") {
				continue
			}
			p := p
			walk(joinPath(prefix, name), &p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(prefix+"[]", s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			walk(prefix+"{}", s.AdditionalProperties.Schema)
		}
	}
	walk("", root)
	return out
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func schemaType(s *apiextensionsv1.JSONSchemaProps) string {
	switch {
	case s.XIntOrString:
		return "int-or-string"
	case s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields:
		return "preserve"
	case s.Type == "":
		return "any"
	}
	return s.Type
}

// typeCompatible reports whether a field Calico stores with type calico is kept by tortie's schema type
// ours: the same type, or a wider one.
func typeCompatible(calico, ours string) bool {
	switch {
	case calico == ours, ours == "preserve", ours == "any":
		return true
	case ours == "int-or-string":
		return calico == "integer" || calico == "string"
	case ours == "number":
		return calico == "integer"
	}
	return false
}

// readCRDFile decodes one CRD manifest.
func readCRDFile(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &crd, nil
}

// loadCalicoPaths reads the recorded field lists: kind → path → type.
func loadCalicoPaths(t *testing.T) map[string]map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(calicoPathsDir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded Calico field lists in %s (%v)", calicoPathsDir, err)
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		kind := strings.TrimSuffix(filepath.Base(f), ".txt")
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		paths := map[string]string{}
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			path, typ, ok := strings.Cut(line, " ")
			if !ok {
				t.Fatalf("%s:%d: want \"<path> <type>\", got %q", f, n, line)
			}
			paths[path] = typ
		}
		_ = fh.Close()
		out[kind] = paths
	}
	return out
}

// TestRecordCalicoCRDPaths rewrites testdata/calico-crd-paths from Calico's CRDs when TORTIE_CALICO_CRDS
// names their directory; otherwise it is skipped.
func TestRecordCalicoCRDPaths(t *testing.T) {
	dir := os.Getenv("TORTIE_CALICO_CRDS")
	if dir == "" {
		t.Skip("TORTIE_CALICO_CRDS is not set")
	}
	files, err := filepath.Glob(filepath.Join(dir, "crd.projectcalico.org_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no crd.projectcalico.org_*.yaml in %s (%v)", dir, err)
	}
	if err := os.MkdirAll(calicoPathsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		crd, err := readCRDFile(f)
		if err != nil {
			t.Fatal(err)
		}
		paths := schemaPaths(crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
		var lines []string
		for p, typ := range paths {
			lines = append(lines, p+" "+typ)
		}
		sort.Strings(lines)
		body := fmt.Sprintf("# Field paths of Calico's %s (%s), recorded by TestRecordCalicoCRDPaths.\n%s\n",
			crd.Spec.Names.Kind, filepath.Base(f), strings.Join(lines, "\n"))
		if err := os.WriteFile(filepath.Join(calicoPathsDir, crd.Spec.Names.Kind+".txt"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCRDsCarryEveryCalicoField checks that tortie's CRD of every Calico kind holds every field path of
// Calico's CRD with a compatible type, so that installing tortie's CRDs over Calico's prunes nothing Calico
// stored.
func TestCRDsCarryEveryCalicoField(t *testing.T) {
	calico := loadCalicoPaths(t)
	crds := loadCRDs(t)
	var kinds []string
	for k := range calico {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			crd, ok := crds[kind]
			if !ok {
				t.Fatalf("tortie has no CRD for Calico's kind %s", kind)
			}
			ours := schemaPaths(crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
			var missing, wrong []string
			for path, typ := range calico[kind] {
				got, ok := lookupPath(ours, path)
				switch {
				case !ok:
					missing = append(missing, path+" "+typ)
				case !typeCompatible(typ, got):
					wrong = append(wrong, fmt.Sprintf("%s: Calico %s, tortie %s", path, typ, got))
				}
			}
			sort.Strings(missing)
			sort.Strings(wrong)
			if len(missing) > 0 {
				t.Errorf("%d field paths of Calico's %s are missing from tortie's CRD:\n%s", len(missing), kind, strings.Join(missing, "\n"))
			}
			if len(wrong) > 0 {
				t.Errorf("%d field paths have an incompatible type:\n%s", len(wrong), strings.Join(wrong, "\n"))
			}
		})
	}
}

// lookupPath finds path in ours, or the type of the nearest ancestor that keeps unknown fields.
func lookupPath(ours map[string]string, path string) (string, bool) {
	if typ, ok := ours[path]; ok {
		return typ, true
	}
	for p := path; ; {
		i := strings.LastIndexAny(p, ".[{")
		if i < 0 {
			return "", false
		}
		p = p[:i]
		if ours[p] == "preserve" {
			return "preserve", true
		}
	}
}
