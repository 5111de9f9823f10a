//go:build !linux

package main

import (
	"errors"
	"log/slog"

	"github.com/tortie-net/tortie/platform"
)

// newLinuxDataplane refuses: the Linux dataplane programs iptables and ipset.
func newLinuxDataplane(func(string) string, *slog.Logger) (platform.Dataplane, error) {
	return nil, errors.New("the linux dataplane programs iptables and ipset and runs only on Linux nodes; " +
		"use --dataplane fake to run the agent without programming the host")
}
