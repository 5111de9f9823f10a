//go:build linux

package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/dataplane"
	"github.com/tortie-net/tortie/linux/iptables"
)

// linuxDataplaneBadBackend is what `run --dataplane linux` says of FELIX_IPTABLESBACKEND=ebpf.
const linuxDataplaneBadBackend = `FELIX_IPTABLESBACKEND="ebpf": want Auto, Legacy or NFT`

// hostState is what cleanup must leave as it found it: both backends' rules and the IP sets.
func hostState(t *testing.T, r iptables.Runner) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables-nft-save"}, {"ip6tables-nft-save"}, {"iptables-legacy-save"}, {"ip6tables-legacy-save"}, {"ipset", "list"}} {
		out, err := r.Run(context.Background(), cmd[0], cmd[1:], nil)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		b.WriteString(dropEmptyTables(string(out)))
	}
	return b.String()
}

// dropEmptyTables removes comments and the tables that hold no rule, no chain of their own and only
// ACCEPT policies from iptables-save output: the kernel instantiates a table when it is first read or
// written, and an empty table filters nothing, so "as before" means the same rules, chains and policies.
func dropEmptyTables(save string) string {
	var b strings.Builder
	var table []string
	empty := true
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "*"):
			table, empty = []string{l}, true
		case l == "COMMIT":
			if !empty {
				b.WriteString(strings.Join(append(table, l), "\n") + "\n")
			}
			table = nil
		case table != nil:
			table = append(table, l)
			builtin := false
			for _, c := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
				if strings.HasPrefix(l, ":"+c+" ACCEPT ") {
					builtin = true
				}
			}
			if !builtin {
				empty = false
			}
		default:
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestCleanupCommand programs the Linux dataplane in a network namespace holding other software's
// rules and sets, then runs `tortie-node cleanup` there: the host must be exactly as before.
func TestCleanupCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, iptables)")
	}
	n := cnitest.NewNS(t)
	r := iptables.Exec{Do: func(f func() error) error { return n.Do(func(ns.NetNS) error { return f() }) }}
	for _, c := range [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
		{"iptables-nft", "-N", "OTHER"},
		{"iptables-nft", "-A", "FORWARD", "-j", "OTHER"},
		{"ipset", "create", "other", "hash:net"},
	} {
		if _, err := r.Run(t.Context(), c[0], c[1:], nil); err != nil {
			t.Fatal(err)
		}
	}
	before := hostState(t, r)

	dp := dataplane.New(dataplane.Options{Runner: r, Backend: "nft"})
	dp.OnUpdate(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1", IPv6Enabled: true}})
	dp.OnUpdate(dpmodel.IPSetUpdate{ID: "s", Type: dpmodel.IPSetNet})
	dp.OnUpdate(dpmodel.ProfileUpdate{ID: "p", Profile: dpmodel.Profile{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, SrcIPSetIDs: []string{"s"}}}}})
	dp.OnUpdate(dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "ns", Name: "w"},
		Endpoint: dpmodel.WorkloadEndpoint{InterfaceName: "cali1", ProfileIDs: []string{"p"}}})
	if err := dp.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if hostState(t, r) == before {
		t.Fatal("the dataplane programmed nothing")
	}
	for i := range 2 {
		var code int
		var stderr string
		if err := n.Do(func(ns.NetNS) error {
			code, _, stderr = runMain(t, nil, "cleanup", "--dataplane", "linux")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if code != exitOK {
			t.Fatalf("cleanup %d: exit %d: %s", i+1, code, stderr)
		}
		if after := hostState(t, r); after != before {
			t.Errorf("after cleanup %d the host differs from before tortie:\nbefore:\n%s\nafter:\n%s", i+1, before, after)
		}
	}
}
