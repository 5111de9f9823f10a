//go:build linux

package cni

import (
	"context"
	"strings"
	"testing"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/cnitest"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

func TestTeardown(t *testing.T) {
	requireRoot(t)
	const hostIf = "caliteardown001"
	tests := []struct {
		name string
		// prepare builds the state to tear down; the request is the one
		// Teardown is called for.
		prepare func(t *testing.T, node, pod ns.NetNS, req cnicore.InterfaceRequest)
		// keep is what must remain afterwards.
		keep keep
		// afterwards runs extra assertions.
		afterwards func(t *testing.T, node, pod ns.NetNS)
	}{
		{
			name:    "after Setup",
			prepare: func(t *testing.T, node, _ ns.NetNS, req cnicore.InterfaceRequest) { mustSetup(t, node, req) },
		},
		{
			name: "nothing was ever set up",
		},
		{
			name: "netns already deleted",
			prepare: func(t *testing.T, node, pod ns.NetNS, req cnicore.InterfaceRequest) {
				mustSetup(t, node, req)
				cnitest.DeleteNS(pod)
			},
			afterwards: func(t *testing.T, node, _ ns.NetNS) {
				// The kernel destroys the pair with the namespace, in the
				// background.
				eventually(t, hostIf+" to disappear with its namespace", func() bool {
					return snapshot(t, node, hostIf) == nil
				})
			},
		},
		{
			name: "crash in the middle of Setup",
			prepare: func(t *testing.T, node, _ ns.NetNS, req cnicore.InterfaceRequest) {
				// A panic skips Setup's rollback, like a killed process.
				crashing := &PodNetwork{inject: func(step string) error {
					if step == stepContAddrs {
						panic("simulated crash")
					}
					return nil
				}}
				doIn(t, node, func() error {
					defer func() { _ = recover() }()
					_, _ = crashing.Setup(context.Background(), req)
					return nil
				})
				if snapshot(t, node, hostIf) == nil {
					t.Fatal("simulated crash left no host veth; the test proves nothing")
				}
			},
		},
		{
			name: "stale host veth without a pod end",
			prepare: func(t *testing.T, node, _ ns.NetNS, _ cnicore.InterfaceRequest) {
				addVethIn(t, node, hostIf, "stalepeer")
			},
		},
		{
			name: "host name now belongs to a newer sandbox of the pod",
			prepare: func(t *testing.T, node, pod ns.NetNS, req cnicore.InterfaceRequest) {
				mustSetup(t, node, req) // the old sandbox...
				newer := cnitest.NewNS(t)
				cur := req
				cur.NetNS = newer.Path()
				mustSetup(t, node, cur) // ...replaced by a newer one
				t.Cleanup(func() {
					if err := checkIn(t, node, cur); err != nil {
						t.Errorf("late DEL for the old sandbox broke the newer one: %v", err)
					}
				})
			},
			keep: keep{node: []string{hostIf}, routes: []string{"10.65.5.1/32 scope link proto 116", "fd00:65::5:1/128 proto 116"}},
		},
		{
			name: "pod interface name is not a veth",
			prepare: func(t *testing.T, _, pod ns.NetNS, _ cnicore.InterfaceRequest) {
				addBridgeIn(t, pod, "eth0")
			},
			keep: keep{pod: []string{"eth0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, pod := newNode(t), cnitest.NewNS(t)
			req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: hostIf,
				Addresses: prefixes("10.65.5.1/32", "fd00:65::5:1/128")}
			if tt.prepare != nil {
				tt.prepare(t, node, pod, req)
			}
			for i := range 2 {
				if err := teardownIn(t, node, req.NetNS, req.ContainerIfName, req.HostIfName); err != nil {
					t.Fatalf("Teardown #%d: %v", i+1, err)
				}
			}
			if tt.afterwards != nil {
				tt.afterwards(t, node, pod)
			}
			podNS := pod
			if n, err := ns.GetNS(pod.Path()); err != nil {
				podNS = nil // deleted by the test
			} else {
				n.Close() // an open file keeps the bind mount busy
			}
			assertClean(t, node, podNS, tt.keep)
		})
	}
}

func TestTeardownErrors(t *testing.T) {
	requireRoot(t)
	node := newNode(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name                string
		ctx                 context.Context
		netns, contIf, host string
		wantErr             string
	}{
		{name: "canceled", ctx: canceled, netns: "/run/netns/x", contIf: "eth0", host: "cali1", wantErr: "context canceled"},
		{name: "bad host name", netns: "/run/netns/x", contIf: "eth0", host: "a/b", wantErr: "host interface: interface name \"a/b\""},
		{name: "bad container name", netns: "/run/netns/x", contIf: "", host: "cali1"}, // empty skips the container part
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			var err error
			doIn(t, node, func() error { err = (&PodNetwork{}).Teardown(ctx, tt.netns, tt.contIf, tt.host); return nil })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Teardown: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Teardown error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	requireRoot(t)
	const hostIf = "calicheck000001"
	delRoute := func(t *testing.T, n ns.NetNS, dev string, match func(netlink.Route) bool) {
		t.Helper()
		h := cnitest.Handle(t, n)
		l, err := h.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: l.Attrs().Index}, netlink.RT_FILTER_OIF)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if match(r) {
				if err := h.RouteDel(&r); err != nil {
					t.Fatalf("deleting route %s: %v", renderRoute(r), err)
				}
				return
			}
		}
		t.Fatalf("no matching route via %s to delete", dev)
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, node, pod ns.NetNS, req *cnicore.InterfaceRequest)
		wantErr []string // substrings; none means Check passes
	}{
		{name: "untouched"},
		{
			name: "pod default route removed",
			mutate: func(t *testing.T, _, pod ns.NetNS, _ *cnicore.InterfaceRequest) {
				delRoute(t, pod, "eth0", func(r netlink.Route) bool { return r.Gw != nil && r.Gw.To4() != nil })
			},
			wantErr: []string{"route default via 169.254.1.1 dev eth0 is missing from container netns"},
		},
		{
			name: "pod IPv6 default route removed",
			mutate: func(t *testing.T, _, pod ns.NetNS, _ *cnicore.InterfaceRequest) {
				delRoute(t, pod, "eth0", func(r netlink.Route) bool { return r.Gw != nil && r.Gw.To4() == nil })
			},
			wantErr: []string{"route default via fe80::ecee:eeff:feee:eeee dev eth0 is missing from container netns"},
		},
		{
			name: "pod address removed",
			mutate: func(t *testing.T, _, pod ns.NetNS, req *cnicore.InterfaceRequest) {
				h := cnitest.Handle(t, pod)
				l, err := h.LinkByName("eth0")
				if err != nil {
					t.Fatal(err)
				}
				if err := h.AddrDel(l, &netlink.Addr{IPNet: ipNet(req.Addresses[0])}); err != nil {
					t.Fatal(err)
				}
			},
			// The kernel flushes a device's IPv4 routes with its last IPv4
			// address, so those are reported too.
			wantErr: []string{"address 10.65.6.1/32 is missing from eth0 in container netns",
				"route default via 169.254.1.1 dev eth0 is missing"},
		},
		{
			name: "host route removed",
			mutate: func(t *testing.T, node, _ ns.NetNS, _ *cnicore.InterfaceRequest) {
				delRoute(t, node, hostIf, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.IP.To4() != nil })
			},
			wantErr: []string{"route 10.65.6.1/32 dev " + hostIf + " scope link proto 116 is missing from host netns"},
		},
		{
			name: "host veth down",
			mutate: func(t *testing.T, node, _ ns.NetNS, _ *cnicore.InterfaceRequest) {
				h := cnitest.Handle(t, node)
				l, err := h.LinkByName(hostIf)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.LinkSetDown(l); err != nil {
					t.Fatal(err)
				}
			},
			// Down also drops the host's routes via the link.
			wantErr: []string{hostIf + " in host netns is down", "route 10.65.6.1/32 dev " + hostIf},
		},
		{
			name: "proxy ARP off",
			mutate: func(t *testing.T, node, _ ns.NetNS, _ *cnicore.InterfaceRequest) {
				doIn(t, node, func() error {
					return writeSysctls("test", []sysctl{netConf("ipv4", hostIf, "proxy_arp", "0")})
				})
			},
			wantErr: []string{"net/ipv4/conf/" + hostIf + "/proxy_arp is 0 in host netns, want 1"},
		},
		{
			name:    "different MTU requested",
			mutate:  func(_ *testing.T, _, _ ns.NetNS, req *cnicore.InterfaceRequest) { req.MTU = 1400 },
			wantErr: []string{"eth0 in container netns", "has MTU 1500, want 1400", hostIf + " in host netns has MTU 1500, want 1400"},
		},
		{
			name: "veth gone",
			mutate: func(t *testing.T, node, _ ns.NetNS, _ *cnicore.InterfaceRequest) {
				h := cnitest.Handle(t, node)
				l, err := h.LinkByName(hostIf)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.LinkDel(l); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{"eth0 is missing from container netns", hostIf + " is missing from host netns"},
		},
		{
			name: "host end paired with another pod",
			mutate: func(t *testing.T, node, pod ns.NetNS, req *cnicore.InterfaceRequest) {
				// Same host name, other sandbox: this pod's pair is gone
				// and the name now leads elsewhere.
				other := *req
				other.NetNS = cnitest.NewNS(t).Path()
				mustSetup(t, node, other)
				addVethIn(t, pod, "eth0", "eth0peer") // an unrelated eth0 takes the place
			},
			wantErr: []string{hostIf + " in host netns is not paired with eth0 in container netns"},
		},
		{
			name:    "netns gone",
			mutate:  func(_ *testing.T, _, pod ns.NetNS, _ *cnicore.InterfaceRequest) { cnitest.DeleteNS(pod) },
			wantErr: []string{"opening container netns"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, pod := newNode(t), cnitest.NewNS(t)
			req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: hostIf,
				Addresses: prefixes("10.65.6.1/32", "fd00:65::6:1/128")}
			mustSetup(t, node, req)
			if tt.mutate != nil {
				tt.mutate(t, node, pod, &req)
			}
			err := checkIn(t, node, req)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error containing %q", tt.wantErr)
			}
			t.Logf("Check error: %v", err)
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error does not contain %q", want)
				}
			}
		})
	}
}
