//go:build linux && tortie_fakehns

package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// FakeHNSEnv names the state file of the fake HNS a tortie_fakehns build runs against; the
// tortie_fakehns tortie-cni reads the same variable, so the agent and the plugin share one fake HNS.
const FakeHNSEnv = "TORTIE_FAKE_HNS"

// openHNS (a test build, tag tortie_fakehns: tortie-lab's Windows nodes) returns the file-backed fake
// HNS in $TORTIE_FAKE_HNS. A fake created here reports the node's address (IP, as calico-node reads it)
// as its provider address, as HNS reports the host's management address.
func openHNS(getenv func(string) string) (hcn.API, error) {
	path := strings.TrimSpace(getenv(FakeHNSEnv))
	if path == "" {
		return nil, fmt.Errorf("this is a test build of tortie-node (tag tortie_fakehns): set %s to the fake HNS state file", FakeHNSEnv)
	}
	var opts hcnfake.Options
	if v, from := config.Lookup(getenv, "IP"); v != "" && v != "autodetect" && v != "none" {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("%s=%q: want the node's IPv4 address, with or without a prefix length: %w", from, v, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		opts.ProviderAddress = p.Addr()
	}
	h, err := hcnfake.Open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the fake HNS %s (%s): %w", path, FakeHNSEnv, err)
	}
	return h, nil
}

// startupGOOS: `run --dataplane windows` starts a Windows node (its VXLAN address is its block's
// gateway, its blocks keep Windows' reserved addresses, its VTEP MAC is the HNS network's router MAC).
func startupGOOS(dataplane string) string {
	if dataplane == dataplaneWindows {
		return "windows"
	}
	return ""
}
