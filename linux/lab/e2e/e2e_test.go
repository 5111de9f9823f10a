//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/tortie-net/tortie/linux/lab"
)

var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			fmt.Println("e2e: not root; every test skips")
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "tortie-e2e-bin-")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := moduleRoot()
		if err != nil {
			fmt.Println(err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/tortie-lab", "./cmd/tortie-node", "./cmd/tortie-cni")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Printf("e2e: building the binaries: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(data, []byte("module github.com/tortie-net/tortie\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod of github.com/tortie-net/tortie not found above %s", dir)
		}
		dir = parent
	}
}

// labT drives one lab through the tortie-lab binary.
type labT struct {
	t   *testing.T
	dir string
	ph  *phases // where the conformance run's time goes (nil: not counted)
}

// newLab brings a lab up with the given `up` flags and takes it down at cleanup, checking that down
// leaves nothing.
func newLab(t *testing.T, upArgs ...string) *labT {
	t.Helper()
	if binDir == "" {
		t.Skip("the lab needs root (network namespaces, a bridge)")
	}
	l := &labT{t: t, dir: filepath.Join(t.TempDir(), "lab")}
	if _, errOut, code := l.run("", append([]string{"up"}, upArgs...)...); code != 0 {
		l.run("", "down")
		t.Fatalf("tortie-lab up %s: exit %d\n%s", strings.Join(upArgs, " "), code, errOut)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _, _ := l.run("", "status")
			t.Logf("lab status at failure:\n%s", out)
		}
		if _, errOut, code := l.run("", "down"); code != 0 {
			t.Errorf("tortie-lab down: exit %d\n%s", code, errOut)
		}
		assertNothingLeft(t, l.dir)
	})
	return l
}

