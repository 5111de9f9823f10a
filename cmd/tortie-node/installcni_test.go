package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallCNICommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tortie-cni")
	if err := os.WriteFile(bin, []byte("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"KUBERNETES_NODE_NAME": "node-a", "TORTIE_CNI_MTU": "1440", "DATASTORE_TYPE": "etcdv3",
		"ETCD_ENDPOINTS": "http://10.0.0.1:2379", "CNI_CONF_NAME": "05-tortie.conflist",
		"CNI_NETWORK_CONFIG": `{"name":"k8s-pod-network","cniVersion":"1.0.0","plugins":[{"type":"tortie","datastore_type":"__DATASTORE_TYPE__",` +
			`"etcd_endpoints":"__ETCD_ENDPOINTS__","nodename":"__KUBERNETES_NODE_NAME__","mtu":__CNI_MTU__}]}`}
	var stderr bytes.Buffer
	code := Main(t.Context(), []string{"install-cni", "--binary", bin, "--bin-dir", filepath.Join(dir, "bin"), "--net-dir", filepath.Join(dir, "net.d")},
		Env{Stderr: &stderr, Getenv: func(k string) string { return vars[k] }})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "net.d", "05-tortie.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	p := list.Plugins[0]
	if p["nodename"] != "node-a" || p["mtu"] != float64(1440) || p["datastore_type"] != "etcdv3" || p["etcd_endpoints"] != "http://10.0.0.1:2379" {
		t.Errorf("plugin = %v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "net.d", "tortie-kubeconfig")); !os.IsNotExist(err) {
		t.Errorf("kubeconfig written outside a pod: %v", err)
	}

	// A bad value is a usage error naming the variable.
	vars["UPDATE_CNI_BINARIES"] = "maybe"
	stderr.Reset()
	code = Main(t.Context(), []string{"install-cni", "--binary", bin, "--bin-dir", filepath.Join(dir, "bin"), "--net-dir", filepath.Join(dir, "net.d")},
		Env{Stderr: &stderr, Getenv: func(k string) string { return vars[k] }})
	if code != exitUsage || !strings.Contains(stderr.String(), "UPDATE_CNI_BINARIES") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
