package cli

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// etcdEnv starts (or reuses) the real embedded etcd, empties it, and returns the variables a user sets
// to point tortiectl at it.
func etcdEnv(t *testing.T) map[string]string {
	t.Helper()
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	return map[string]string{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": strings.Join(endpoints, ",")}
}

// TestEtcd runs every kind through apply, get and delete against a real etcd, chosen through
// DATASTORE_TYPE and ETCD_ENDPOINTS as a user would.
func TestEtcd(t *testing.T) {
	r := runner{t: t, env: etcdEnv(t)}
	roundTripKinds(t, r, nil)

	// Without DATASTORE_TYPE, ETCD_ENDPOINTS alone selects etcd; the CALICO_ prefix works.
	env := etcdEnv(t)
	r = runner{t: t, env: map[string]string{"CALICO_ETCD_ENDPOINTS": env["ETCD_ENDPOINTS"]}}
	r.must(0, "", "apply", "-f", "testdata/input/resources.yaml")
	out, _ := r.must(0, "", "get", "ippools", "-o", "wide")
	if !strings.Contains(out, "pool-b   10.20.0.0/16   false   Never      CrossSubnet") {
		t.Errorf("get ippools -o wide:\n%s", out)
	}
	// A bad third document stores nothing, in a real datastore too.
	_, stderr := r.must(1, "", "apply", "-f", "testdata/input/bad-third.yaml")
	if !strings.Contains(stderr, `bad-third.yaml: document 3: IPPool "bad-pool": spec.blockSize: 33 is out of range 20-32 for IPv4`) {
		t.Errorf("stderr: %s", stderr)
	}
	_, stderr = r.must(1, "", "get", "ippools", "good-1")
	if !strings.Contains(stderr, "resource does not exist: IPPool(good-1)") {
		t.Errorf("good-1 of the rejected file was stored: %s", stderr)
	}
}

// TestEtcdUnreachable points tortiectl at a port nobody listens on.
func TestEtcdUnreachable(t *testing.T) {
	r := runner{t: t, env: map[string]string{"ETCD_ENDPOINTS": "http://" + closedAddr(t)}}
	_, stderr := r.must(1, "", "--timeout", "1s", "get", "ippools")
	for _, want := range []string{"cannot reach the etcdv3 datastore at http://127.0.0.1:", "ETCD_ENDPOINTS is set", "DATASTORE_TYPE=kubernetes"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
}

// closedAddr returns a loopback address with no listener.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// kubeSynthesised are the kinds the Kubernetes datastore derives from Kubernetes objects instead of
// storing them as custom resources (see common/datastore/kube's package documentation).
var kubeSynthesised = map[string]string{
	"Node":             "the Kubernetes Node's annotations; the kubelet creates Nodes",
	"WorkloadEndpoint": "a pod; its pod must exist",
	"Profile":          "Namespaces and ServiceAccounts; read-only",
}

// TestKubernetes runs every kind through apply, get and delete against a real kube-apiserver with
// tortie's CRDs, chosen through DATASTORE_TYPE and KUBECONFIG as a user would.
func TestKubernetes(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	kb, err := kube.New(kube.Config{Kubeconfig: k.Kubeconfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.EnsureCRDs(t.Context(), os.DirFS(filepath.Join("..", "..", "installer", "kubernetes", "crds"))); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "kube-system"} {
		_, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	r := runner{t: t, env: map[string]string{"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": k.Kubeconfig()}}
	roundTripKinds(t, r, kubeSynthesised)

	// As a kubectl plugin the datastore defaults to kubernetes, even with ETCD_ENDPOINTS set.
	p := runner{t: t, argv0: "kubectl-tortie", env: map[string]string{"KUBECONFIG": k.Kubeconfig(), "ETCD_ENDPOINTS": "http://" + closedAddr(t)}}
	p.must(0, "", "apply", "-f", "testdata/input/resources.yaml")
	out, _ := p.must(0, "", "get", "networkpolicy", "-A", "-o", "wide")
	// Column widths depend on the other policies listed (a Kubernetes NetworkPolicy of the round trip
	// may still be there), so match the row's fields, not its spacing.
	if !regexp.MustCompile(`(?m)^kube-system\s+allow-dns\s+100\s+k8s-app == "kube-dns"$`).MatchString(out) {
		t.Errorf("get networkpolicy -A -o wide:\n%s", out)
	}
	p.must(0, "", "delete", "-f", "testdata/input/resources.yaml")

	// The synthesised kinds are readable: the namespace profile exists.
	out, _ = r.must(0, "", "get", "profile", "kns.shop", "-o", "yaml")
	if !strings.Contains(out, "name: kns.shop") {
		t.Errorf("get profile kns.shop:\n%s", out)
	}

	// A tortie Node is the Kubernetes Node: once the Node exists, apply updates its tortie fields.
	_, err = cs.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "node1", Labels: map[string]string{"kubernetes.io/os": "linux"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	path, want := sample(t, "Node")
	r.must(0, "", "apply", "-f", path)
	out, _ = r.must(0, "", "get", "node", "node1", "-o", "json")
	got, err := api.Decode([]byte(out), "get node")
	if err != nil {
		t.Fatal(err)
	}
	wantSpec, gotSpec := want.(*api.Node).Spec, got[0].(*api.Node).Spec
	if diff := cmp.Diff(wantSpec.BGP, gotSpec.BGP); diff != "" || gotSpec.IPv4VXLANTunnelAddr != wantSpec.IPv4VXLANTunnelAddr {
		t.Errorf("node1 after apply (-applied +read):\n%s\nvxlan %q", diff, gotSpec.IPv4VXLANTunnelAddr)
	}
	out, _ = r.must(0, "", "get", "nodes", "-o", "wide")
	if !strings.Contains(out, "node1   (64512)   192.168.0.10/24") {
		t.Errorf("get nodes -o wide:\n%s", out)
	}
	_, stderr := r.must(1, "", "delete", "node", "node1")
	if !strings.Contains(stderr, "not supported") {
		t.Errorf("delete node: %s", stderr)
	}
}

// TestBinary builds the real tortiectl and runs it as a subprocess against etcd, as a user's shell
// would, checking exit codes and both output streams.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	env := etcdEnv(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "tortiectl")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build tortiectl with: %v", err)
	}
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "github.com/tortie-net/tortie/cmd/tortiectl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	run := func(name string, stdin string, extraEnv []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), name, args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, extraEnv...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.WaitDelay = 10 * time.Second
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("running %s: %v", name, err)
		}
		return code, out.String(), errOut.String()
	}
	userEnv := []string{"DATASTORE_TYPE=etcdv3", "ETCD_ENDPOINTS=" + env["ETCD_ENDPOINTS"]}
	pool, err := os.ReadFile(filepath.Join("testdata", "kinds", "IPPool.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		stdin      string
		env        []string
		args       []string
		code       int
		stdout     string // exact, when not empty
		stderrHas  string
		stdoutHas  string
		stderrNone bool
	}{
		{name: "apply stdin", stdin: string(pool), env: userEnv, args: []string{"apply", "-f", "-"},
			stdout: "Successfully applied 1 'IPPool' resource(s)\n", stderrNone: true},
		{name: "get table", env: userEnv, args: []string{"get", "ippools"},
			stdout: "NAME                  CIDR            SELECTOR\ndefault-ipv4-ippool   10.244.0.0/16   all()\n", stderrNone: true},
		{name: "get json", env: userEnv, args: []string{"get", "ippool", "default-ipv4-ippool", "-o", "json"},
			stdoutHas: `"cidr": "10.244.0.0/16"`, stderrNone: true},
		{name: "create existing", stdin: string(pool), env: userEnv, args: []string{"create", "-f", "-"},
			code: 1, stderrHas: "Failed to create 'IPPool' resource: resource already exists: IPPool(default-ipv4-ippool)"},
		{name: "bad file", env: userEnv, args: []string{"apply", "-f", "testdata/input/bad-third.yaml"},
			code: 1, stderrHas: "document 3: IPPool \"bad-pool\": spec.blockSize: 33 is out of range 20-32 for IPv4"},
		{name: "usage", env: userEnv, args: []string{"get"}, code: 2, stderrHas: "Run 'tortiectl get --help' for usage."},
		{name: "unknown kind", env: userEnv, args: []string{"get", "ipool"}, code: 1, stderrHas: `unknown resource type "ipool"`},
		{name: "delete", env: userEnv, args: []string{"delete", "ippool", "default-ipv4-ippool"},
			stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderrNone: true},
		{name: "not found", env: userEnv, args: []string{"get", "ippool", "default-ipv4-ippool"},
			code: 1, stderrHas: "resource does not exist: IPPool(default-ipv4-ippool)"},
		{name: "version", env: userEnv, args: []string{"version"}, stdoutHas: "Client Version:", stderrHas: "ClusterInformation(default)"},
		{name: "unreachable", env: []string{"ETCD_ENDPOINTS=http://" + closedAddr(t)}, args: []string{"--timeout", "1s", "get", "ippools"},
			code: 1, stderrHas: "cannot reach the etcdv3 datastore"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(bin, tt.stdin, tt.env, tt.args...)
		switch {
		case code != tt.code:
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.name, code, tt.code, stdout, stderr)
		case tt.stdout != "" && stdout != tt.stdout:
			t.Errorf("%s: stdout %q, want %q", tt.name, stdout, tt.stdout)
		case tt.stdoutHas != "" && !strings.Contains(stdout, tt.stdoutHas):
			t.Errorf("%s: stdout %q does not contain %q", tt.name, stdout, tt.stdoutHas)
		case tt.stderrHas != "" && !strings.Contains(stderr, tt.stderrHas):
			t.Errorf("%s: stderr %q does not contain %q", tt.name, stderr, tt.stderrHas)
		case tt.stderrNone && stderr != "":
			t.Errorf("%s: unexpected stderr %q", tt.name, stderr)
		}
	}

	// The same binary under the kubectl plugin name.
	plugin := filepath.Join(dir, "kubectl-tortie")
	if runtime.GOOS == "windows" {
		plugin += ".exe"
	}
	if err := os.Link(bin, plugin); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := run(plugin, "", nil, "--help")
	if code != 0 || !strings.Contains(stdout, "kubectl tortie [command]") || !strings.Contains(stdout, "kubectl plugin") {
		t.Errorf("kubectl-tortie --help: exit %d\n%s", code, stdout)
	}
}
