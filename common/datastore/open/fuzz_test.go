package open

import (
	"strings"
	"testing"
)

// FuzzParseConfigFile feeds arbitrary bytes to the CalicoAPIConfig parser: it must not panic, and what it
// accepts must resolve without error or be rejected by Resolve with a message.
func FuzzParseConfigFile(f *testing.F) {
	f.Add([]byte("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: http://a:2379\n"))
	f.Add([]byte("kind: CalicoAPIConfig\nspec:\n  kubeconfig: /k\n"))
	f.Add([]byte(`{"kind": "CalicoAPIConfig", "spec": {"datastoreType": "kubernetes"}}`))
	f.Add([]byte("spec: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := parseConfigFile(data, "fuzz.cfg")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.cfg") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, v := range []string{spec.DatastoreType, spec.EtcdEndpoints, spec.Kubeconfig} {
			if v != strings.TrimSpace(v) {
				t.Fatalf("value %q not trimmed", v)
			}
		}
	})
}
