package open

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/datastore"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	cfgFile := writeFile(t, "calicoctl.cfg", `apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata: {}
spec:
  datastoreType: etcdv3
  etcdEndpoints: "https://10.0.0.1:2379, https://10.0.0.2:2379"
  etcdCACertFile: /ca.pem
  etcdCertFile: /cert.pem
  etcdKeyFile: /key.pem
`)
	kubeFile := writeFile(t, "kube.cfg", `apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
spec:
  kubeconfig: /from/file
`)
	tests := []struct {
		name  string
		env   map[string]string
		flags Overrides
		want  Config
	}{{
		name: "nothing set: etcd default",
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{DefaultEtcdEndpoint},
			Reason: "none of DATASTORE_TYPE, ETCD_ENDPOINTS or KUBECONFIG is set", Source: "the default endpoint"},
	}, {
		name: "etcd endpoints select etcd",
		env:  map[string]string{"ETCD_ENDPOINTS": "http://a:2379,http://b:2379,", "KUBECONFIG": "/k", "ETCD_CA_CERT_FILE": "/ca"},
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{"http://a:2379", "http://b:2379"}, EtcdCACertFile: "/ca",
			Reason: "ETCD_ENDPOINTS is set", Source: "ETCD_ENDPOINTS"},
	}, {
		name: "kubeconfig selects kubernetes",
		env:  map[string]string{"KUBECONFIG": "/k1" + string(filepath.ListSeparator) + "/k2"},
		want: Config{Type: Kubernetes, Kubeconfig: "/k1" + string(filepath.ListSeparator) + "/k2", Reason: "KUBECONFIG is set", Source: "KUBECONFIG"},
	}, {
		name: "explicit type wins over endpoints",
		env:  map[string]string{"DATASTORE_TYPE": "kubernetes", "ETCD_ENDPOINTS": "http://a:2379", "KUBECONFIG": "/k"},
		want: Config{Type: Kubernetes, Kubeconfig: "/k", Reason: "DATASTORE_TYPE=kubernetes", Source: "KUBECONFIG"},
	}, {
		name: "TORTIE_ beats bare beats CALICO_ (common/config's one rule)",
		env: map[string]string{"DATASTORE_TYPE": "kubernetes", "CALICO_DATASTORE_TYPE": "kubernetes", "TORTIE_DATASTORE_TYPE": "etcdv3",
			"ETCD_ENDPOINTS": "http://bare:2379", "CALICO_ETCD_ENDPOINTS": "http://calico:2379"},
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{"http://bare:2379"}, Reason: "TORTIE_DATASTORE_TYPE=etcdv3", Source: "ETCD_ENDPOINTS"},
	}, {
		name: "CALICO_ form alone",
		env:  map[string]string{"CALICO_DATASTORE_TYPE": "etcdv3", "CALICO_ETCD_ENDPOINTS": "http://calico:2379"},
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{"http://calico:2379"}, Reason: "CALICO_DATASTORE_TYPE=etcdv3", Source: "CALICO_ETCD_ENDPOINTS"},
	}, {
		name: "CALICO_KUBECONFIG selects kubernetes",
		env:  map[string]string{"CALICO_KUBECONFIG": "/ck"},
		want: Config{Type: Kubernetes, Kubeconfig: "/ck", Reason: "CALICO_KUBECONFIG is set", Source: "CALICO_KUBECONFIG"},
	}, {
		name: "in cluster",
		env:  map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
		want: Config{Type: Kubernetes, InCluster: true, Reason: "it runs in a pod (KUBERNETES_SERVICE_HOST is set)", Source: "KUBERNETES_SERVICE_HOST"},
	}, {
		name:  "plugin default with home kubeconfig",
		env:   map[string]string{"HOME": "/home/u", "ETCD_ENDPOINTS": "http://a:2379"},
		flags: Overrides{DefaultType: Kubernetes},
		want: Config{Type: Kubernetes, Kubeconfig: filepath.Join("/home/u", ".kube", "config"),
			Reason: "it is the default for this command", Source: "the default kubeconfig"},
	}, {
		name:  "--kubeconfig flag",
		env:   map[string]string{"KUBECONFIG": "/env"},
		flags: Overrides{Kubeconfig: "/flag"},
		want:  Config{Type: Kubernetes, Kubeconfig: "/flag", Reason: "--kubeconfig is set", Source: "--kubeconfig"},
	}, {
		name:  "config file",
		env:   map[string]string{"ETCD_ENDPOINTS": "http://ignored:2379", "ETCD_USERNAME": "root"},
		flags: Overrides{ConfigFile: cfgFile, ConfigFileRequired: true},
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
			EtcdCACertFile: "/ca.pem", EtcdCertFile: "/cert.pem", EtcdKeyFile: "/key.pem", EtcdUsername: "root",
			Reason: "spec.datastoreType in " + cfgFile + " is etcdv3", Source: "spec.etcdEndpoints in " + cfgFile},
	}, {
		name:  "config file kubeconfig",
		flags: Overrides{ConfigFile: kubeFile},
		want: Config{Type: Kubernetes, Kubeconfig: "/from/file", Reason: "spec.kubeconfig in " + kubeFile + " is set",
			Source: "spec.kubeconfig in " + kubeFile},
	}, {
		name:  "missing default config file is ignored",
		flags: Overrides{ConfigFile: filepath.Join(t.TempDir(), "absent.cfg")},
		env:   map[string]string{"DATASTORE_TYPE": "etcd"},
		want: Config{Type: EtcdV3, EtcdEndpoints: []string{DefaultEtcdEndpoint}, Reason: "DATASTORE_TYPE=etcd",
			Source: "the default endpoint"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(envOf(tt.env), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		file    string // config file content; "" means no file
		missing bool   // name a config file that does not exist, as -c does
		want    string
	}{
		{name: "bad type", env: map[string]string{"DATASTORE_TYPE": "consul"}, want: `DATASTORE_TYPE: unknown datastore type "consul": use kubernetes or etcdv3`},
		{name: "cert without key", env: map[string]string{"ETCD_ENDPOINTS": "https://a:2379", "ETCD_CERT_FILE": "/c"}, want: "ETCD_CERT_FILE and ETCD_KEY_FILE must be set together"},
		{name: "no home", env: map[string]string{"DATASTORE_TYPE": "kubernetes"}, want: "set KUBECONFIG"},
		{name: "empty endpoints", env: map[string]string{"ETCD_ENDPOINTS": " , "}, want: "no etcd endpoints"},
		{name: "missing -c file", missing: true, want: "reading config file"},
		{name: "wrong kind", file: "apiVersion: projectcalico.org/v3\nkind: IPPool\n", want: `kind: "IPPool" is not supported; use CalicoAPIConfig`},
		{name: "unknown spec field", file: "kind: CalicoAPIConfig\nspec:\n  etcdEndpoint: x\n", want: "spec.etcdEndpoint: unknown field (known: datastoreType, etcdCACertFile"},
		{name: "unsupported field", file: "kind: CalicoAPIConfig\nspec:\n  k8sAPIEndpoint: https://x\n", want: "spec.k8sAPIEndpoint is not supported by tortie; put the API server in a kubeconfig"},
		{name: "bad yaml", file: "spec: [", want: "config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flags Overrides
			switch {
			case tt.file != "":
				flags = Overrides{ConfigFile: writeFile(t, "c.cfg", tt.file), ConfigFileRequired: true}
			case tt.missing:
				flags = Overrides{ConfigFile: filepath.Join(t.TempDir(), "nope.cfg"), ConfigFileRequired: true}
			}
			_, err := Resolve(envOf(tt.env), flags)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// pingBackend is a Backend whose Ping returns err; only Ping and Close are used by Open.
type pingBackend struct {
	datastore.Backend
	err    error
	closed bool
}

func (b *pingBackend) Ping(ctx context.Context) error { return b.err }
func (b *pingBackend) Close() error                   { b.closed = true; return nil }

func TestOpenUnreachable(t *testing.T) {
	be := &pingBackend{err: errors.New("connection refused")}
	saved := connectEtcd
	t.Cleanup(func() { connectEtcd = saved })
	connectEtcd = func(ctx context.Context, cfg Config, _ *slog.Logger) (datastore.Backend, error) { return be, nil }

	_, err := FromEnv(t.Context(), envOf(nil), Overrides{Timeout: time.Second})
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("FromEnv error = %v, want UnreachableError", err)
	}
	if !be.closed {
		t.Error("backend that failed its ping was not closed")
	}
	for _, want := range []string{
		"cannot reach the etcdv3 datastore at http://127.0.0.1:2379",
		"none of DATASTORE_TYPE, ETCD_ENDPOINTS or KUBECONFIG is set",
		"connection refused",
		"DATASTORE_TYPE=kubernetes with KUBECONFIG=",
		"ETCD_ENDPOINTS=",
		"-c FILE",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenConnectError(t *testing.T) {
	saved := connectKube
	t.Cleanup(func() { connectKube = saved })
	connectKube = func(ctx context.Context, cfg Config, _ *slog.Logger) (datastore.Backend, error) {
		return nil, errors.New("open /nope: no such file or directory")
	}
	_, err := FromEnv(t.Context(), envOf(map[string]string{"KUBECONFIG": "/nope"}), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the kubernetes datastore with kubeconfig /nope (chosen because KUBECONFIG is set): open /nope") {
		t.Fatalf("FromEnv error = %v", err)
	}
}
