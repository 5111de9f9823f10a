//go:build linux

package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
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
var kubeMarkers = []string{":KUBE-IPTABLES-HINT", ":KUBE-KUBELET-CANARY"}

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
func DetectBackend(ctx context.Context, r Runner, setting string) (Backend, error) {
	forced, err := ParseBackendSetting(setting)
	if err != nil {
		return "", err
	}
	if forced != "" {
		return forced, nil
	}
	counts := map[Backend]int{}
	markers := map[Backend]bool{}
	for _, b := range []Backend{NFT, Legacy} {
		for _, fam := range []int{4, 6} {
			out, err := r.Run(ctx, Command(b, fam, "save"), nil, nil)
			if err != nil {
				// A backend that cannot be read (binary or kernel support missing) holds nothing.
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "-A ") {
					counts[b]++
				}
				for _, m := range kubeMarkers {
					if strings.HasPrefix(line, m+" ") {
						markers[b] = true
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
