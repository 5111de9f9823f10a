package kubeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sample = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveOrder(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		env      map[string]string
		explicit string
		o        Options
		want     Source
		wantErr  error
	}{
		{"explicit wins", map[string]string{"KUBECONFIG": "/b"}, "/a", Options{ExplicitFrom: "--kubeconfig"}, Source{"/a", "--kubeconfig"}, nil},
		{"tortie over kubeconfig", map[string]string{"KUBECONFIG": "/b", "TORTIE_KUBECONFIG": "/c"}, "", Options{}, Source{"/c", "TORTIE_KUBECONFIG"}, nil},
		{"KUBECONFIG", map[string]string{"KUBECONFIG": "/b"}, "", Options{}, Source{"/b", "KUBECONFIG"}, nil},
		{"CALICO_KUBECONFIG", map[string]string{"CALICO_KUBECONFIG": "/d"}, "", Options{}, Source{"/d", "CALICO_KUBECONFIG"}, nil},
		{"in cluster", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "", Options{}, Source{"", "in-cluster"}, nil},
		{"in cluster disabled", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "", Options{DisableCluster: true}, Source{}, ErrNone},
		{"none", nil, "", Options{}, Source{}, ErrNone},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := Resolve(env(tc.env), tc.explicit, tc.o)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("Resolve = %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLoadMergedPathsAndOptions(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	rc, src, err := Load(env(map[string]string{"KUBECONFIG": missing + string(filepath.ListSeparator) + a}), "",
		Options{UserAgent: "tortie-test", Timeout: 7 * time.Second, QPS: 5, Burst: 9})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://10.0.0.1:6443" || rc.BearerToken != "abc" || rc.UserAgent != "tortie-test" ||
		rc.Timeout != 7*time.Second || rc.QPS != 5 || rc.Burst != 9 {
		t.Errorf("loaded config = host %q token %q ua %q timeout %v qps %v burst %d", rc.Host, rc.BearerToken, rc.UserAgent, rc.Timeout, rc.QPS, rc.Burst)
	}
	if src.From != "KUBECONFIG" {
		t.Errorf("source = %+v", src)
	}
}

func TestLoadBadFileNamesIt(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("clusters: [not: a: kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(nil, bad, Options{ExplicitFrom: "--kubeconfig"})
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("error = %v, want it to name %s and --kubeconfig", err, bad)
	}
}
