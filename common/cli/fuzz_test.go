package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
)

// FuzzDecodeInput checks that decoding document by document (decodeInput) agrees with api.Decode on the
// whole input: the same objects when it succeeds, and the same first error when it fails.
func FuzzDecodeInput(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "input", "*.yaml"))
	kinds, _ := filepath.Glob(filepath.Join("testdata", "kinds", "*.yaml"))
	for _, p := range append(files, kinds...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("--- {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: t}}\n"))
	f.Add([]byte("---\n\n\n{apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: t}\n"))
	f.Add([]byte(`[{"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := api.Decode(data, "in")
		docs, errs := decodeInput(data, "in")
		if wantErr != nil {
			if len(errs) == 0 {
				t.Fatalf("api.Decode: %v; decodeInput: no error", wantErr)
			}
			if errs[0].Error() != wantErr.Error() {
				t.Fatalf("first error differs:\napi.Decode:  %v\ndecodeInput: %v", wantErr, errs[0])
			}
			return
		}
		if len(errs) > 0 {
			t.Fatalf("api.Decode succeeded; decodeInput: %v", errs)
		}
		var got []api.Resource
		for _, d := range docs {
			got = append(got, d.obj)
		}
		if len(want) == 0 {
			want = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("objects differ (-api.Decode +decodeInput):\n%s", diff)
		}
	})
}
