package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/datastore/open"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// unclosable keeps the test's backend open across the Main calls of one scenario (Main closes it).
type unclosable struct{ datastore.Backend }

func (unclosable) Close() error { return nil }

// session runs tortiectl commands against one in-memory datastore and records a transcript.
type session struct {
	t          *testing.T
	be         *memory.Backend
	argv0      string
	openErr    error
	overrides  []open.Overrides // what each Main call asked the datastore opener for
	transcript strings.Builder
}

func newSession(t *testing.T) *session {
	t.Helper()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &session{t: t, be: memory.New(memory.WithClock(func() time.Time { return clock })), argv0: "tortiectl"}
}

// run runs one command line (split on spaces) with stdin, appends it to the transcript and returns the
// exit code and outputs.
func (s *session) run(stdin string, cmdline string) (code int, stdout, stderr string) {
	s.t.Helper()
	var out, errOut strings.Builder
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(string) string { return "" },
		Open: func(ctx context.Context, getenv func(string) string, o open.Overrides) (datastore.Backend, error) {
			s.overrides = append(s.overrides, o)
			if s.openErr != nil {
				return nil, s.openErr
			}
			return unclosable{s.be}, nil
		},
	}
	args := append([]string{s.argv0}, strings.Fields(cmdline)...)
	code = Main(s.t.Context(), args, env)
	fmt.Fprintf(&s.transcript, "$ %s %s", filepath.Base(s.argv0), cmdline)
	if stdin != "" {
		fmt.Fprintf(&s.transcript, " <<EOF\n%sEOF", stdin)
	}
	fmt.Fprintf(&s.transcript, "\n[exit %d]\n", code)
	if out.Len() > 0 {
		fmt.Fprintf(&s.transcript, "--- stdout\n%s", normalize(out.String()))
	}
	if errOut.Len() > 0 {
		fmt.Fprintf(&s.transcript, "--- stderr\n%s", normalize(errOut.String()))
	}
	s.transcript.WriteString("\n")
	return code, out.String(), errOut.String()
}

// must runs a command that has to exit with want.
func (s *session) must(want int, stdin, cmdline string) (stdout, stderr string) {
	s.t.Helper()
	code, stdout, stderr := s.run(stdin, cmdline)
	if code != want {
		s.t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", cmdline, code, want, stdout, stderr)
	}
	return stdout, stderr
}

var (
	uidRE     = regexp.MustCompile(`("?uid"?: "?)[0-9a-f-]{36}`)
	goLineRE  = regexp.MustCompile(`(?m)^(Go version: +).*$`)
	platRE    = regexp.MustCompile(`(?m)^(Platform: +).*$`)
	commitRE  = regexp.MustCompile(`(?m)^Git commit: .*\n`)
	clientVRE = regexp.MustCompile(`(?m)^(Client Version: +).*$`)
)

// normalize removes what differs between runs: generated uids, the Go version and platform.
func normalize(s string) string {
	s = uidRE.ReplaceAllString(s, "${1}00000000-0000-0000-0000-000000000000")
	s = goLineRE.ReplaceAllString(s, "${1}GOVERSION")
	s = platRE.ReplaceAllString(s, "${1}GOOS/GOARCH")
	s = commitRE.ReplaceAllString(s, "")
	s = clientVRE.ReplaceAllString(s, "${1}VERSION")
	return s
}

// golden compares the session's transcript with testdata/<name>.golden (rewritten with -update).
func (s *session) golden(name string) {
	s.t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got := s.transcript.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		s.t.Errorf("%s differs (-want +got; run with -update to accept):\n%s", path, diff)
	}
}

// skipGoldenOnWindows ends a test on Windows just before its golden comparison, which cannot match there.
func skipGoldenOnWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the golden transcript records Linux error texts and / paths; the checks before it ran")
	}
}

// count returns how many objects of kind the datastore holds.
func (s *session) count(kind string) int {
	s.t.Helper()
	objs, _, err := s.be.List(s.t.Context(), datastore.ListOptions{Kind: kind})
	if err != nil {
		s.t.Fatal(err)
	}
	return len(objs)
}

const in = "testdata/input/"

