//go:build linux

package main

import (
	"log/slog"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/linux/dataplane"
	"github.com/tortie-net/tortie/linux/iptables"
	"github.com/tortie-net/tortie/platform"
)

// newLinuxDataplane builds the Linux dataplane (iptables, ipset). FELIX_IPTABLESBACKEND (Auto, Legacy,
// NFT) chooses the iptables backend; a bad value refuses to start before anything is touched.
func newLinuxDataplane(getenv func(string) string, log *slog.Logger) (platform.Dataplane, error) {
	backend, from := config.Lookup(getenv, "FELIX_IPTABLESBACKEND")
	if _, err := iptables.ParseBackendSetting(backend); err != nil {
		return nil, &config.EnvError{Var: from, Value: backend, Want: "Auto, Legacy or NFT", Err: err}
	}
	return dataplane.New(dataplane.Options{Backend: backend, Log: log, Conntrack: true}), nil
}
