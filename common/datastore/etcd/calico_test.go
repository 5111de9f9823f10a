package etcd_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
)

// readKV reads a key/value dump: a key line, then its value line; # lines are comments.
func readKV(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines)%2 != 0 {
		t.Fatalf("%s: a key without a value", path)
	}
	var out [][2]string
	for i := 0; i < len(lines); i += 2 {
		out = append(out, [2]string{lines[i], lines[i+1]})
	}
	return out
}

// TestCalicoStoredPolicies reads policies stored by Calico and checks that tortie stores its own the same
// way: the tier label and the projectcalico.org/metadata annotation with the name, which tortie hides
// on reading as Calico does.
func TestCalicoStoredPolicies(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t)
	probe := datastore.Key{Kind: api.KindTier, Name: "x"}
	full, _ := b.Path(probe)
	bare, _ := etcd.KeyPath(probe)
	prefix := strings.TrimSuffix(full, bare)
	kvs := readKV(t, "testdata/calico-policies.kv")
	for _, kv := range kvs {
		if _, err := b.Client().Put(ctx, prefix+kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range kvs {
		var stored map[string]any
		if err := json.Unmarshal([]byte(kv[1]), &stored); err != nil {
			t.Fatal(err)
		}
		md := stored["metadata"].(map[string]any)
		ns, _ := md["namespace"].(string)
		key := datastore.Key{Kind: stored["kind"].(string), Namespace: ns, Name: md["name"].(string)}
		got, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		if _, ok := got.GetAnnotations()[api.AnnotationMetadata]; ok {
			t.Errorf("%s: the %s annotation is shown: %v", key, api.AnnotationMetadata, got.GetAnnotations())
		}
		tier, _ := api.PolicyTier(got)
		if got.GetLabels()[api.LabelTier] != tier {
			t.Errorf("%s: labels %v, want %s=%s", key, got.GetLabels(), api.LabelTier, tier)
		}

		// Written back by tortie, the value is what Calico stored (resourceVersion aside).
		got.SetResourceVersion("")
		if _, err := b.Delete(ctx, key, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Create(ctx, got); err != nil {
			t.Fatalf("Create %s: %v", key, err)
		}
		resp, err := b.Client().Get(ctx, prefix+kv[0])
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading back %s: %v", kv[0], err)
		}
		var rewritten map[string]any
		if err := json.Unmarshal(resp.Kvs[0].Value, &rewritten); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(stored, rewritten); d != "" {
			t.Errorf("%s: tortie's stored value differs from Calico's (-calico +tortie):\n%s", kv[0], d)
		}
	}

	// A policy tortie creates carries the same metadata.
	gnp := api.NewGlobalNetworkPolicy()
	gnp.Name = "tortie-made"
	gnp.Spec.Tier = "security"
	api.SetDefaults(gnp)
	if _, err := b.Create(ctx, gnp); err != nil {
		t.Fatal(err)
	}
	path, _ := etcd.KeyPath(datastore.Key{Kind: api.KindGlobalNetworkPolicy, Name: "tortie-made"})
	resp, err := b.Client().Get(ctx, prefix+path)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading %s: %v", path, err)
	}
	var v struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{api.AnnotationMetadata: `{"name":"tortie-made"}`}
	if d := cmp.Diff(want, v.Metadata.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{api.LabelTier: "security"}, v.Metadata.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
}
