//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/mtu"
	"github.com/tortie-net/tortie/linux/dataplane"
	"github.com/tortie-net/tortie/linux/iptables"
	"github.com/tortie-net/tortie/linux/netlinkx"
	"github.com/tortie-net/tortie/linux/routing"
	"github.com/tortie-net/tortie/platform"
)

// netlinkTimeout bounds one netlink request of the routing manager.
const netlinkTimeout = 10 * time.Second

// linuxDataplane is the Linux dataplane as tortie-node runs it: policy and NAT outgoing (iptables,
// ipset) with the routing manager (routes, VXLAN, IPIP, MTU file) composed in.
type linuxDataplane struct {
	*dataplane.Dataplane
	routes *routing.Manager
}

// newLinuxDataplane builds the Linux dataplane. FELIX_IPTABLESBACKEND (Auto, Legacy, NFT) chooses the
// iptables backend; a bad value refuses to start before anything is touched. mtuFile is where the
// routing manager, the MTU file's owner while the agent runs, keeps the pod MTU that follows the
// encapsulation in use ("": config.MTUFile); FELIX_MTUIFACEPATTERN chooses the uplinks it measures.
func newLinuxDataplane(getenv func(string) string, mtuFile string, log *slog.Logger) (platform.Dataplane, error) {
	backend, from := config.Lookup(getenv, "FELIX_IPTABLESBACKEND")
	if _, err := iptables.ParseBackendSetting(backend); err != nil {
		return nil, &config.EnvError{Var: from, Value: backend, Want: "Auto, Legacy or NFT", Err: err}
	}
	// The same MTU interface pattern start-up used from the environment, so the file does not change
	// hands with a different number.
	_, pattern, err := mtu.FromEnv(getenv, mtu.Encap{})
	if err != nil {
		return nil, err
	}
	h, err := netlinkx.Open("", netlinkTimeout)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if mtuFile == "" {
		mtuFile = config.MTUFile
	}
	routes, err := routing.New(routing.Options{Handle: h, Logger: log.With("manager", "routing"), MTUFile: mtuFile, MTUIfacePattern: pattern})
	if err != nil {
		return nil, err
	}
	dp := dataplane.New(dataplane.Options{Backend: backend, Log: log, Conntrack: true, Extra: []dataplane.Manager{routes}})
	return &linuxDataplane{Dataplane: dp, routes: routes}, nil
}

// setLocalNode gives the routing manager this node's own tunnel addresses and VTEP MACs, which
// start-up has just allocated and published on the Node (the calculation sends remote VTEPs only). A
// later change of them (a new IP pool encapsulation) takes effect at the agent's next restart, as
// start-up is what allocates them.
func setLocalNode(ctx context.Context, dp platform.Dataplane, be datastore.Backend, nodeName string, log *slog.Logger) error {
	ldp, ok := dp.(*linuxDataplane)
	if !ok {
		return nil
	}
	obj, err := be.Get(ctx, datastore.Key{Kind: api.KindNode, Name: nodeName})
	if err != nil {
		return fmt.Errorf("reading Node %s for its tunnel addresses: %w", nodeName, err)
	}
	n, ok := obj.(*api.Node)
	if !ok {
		return fmt.Errorf("reading Node %s: got %T", nodeName, obj)
	}
	lt := routing.LocalTunnelsFromNode(n)
	log.Info("local tunnels", "vxlan_v4", lt.VXLANv4.String(), "vxlan_v6", lt.VXLANv6.String(), "ipip", lt.IPIP.String(), "mac_v4", lt.MACv4)
	ldp.routes.SetLocalTunnels(lt)
	return nil
}

// Capabilities adds the routing manager's encapsulations to the policy dataplane's.
func (d *linuxDataplane) Capabilities() platform.Capabilities {
	c := d.Dataplane.Capabilities()
	c.VXLAN, c.IPIP = true, true
	return c
}
