//go:build linux

package ipsets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/iptables"
)

func nsRunner(t *testing.T) iptables.Exec {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, ipset)")
	}
	n := cnitest.NewNS(t)
	return iptables.Exec{Do: func(f func() error) error { return n.Do(func(ns.NetNS) error { return f() }) }}
}

func sh(t *testing.T, r iptables.Runner, name string, args ...string) string {
	t.Helper()
	out, err := r.Run(t.Context(), name, args, nil)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func TestManager(t *testing.T) {
	r := nsRunner(t)
	sh(t, r, "ipset", "create", "other", "hash:ip")
	sh(t, r, "ipset", "add", "other", "192.0.2.1")
	before := sh(t, r, "ipset", "save")

	m := New(r, nil)
	want := map[string]Set{
		"tortie-4net": {Type: HashNet, Family: 4, Members: []string{"10.0.1.1", "10.1.0.0/16", "10.0.1.1"}},
		"tortie-6net": {Type: HashNet, Family: 6, Members: []string{"fd00::1", "fd00:1::/64"}},
		"tortie-4np":  {Type: HashIPPort, Family: 4, Members: []string{"10.0.1.1,tcp:80", "10.0.1.2,udp:53"}},
	}
	if err := m.SetAll(want); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		got, err := m.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(m.want, got); d != "" {
			t.Fatalf("%s: kernel differs (-want +got):\n%s", what, d)
		}
	}
	apply := func(what string) {
		t.Helper()
		if err := m.ApplyUpdates(t.Context()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := m.ApplyDeletions(t.Context()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	apply("first Apply")
	check("first Apply")
	w := m.Writes()
	m.QueueResync()
	apply("Apply after a resync")
	if m.Writes() != w {
		t.Errorf("an Apply with nothing to do wrote")
	}

	// A set in use by a rule is replaced by swap, and the rule keeps matching it.
	sh(t, r, "iptables-nft", "-A", "INPUT", "-m", "set", "--match-set", "tortie-4net", "src", "-j", "ACCEPT")
	want["tortie-4net"] = Set{Type: HashNet, Family: 4, Members: []string{"10.0.1.3"}}
	delete(want, "tortie-4np")
	if err := m.SetAll(want); err != nil {
		t.Fatal(err)
	}
	apply("membership change")
	check("membership change")

	// A large change rebuilds the set and swaps it in, while the rule keeps using it.
	var big, big2 []string
	for i := range 100 {
		big = append(big, fmt.Sprintf("10.1.%d.1", i))
		big2 = append(big2, fmt.Sprintf("10.2.%d.1", i))
	}
	for _, ms := range [][]string{big, big2} {
		want["tortie-4net"] = Set{Type: HashNet, Family: 4, Members: ms}
		if err := m.SetAll(want); err != nil {
			t.Fatal(err)
		}
		apply("large membership change")
		check("large membership change")
	}

	// Drift: a member deleted, a member added, a stale set of ours.
	sh(t, r, "ipset", "del", "tortie-6net", "fd00::1")
	sh(t, r, "ipset", "add", "tortie-4net", "10.9.9.9")
	sh(t, r, "ipset", "create", "tortie-stale", "hash:net")
	m.QueueResync()
	apply("repair")
	check("repair")

	// A member the kernel refuses: an error quoting the line.
	bad := map[string]Set{"tortie-bad": {Type: HashNet, Family: 4, Members: []string{"300.1.1.1"}}}
	if err := m.SetAll(bad); err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyUpdates(t.Context()); err == nil || !strings.Contains(err.Error(), "300.1.1.1") {
		t.Errorf("a refused member: %v, want an error quoting it", err)
	}
	if err := m.SetAll(map[string]Set{"x": {Type: HashNet}}); err == nil {
		t.Errorf("SetAll accepted a set without tortie's prefix")
	}

	sh(t, r, "iptables-nft", "-D", "INPUT", "-m", "set", "--match-set", "tortie-4net", "src", "-j", "ACCEPT")
	for i := range 2 {
		if err := m.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup %d: %v", i+1, err)
		}
		if d := cmp.Diff(before, sh(t, r, "ipset", "save")); d != "" {
			t.Errorf("after Cleanup %d `ipset save` differs from before tortie (-before +after):\n%s", i+1, d)
		}
	}
}

// TestSmallChanges: a few changed members go over netlink (no ipset exec: a runner that refuses
// `ipset restore` still succeeds) with both set types and families; with netlink off the same change
// goes through ipset restore; a netlink failure (the set destroyed behind the manager's back) falls
// back to reading the kernel and restoring.
func TestSmallChanges(t *testing.T) {
	r := nsRunner(t)
	for _, useNetlink := range []bool{true, false} {
		t.Run(fmt.Sprint("netlink=", useNetlink), func(t *testing.T) {
			m := New(r, nil)
			m.UseNetlink(useNetlink)
			want := map[string]Set{
				"tortie-4net": {Type: HashNet, Family: 4, Members: []string{"10.0.1.1", "10.1.0.0/16"}},
				"tortie-6net": {Type: HashNet, Family: 6, Members: []string{"fd00::1", "fd00:1::/64"}},
				"tortie-4np":  {Type: HashIPPort, Family: 4, Members: []string{"10.0.1.1,tcp:80", "10.0.1.2,udp:53"}},
				"tortie-6np":  {Type: HashIPPort, Family: 6, Members: []string{"fd00::1,sctp:9"}},
			}
			apply := func(what string) {
				t.Helper()
				if err := m.SetAll(want); err != nil {
					t.Fatal(err)
				}
				if err := m.ApplyUpdates(t.Context()); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got, err := m.Read(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(m.want, got); d != "" {
					t.Fatalf("%s: kernel differs (-want +got):\n%s", what, d)
				}
			}
			apply("create")
			restores := &countingRunner{Runner: r}
			m.run = restores
			want["tortie-4net"] = Set{Type: HashNet, Family: 4, Members: []string{"10.0.1.2", "10.1.0.0/16", "10.2.0.0/24"}}
			want["tortie-6net"] = Set{Type: HashNet, Family: 6, Members: []string{"fd00::2", "fd00:1::/64"}}
			want["tortie-4np"] = Set{Type: HashIPPort, Family: 4, Members: []string{"10.0.1.1,tcp:80", "10.0.1.2,udp:5353"}}
			want["tortie-6np"] = Set{Type: HashIPPort, Family: 6, Members: []string{"fd00::1,sctp:9", "fd00::2,tcp:443"}}
			apply("small changes")
			if got, want := restores.restores, map[bool]int{true: 0, false: 1}[useNetlink]; got != want {
				t.Errorf("small changes ran ipset restore %d times, want %d", got, want)
			}

			// Behind the manager's back: a set destroyed, so the next small change to it fails
			// (over netlink) and must be repaired by a read and a restore.
			sh(t, r, "ipset", "destroy", "tortie-4np")
			want["tortie-4np"] = Set{Type: HashIPPort, Family: 4, Members: []string{"10.0.1.1,tcp:80"}}
			if useNetlink {
				apply("netlink failure")
			}
			if err := m.Cleanup(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// countingRunner counts ipset restore runs.
type countingRunner struct {
	iptables.Runner
	restores int
}

func (c *countingRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	if name == "ipset" && len(args) > 0 && args[0] == "restore" {
		c.restores++
	}
	return c.Runner.Run(ctx, name, args, stdin)
}

func TestEntryOf(t *testing.T) {
	for _, c := range []struct{ typ, member, err string }{
		{HashNet, "10.0.0.1", ""},
		{HashNet, "10.0.0.0/8", ""},
		{HashNet, "fd00::/64", ""},
		{HashIPPort, "10.0.0.1,udp:53", ""},
		{HashNet, "10.0.0.1,tcp:80", "has a port"},
		{HashNet, "300.0.0.1", "300.0.0.1"},
		{HashIPPort, "10.0.0.1", "no proto:port"},
		{HashIPPort, "10.0.0.1,icmp:8", "not tcp, udp or sctp"},
		{HashIPPort, "10.0.0.1,tcp:70000", "port"},
	} {
		_, err := entryOf(c.typ, c.member)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("entryOf(%s, %q) = %v, want error containing %q", c.typ, c.member, err, c.err)
		}
	}
}

func TestDelta(t *testing.T) {
	m := New(iptables.Exec{}, nil)
	if err := m.SetAll(map[string]Set{"tortie-a": {Type: HashNet, Family: 4, Members: []string{"10.0.0.3", "10.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	kernel := m.want["tortie-a"].Members // as ApplyUpdates shares it with the kernel view
	if err := m.Delta("tortie-a", []string{"10.0.0.2", "10.0.0.1", "10.0.0.9"}, []string{"10.0.0.3", "10.0.0.4"}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"10.0.0.1", "10.0.0.2", "10.0.0.9"}, m.want["tortie-a"].Members); d != "" {
		t.Errorf("members after Delta (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"10.0.0.1", "10.0.0.3"}, kernel); d != "" {
		t.Errorf("Delta changed a shared slice (-want +got):\n%s", d)
	}
	if !m.dirty["tortie-a"] {
		t.Errorf("Delta did not mark the set for the next ApplyUpdates")
	}
	if err := m.Delta("tortie-b", []string{"10.0.0.1"}, nil); err == nil || !strings.Contains(err.Error(), "tortie-b") {
		t.Errorf("Delta of a set not wanted: %v, want an error naming it", err)
	}
}
