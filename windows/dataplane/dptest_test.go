package dataplane

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform/dptest"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// dptestBlock is the block every instance's node is given before the random states arrive (on a real
// node the agent has it before the dataplane starts): the random states' own local block comes and goes,
// and the overlay network must outlive that.
var dptestBlock = netip.MustParsePrefix("10.64.0.0/26")

// writeCalls are the fake HNS calls that change it.
var writeCalls = []string{"CreateNetwork", "DeleteNetwork", "ModifyNetworkPolicies", "CreateEndpoint", "DeleteEndpoint",
	"ApplyEndpointPolicy", "CreateNamespace", "DeleteNamespace", "AddNamespaceEndpoint", "RemoveNamespaceEndpoint"}

// remoteRouteView is what HNS holds, in dpmodel terms, of a desired state: a route per remote block
// (and borrowed address) whose node has a VTEP, via the VTEP's underlay address, carrying the VTEP MAC
// in DstNode (HNS knows no node names). Policy is checked by the conformance and parity tests.
func remoteRouteView(s *dpmodel.State) *dpmodel.State {
	out := dpmodel.NewState()
	for dst, r := range s.Routes {
		if !dst.Addr().Is4() || (r.Type != dpmodel.RouteRemoteBlock && r.Type != dpmodel.RouteRemoteWorkload) {
			continue
		}
		v, ok := s.VTEPs[r.DstNode]
		if !ok || v.MACv4 == "" || !v.ParentIPv4.IsValid() {
			continue
		}
		if err := out.Apply(dpmodel.RouteUpdate{Dst: dst, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, DstNode: strings.ToLower(v.MACv4), DstNodeIP: v.ParentIPv4}}); err != nil {
			panic(err)
		}
	}
	return out
}

func newDptestInstance(t *testing.T) dptest.Instance {
	h := hcnfake.New(hcnfake.Options{})
	dp := New(Options{API: h})
	dp.OnUpdate(dpmodel.RouteUpdate{Dst: dptestBlock, Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}})
	return dptest.Instance{
		Dataplane: dp,
		Project:   remoteRouteView,
		Host: func(ctx context.Context) (*dpmodel.State, error) {
			out := dpmodel.NewState()
			n, err := h.GetNetworkByName(ctx, config.HNSOverlayNetwork)
			if hcn.IsNotFound(err) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			for _, s := range remoteRoutes(t, n) {
				dst, err := netip.ParsePrefix(s.DestinationPrefix)
				if err != nil {
					return nil, err
				}
				pa, err := netip.ParseAddr(s.ProviderAddress)
				if err != nil {
					return nil, err
				}
				if err := out.Apply(dpmodel.RouteUpdate{Dst: dst, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock,
					DstNode: strings.ReplaceAll(s.DistributedRouterMacAddress, "-", ":"), DstNodeIP: pa}}); err != nil {
					return nil, err
				}
			}
			return out, nil
		},
		Writes: func() int {
			n := 0
			calls := h.Calls()
			for _, c := range writeCalls {
				n += calls[c]
			}
			return n
		},
		Drift: func(ctx context.Context, r *rand.Rand) error {
			n, err := h.GetNetworkByName(ctx, config.HNSOverlayNetwork)
			if err != nil {
				return err
			}
			var routes []hcn.NetworkPolicy
			for _, p := range n.Policies {
				if p.Type == hcn.NetworkPolicyRemoteSubnetRoute {
					routes = append(routes, p)
				}
			}
			switch {
			case r.IntN(3) == 0:
				return h.DeleteNetwork(ctx, n.ID)
			case len(routes) > 0 && r.IntN(2) == 0:
				return h.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestRemove, routes[r.IntN(len(routes)):][:1])
			default:
				bogus := hcn.NewNetworkPolicy(hcn.NetworkPolicyRemoteSubnetRoute, hcn.RemoteSubnetRouteSetting{
					DestinationPrefix: "10.99.0.0/26", IsolationId: 4096, ProviderAddress: "192.168.0.99", DistributedRouterMacAddress: "66-00-00-00-99-99"})
				return h.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestAdd, []hcn.NetworkPolicy{bogus})
			}
		},
		FailNextApply: func() { h.FailNext("", errors.New("injected HNS failure")) },
	}
}

// TestDataplaneConformance runs platform/dptest's generic checks (random state sequences, idempotence,
// drift repair, retry, cleanup) against this dataplane on the fake HNS, reading back the remote subnet
// routes.
func TestDataplaneConformance(t *testing.T) {
	dptest.Run(t, newDptestInstance)
}