func TestApply(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+in+"resources.yaml")
	if got := s.count(api.KindIPPool); got != 3 {
		t.Errorf("after apply: %d IPPools, want 3", got)
	}
	// Applying again updates in place (and keeps creationTimestamp and uid).
	before, err := s.be.Get(t.Context(), datastore.Key{Kind: api.KindIPPool, Name: "pool-a"})
	if err != nil {
		t.Fatal(err)
	}
	s.must(0, "", "apply -f "+in+"resources.yaml")
	after, err := s.be.Get(t.Context(), datastore.Key{Kind: api.KindIPPool, Name: "pool-a"})
	if err != nil {
		t.Fatal(err)
	}
	if before.GetUID() != after.GetUID() || before.GetResourceVersion() == after.GetResourceVersion() {
		t.Errorf("re-apply: uid %s -> %s, revision %s -> %s; want same uid, new revision",
			before.GetUID(), after.GetUID(), before.GetResourceVersion(), after.GetResourceVersion())
	}
	// A stale resourceVersion makes apply a failed compare-and-swap.
	s.must(1, `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
  resourceVersion: "1"
spec:
  cidr: 10.10.0.0/16
`, "apply -f -")
	// A current one succeeds.
	s.must(0, fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
  resourceVersion: "%s"
spec:
  cidr: 10.10.0.0/16
  natOutgoing: true
`, after.GetResourceVersion()), "apply -f -")
	// A directory: its .yaml, .yml and .json files in name order.
	s.must(0, "", "apply -f "+in+"dir")
	s.golden("apply")
}

func TestCreate(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "create -f "+in+"resources.yaml")
	// Partial failure: pool-a exists, pool-new does not.
	s.must(1, `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-new}
spec: {cidr: 10.40.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.10.0.0/16}
`, "create -f -")
	if got := s.count(api.KindIPPool); got != 4 {
		t.Errorf("after partial create: %d IPPools, want 4", got)
	}
	s.must(0, "", "create --skip-exists -f "+in+"resources.yaml")
	s.golden("create")
}

func TestReplace(t *testing.T) {
	s := newSession(t)
	s.must(1, "", "replace -f "+in+"resources.yaml")
	if got := s.count(api.KindIPPool); got != 0 {
		t.Errorf("replace of missing resources stored %d IPPools", got)
	}
	s.must(0, "", "apply -f "+in+"resources.yaml")
	s.must(0, "", "replace -f "+in+"resources.yaml")
	s.must(1, `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
  resourceVersion: "2"
spec:
  cidr: 10.20.0.0/16
