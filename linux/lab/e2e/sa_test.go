//go:build linux

package e2e

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/linux/lab"
)

// tortiectlGet prints resources of the lab's datastore as YAML.
func tortiectlGet(t *testing.T, l *labT, args ...string) string {
	t.Helper()
	lb, err := lab.Open(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	var out bytes.Buffer
	if code := lb.Tortiectl(t.Context(), append([]string{"get"}, append(args, "-o", "yaml")...), nil, &out, &out); code != 0 {
		t.Fatalf("tortiectl get %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	}
	return out.String()
}

// wantIn checks that text holds each of subs, whitespace runs compared as one space.
func wantIn(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	flat := strings.Join(strings.Fields(text), " ")
	for _, s := range subs {
		if !strings.Contains(flat, strings.Join(strings.Fields(s), " ")) {
			t.Errorf("%s lacks %q:\n%s", what, s, text)
		}
	}
}

// TestServiceAccountsAndProfiles: `sa add/label/del`, `pod add --sa` and `pod profiles` write what
// Calico's CNI plugin and Kubernetes datastore would (the ksa. profile with pcsa. labels; the
// endpoint's serviceAccountName, serviceaccount label and profiles); bad input is refused leaving
// the lab as it was; `probe --source-port` shares one source port across parallel probes.
func TestServiceAccountsAndProfiles(t *testing.T) {
	l := newLab(t, "--nodes", "1", "--pod-cidr", "10.78.0.0/16")
	l.must("", "ns", "add", "x", "--label", "ns=x")
	l.must("", "sa", "add", "x/db", "--label", "role=db")
	l.must("", "pod", "add", "x/a", "--label", "pod=a", "--sa", "db")
	l.must("", "pod", "add", "x/b", "--label", "pod=b")

	wantIn(t, "Profile ksa.x.db", tortiectlGet(t, l, "profile", "ksa.x.db"),
		"pcsa.role: db", "pcsa.projectcalico.org/name: db")
	wep := tortiectlGet(t, l, "workloadendpoint", "-n", "x")
	wantIn(t, "x's WorkloadEndpoints", wep, "serviceAccountName: db", "projectcalico.org/serviceaccount: db",
		"- kns.x - ksa.x.db")

	before := l.state()
	bad := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sa", "add", "q/db"}, 1, `no namespace "q"`},
		{[]string{"sa", "add", "x/db"}, 1, "exists"},
		{[]string{"sa", "add", "x"}, 2, "NAMESPACE/NAME"},
		{[]string{"sa", "add", "x/Bad_SA"}, 2, "service account name"},
		{[]string{"sa", "label", "x/nope", "a=b"}, 1, `no service account "x/nope"`},
		{[]string{"sa", "add", "x/web", "--label", "bad key=1"}, 2, `key "bad key"`},
		{[]string{"pod", "add", "x/c", "--sa", "nope"}, 1, "`tortie-lab sa add x/nope` first"},
		{[]string{"pod", "profiles", "x/a"}, 2, "--default"},
		{[]string{"pod", "profiles", "x/a", "p", "--default"}, 2, "not both"},
		{[]string{"pod", "profiles", "x/a", "Bad_Profile"}, 2, `profile "Bad_Profile"`},
		{[]string{"pod", "profiles", "x/a", "p", "p"}, 1, "listed twice"},
		{[]string{"pod", "profiles", "x/zz", "p"}, 1, `no pod "x/zz"`},
		{[]string{"probe", "--source-port", "70000"}, 2, "source-port"},
	}
	for _, b := range bad {
		_, errOut, code := l.run("", b.args...)
		if code != b.code || !strings.Contains(errOut, b.msg) {
			t.Errorf("tortie-lab %s: exit %d, stderr %q; want exit %d and %q", strings.Join(b.args, " "), code, errOut, b.code, b.msg)
		}
	}
	if after := l.state(); !bytes.Equal(before, after) {
		t.Errorf("bad input changed the lab's state:\n%s", cmp.Diff(string(before), string(after)))
	}

	// Profiles replaced, then the pod's own put back; labels of the service account replaced.
	l.must("", "pod", "profiles", "x/a", "extra", "kns.x")
	wantIn(t, "x's WorkloadEndpoints after pod profiles", tortiectlGet(t, l, "workloadendpoint", "-n", "x"), "- extra - kns.x")
	l.must("", "pod", "profiles", "x/a", "--default")
	wantIn(t, "x's WorkloadEndpoints after pod profiles --default", tortiectlGet(t, l, "workloadendpoint", "-n", "x"), "- kns.x - ksa.x.db")
	l.must("", "sa", "label", "x/db", "role=cache")
	wantIn(t, "Profile ksa.x.db after sa label", tortiectlGet(t, l, "profile", "ksa.x.db"), "pcsa.role: cache")

	// A service-account selector reaches the pod through the profile's labels.
	l.must(`apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: from-cache, namespace: x}
spec: {selector: all(), ingress: [{action: Allow, source: {serviceAccounts: {selector: role == 'cache'}}}]}
`, "apply", "-f", "-")
	l.must("", "sync")
	if got := l.probe("--port", "80"); l.dataplane() == "linux" && !slices.Equal(got.Results["TCP/80"], []string{"..", "X."}) {
		t.Errorf("probe TCP/80 with ingress only from service accounts role == cache (x/a runs as x/db): %v", got.Results)
	}
	// Many probes in parallel from one fixed source port.
	if got := l.probe("--source-port", "40000"); l.dataplane() == "linux" && !slices.Equal(got.Results["UDP/81"], []string{"..", "X."}) {
		t.Errorf("probe --source-port 40000: %v", got.Results)
	}

	// ns del takes the namespace's service accounts (and their profiles) with it.
	l.must("", "sa", "add", "x/web")
	l.must("", "pod", "del", "x/a")
	l.must("", "pod", "del", "x/b")
	l.must("", "ns", "del", "x")
	if out := tortiectlGet(t, l, "profile"); strings.Contains(out, "ksa.x.") {
		t.Errorf("profiles of x's service accounts left after ns del x:\n%s", out)
	}
	l.must("", "ns", "add", "x")
	l.must("", "sa", "add", "x/db")
	l.must("", "sa", "del", "x/db")
	if out := tortiectlGet(t, l, "profile"); strings.Contains(out, "ksa.x.db") {
		t.Errorf("Profile ksa.x.db left after sa del:\n%s", out)
	}
}
