//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/cnitest"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
)

func TestSetup(t *testing.T) {
	requireRoot(t)
	const hostIf = "cali0123456789a"
	tests := []struct {
		name      string
		req       cnicore.InterfaceRequest // NetNS and HostIfName filled in per test
		wantAddrs []string
		wantMTU   int
	}{
		{
			name:      "ipv4, prefix length ignored, default MTU",
			req:       cnicore.InterfaceRequest{ContainerIfName: "eth0", Addresses: prefixes("10.65.0.7/26")},
			wantAddrs: []string{"10.65.0.7/32"},
			wantMTU:   1500,
		},
		{
			name:      "ipv6 with jumbo MTU",
			req:       cnicore.InterfaceRequest{ContainerIfName: "eth0", MTU: 9000, Addresses: prefixes("fd00:65::7/122")},
			wantAddrs: []string{"fd00:65::7/128"},
			wantMTU:   9000,
		},
		{
			name: "dual stack, fixed pod MAC, other interface name",
			req: cnicore.InterfaceRequest{ContainerIfName: "net1", MTU: 1450, Addresses: prefixes("10.65.0.8/32", "fd00:65::8/128"),
				ContainerMAC: net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x08}},
			wantAddrs: []string{"10.65.0.8/32", "fd00:65::8/128"},
			wantMTU:   1450,
		},
		{
			name:      "duplicate addresses merged",
			req:       cnicore.InterfaceRequest{ContainerIfName: "eth0", Addresses: prefixes("10.65.0.9/32", "10.65.0.9/24", "10.65.0.10/32")},
			wantAddrs: []string{"10.65.0.10/32", "10.65.0.9/32"},
			wantMTU:   1500,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, pod := newNode(t), cnitest.NewNS(t)
			req := tt.req
			req.NetNS, req.HostIfName = pod.Path(), hostIf

			res := mustSetup(t, node, req)

			var v4, v6 bool
			var wantHostRoutes, wantResultAddrs []string
			for _, a := range tt.wantAddrs {
				p := netip.MustParsePrefix(a)
				wantResultAddrs = append(wantResultAddrs, a)
				if p.Addr().Is4() {
					v4 = true
					wantHostRoutes = append(wantHostRoutes, a+" scope link proto 116")
				} else {
					v6 = true
					wantHostRoutes = append(wantHostRoutes, a+" proto 116")
				}
			}
			var wantContRoutes []string
			if v4 {
				wantContRoutes = append(wantContRoutes, "169.254.1.1/32 scope link proto 3", "default via 169.254.1.1 proto 3")
			}
			if v6 {
				wantContRoutes = append(wantContRoutes, "default via fe80::ecee:eeff:feee:eeee proto 3")
			}

			gotCont := snapshot(t, pod, req.ContainerIfName)
			if gotCont == nil {
				t.Fatalf("no %s in the pod namespace after Setup", req.ContainerIfName)
			}
			wantCont := &linkState{Type: "veth", MAC: gotCont.MAC, MTU: tt.wantMTU, Up: true, Oper: "up", Addrs: tt.wantAddrs, Routes: wantContRoutes}
			if req.ContainerMAC != nil {
				wantCont.MAC = req.ContainerMAC.String()
			}
			if diff := cmp.Diff(wantCont, gotCont, sortStrings); diff != "" {
				t.Errorf("pod interface (-want +got):\n%s", diff)
			}

			wantHost := &linkState{Type: "veth", MAC: "ee:ee:ee:ee:ee:ee", MTU: tt.wantMTU, Up: true, Oper: "up", Routes: wantHostRoutes}
			if diff := cmp.Diff(wantHost, snapshot(t, node, hostIf), sortStrings); diff != "" {
				t.Errorf("host veth (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(append([]string{hostIf}, nodeBaseLinks...), cnitest.LinkNames(t, node), sortStrings); diff != "" {
				t.Errorf("node links (-want +got):\n%s", diff)
			}

			// Spelled out rather than taken from hostSysctls, so a typo
			// there cannot pass.
			wantSys := map[string]string{}
			if v4 {
				for k, v := range map[string]string{"conf/%s/route_localnet": "1", "neigh/%s/proxy_delay": "0",
					"conf/%s/proxy_arp": "1", "conf/%s/forwarding": "1"} {
					wantSys["net/ipv4/"+fmt.Sprintf(k, hostIf)] = v
				}
			}
			if v6 {
				for k, v := range map[string]string{"disable_ipv6": "0", "accept_dad": "0", "addr_gen_mode": "0",
					"proxy_ndp": "1", "forwarding": "1", "accept_ra": "0"} {
					wantSys["net/ipv6/conf/"+hostIf+"/"+k] = v
				}
			}
			if diff := cmp.Diff(wantSys, readSysctls(t, node, slices.Collect(maps.Keys(wantSys))...)); diff != "" {
				t.Errorf("host sysctls (-want +got):\n%s", diff)
			}
			if v6 {
				want := map[string]string{
					"net/ipv6/conf/" + req.ContainerIfName + "/accept_dad":   "0",
					"net/ipv6/conf/" + req.ContainerIfName + "/disable_ipv6": "0",
					"net/ipv6/conf/lo/disable_ipv6":                          "0",
				}
				if diff := cmp.Diff(want, readSysctls(t, pod, slices.Collect(maps.Keys(want))...)); diff != "" {
					t.Errorf("pod sysctls (-want +got):\n%s", diff)
				}
			}

			wantRes := &cnicore.InterfaceResult{
				HostIfName:   hostIf,
				HostMAC:      net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee},
				ContainerMAC: mustMAC(t, gotCont.MAC),
				Addresses:    prefixes(wantResultAddrs...),
				SandboxPath:  pod.Path(),
				GatewayV4:    netip.MustParseAddr(GatewayV4),
				GatewayV6:    netip.MustParseAddr(GatewayV6),
			}
			if diff := cmp.Diff(wantRes, res, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmpopts.SortSlices(func(a, b netip.Prefix) bool { return a.String() < b.String() })); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}

			if err := checkIn(t, node, req); err != nil {
				t.Errorf("Check after Setup: %v", err)
			}
		})
	}
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSetupReplacesStale covers Calico's "delete any stale host veth of the
// same name first", for an orphan and for the pod's previous sandbox.
func TestSetupReplacesStale(t *testing.T) {
	requireRoot(t)
	const hostIf = "calistale000001"
	t.Run("orphan host veth", func(t *testing.T) {
		node, pod := newNode(t), cnitest.NewNS(t)
		addVethIn(t, node, hostIf, "stalepeer")
		req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: hostIf, Addresses: prefixes("10.65.1.1/32")}
		mustSetup(t, node, req)
		if snapshot(t, node, "stalepeer") != nil {
			t.Error("stale peer stalepeer still exists; the stale pair was not deleted")
		}
		if err := checkIn(t, node, req); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
	t.Run("previous sandbox of the same pod", func(t *testing.T) {
		node, oldPod, newPod := newNode(t), cnitest.NewNS(t), cnitest.NewNS(t)
		old := cnicore.InterfaceRequest{NetNS: oldPod.Path(), ContainerIfName: "eth0", HostIfName: hostIf, Addresses: prefixes("10.65.1.2/32")}
		mustSetup(t, node, old)
		cur := old
		cur.NetNS, cur.Addresses = newPod.Path(), prefixes("10.65.1.3/32")
		mustSetup(t, node, cur)
		if snapshot(t, oldPod, "eth0") != nil {
			t.Error("old sandbox still has eth0")
		}
		if diff := cmp.Diff([]string{"10.65.1.3/32 scope link proto 116"}, ownedRoutes(t, node)); diff != "" {
			t.Errorf("host routes (-want +got):\n%s", diff)
		}
		if err := checkIn(t, node, cur); err != nil {
			t.Errorf("Check(new sandbox): %v", err)
		}
	})
}

// keep is what a test put in place before Setup, which must survive it.
type keep struct {
	node, pod []string // links
	routes    []string // host routes with RouteProtocol, as renderRoute writes them
}

// assertClean fails unless node has only its base links, the kept ones and
// the kept owned routes, and pod has only lo and the kept links.
func assertClean(t *testing.T, node, pod ns.NetNS, k keep) {
	t.Helper()
	wantNode := append(append([]string{}, nodeBaseLinks...), k.node...)
	if diff := cmp.Diff(wantNode, cnitest.LinkNames(t, node), sortStrings); diff != "" {
		t.Errorf("node links (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(k.routes, ownedRoutes(t, node), sortStrings, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("node routes with proto %d (-want +got):\n%s", RouteProtocol, diff)
	}
	if pod != nil {
		wantPod := append([]string{"lo"}, k.pod...)
		if diff := cmp.Diff(wantPod, cnitest.LinkNames(t, pod), sortStrings); diff != "" {
			t.Errorf("pod links (-want +got):\n%s", diff)
		}
	}
}

func TestSetupFailures(t *testing.T) {
	requireRoot(t)
	const hostIf = "califail0000001"
	notNS := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		// prepare may change the request and the namespaces before Setup;
		// it returns what it added that must survive.
		prepare  func(t *testing.T, node, pod ns.NetNS, req *cnicore.InterfaceRequest) keep
		ctx      context.Context
		wantErr  []string // substrings
		wantIsCt bool
	}{
		{
			name:    "MTU above the veth maximum",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep { req.MTU = 70000; return keep{} },
			wantErr: []string{"MTU 70000 out of range"},
		},
		{
			name:    "MTU below the IPv4 minimum",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep { req.MTU = 60; return keep{} },
			wantErr: []string{"MTU 60 out of range"},
		},
		{
			name: "MTU below the IPv6 minimum",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.MTU, req.Addresses = 1200, prefixes("fd00:65::1/128")
				return keep{}
			},
			wantErr: []string{"MTU 1200 is below IPv6's minimum"},
		},
		{
			name: "container interface name taken by a non-veth",
			prepare: func(t *testing.T, _, pod ns.NetNS, _ *cnicore.InterfaceRequest) keep {
				addBridgeIn(t, pod, "eth0")
				return keep{pod: []string{"eth0"}}
			},
			wantErr: []string{"already has a bridge interface named eth0"},
		},
		{
			name: "container interface name taken by another pod interface",
			prepare: func(t *testing.T, node, pod ns.NetNS, req *cnicore.InterfaceRequest) keep {
				other := *req
				other.HostIfName, other.Addresses = "caliother000001", prefixes("10.65.2.99/32")
				mustSetup(t, node, other)
				return keep{node: []string{"caliother000001"}, pod: []string{"eth0"}, routes: []string{"10.65.2.99/32 scope link proto 116"}}
			},
			wantErr: []string{"already has a veth interface named eth0"},
		},
		{
			name: "netns path does not exist",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.NetNS = "/run/netns/does-not-exist"
				return keep{}
			},
			wantErr: []string{"opening container netns /run/netns/does-not-exist"},
		},
		{
			name: "netns path is not a netns",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.NetNS = notNS
				return keep{}
			},
			wantErr: []string{"opening container netns " + notNS, "unknown FS magic"},
		},
		{
			name: "host interface name taken by a non-veth",
			prepare: func(t *testing.T, node, _ ns.NetNS, _ *cnicore.InterfaceRequest) keep {
				addBridgeIn(t, node, hostIf)
				return keep{node: []string{hostIf}}
			},
			wantErr: []string{"host netns already has a bridge interface named " + hostIf, "refusing"},
		},
		{
			// A real kernel failure after the veth, sysctls, pod addresses
			// and pod routes exist, and after the first host route: the
			// rollback must remove all of it.
			name: "host route conflicts with another interface",
			prepare: func(t *testing.T, node, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.Addresses = prefixes("10.65.2.1/32", "fd00:65::2:1/128", "10.65.2.2/32")
				h := cnitest.Handle(t, node)
				up, err := h.LinkByName("uplink0")
				if err != nil {
					t.Fatal(err)
				}
				if err := h.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("10.65.2.2/32")), Scope: netlink.SCOPE_LINK}); err != nil {
					t.Fatal(err)
				}
				return keep{}
			},
			wantErr: []string{"adding route 10.65.2.2/32 dev " + hostIf + " scope link proto 116 in host netns", "already exists via uplink0"},
		},
		{
			name: "invalid container MAC",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.ContainerMAC = net.HardwareAddr{1, 2, 3, 4, 5, 6}
				return keep{}
			},
			wantErr: []string{"ContainerMAC 01:02:03:04:05:06 is not a unicast"},
		},
		{
			name: "no addresses",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.Addresses = nil
				return keep{}
			},
			wantErr: []string{"no pod addresses"},
		},
		{
			name: "host name too long",
			prepare: func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) keep {
				req.HostIfName = "cali0123456789abc"
				return keep{}
			},
			wantErr: []string{"HostIfName", "longer than 15"},
		},
		{
			name:     "context already canceled",
			ctx:      canceled,
			wantErr:  []string{"before step open"},
			wantIsCt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, pod := newNode(t), cnitest.NewNS(t)
			req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: hostIf, Addresses: prefixes("10.65.2.1/32")}
			var k keep
			if tt.prepare != nil {
				k = tt.prepare(t, node, pod, &req)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			var res *cnicore.InterfaceResult
			var err error
			doIn(t, node, func() error { res, err = (&PodNetwork{}).Setup(ctx, req); return nil })
			if err == nil {
				t.Fatalf("Setup succeeded (%+v), want error containing %q", res, tt.wantErr)
			}
			if res != nil {
				t.Errorf("Setup returned a result with its error: %+v", res)
			}
			t.Logf("Setup error: %v", err)
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Setup error = %q, want it to contain %q", err, want)
				}
			}
			if tt.wantIsCt && !errors.Is(err, context.Canceled) {
				t.Errorf("Setup error = %v, want errors.Is context.Canceled", err)
			}
			assertClean(t, node, pod, k)
		})
	}
}

// TestSetupRollbackEveryStep fails each step of Setup in turn and checks that
// nothing is left behind, and that a retry then succeeds.
func TestSetupRollbackEveryStep(t *testing.T) {
	requireRoot(t)
	const hostIf = "calirollback001"
	node, pod := newNode(t), cnitest.NewNS(t)
	for _, st := range (&setup{}).steps() {
		step := st.name
		t.Run(step, func(t *testing.T) {
			injected := fmt.Errorf("injected failure at %s", step)
			req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: hostIf,
				Addresses: prefixes("10.65.3.1/32", "fd00:65::3:1/128", "10.65.3.2/32")}
			failing := &PodNetwork{inject: func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}}
			var err error
			doIn(t, node, func() error { _, err = failing.Setup(context.Background(), req); return nil })
			if !errors.Is(err, injected) {
				t.Fatalf("Setup error = %v, want the injected failure", err)
			}
			assertClean(t, node, pod, keep{})

			mustSetup(t, node, req)
			if err := checkIn(t, node, req); err != nil {
				t.Errorf("Check after retried Setup: %v", err)
			}
			if err := teardownIn(t, node, pod.Path(), "eth0", hostIf); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
		})
	}
}
