package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"
)

const crdDir = "../../installer/kubernetes/crds"

// loadCRDs reads every CRD manifest, keyed by spec.names.kind.
func loadCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRD files in %s (%v); run 'make generate'", crdDir, err)
	}
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := "crd.projectcalico.org_" + crd.Spec.Names.Plural + ".yaml"; filepath.Base(f) != want {
			t.Errorf("%s holds plural %q; want it in %s", f, crd.Spec.Names.Plural, want)
		}
		if prev, dup := crds[crd.Spec.Names.Kind]; dup {
			t.Errorf("kind %s has two CRDs: %s and %s", crd.Spec.Names.Kind, prev.Name, crd.Name)
		}
		crds[crd.Spec.Names.Kind] = &crd
	}
	return crds
}

// structural returns the structural schema and a validator for the only version of crd.
func structural(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) (*structuralschema.Structural, apiservervalidation.SchemaValidator) {
	t.Helper()
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s has %d versions, want 1", crd.Name, len(crd.Spec.Versions))
	}
	v := crd.Spec.Versions[0]
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
		t.Fatal(err)
	}
	s, err := structuralschema.NewStructural(&internal)
	if err != nil {
		t.Fatalf("%s: schema is not structural: %v", crd.Name, err)
	}
	if errs := structuralschema.ValidateStructural(field.NewPath("openAPIV3Schema"), s); len(errs) > 0 {
		t.Fatalf("%s: schema is not structural: %v", crd.Name, errs.ToAggregate())
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
	if err != nil {
		t.Fatal(err)
	}
	return s, validator
}

func TestCRDsMatchRegistry(t *testing.T) {
	crds := loadCRDs(t)
	var kinds []string
	for _, k := range Kinds() {
		kinds = append(kinds, k.CRDKind)
		t.Run(k.Kind, func(t *testing.T) {
			crd, ok := crds[k.CRDKind]
			if !ok {
				t.Fatalf("no CRD for kind %s; run 'make generate'", k.Kind)
			}
			wantScope := apiextensionsv1.ClusterScoped
			if k.Namespaced {
				wantScope = apiextensionsv1.NamespaceScoped
			}
			got := []any{crd.Name, crd.Spec.Group, crd.Spec.Names.Plural, crd.Spec.Names.ListKind, crd.Spec.Scope, crd.Spec.Versions[0].Name, crd.Spec.Versions[0].Served, crd.Spec.Versions[0].Storage}
			want := []any{k.CRDPlural + "." + CRDGroup, CRDGroup, k.CRDPlural, k.CRDKind + "List", wantScope, CRDVersion, true, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CRD mismatch (-want +got):\n%s", diff)
			}
		})
	}
	var crdKinds []string
	for k := range crds {
		crdKinds = append(crdKinds, k)
	}
	sort.Strings(crdKinds)
	if diff := cmp.Diff(kinds, crdKinds); diff != "" {
		t.Errorf("CRD kinds differ from registered kinds (-registered +CRDs):\n%s", diff)
	}
}

// TestSamplesValidateAgainstCRDs checks that a realistic object of every kind passes both Validate and
// the API server's validation against the generated OpenAPI schema, and that nothing in it would be
// pruned (every field it sets is in the schema).
func TestSamplesValidateAgainstCRDs(t *testing.T) {
	crds := loadCRDs(t)
	samples := sampleObjects()
	seen := map[string]bool{}
	for _, obj := range samples {
		info, err := KindOf(obj)
		if err != nil {
			t.Fatal(err)
		}
		seen[info.Kind] = true
		t.Run(info.Kind, func(t *testing.T) {
			if err := Validate(obj); err != nil {
				t.Errorf("Validate(sample) = %v", err)
			}
			s, validator := structural(t, crds[info.CRDKind])
			u := toCRDUnstructured(t, obj)
			if errs := apiservervalidation.ValidateCustomResource(nil, u, validator); len(errs) > 0 {
				t.Errorf("schema validation: %v", errs.ToAggregate())
			}
			if pruned := prunedFields(u, s); len(pruned) > 0 {
				t.Errorf("fields missing from the CRD schema (would be pruned): %v", pruned)
			}
		})
	}
	// The pruning check itself works: an unknown field is reported.
	s, _ := structural(t, crds[KindIPPool])
	u := toCRDUnstructured(t, samples[0])
	u["spec"].(map[string]any)["bogusField"] = 1
	if diff := cmp.Diff([]string{"spec.bogusField"}, prunedFields(u, s)); diff != "" {
		t.Errorf("pruning self-check mismatch (-want +got):\n%s", diff)
	}
	for _, k := range Kinds() {
		if !seen[k.Kind] {
			t.Errorf("sampleObjects has no %s", k.Kind)
		}
	}
}

// TestRandomObjectsFitCRDSchemas fills every field of every kind with random values and checks that the
// CRD schema knows every field the Go type can produce. Values are random, so only pruning (not value
// validation) is checked.
func TestRandomObjectsFitCRDSchemas(t *testing.T) {
	crds := loadCRDs(t)
	f := randfill.NewWithSeed(1).NilChance(0).NumElements(1, 2).MaxDepth(12).Funcs(
		func(p *float64, c randfill.Continue) { *p = float64(c.Intn(1000)) / 4 },
	)
	for _, k := range Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			s, _ := structural(t, crds[k.CRDKind])
			for i := 0; i < 20; i++ {
				obj := k.New()
				v := reflect.ValueOf(obj).Elem()
				if spec := v.FieldByName("Spec"); spec.IsValid() {
					f.Fill(spec.Addr().Interface())
				}
				if status := v.FieldByName("Status"); status.IsValid() {
					f.Fill(status.Addr().Interface())
				}
				obj.SetName("x")
				u := toCRDUnstructured(t, obj)
				if pruned := prunedFields(u, s); len(pruned) > 0 {
					t.Fatalf("fields missing from the CRD schema (would be pruned): %v", pruned)
				}
			}
		})
	}
}

func toCRDUnstructured(t *testing.T, obj Resource) map[string]any {
	t.Helper()
	js, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := json.Unmarshal(js, &u); err != nil {
		t.Fatal(err)
	}
	u["apiVersion"] = CRDAPIVersion
	return u
}

func prunedFields(u map[string]any, s *structuralschema.Structural) []string {
	cp := map[string]any{}
	for k, v := range u {
		cp[k] = v
	}
	return pruning.PruneWithOptions(cp, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
}
