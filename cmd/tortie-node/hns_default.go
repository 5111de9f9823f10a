//go:build !(linux && tortie_fakehns)

package main

import (
	"errors"
	"runtime"

	"github.com/tortie-net/tortie/windows/hcn"
)

// openHNS returns the host's HNS for the windows dataplane: the real one on Windows; elsewhere the
// dataplane cannot run (a tortie_fakehns build on Linux runs it on the fake HNS instead,
// hns_fakehns_linux.go).
func openHNS(func(string) string) (hcn.API, error) {
	if runtime.GOOS != "windows" {
		return nil, errors.New("the windows dataplane programs HNS and runs only on Windows nodes; " +
			"use --dataplane fake to run the agent without programming the host")
	}
	return hcn.New(), nil
}

// startupGOOS is the OS node start-up applies its per-OS facts for: the host's.
func startupGOOS(string) string { return "" }
