package node

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
)

func tunnelResult(t *testing.T, res *Result, typ string) TunnelResult {
	t.Helper()
	for _, tr := range res.Tunnels {
		if tr.Type == typ {
			return tr
		}
	}
	t.Fatalf("no %s result in %+v", typ, res.Tunnels)
	return TunnelResult{}
}

func ipipWarnings(res *Result) []string {
	var out []string
	for _, w := range res.Warnings {
		if strings.Contains(w, "IPIP") {
			out = append(out, w)
		}
	}
	return out
}

// TestWindowsNodeNoIPIP runs start-up on a real etcd with an IPIP pool and a VXLAN pool that select
// every node. As Linux the node gets an IPIP tunnel address (the control); the same node started as
// Windows (reinstalled) has that address released and cleared, is told that the IPIP pool cannot serve
// it, and keeps its VXLAN set-up; a second Windows start changes nothing and says so again. A Windows
// node whose only pool is IPIP gets no tunnel address at all, and the warning.
func TestWindowsNodeNoIPIP(t *testing.T) {
	if testing.Short() {
		t.Skip("real etcd")
	}
	be, err := etcd.New(etcd.Config{Endpoints: testenv.Etcd(t), Prefix: fmt.Sprintf("/node-startup-ipip-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	createPool(t, be, "ipip-pool", "10.94.0.0/16", func(s *api.IPPoolSpec) { s.IPIPMode = api.EncapAlways })
	createPool(t, be, "vxlan-pool", "10.95.0.0/16", func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapAlways })
	ic := ipam.New(be)
	ipipHandle := TunnelHandle(ipam.AttributeTypeIPIP, "node-1")
	env := map[string]string{"NO_DEFAULT_POOLS": "true", "IP": "10.0.0.5"}

	linux := testOptions(t, be, env)
	linux.Interfaces = hostIfaces("10.0.0.5/24")
	res := run(t, linux)
	n := getNode(t, be, "node-1")
	if n.Spec.BGP == nil || !netip.MustParsePrefix("10.94.0.0/16").Contains(addrOf(n.Spec.BGP.IPv4IPIPTunnelAddr)) {
		t.Fatalf("Linux node: spec.bgp %+v, want an IPIP tunnel address from ipip-pool", n.Spec.BGP)
	}
	stale := addrOf(n.Spec.BGP.IPv4IPIPTunnelAddr)
	if w := ipipWarnings(res); len(w) != 0 {
		t.Errorf("Linux node warned %q", w)
	}

	win := linux
	win.GOOS = "windows"
	res = run(t, win)
	n = getNode(t, be, "node-1")
	if n.Spec.BGP == nil || n.Spec.BGP.IPv4IPIPTunnelAddr != "" {
		t.Errorf("Windows node: spec.bgp %+v, want no IPIP tunnel address", n.Spec.BGP)
	}
	if _, err := ic.GetAssignmentAttributes(t.Context(), stale); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Errorf("the stale IPIP address %s is still allocated (%v)", stale, err)
	}
	if _, err := ic.IPsByHandle(t.Context(), ipipHandle); !errors.Is(err, ipam.ErrHandleNotFound) {
		t.Errorf("handle %s still exists (%v)", ipipHandle, err)
	}
	if tr := tunnelResult(t, res, ipam.AttributeTypeIPIP); tr.Action != TunnelReleased || tr.Address != "" {
		t.Errorf("IPIP result %+v, want released", tr)
	}
	w := ipipWarnings(res)
	if len(w) != 1 || !strings.Contains(w[0], `Windows node "node-1"`) || !strings.Contains(w[0], "ipip-pool (10.94.0.0/16, ipipMode Always)") ||
		strings.Contains(w[0], "vxlan-pool") || !strings.Contains(w[0], "kubernetes.io/os != 'windows'") {
		t.Errorf("warnings %q, want one naming the node, ipip-pool only, and the fix", w)
	}
	block := affineBlock(t, be, "node-1", netip.MustParsePrefix("10.95.0.0/16"))
	if n.Spec.IPv4VXLANTunnelAddr != block.Addr().Next().String() {
		t.Errorf("VXLAN tunnel address %q, want %s (the gateway of %s)", n.Spec.IPv4VXLANTunnelAddr, block.Addr().Next(), block)
	}

	res = run(t, win)
	if tr := tunnelResult(t, res, ipam.AttributeTypeIPIP); tr.Action != TunnelNone {
		t.Errorf("second Windows start: IPIP result %+v", tr)
	}
	if res.Changed() {
		t.Errorf("second Windows start changed %v", res.Changes)
	}
	if len(ipipWarnings(res)) != 1 {
		t.Errorf("second Windows start: warnings %q, want the IPIP one again", res.Warnings)
	}

	// A second Windows node, whose only enabled pool is IPIP.
	updatePool(t, be, "vxlan-pool", func(s *api.IPPoolSpec) { s.Disabled = true })
	win2 := testOptions(t, be, map[string]string{"NO_DEFAULT_POOLS": "true", "IP": "10.0.0.6"})
	win2.GOOS = "windows"
	win2.Hostname = func() (string, error) { return "node-2", nil }
	win2.Interfaces = hostIfaces("10.0.0.6/24")
	res = run(t, win2)
	n2 := getNode(t, be, "node-2")
	if (n2.Spec.BGP != nil && n2.Spec.BGP.IPv4IPIPTunnelAddr != "") || n2.Spec.IPv4VXLANTunnelAddr != "" {
		t.Errorf("node-2: spec.bgp %+v, VXLAN %q; want no tunnel address", n2.Spec.BGP, n2.Spec.IPv4VXLANTunnelAddr)
	}
	if _, err := ic.IPsByHandle(t.Context(), TunnelHandle(ipam.AttributeTypeIPIP, "node-2")); !errors.Is(err, ipam.ErrHandleNotFound) {
		t.Errorf("node-2's IPIP handle exists (%v)", err)
	}
	if w := ipipWarnings(res); len(w) != 1 || !strings.Contains(w[0], `"node-2"`) {
		t.Errorf("node-2 warnings %q", res.Warnings)
	}
}
