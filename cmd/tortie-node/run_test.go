package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

func TestRunAndHealthUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "felix.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"linux dataplane refuses a bad iptables backend", map[string]string{"FELIX_IPTABLESBACKEND": "ebpf"}, []string{"run", "--dataplane", "linux"},
			exitError, linuxDataplaneBadBackend},
		{"cleanup of the fake dataplane", nil, []string{"cleanup", "--dataplane", "fake"}, exitOK, ""},
		{"windows dataplane needs a Windows node", nil, []string{"run", "--dataplane", "windows"}, exitError, "runs only on Windows nodes"},
		{"unknown dataplane", nil, []string{"run", "--dataplane", "ebpf"}, exitUsage, `--dataplane="ebpf"`},
		{"bad setting refuses to start", map[string]string{"FELIX_HEALTHPORT": "http"}, []string{"run", "--dataplane", "fake"},
			exitError, "environment variable FELIX_HEALTHPORT"},
		{"health needs a mode", nil, []string{"health"}, exitUsage, "exactly one of --live and --ready"},
		{"health with both modes", nil, []string{"health", "--live", "--ready"}, exitUsage, "exactly one"},
		{"health with nothing listening", map[string]string{"FELIX_HEALTHPORT": port}, []string{"health", "--live"}, exitError,
			"127.0.0.1:" + port},
		{"help lists run and health", nil, []string{"--help"}, exitOK, "health"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.HasPrefix(tt.name, "windows dataplane") {
				t.Skip("on Windows the windows dataplane is the real one (HNS)")
			}
			env := map[string]string{"FELIX_CONFIGFILE": cfg}
			for k, v := range tt.env {
				env[k] = v
			}
			code, stdout, stderr := runMain(t, env, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d; output %q does not contain %q", code, tt.code, stdout+stderr, tt.want)
			}
		})
	}
}

// runUntilReady starts `tortie-node run --dataplane fake`, waits until `tortie-node health --ready`
// succeeds, checks liveness, stops the agent and returns its log.
func runUntilReady(t *testing.T, env map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "felix.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env["FELIX_CONFIGFILE"] = cfg
	env["FELIX_HEALTHPORT"] = freePort(t)
	args := []string{"run", "--dataplane", "fake",
		"--nodename-file", filepath.Join(dir, "calico", "nodename"),
		"--tortie-nodename-file", filepath.Join(dir, "tortie", "nodename"),
		"--mtu-file", filepath.Join(dir, "calico", "mtu")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, args, Env{
			Stdout: logs, Stderr: logs, Getenv: func(k string) string { return env[k] },
			Interfaces: autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{{
				Name: "eth0", Up: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")},
			}}},
			Hostname: func() (string, error) { return "cmd-host", nil },
		})
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, stdout, _ := runMain(t, env, "health", "--ready")
		if code == exitOK {
			if !strings.Contains(stdout, "/readyz: ok") {
				t.Errorf("health --ready output %q", stdout)
			}
			break
		}
		select {
		case c := <-done:
			t.Fatalf("run exited with %d before it was ready:\n%s", c, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in time:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, stderr := runMain(t, env, "health", "--live"); code != exitOK {
		t.Errorf("health --live exit %d: %s", code, stderr)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("run exit %d after SIGTERM-like cancel:\n%s", code, logs)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"startup done","node":"cmd-host"`, `"msg":"datastore status"`, `"status":"InSync"`,
		`"msg":"dataplane applied for the first time"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the JSON log lacks %s:\n%s", want, out)
		}
	}
	return out
}

func TestRunEtcdReady(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	runUntilReady(t, map[string]string{
		"DATASTORE_TYPE":        "etcdv3",
		"ETCD_ENDPOINTS":        strings.Join(endpoints, ","),
		"CALICO_IPV4POOL_CIDR":  "10.81.0.0/16",
		"CALICO_IPV4POOL_VXLAN": "Always",
		"FELIX_IPV6SUPPORT":     "false",
	})
}

func TestRunKubernetesReady(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	ctx := t.Context()
	b, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close() //nolint:errcheck // test
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureCRDs(ctx, os.DirFS(filepath.Join(root, "installer", "kubernetes", "crds"))); err != nil {
		t.Fatalf("EnsureCRDs: %v", err)
	}
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cmd-host"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), "cmd-host", metav1.DeleteOptions{}) })
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, map[string]string{
		"DATASTORE_TYPE":       "kubernetes",
		"KUBECONFIG":           k.Kubeconfig(),
		"CALICO_IPV4POOL_CIDR": "10.82.0.0/16",
		"FELIX_IPV6SUPPORT":    "false",
	})
}