func (l *labT) run(stdin string, args ...string) (stdout, stderr string, code int) {
	l.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tortie-lab"), args...)
	cmd.Env = append(os.Environ(), "TORTIE_LAB_DIR="+l.dir, "TORTIE_LAB_BIN_DIR="+binDir)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		l.t.Fatalf("tortie-lab %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}

func (l *labT) must(stdin string, args ...string) string {
	l.t.Helper()
	out, errOut, code := l.run(stdin, args...)
	if code != 0 {
		l.t.Fatalf("tortie-lab %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (l *labT) state() []byte {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.dir, "state.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	return data
}

func (l *labT) dataplane() string {
	l.t.Helper()
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		l.t.Fatal(err)
	}
	return s.Dataplane
}

type matrix struct {
	Pods    []string            `json:"pods"`
	Results map[string][]string `json:"results"`
}

func (l *labT) probe(args ...string) matrix {
	l.t.Helper()
	var m matrix
	if !slices.Contains(args, "--timeout") {
		// Generous: an allowed probe returns at once, and make test runs other suites beside this one.
		args = append(args, "--timeout", "3s")
	}
	out := l.must("", append([]string{"probe", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		l.t.Fatalf("probe --json printed %q: %v", out, err)
	}
	return m
}

// assertNothingLeft: no lab namespace, link, iptables rule, process or state directory.
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), lab.NamePrefix) {
				t.Errorf("network namespace %s left after down", e.Name())
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range links {
		if strings.HasPrefix(ln.Attrs().Name, lab.NamePrefix) {
			t.Errorf("link %s left after down", ln.Attrs().Name)
		}
	}
	if out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output(); err == nil && strings.Contains(string(out), lab.RuleComment) {
		t.Errorf("iptables rule left after down:\n%s", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("state directory %s left after down", dir)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(dir+"/")) {
			if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !bytes.Contains(st, []byte(") Z ")) {
				t.Errorf("process %s left after down: %q", e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	}
}

// TestLab: the lab's own contract on one node, with whatever dataplane tortie-node has: pods through
// the real CNI plugin reach each other and answer as themselves, bad input is refused with exit 2 or 1
// leaving the state as it was, apply/delete/trace/sync/status work, pod del releases the address.
func TestLab(t *testing.T) {
	l := newLab(t, "--nodes", "2", "--pod-cidr", "10.77.0.0/16")
	l.must("", "ns", "add", "x", "--label", "ns=x")
	l.must("", "ns", "add", "y", "--label", "ns=y")
	l.must("", "pod", "add", "x/a", "--node", "1", "--label", "pod=a")
	l.must("", "pod", "add", "x/b", "--node", "1", "--label", "pod=b", "--ip", "10.77.3.4")
	l.must("", "pod", "add", "y/a", "--node", "1", "--label", "pod=a", "--port", "web=8080/TCP")
	l.must("", "sync")

	// Same-node pods reach each other without policy; y/a serves only 8080/TCP.
	got := l.probe()
	want := matrix{Pods: []string{"x/a", "x/b", "y/a"}, Results: map[string][]string{
		"TCP/80": {"..-", "..-", "..-"}, "TCP/81": {"..-", "..-", "..-"},
		"UDP/80": {"..-", "..-", "..-"}, "UDP/81": {"..-", "..-", "..-"},
		"TCP/8080": {"--.", "--.", "--."},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probe (-want +got):\n%s", diff)
	}
	if got := l.probe("--port", "web"); !slices.Equal(got.Results["web"], []string{"--.", "--.", "--."}) {
		t.Errorf("probe --port web: %v", got.Results)
	}
	status := l.must("", "status")
	for _, s := range []string{"10.77.3.4", "x/b", "ready=true"} {
		if !strings.Contains(status, s) {
			t.Errorf("status lacks %q:\n%s", s, status)
		}
	}

	// Bad input: refused, non-zero, the state unchanged.
	before := l.state()
	bad := []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"pod", "add", "x/a"}, "", 1, "pod x/a exists"},
		{[]string{"pod", "add", "q/a"}, "", 1, `no namespace "q"`},
		{[]string{"pod", "add", "x/c", "--node", "9"}, "", 1, "the lab has nodes 1 to 2"},
		{[]string{"pod", "add", "x/c", "--label", "bad key=1"}, "", 2, `key "bad key"`},
		{[]string{"pod", "add", "x/c", "--port", "web=99999/TCP"}, "", 2, "not a number from 1 to 65535"},
		{[]string{"pod", "add", "x/c", "--port", "web=80/SCTP"}, "", 2, "TCP or UDP"},
		{[]string{"pod", "add", "x/c", "--ip", "192.168.9.9"}, "", 1, "outside the lab's pod CIDR"},
		{[]string{"pod", "add", "Bad/c"}, "", 2, "namespace"},
		{[]string{"pod", "label", "x/zz", "a=b"}, "", 1, `no pod "x/zz"`},
		{[]string{"ns", "del", "x"}, "", 1, "still has pods"},
		{[]string{"ns", "add", "x"}, "", 1, "exists"},
		{[]string{"up"}, "", 1, "already up"},
		{[]string{"probe", "--proto", "ICMP", "--port", "80"}, "", 2, "TCP or UDP"},
		{[]string{"apply", "-f", "-"}, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.9.0.0/33}\n", 1, "nothing was applied"},
		{[]string{"apply"}, "", 2, "-f FILE"},
		{[]string{"frobnicate"}, "", 2, "unknown command"},
	}
	for _, b := range bad {
		_, errOut, code := l.run(b.stdin, b.args...)
		if code != b.code || !strings.Contains(errOut, b.msg) {
			t.Errorf("tortie-lab %s: exit %d, stderr %q; want exit %d and %q", strings.Join(b.args, " "), code, errOut, b.code, b.msg)
		}
	}
	if after := l.state(); !bytes.Equal(before, after) {
		t.Errorf("bad input changed the lab's state:\n%s", cmp.Diff(string(before), string(after)))
	}

	// Policy through the lab's datastore: the agents compute it, trace explains it.
	l.must(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}}
`, "apply", "-f", "-")
	l.must("", "sync")
	tr := l.must("", "trace", "x/b", "x/a", "--port", "80", "--proto", "TCP")
	if !strings.Contains(tr, "Verdict: Deny") || !strings.Contains(tr, "knp.default.deny") {
		t.Errorf("trace:\n%s", tr)
	}
	if l.dataplane() == "linux" {
		// A pod reaching itself is looped back inside its namespace: no policy sees it.
		if got := l.probe("--port", "80"); !slices.Equal(got.Results["TCP/80"], []string{".X-", "X.-", "XX-"}) {
			t.Errorf("probe --port 80 after deny-all in x: %v", got.Results)
		}
	}
	l.must("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n", "delete", "-f", "-")

	// pod del releases the address: a new pod may take it.
	l.must("", "pod", "del", "x/b")
	l.must("", "pod", "add", "x/c", "--node", "2", "--ip", "10.77.3.4")
	if out := l.must("", "status"); !strings.Contains(out, "x/c") || strings.Contains(out, "x/b ") {
		t.Errorf("status after replacing x/b by x/c:\n%s", out)
	}
	l.must("", "pod", "label", "x/c", "pod=c", "tier=web")
	l.must("", "ns", "label", "y", "ns=y", "team=blue")
	l.must("", "pod", "del", "y/a")
	l.must("", "ns", "del", "y")
	l.must("", "sync")
}

// TestDownAfterCrash: a lab whose datastore died and whose state file is gone is still removed
// completely by down.
func TestDownAfterCrash(t *testing.T) {
	l := newLab(t, "--nodes", "1")
	l.must("", "ns", "add", "x")
	l.must("", "pod", "add", "x/a")
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	if p, err := os.FindProcess(s.Etcd.PID); err == nil {
		_ = p.Kill()
	}
	if err := os.Remove(filepath.Join(l.dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := l.run("", "status"); code == 0 || !strings.Contains(errOut, "no lab is up") {
		t.Errorf("status without state: exit %d, %q", code, errOut)
	}
	if _, errOut, code := l.run("", "up"); code == 0 || !strings.Contains(errOut, "tortie-lab down") {
		t.Errorf("up over leftovers: exit %d, %q; want a refusal pointing at down", code, errOut)
	}
	// The cleanup's down must remove the agent, the pod's server and every namespace and link.
}

// TestDemo: the README's first command runs to the end, says what each step does, prints a matrix
// after each, and leaves nothing behind. With the Linux dataplane the matrices are checked too.
func TestDemo(t *testing.T) {
	if binDir == "" {
		t.Skip("the lab needs root (network namespaces, a bridge)")
	}
	l := &labT{t: t, dir: filepath.Join(t.TempDir(), "lab")}
	out, errOut, code := l.run("", "demo")
	t.Cleanup(func() {
		if code != 0 {
			l.run("", "down")
		}
		assertNothingLeft(t, l.dir)
	})
	if code != 0 {
		t.Fatalf("tortie-lab demo: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []string{"No policy yet", "nothing reaches x", "Deleting the three policies", "Removing the lab"} {
		if !strings.Contains(out, s) {
			t.Errorf("demo output lacks %q:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "TCP/80 (rows from"); n != 5 {
		t.Errorf("demo printed %d TCP/80 matrices, want 5:\n%s", n, out)
	}
	if !strings.Contains(out, "fake dataplane") {
		// Enforced: in the second step's matrix no pod of y or z reaches x.
		_, step2, _ := strings.Cut(out, "nothing reaches x any more")
		for _, src := range []string{"y/a", "y/b", "y/c", "z/a", "z/b", "z/c"} {
			if !strings.Contains(step2, "\n"+src+" XXX") {
				t.Errorf("with the Linux dataplane the deny-ingress step must block %s → x:\n%s", src, out)
			}
		}
	}
}

// TestDebianEtcd: --datastore etcd runs Debian's etcd (TORTIE_ETCD or PATH) instead of the embedded one.
func TestDebianEtcd(t *testing.T) {
	etcdBin := os.Getenv("TORTIE_ETCD")
	if etcdBin == "" {
		etcdBin, _ = exec.LookPath("etcd")
	}
	if etcdBin == "" {
		t.Skip("no etcd binary (apt-get install etcd-server, or set TORTIE_ETCD)")
	}
	l := newLab(t, "--nodes", "1", "--datastore", "etcd")
	l.must("", "ns", "add", "x")
	l.must("", "pod", "add", "x/a")
	l.must("", "pod", "add", "x/b")
	l.must("", "sync")
	if got := l.probe("--port", "81", "--proto", "UDP"); !slices.Equal(got.Results["UDP/81"], []string{"..", ".."}) {
		t.Errorf("probe UDP/81 on Debian's etcd: %v", got.Results)
	}
	if out := l.must("", "status"); !strings.Contains(out, "(etcd, pid") {
		t.Errorf("status does not show Debian's etcd:\n%s", out)
	}
}
