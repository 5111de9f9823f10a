package node

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/ipam"
)

func windowsOptions(t *testing.T, be datastore.Backend, env map[string]string) Options {
	t.Helper()
	o := testOptions(t, be, env)
	o.GOOS = "windows"
	return o
}

func vxlanResult(t *testing.T, res *Result) TunnelResult {
	t.Helper()
	for _, tr := range res.Tunnels {
		if tr.Type == ipam.AttributeTypeVXLAN {
			return tr
		}
	}
	t.Fatalf("no VXLAN tunnel result in %+v", res.Tunnels)
	return TunnelResult{}
}

// affineBlock returns the node's only IPv4 block (in within, when given).
func affineBlock(t *testing.T, be datastore.Backend, node string, within ...netip.Prefix) netip.Prefix {
	t.Helper()
	objs, _, err := be.List(t.Context(), datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []netip.Prefix
	for _, o := range objs {
		a := o.(*api.BlockAffinity)
		b := netip.MustParsePrefix(a.Spec.CIDR)
		if a.Spec.Node == node && (len(within) == 0 || within[0].Contains(b.Addr())) {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) != 1 {
		t.Fatalf("node %s has blocks %v, want one", node, blocks)
	}
	return blocks[0]
}

// TestWindowsNodeVXLANAddressIsBlockGateway: a Windows node's VXLAN tunnel address is the first address
// of its block (the HNS network's gateway, reserved for Windows with the network, host-endpoint and
// broadcast addresses), not an IPAM allocation; no MAC is invented (the agent publishes the network's
// router MAC); a second run changes nothing.
func TestWindowsNodeVXLANAddressIsBlockGateway(t *testing.T) {
	be := memory.New()
	o := windowsOptions(t, be, map[string]string{"CALICO_IPV4POOL_CIDR": "10.90.0.0/16", "CALICO_IPV4POOL_VXLAN": "Always"})
	res := run(t, o)
	block := affineBlock(t, be, "node-1")
	n := getNode(t, be, "node-1")
	if want := block.Addr().Next().String(); n.Spec.IPv4VXLANTunnelAddr != want {
		t.Errorf("VXLAN tunnel address %q, want %s (the gateway of block %s)", n.Spec.IPv4VXLANTunnelAddr, want, block)
	}
	if n.Spec.VXLANTunnelMACAddr != "" || res.VXLANTunnelMAC != "" {
		t.Errorf("VXLAN MAC %q (result %q): a Windows node's MAC is the HNS router MAC, published by the agent", n.Spec.VXLANTunnelMACAddr, res.VXLANTunnelMAC)
	}
	if tr := vxlanResult(t, res); tr.Action != TunnelAssigned || tr.Address != n.Spec.IPv4VXLANTunnelAddr {
		t.Errorf("VXLAN result %+v", tr)
	}
	ic := ipam.New(be)
	for _, ord := range []int{0, 1, 2, 63} {
		a := block.Addr()
		for range ord {
			a = a.Next()
		}
		alloc, err := ic.GetAssignmentAttributes(t.Context(), a)
		if err != nil || alloc.Handle != ipam.WindowsReservedHandle {
			t.Errorf("%s (ordinal %d): %+v, %v; want it reserved for Windows", a, ord, alloc, err)
		}
	}
	if _, err := ic.IPsByHandle(t.Context(), TunnelHandle(ipam.AttributeTypeVXLAN, "node-1")); !errors.Is(err, ipam.ErrHandleNotFound) {
		t.Errorf("the VXLAN handle exists (%v): a Windows node allocates no tunnel address", err)
	}
	if ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default"); ci.Spec.ClusterType != "win" {
		t.Errorf("clusterType %q, want win", ci.Spec.ClusterType)
	}
	if res.Pools[1].Action != PoolIPv6Unsupported {
		t.Errorf("IPv6 pool action %s", res.Pools[1].Action)
	}

	// The agent publishes the router MAC; startup after a restart keeps it and changes nothing.
	wrote, err := PublishWindowsVTEP(t.Context(), be, "node-1", block.Addr().Next(), "00-15-5D-0A-0B-0C", nil)
	if err != nil || !wrote {
		t.Fatalf("PublishWindowsVTEP = %t, %v", wrote, err)
	}
	res = run(t, o)
	if res.Changed() {
		t.Errorf("second run changed %v", res.Changes)
	}
	if tr := vxlanResult(t, res); tr.Action != TunnelKept {
		t.Errorf("second run VXLAN result %+v", tr)
	}
	if n := getNode(t, be, "node-1"); n.Spec.VXLANTunnelMACAddr != "00:15:5d:0a:0b:0c" {
		t.Errorf("MAC after the second run %q, want the published one", n.Spec.VXLANTunnelMACAddr)
	}
}

// TestWindowsNodeReleasesOldAllocation: a Windows node that got its VXLAN address from IPAM (as earlier
// versions did) has that allocation released and the block's gateway published instead; turning VXLAN
// off clears the Node's address but leaves the Windows reservation alone.
func TestWindowsNodeReleasesOldAllocation(t *testing.T) {
	be := memory.New()
	pool := createPool(t, be, "vx", "10.91.0.0/16", func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapAlways })
	handle := TunnelHandle(ipam.AttributeTypeVXLAN, "node-1")
	ic := ipam.New(be)
	got, err := ic.AutoAssign(t.Context(), ipam.AutoAssignArgs{
		Num4: 1, HandleID: handle, Hostname: "node-1", IntendedUse: api.IPPoolAllowedUseTunnel,
		Attrs:                 map[string]string{ipam.AttributeNode: "node-1", ipam.AttributeType: ipam.AttributeTypeVXLAN},
		HostReservedAttrIPv4s: ipam.WindowsHostReserved(),
	})
	if err != nil || len(got.IPv4) != 1 {
		t.Fatalf("AutoAssign: %+v, %v", got, err)
	}
	old := got.IPv4[0].Addr()
	o := windowsOptions(t, be, map[string]string{"NO_DEFAULT_POOLS": "true"})
	run(t, o)
	if _, err := ic.GetAssignmentAttributes(t.Context(), old); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Errorf("the old allocation %s is still there (%v)", old, err)
	}
	block := affineBlock(t, be, "node-1")
	if n := getNode(t, be, "node-1"); n.Spec.IPv4VXLANTunnelAddr != block.Addr().Next().String() {
		t.Errorf("VXLAN tunnel address %q, want %s", n.Spec.IPv4VXLANTunnelAddr, block.Addr().Next())
	}

	pool.Spec.VXLANMode = api.EncapNever
	if _, err := be.Update(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	res := run(t, o)
	if n := getNode(t, be, "node-1"); n.Spec.IPv4VXLANTunnelAddr != "" {
		t.Errorf("VXLAN tunnel address %q after VXLAN was turned off", n.Spec.IPv4VXLANTunnelAddr)
	}
	if tr := vxlanResult(t, res); tr.Action != TunnelReleased {
		t.Errorf("VXLAN result %+v", tr)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "vxlan") || strings.Contains(w, "VXLAN") {
			t.Errorf("warning %q", w)
		}
	}
	if alloc, err := ic.GetAssignmentAttributes(t.Context(), block.Addr().Next()); err != nil || alloc.Handle != ipam.WindowsReservedHandle {
		t.Errorf("the gateway %s: %+v, %v; want it still reserved for Windows", block.Addr().Next(), alloc, err)
	}
}