`, "replace -f -")
	s.golden("replace")
}

func TestDelete(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+in+"resources.yaml")
	s.must(0, "", "apply -f "+in+"dir")
	s.must(0, "", "delete ippool pool-a")
	s.must(0, "", "delete networkpolicy allow-dns -n kube-system")
	s.must(0, "", "delete globalnetworkpolicies/deny-all hep/node1-eth0")
	s.must(1, "", "delete pool pool-a pool-b")
	s.must(0, "", "delete --skip-not-exists -f "+in+"resources.yaml")
	s.must(1, "", "delete -f "+in+"dir")
	s.must(1, "", "delete nosuchkind foo")
	s.must(2, "", "delete ippool")
	if got := s.count(api.KindIPPool); got != 0 {
		t.Errorf("%d IPPools left", got)
	}
	s.golden("delete")
}

func TestGet(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+in+"resources.yaml")
	s.must(0, "", "apply -f "+in+"endpoints.yaml")
	s.must(0, "", "get ippools")
	s.must(0, "", "get ippool -o wide")
	s.must(0, "", "get pool pool-a -o yaml")
	s.must(0, "", "get IPPool pool-b -o json")
	s.must(0, "", "get ipp -o yaml")
	s.must(0, "", "get ippools -o json")
	s.must(0, "", "get ippools -o name")
	s.must(0, "", "get ippools pool-a pool-c")
	s.must(0, "", "get networkpolicy")
	s.must(0, "", "get networkpolicy -n kube-system")
	s.must(0, "", "get networkpolicies -A -o wide")
	s.must(0, "", "get nodes")
	s.must(0, "", "get nodes -o wide")
	s.must(0, "", "get wep -A")
	s.must(0, "", "get wep -n shop -o wide")
	s.must(0, "", "get bgpconfig")
	s.must(0, "", "get globalnetworkpolicies")
	s.must(0, "", "get globalnetworkpolicies -o json")
	s.must(0, "", "get globalnetworkpolicies -o yaml")
	s.must(1, "", "get ippool nosuch")
	s.must(1, "", "get ippool pool-a nosuch -o yaml")
	s.must(1, "", "get nosuchkind")
	s.must(2, "", "get ippools -o xml")
	s.must(2, "", "get")
	s.golden("get")
}

func TestBadInput(t *testing.T) {
	s := newSession(t)
	s.must(1, "", "apply -f "+in+"bad-third.yaml")
	s.must(1, "", "create -f "+in+"bad-yaml.yaml")
	s.must(1, "", "apply -f "+in+"unknown-field.yaml")
	s.must(1, "", "apply -f "+in+"unknown-kind.yaml")
	// Every bad document of every input is reported, and nothing is written.
	s.must(1, "", "apply -f "+in+"resources.yaml -f "+in+"bad-third.yaml -f "+in+"unknown-field.yaml")
	s.must(1, "", "apply -f "+in+"does-not-exist.yaml")
	s.must(1, "", "apply -f -")
	s.must(1, "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n", "apply -n b -f -")
	s.must(1, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p, namespace: a}\nspec: {cidr: 10.0.0.0/8}\n", "apply -f -")
	s.must(1, "apiVersion: projectcalico.org/v3\nkind: IPPool\nspec: {cidr: 10.0.0.0/8}\n", "apply -f -")
	s.must(1, "kind: IPPool\nspec: {cidr: 10.0.0.0/8}\n", "apply -f -")
	// Several problems in one file, found by decoding and by validation, in document order; a list
	// item is named by its position.
	s.must(1, "", "apply -f "+in+"many-problems.yaml")
	// Delete needs only kind and name: an invalid spec does not stop it (the resource is not there).
	s.must(1, "", "delete -f "+in+"bad-third.yaml")
	for _, k := range api.Kinds() {
		if n := s.count(k.Kind); n != 0 {
			t.Errorf("bad input stored %d %s resource(s)", n, k.Kind)
		}
	}
	skipGoldenOnWindows(t)
	s.golden("bad-input")
}

func TestUsage(t *testing.T) {
	s := newSession(t)
	s.must(2, "", "apply")
	s.must(2, "", "apply -f x.yaml extra")
	s.must(2, "", "apply --no-such-flag")
	s.must(2, "", "nosuchcommand")
	s.must(2, "", "delete -f x.yaml ippool foo")
	s.must(2, "", "--log-level loud version --client")
	s.must(0, "", "--allow-version-mismatch --log-level debug version --client")
	s.golden("usage")
}

func TestVersion(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "version")
	s.must(0, "", "apply -f "+in+"endpoints.yaml") // creates ClusterInformation, as calicoctl's first write does
	// ClusterInformation is read-only in the CLI; tortie-node completes it with its version and type.
	ci, err := s.be.Get(s.t.Context(), datastore.Key{Kind: api.KindClusterInformation, Name: "default"})
	if err != nil {
		t.Fatalf("the first write did not create ClusterInformation: %v", err)
	}
	ci.(*api.ClusterInformation).Spec.CalicoVersion = "v9.9.9-test"
	ci.(*api.ClusterInformation).Spec.ClusterType = "k8s,bgp"
	if _, err := s.be.Update(s.t.Context(), ci); err != nil {
		t.Fatal(err)
	}
	s.must(0, "", "version")
	s.openErr = errors.New("cannot reach the etcdv3 datastore at http://127.0.0.1:2379")
	s.must(0, "", "version")
	s.golden("version")
}

func TestUnreachable(t *testing.T) {
	s := newSession(t)
	s.openErr = &open.UnreachableError{
		Config: open.Config{Type: open.EtcdV3, EtcdEndpoints: []string{"http://127.0.0.1:2379"}, Reason: "none of DATASTORE_TYPE, ETCD_ENDPOINTS or KUBECONFIG is set"},
		Err:    errors.New("context deadline exceeded"),
	}
	s.must(1, "", "get ippools")
	// Validation comes first: a bad file is reported without contacting the datastore.
	s.must(1, "", "apply -f "+in+"bad-third.yaml")
	if len(s.overrides) != 1 {
		t.Errorf("datastore opened %d times, want 1 (not for the invalid file)", len(s.overrides))
	}
	s.golden("unreachable")
}

func TestPluginMode(t *testing.T) {
	s := newSession(t)
	s.argv0 = "/usr/local/bin/kubectl-tortie"
	s.must(0, "", "apply -f "+in+"resources.yaml")
	s.must(0, "", "get ippools")
	s.must(2, "", "get")
	if len(s.overrides) == 0 || s.overrides[0].DefaultType != open.Kubernetes {
		t.Errorf("plugin mode overrides = %+v, want DefaultType kubernetes", s.overrides)
	}
	s.golden("plugin")

	t2 := newSession(t)
	t2.must(0, "", "-c /nonexistent.cfg --kubeconfig /k --timeout 3s get ippools")
	want := open.Overrides{ConfigFile: "/nonexistent.cfg", ConfigFileRequired: true, Kubeconfig: "/k", Timeout: 3 * time.Second}
	got := t2.overrides[0]
	got.Logger = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overrides (-want +got):\n%s", diff)
	}
	t3 := newSession(t)
	t3.must(0, "", "get ippools")
	if o := t3.overrides[0]; o.ConfigFile != open.DefaultConfigFile || o.ConfigFileRequired || o.DefaultType != "" {
		t.Errorf("default overrides = %+v", o)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		argv0, name string
		plugin      bool
	}{
		{"tortiectl", "tortiectl", false},
		{"/usr/bin/tortiectl", "tortiectl", false},
		{"./kubectl-tortie", "kubectl tortie", true},
		{`C:\bin\kubectl-tortie.exe`, "kubectl tortie", true},
		{"kubectl-tortie.EXE", "kubectl tortie", true},
		{"kubectl-", "tortiectl", false},
		{"tortiectl.exe", "tortiectl", false},
	}
	for _, tt := range tests {
		name, plugin := Dispatch(tt.argv0)
		if name != tt.name || plugin != tt.plugin {
			t.Errorf("Dispatch(%q) = %q, %v; want %q, %v", tt.argv0, name, plugin, tt.name, tt.plugin)
		}
	}
}

func TestHelp(t *testing.T) {
	s := newSession(t)
	for _, c := range []string{"--help", "apply --help", "create --help", "replace --help", "delete --help", "get --help", "version --help"} {
		s.must(0, "", c)
	}
	s.golden("help")
}

// TestCalicoInitialization checks what calicoctl does around writes: the first write creates
// ClusterInformation and the built-in tiers; ClusterInformation is read-only; a policy in a tier that
// does not exist is refused.
func TestCalicoInitialization(t *testing.T) {
	s := newSession(t)
	ctx := t.Context()
	pol := "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {tier: security, selector: all()}\n"
	_, _, stderr := s.run(pol, "apply -f -")
	if !strings.Contains(stderr, `spec.tier: tier "security" does not exist`) {
		t.Errorf("policy in a missing tier: stderr %q", stderr)
	}
	for _, want := range []struct {
		name   string
		order  float64
		action api.Action
	}{{"default", 1e6, api.Deny}, {"kube-admin", 1000, api.Pass}, {"kube-baseline", 1e7, api.Pass}} {
		obj, err := s.be.Get(ctx, datastore.Key{Kind: api.KindTier, Name: want.name})
		if err != nil {
			t.Errorf("tier %s was not created: %v", want.name, err)
			continue
		}
		tier := obj.(*api.Tier)
		if *tier.Spec.Order != want.order || *tier.Spec.DefaultAction != want.action {
			t.Errorf("tier %s: order %v action %v, want %v %v", want.name, *tier.Spec.Order, *tier.Spec.DefaultAction, want.order, want.action)
		}
	}
	ci, err := s.be.Get(ctx, datastore.Key{Kind: api.KindClusterInformation, Name: "default"})
	if err != nil {
		t.Fatalf("ClusterInformation was not created: %v", err)
	}
	if spec := ci.(*api.ClusterInformation).Spec; len(spec.ClusterGUID) != 32 || spec.DatastoreReady == nil || !*spec.DatastoreReady {
		t.Errorf("ClusterInformation spec %+v, want a 32-digit GUID and datastoreReady true", spec)
	}
	_, _, stderr = s.run("apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: default}\nspec: {datastoreReady: false}\n", "apply -f -")
	if !strings.Contains(stderr, "ClusterInformation is read-only") {
		t.Errorf("apply of ClusterInformation: stderr %q", stderr)
	}
	s.must(0, "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n", "apply -f -")
	s.must(0, pol, "apply -f -")
	got, err := s.be.Get(ctx, datastore.Key{Kind: api.KindGlobalNetworkPolicy, Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()[api.LabelTier] != "security" {
		t.Errorf("stored policy labels %v, want %s=security", got.GetLabels(), api.LabelTier)
	}

	pool := "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: %s}\nspec: {cidr: %s}\n"
	s.must(0, fmt.Sprintf(pool, "a", "10.0.0.0/16"), "apply -f -")
	s.must(0, fmt.Sprintf(pool, "a", "10.0.0.0/16"), "apply -f -") // re-applying itself is no overlap
	_, _, stderr = s.run(fmt.Sprintf(pool, "b", "10.0.128.0/17"), "apply -f -")
	if !strings.Contains(stderr, "spec.cidr: 10.0.128.0/17 overlaps with IPPool(a) CIDR 10.0.0.0/16") {
		t.Errorf("overlapping pool: stderr %q", stderr)
	}
}
