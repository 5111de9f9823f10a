package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/datastore/open"
)

// runner runs tortiectl in-process the way a user runs it: with environment variables only. With a nil
// open the real datastore selection (open.FromEnv) is used.
type runner struct {
	t     *testing.T
	argv0 string
	env   map[string]string
	open  func(ctx context.Context, getenv func(string) string, o open.Overrides) (datastore.Backend, error)
}

func (r runner) run(stdin string, args ...string) (code int, stdout, stderr string) {
	r.t.Helper()
	var out, errOut strings.Builder
	argv0 := r.argv0
	if argv0 == "" {
		argv0 = "tortiectl"
	}
	code = Main(r.t.Context(), append([]string{argv0}, args...), Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return r.env[k] },
		Open:   r.open,
	})
	return code, out.String(), errOut.String()
}

// must runs args and fails the test unless the exit code is want.
func (r runner) must(want int, stdin string, args ...string) (stdout, stderr string) {
	r.t.Helper()
	code, stdout, stderr := r.run(stdin, args...)
	if code != want {
		r.t.Fatalf("tortiectl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// sample reads testdata/kinds/<Kind>.yaml and returns its path and the object as it is expected back
// from the datastore: decoded and defaulted.
func sample(t *testing.T, kind string) (string, api.Resource) {
	t.Helper()
	path := filepath.Join("testdata", "kinds", kind+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("every registered kind needs a sample: %v", err)
	}
	objs, err := api.Decode(data, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", path, len(objs))
	}
	api.SetDefaults(objs[0])
	if err := api.Validate(objs[0]); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return path, objs[0]
}

// withoutServerFields clears what the datastore assigns, for comparing with what was applied.
func withoutServerFields(obj api.Resource) api.Resource {
	c := obj.DeepCopyObject().(api.Resource)
	c.SetResourceVersion("")
	c.SetUID("")
	c.SetCreationTimestamp(metav1.Time{})
	c.SetGeneration(0)
	c.SetManagedFields(nil)
	// The Kubernetes datastore labels block affinities as Calico does, for Calico's lookups by node.
	if _, ok := c.(*api.BlockAffinity); ok {
		l := maps.Clone(c.GetLabels())
		for _, k := range []string{"projectcalico.org/affinity-type", "projectcalico.org/hostname-hash", "projectcalico.org/ip-version"} {
			delete(l, k)
		}
		if len(l) == 0 {
			l = nil
		}
		c.SetLabels(l)
	}
	return c
}

// roundTripKinds applies, re-applies, reads back in every format, deletes and reads again the sample of
// every registered kind. unsupported lists the kinds the datastore cannot create, with why; for those the
// test checks that apply fails cleanly instead.
func roundTripKinds(t *testing.T, r runner, unsupported map[string]string) {
	for _, info := range api.Kinds() {
		t.Run(info.Kind, func(t *testing.T) {
			r := r
			r.t = t
			path, want := sample(t, info.Kind)
			if why, ok := unsupported[info.Kind]; ok {
				_, stderr := r.must(1, "", "apply", "-f", path)
				if !strings.Contains(stderr, "Failed to apply '"+info.Kind+"' resource") {
					t.Errorf("apply of unsupported %s: stderr %q", info.Kind, stderr)
				}
				t.Logf("%s: not stored natively (%s); apply fails with: %s", info.Kind, why, strings.TrimSpace(stderr))
				return
			}
			nsArgs := []string{}
			if info.Namespaced {
				nsArgs = []string{"-n", want.GetNamespace()}
			}
			getArgs := func(extra ...string) []string {
				return append(append([]string{"get", info.Plural, want.GetName()}, nsArgs...), extra...)
			}

			out, _ := r.must(0, "", "apply", "-f", path)
			if w := fmt.Sprintf("Successfully applied 1 '%s' resource(s)\n", info.Kind); out != w {
				t.Errorf("apply: stdout %q, want %q", out, w)
			}
			r.must(0, "", "apply", "-f", path) // now an update

			for _, format := range []string{"yaml", "json"} {
				out, _ := r.must(0, "", getArgs("-o", format)...)
				got, err := api.Decode([]byte(out), "get -o "+format)
				if err != nil {
					t.Fatalf("get -o %s output does not decode: %v\n%s", format, err, out)
				}
				if len(got) != 1 {
					t.Fatalf("get -o %s: %d objects", format, len(got))
				}
				if diff := cmp.Diff(withoutServerFields(want), withoutServerFields(got[0])); diff != "" {
					t.Errorf("get -o %s round trip (-applied +read):\n%s", format, diff)
				}
				if got[0].GetResourceVersion() == "" {
					t.Errorf("get -o %s: no resourceVersion", format)
				}
			}
			// The list form holds it too.
			listArgs := append([]string{"get", info.Plural, "-o", "json"}, nsArgs...)
			out, _ = r.must(0, "", listArgs...)
			items, err := api.Decode([]byte(out), "get list")
			if err != nil {
				t.Fatalf("list output does not decode: %v\n%s", err, out)
			}
			found := false
			for _, it := range items {
				found = found || it.GetName() == want.GetName()
			}
			if !found || !strings.Contains(out, `"kind": "`+info.Kind+`List"`) {
				t.Errorf("list does not hold %s or is not a %sList:\n%s", want.GetName(), info.Kind, out)
			}
			out, _ = r.must(0, "", getArgs("-o", "name")...)
			if w := strings.ToLower(info.Kind) + "/" + want.GetName() + "\n"; out != w {
				t.Errorf("get -o name: %q, want %q", out, w)
			}
			r.must(0, "", getArgs("-o", "wide")...)

			out, _ = r.must(0, "", "delete", "-f", path)
			if w := fmt.Sprintf("Successfully deleted 1 '%s' resource(s)\n", info.Kind); out != w {
				t.Errorf("delete: stdout %q, want %q", out, w)
			}
			_, stderr := r.must(1, "", getArgs()...)
			key := datastore.Key{Kind: info.Kind, Namespace: want.GetNamespace(), Name: want.GetName()}
			if w := "resource does not exist: " + keyString(key); !strings.Contains(stderr, w) {
				t.Errorf("get after delete: stderr %q, want it to contain %q", stderr, w)
			}
		})
	}
}

func TestRoundTripMemory(t *testing.T) {
	be := memory.New()
	r := runner{t: t, open: func(context.Context, func(string) string, open.Overrides) (datastore.Backend, error) {
		return unclosable{be}, nil
	}}
	roundTripKinds(t, r, nil)
}
