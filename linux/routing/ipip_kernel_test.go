//go:build linux

package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cni"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// TestKernelIPIP: two nodes joined by a veth, a pod on each (plumbed by linux/cni), IPIP routes
// programmed by the Manager; pod-to-pod TCP and UDP over tunl0, drift repair, Cleanup. The kernel of the
// development machine has no ipip module, so here it skips; ci/qemu-ipip.sh runs this test in a Debian
// kernel under qemu (the recipe in the shared reference), as part of `make test`.
func TestKernelIPIP(t *testing.T) {
	testenv.RequireRoot(t)
	nodes := [2]ns.NetNS{cnitest.NewNS(t), cnitest.NewNS(t)}
	var hs [2]*netlinkx.Kernel
	for i, n := range nodes {
		h, err := netlinkx.Open(n.Path(), 10*time.Second)
		must(t, "netlink", err)
		t.Cleanup(func() { _ = h.Close() })
		hs[i] = h
	}
	// A namespace gets tunl0 on creation when the ipip module is loaded; without the module, creating
	// an ipip link fails.
	if _, err := hs[0].LinkByName(IPIPDevice); err != nil {
		if _, err := hs[0].LinkAdd(netlinkx.NewLink{Name: "ipiptest", Kind: "ipip"}); err != nil {
			t.Skipf("this kernel has no ipip support (%v); ci/qemu-ipip.sh runs this test in a Debian kernel under qemu", err)
		}
	}
	_, err := hs[0].LinkAdd(netlinkx.NewLink{Name: "eth0", Kind: "veth", MTU: 1500, PeerName: "eth0", PeerNS: hs[1]})
	must(t, "underlay veth", err)
	pods := [2]ns.NetNS{}
	podIPs := [2]netip.Addr{ip("10.70.1.2"), ip("10.70.2.2")}
	for i, h := range hs {
		lo, err := h.LinkByName("lo")
		must(t, "lo", err)
		e, err := h.LinkByName("eth0")
		must(t, "eth0", err)
		must(t, "setup", errors.Join(h.LinkSetUp(lo.Index), h.LinkSetUp(e.Index),
			h.AddrAdd(netlinkx.Addr{LinkIndex: e.Index, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)}),
			sysctl(nodes[i], "/proc/sys/net/ipv4/ip_forward", "1")))
		must(t, "default route", h.RouteAdd(netlinkx.Route{Dst: pfx("0.0.0.0/0"), Gw: ip("10.0.0.254")}))
		pods[i] = cnitest.NewNS(t)
		req := cnicore.InterfaceRequest{NetNS: pods[i].Path(), ContainerIfName: "eth0", HostIfName: cni.HostVethName("", "ipip", "pod"),
			Addresses: []netip.Prefix{netip.PrefixFrom(podIPs[i], 32)}, MTU: 1400}
		must(t, "pod", nodes[i].Do(func(ns.NetNS) error { _, err := (&cni.PodNetwork{}).Setup(t.Context(), req); return err }))
	}
	names := []string{"n1", "n2"}
	var ms [2]*Manager
	for i, h := range hs {
		me, other := names[i], names[1-i]
		myIP, otherIP := netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), netip.AddrFrom4([4]byte{10, 0, 0, byte(2 - i)})
		m, err := New(Options{Handle: h, Local: LocalTunnels{IPIP: netip.AddrFrom4([4]byte{10, 70, byte(i + 1), 0})}})
		must(t, "manager", err)
		ipipRoute := func(typ dpmodel.RouteType) dpmodel.Route {
			return dpmodel.Route{Type: typ, Encap: dpmodel.EncapIPIP, DstNode: other, DstNodeIP: otherIP}
		}
		feed(m, []dpmodel.Update{
			dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: me, InterfacePrefixes: []string{"cali"}, IPIPEnabled: true}},
			dpmodel.PoolUpdate{CIDR: pfx("10.70.0.0/16"), Pool: dpmodel.Pool{IPIPMode: dpmodel.EncapAlways}},
			dpmodel.HostUpdate{Node: me, Host: dpmodel.Host{IPv4: netip.PrefixFrom(myIP, 24)}},
			dpmodel.HostUpdate{Node: other, Host: dpmodel.Host{IPv4: netip.PrefixFrom(otherIP, 24)}},
			dpmodel.RouteUpdate{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(i + 1), 0}), 26), Route: dpmodel.Route{Type: dpmodel.RouteLocalBlock}},
			dpmodel.RouteUpdate{Dst: netip.PrefixFrom(podIPs[i], 32), Route: dpmodel.Route{Type: dpmodel.RouteLocalWorkload,
				InterfaceName: cni.HostVethName("", "ipip", "pod")}},
			dpmodel.RouteUpdate{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(2 - i), 0}), 26), Route: ipipRoute(dpmodel.RouteRemoteBlock)},
			dpmodel.RouteUpdate{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(2 - i), 0}), 32), Route: ipipRoute(dpmodel.RouteRemoteTunnel)},
		})
		must(t, "Apply "+me, m.Apply(t.Context()))
		ms[i] = m
	}
	want := []string{
		"addr 10.70.1.0/32 dev tunl0",
		"link tunl0 ipip mtu 1480 up=true",
		"route blackhole 10.70.1.0/26 proto 116",
		"route 10.70.1.2/32 dev " + cni.HostVethName("", "ipip", "pod") + " proto 116",
		"route 10.70.2.0/26 via 10.0.0.2 dev tunl0 onlink proto 116",
		"route 10.70.2.0/32 via 10.0.0.2 dev tunl0 onlink proto 116",
	}
	got := hostText(t, hs[0])
	t.Logf("n1:\n%s", strings.Join(got, "\n"))
	for _, w := range want {
		if !hasLine(got, w) {
			t.Errorf("n1 lacks %q", w)
		}
	}
	for i := range pods {
		tcpEcho(t, pods[i], 7070)
		cnitest.UDPEcho(t, pods[i], 7071)
	}
	check := func(what string) {
		t.Helper()
		for i := range pods {
			dst := podIPs[1-i]
			if err := cnitest.UDPPing(pods[i], dst, 7071, 20*time.Second); err != nil {
				t.Errorf("%s: UDP pod%d → %s: %v", what, i+1, dst, err)
			}
			c, err := tcpDial(pods[i], dst, 7070)
			if err != nil {
				t.Errorf("%s: TCP pod%d → %s: %v", what, i+1, dst, err)
				continue
			}
			if err := echo(c, fmt.Sprintf("hello %d", i)); err != nil {
				t.Errorf("%s: TCP echo pod%d → %s: %v", what, i+1, dst, err)
			}
			_ = c.Close()
		}
	}
	check("IPIP")

	// Drift: the tunnel address and a route removed by hand come back on the next resync.
	tun, err := hs[0].LinkByName(IPIPDevice)
	must(t, "tunl0", err)
	must(t, "drift: address", hs[0].AddrDel(netlinkx.Addr{LinkIndex: tun.Index, Prefix: pfx("10.70.1.0/32")}))
	routes, err := hs[0].RouteList(netlinkx.TableMain)
	must(t, "routes", err)
	for _, r := range routes {
		if r.Dst == pfx("10.70.2.0/26") {
			must(t, "drift: route", hs[0].RouteDel(r))
		}
	}
	ms[0].QueueResync()
	must(t, "resync", ms[0].Apply(t.Context()))
	if diff := strings.Join(hostText(t, hs[0]), "\n"); diff != strings.Join(got, "\n") {
		t.Errorf("after resync:\n%s\nwant:\n%s", diff, strings.Join(got, "\n"))
	}
	check("after drift repair")

	// Cleanup leaves tunl0 (the kernel's) without tortie's address and routes.
	must(t, "Cleanup", ms[0].Cleanup(t.Context()))
	if got := hostText(t, hs[0]); len(got) != 1 || !strings.HasPrefix(got[0], "link tunl0 ipip") {
		t.Errorf("after Cleanup: %q; want only tunl0 itself", got)
	}
}
