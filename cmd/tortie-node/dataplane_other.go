//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/platform"
)

// newLinuxDataplane refuses: the Linux dataplane programs iptables, ipset and netlink.
func newLinuxDataplane(func(string) string, string, *slog.Logger) (platform.Dataplane, error) {
	return nil, errors.New("the linux dataplane programs iptables and ipset and runs only on Linux nodes; " +
		"use --dataplane fake to run the agent without programming the host")
}

// setLocalNode has nothing to do off Linux.
func setLocalNode(context.Context, platform.Dataplane, datastore.Backend, string, *slog.Logger) error {
	return nil
}
