//go:build linux

package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	goiptables "github.com/coreos/go-iptables/iptables"
)

// Backend is the iptables implementation the kernel's rules are written through.
type Backend string

const (
	// Legacy is iptables-legacy (the x_tables kernel interface).
	Legacy Backend = "legacy"
	// NFT is iptables-nft (the same rule language stored in nf_tables).
	NFT Backend = "nft"
)

// Command names the binary of a backend for a family (4 or 6) and tool ("save", "restore", or "" for
// the iptables command itself): "iptables-nft-restore", "ip6tables-legacy".
func Command(b Backend, family int, tool string) string {
	name := "iptables"
	if family == 6 {
		name = "ip6tables"
	}
	name += "-" + string(b)
	if tool != "" {
		name += "-" + tool
	}
	return name
}

// kubeMarkers are the chains kubelet and kube-proxy create in the backend they use.
var kubeMarkers = []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}

// ParseBackendSetting reads FELIX_IPTABLESBACKEND's values: "", "Auto" (detect), "Legacy", "NFT"
// (any case). It returns "" for auto.
func ParseBackendSetting(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return "", nil
	case "legacy":
		return Legacy, nil
	case "nft", "nftables":
		return NFT, nil
	}
	return "", fmt.Errorf("FELIX_IPTABLESBACKEND=%q: use Auto, Legacy or NFT", s)
}

// DetectBackend picks the backend as Felix does: forced when setting is Legacy or NFT; otherwise the
// backend holding Kubernetes' marker chains (nft first), else the one holding more rules over both
// families, legacy on a tie (a host with no rules at all).
//
// When r implements [InNamespace] (as [Exec] does) each backend and family is probed with go-iptables
// in r's namespace: whether its binary runs (its version is read) and which chains each table holds
// (the markers). The rules are counted from `*-save` through r. A backend that cannot be probed or
// read (binary or kernel support missing) holds nothing.
func DetectBackend(ctx context.Context, r Runner, setting string) (Backend, error) {
	forced, err := ParseBackendSetting(setting)
	if err != nil {
		return "", err
	}
	if forced != "" {
		return forced, nil
	}
	in, probe := r.(InNamespace)
	counts := map[Backend]int{}
	markers := map[Backend]bool{}
	for _, b := range []Backend{NFT, Legacy} {
		for _, fam := range []int{4, 6} {
			if probe {
				found, err := probeMarkers(in, b, fam)
				if err != nil {
					continue
				}
				markers[b] = markers[b] || found
			}
			out, err := r.Run(ctx, Command(b, fam, "save"), nil, nil)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "-A ") {
					counts[b]++
				}
				if !probe {
					for _, m := range kubeMarkers {
						if strings.HasPrefix(line, ":"+m+" ") {
							markers[b] = true
						}
					}
				}
			}
		}
	}
	switch {
	case markers[NFT]:
		return NFT, nil
	case markers[Legacy]:
		return Legacy, nil
	case counts[NFT] > counts[Legacy]:
		return NFT, nil
	}
	return Legacy, nil
}

// probeMarkers runs a backend's iptables for one family with go-iptables in in's namespace and
// reports whether any table holds one of Kubernetes' marker chains. An error means the backend
// cannot be used (binary missing, or the kernel lacks its support).
func probeMarkers(in InNamespace, b Backend, fam int) (found bool, err error) {
	proto := goiptables.ProtocolIPv4
	if fam == 6 {
		proto = goiptables.ProtocolIPv6
	}
	err = in.InNamespace(func() error {
		ipt, err := goiptables.New(goiptables.IPFamily(proto), goiptables.Path(Command(b, fam, "")), goiptables.Timeout(lockWait))
		if err != nil {
			return fmt.Errorf("probing %s: %w", Command(b, fam, ""), err)
		}
		for _, table := range Tables {
			chains, err := ipt.ListChains(table)
			if err != nil {
				return fmt.Errorf("listing the chains of %s table %s: %w", Command(b, fam, ""), table, err)
			}
			for _, c := range chains {
				if slices.Contains(kubeMarkers, c) {
					found = true
				}
			}
		}
		return nil
	})
	return found, err
}