func TestPublishWindowsVTEP(t *testing.T) {
	be := memory.New()
	run(t, windowsOptions(t, be, map[string]string{"CALICO_IPV4POOL_CIDR": "10.92.0.0/16", "CALICO_IPV4POOL_VXLAN": "Always"}))
	before := getNode(t, be, "node-1")
	addr := netip.MustParseAddr(before.Spec.IPv4VXLANTunnelAddr)
	ctx := t.Context()
	for _, tt := range []struct {
		name, mac string
		addr      netip.Addr
		wrote     bool
		err       string
	}{
		{"first", "00-15-5D-01-02-03", addr, true, ""},
		{"unchanged", "00:15:5d:01:02:03", addr, false, ""},
		{"new router MAC", "00-15-5D-01-02-04", addr, true, ""},
		{"bad MAC", "00-15-5D", addr, false, `MAC "00-15-5D" is not a 6-byte MAC address`},
		{"IPv6", "00-15-5D-01-02-04", netip.MustParseAddr("fd00::1"), false, "not IPv4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wrote, err := PublishWindowsVTEP(ctx, be, "node-1", tt.addr, tt.mac, nil)
			if wrote != tt.wrote || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("PublishWindowsVTEP = %t, %v; want %t, %q", wrote, err, tt.wrote, tt.err)
			}
		})
	}
	after := getNode(t, be, "node-1")
	if after.Spec.VXLANTunnelMACAddr != "00:15:5d:01:02:04" || after.Spec.IPv4VXLANTunnelAddr != addr.String() {
		t.Errorf("Node VTEP %s %s", after.Spec.IPv4VXLANTunnelAddr, after.Spec.VXLANTunnelMACAddr)
	}
	if after.Spec.BGP == nil || after.Spec.BGP.IPv4Address != before.Spec.BGP.IPv4Address {
		t.Errorf("the Node's other fields changed: BGP %+v, was %+v", after.Spec.BGP, before.Spec.BGP)
	}
	if _, err := PublishWindowsVTEP(ctx, be, "no-such-node", addr, "00-15-5D-01-02-04", nil); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("publishing for a missing Node: %v, want ErrNotFound (no Node is created)", err)
	}
}
