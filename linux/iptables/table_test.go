//go:build linux

package iptables

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/linux/cnitest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, iptables)")
	}
}

// nsRunner runs commands inside a fresh network namespace.
func nsRunner(t *testing.T) Exec {
	t.Helper()
	needRoot(t)
	n := cnitest.NewNS(t)
	return Exec{Do: func(f func() error) error { return n.Do(func(ns.NetNS) error { return f() }) }}
}

func sh(t *testing.T, r Runner, name string, args ...string) string {
	t.Helper()
	out, err := r.Run(t.Context(), name, args, nil)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// save returns iptables-save's output without comments and counters, for comparisons.
func save(t *testing.T, r Runner, b Backend, fam int, table string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(sh(t, r, Command(b, fam, "save"), "-t", table), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

var backends = []Backend{Legacy, NFT}

func TestTable(t *testing.T) {
	for _, b := range backends {
		for _, fam := range []int{4, 6} {
			t.Run(string(b)+"/ipv"+string(rune('0'+fam)), func(t *testing.T) { testTable(t, b, fam) })
		}
	}
}

func testTable(t *testing.T, b Backend, fam int) {
	r := nsRunner(t)
	ipt := Command(b, fam, "")
	// Another component's state: a chain, a rule in INPUT and a rule in FORWARD.
	sh(t, r, ipt, "-N", "OTHER-CHAIN")
	sh(t, r, ipt, "-A", "OTHER-CHAIN", "-p", "tcp", "--dport", "9", "-j", "ACCEPT")
	sh(t, r, ipt, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	sh(t, r, ipt, "-A", "FORWARD", "-j", "OTHER-CHAIN")
	before := save(t, r, b, fam, "filter")

	tbl := NewTable("filter", fam, b, r, nil)
	chains := map[string][]string{
		"tortie-INPUT": {"-p tcp --dport 80 -j ACCEPT", "-j tortie-sub"},
		"tortie-sub":   {"-p udp --dport 53 -j DROP"},
	}
	if err := tbl.SetChains(chains); err != nil {
		t.Fatal(err)
	}
	if err := tbl.SetHooks("INPUT", []string{"-j tortie-INPUT"}); err != nil {
		t.Fatal(err)
	}
	apply := func(what string) {
		t.Helper()
		if err := tbl.Apply(t.Context()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	apply("first Apply")
	got := save(t, r, b, fam, "filter")
	for _, want := range []string{"-A INPUT -m comment --comment \"tortie:", ":tortie-INPUT - ", ":tortie-sub - ",
		"-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -j OTHER-CHAIN"} {
		if !strings.Contains(got, want) {
			t.Errorf("after Apply the table lacks %q:\n%s", want, got)
		}
	}
	if first := strings.Split(got, "\n-A INPUT")[1]; !strings.Contains(first, "tortie-INPUT") {
		t.Errorf("the hook rule is not the first rule of INPUT:\n%s", got)
	}
	w := tbl.Writes()
	apply("second Apply")
	if tbl.Writes() != w {
		t.Errorf("an Apply with nothing new wrote")
	}
	tbl.QueueResync()
	apply("Apply after a resync with no drift")
	if tbl.Writes() != w {
		t.Errorf("a resync without drift wrote")
	}
	inSync := save(t, r, b, fam, "filter")

	// Drift: another rule inserted above the hook, a rule of an owned chain deleted, a stale owned chain.
	sh(t, r, ipt, "-I", "INPUT", "1", "-p", "tcp", "--dport", "23", "-j", "DROP")
	sh(t, r, ipt, "-D", "tortie-sub", "1")
	sh(t, r, ipt, "-N", "tortie-stale")
	tbl.QueueResync()
	apply("repair")
	got = save(t, r, b, fam, "filter")
	if first := strings.Split(got, "\n-A INPUT")[1]; !strings.Contains(first, "tortie-INPUT") {
		t.Errorf("the hook rule was not moved back to the top of INPUT:\n%s", got)
	}
	if !strings.Contains(got, "-A INPUT -p tcp -m tcp --dport 23 -j DROP") {
		t.Errorf("the foreign rule inserted above the hook is gone:\n%s", got)
	}
	if strings.Contains(got, "tortie-stale") || !strings.Contains(got, "-A tortie-sub") {
		t.Errorf("owned chains not repaired:\n%s", got)
	}
	sh(t, r, ipt, "-D", "INPUT", "-p", "tcp", "--dport", "23", "-j", "DROP")
	if d := cmp.Diff(inSync, save(t, r, b, fam, "filter")); d != "" {
		t.Errorf("after the repair the table differs from before the drift (-want +got):\n%s", d)
	}

	// A change rewrites only the changed chain, and an unreferenced chain is removed.
	if err := tbl.SetChains(map[string][]string{"tortie-INPUT": {"-p tcp --dport 81 -j ACCEPT"}}); err != nil {
		t.Fatal(err)
	}
	apply("change")
	got = save(t, r, b, fam, "filter")
	if strings.Contains(got, "tortie-sub") || !strings.Contains(got, "--dport 81") {
		t.Errorf("after the change:\n%s", got)
	}

	// A rule the kernel refuses: an error naming the line, and nothing applied.
	good := save(t, r, b, fam, "filter")
	if err := tbl.SetChains(map[string][]string{"tortie-INPUT": {"-p tcp --dport 82 -j ACCEPT"}, "tortie-bad": {"-j NO-SUCH-CHAIN"}}); err != nil {
		t.Fatal(err)
	}
	err := tbl.Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NO-SUCH-CHAIN") || !strings.Contains(err.Error(), "line ") {
		t.Fatalf("Apply of a refused rule: %v, want an error quoting the line", err)
	}
	if d := cmp.Diff(good, save(t, r, b, fam, "filter")); d != "" {
		t.Errorf("a refused transaction changed the table (-want +got):\n%s", d)
	}

	// Cleanup leaves exactly what was there before tortie.
	for i := range 2 {
		if err := tbl.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup %d: %v", i+1, err)
		}
		if d := cmp.Diff(before, save(t, r, b, fam, "filter")); d != "" {
			t.Errorf("after Cleanup %d the table differs from before tortie (-before +after):\n%s", i+1, d)
		}
	}
}

func TestDetectBackend(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   [][]string
		setting string
		want    Backend
	}{
		{"empty host: legacy", nil, "", Legacy},
		{"forced nft", nil, "NFT", NFT},
		{"forced legacy over kube markers in nft", [][]string{{"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}}, "Legacy", Legacy},
		{"kube marker in nft", [][]string{{"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
			{"iptables-legacy", "-A", "INPUT", "-j", "ACCEPT"}, {"iptables-legacy", "-A", "INPUT", "-j", "ACCEPT"}}, "auto", NFT},
		{"kube marker in legacy", [][]string{{"iptables-legacy", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"}}, "", Legacy},
		{"kube marker in nft's IPv6 nat table", [][]string{{"ip6tables-nft", "-t", "nat", "-N", "KUBE-KUBELET-CANARY"},
			{"iptables-legacy", "-A", "INPUT", "-j", "ACCEPT"}}, "", NFT},
		{"more rules in nft", [][]string{{"iptables-nft", "-A", "INPUT", "-j", "ACCEPT"}}, "", NFT},
		{"more rules in legacy", [][]string{{"ip6tables-legacy", "-A", "INPUT", "-j", "ACCEPT"},
			{"ip6tables-legacy", "-A", "INPUT", "-j", "ACCEPT"}, {"iptables-nft", "-A", "INPUT", "-j", "ACCEPT"}}, "", Legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := nsRunner(t)
			for _, c := range tt.setup {
				sh(t, r, c[0], c[1:]...)
			}
			// Exec probes with go-iptables; a runner without InNamespace reads only `*-save`.
			for _, run := range []Runner{r, onlyRun{r}} {
				got, err := DetectBackend(ctx, run, tt.setting)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("DetectBackend(%T) = %s, want %s", run, got, tt.want)
				}
			}
		})
	}
	if _, err := DetectBackend(ctx, Exec{}, "ebpf"); err == nil || !strings.Contains(err.Error(), "FELIX_IPTABLESBACKEND") {
		t.Errorf("a bad setting: %v, want an error naming FELIX_IPTABLESBACKEND", err)
	}
}

// onlyRun hides a runner's InNamespace.
type onlyRun struct{ Runner }
