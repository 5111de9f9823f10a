//go:build linux

package routing

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cni"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// Benchmarks (docs/performance.md, ci/bench-pairs.txt): each tortie benchmark has a hand-built baseline
// doing the same on the same kernel, run side by side by ci/bench.sh.
//
//   - RouteProgramming1000: 1,000 remote blocks (100 nodes × 10 blocks) over VXLAN, programmed into an
//     empty namespace: the Manager's first Apply vs the minimal netlink calls a hand-written program
//     makes (device, address, up, one neighbour and FDB entry per node, one route per block).
//   - PodRTT / PodThroughput: pod to pod across two nodes over tortie's VXLAN vs a hand-built kernel
//     VXLAN between the same kind of namespaces (pods plumbed by linux/cni in both cases).

// benchNS is a namespace with an uplink eth0 (10.0.0.1/24, MTU 1500) up.
func benchNS(b *testing.B) (ns.NetNS, *netlinkx.Kernel) {
	b.Helper()
	testenv.RequireRoot(b)
	n := cnitest.NewNS(b)
	h, err := netlinkx.Open(n.Path(), 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	eth, err := h.LinkAdd(netlinkx.NewLink{Name: "eth0", Kind: "veth", MTU: 1500, PeerName: "eth0p"})
	if err != nil {
		b.Fatal(err)
	}
	peer, err := h.LinkByName("eth0p")
	if err != nil {
		b.Fatal(err)
	}
	for _, err := range []error{h.LinkSetUp(peer.Index), h.LinkSetUp(eth.Index),
		h.AddrAdd(netlinkx.Addr{LinkIndex: eth.Index, Prefix: pfx("10.0.0.1/24")})} {
		if err != nil {
			b.Fatal(err)
		}
	}
	return n, h
}

// remoteNode i (1..100) is at 10.0.1.i with VTEP tunnel address 10.200.i.0 and blocks 10.200.i.0/26 …
func remoteNodes(nodes, blocksPer int) []dpmodel.Update {
	us := []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "me", VXLANEnabled: true, VXLANVNI: 4096, VXLANPort: 4789}},
		dpmodel.HostUpdate{Node: "me", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}},
	}
	for i := 1; i <= nodes; i++ {
		node := fmt.Sprintf("n%d", i)
		us = append(us, dpmodel.VTEPUpdate{Node: node, VTEP: dpmodel.VTEP{TunnelIPv4: netip.AddrFrom4([4]byte{10, 200, byte(i), 0}),
			MACv4: fmt.Sprintf("66:00:00:00:00:%02x", i), ParentIPv4: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})}})
		for j := range blocksPer {
			dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(i), byte(j * 64 % 256)}), 26)
			if j >= 4 {
				dst = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(201 + j/4), byte(i), byte(j % 4 * 64)}), 26)
			}
			us = append(us, dpmodel.RouteUpdate{Dst: dst, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: dpmodel.EncapVXLAN,
				DstNode: node, DstNodeIP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})}})
		}
	}
	return us
}

func BenchmarkRouteProgramming1000(b *testing.B) {
	us := remoteNodes(100, 10)
	b.Run("tortie", func(b *testing.B) {
		_, kh := benchNS(b)
		h := &counting{Handle: kh}
		var calls, writes int64
		for range b.N {
			b.StopTimer()
			m, err := New(Options{Handle: h, Local: LocalTunnels{VXLANv4: ip("10.200.0.0")}})
			if err != nil {
				b.Fatal(err)
			}
			feed(m, us)
			c0, w0 := h.calls.Load(), h.writes.Load()
			b.StartTimer()
			if err := m.Apply(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			calls, writes = h.calls.Load()-c0, h.writes.Load()-w0
			if err := m.Cleanup(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(calls), "netlink-calls/op")
		b.ReportMetric(float64(writes), "netlink-writes/op")
	})
	b.Run("baseline", func(b *testing.B) {
		_, kh := benchNS(b)
		h := &counting{Handle: kh}
		var calls int64
		for range b.N {
			c0 := h.calls.Load()
			if err := handBuiltVXLAN(h, us); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			calls = h.calls.Load() - c0
			vx, err := h.LinkByName("vxhand")
			if err != nil {
				b.Fatal(err)
			}
			if err := h.LinkDel(vx.Index); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(calls), "netlink-calls/op")
		b.ReportMetric(float64(calls), "netlink-writes/op")
	})
}

// handBuiltVXLAN programs what the updates describe the way a hand-written program would, knowing the
// host is empty: no reads, one call per object.
func handBuiltVXLAN(h netlinkx.Handle, us []dpmodel.Update) error {
	var local netip.Addr
	for _, u := range us {
		if hu, ok := u.(dpmodel.HostUpdate); ok && hu.Node == "me" {
			local = hu.Host.IPv4.Addr()
		}
	}
	vx, err := h.LinkAdd(netlinkx.NewLink{Name: "vxhand", Kind: "vxlan", MTU: 1450, HardwareAddr: dpmodel.DerivedVTEPMAC("me"),
		VXLAN: &netlinkx.VXLAN{VNI: 4096, Port: 4789, Local: local}})
	if err != nil {
		return err
	}
	if err := h.AddrAdd(netlinkx.Addr{LinkIndex: vx.Index, Prefix: pfx("10.200.0.0/32")}); err != nil {
		return err
	}
	if err := h.LinkSetUp(vx.Index); err != nil {
		return err
	}
	vteps := map[string]dpmodel.VTEP{}
	for _, u := range us {
		switch u := u.(type) {
		case dpmodel.VTEPUpdate:
			vteps[u.Node] = u.VTEP
			mac, _ := net.ParseMAC(u.VTEP.MACv4)
			if err := h.NeighSet(netlinkx.Neigh{LinkIndex: vx.Index, IP: u.VTEP.TunnelIPv4, MAC: mac}); err != nil {
				return err
			}
			if err := h.FDBSet(netlinkx.FDB{LinkIndex: vx.Index, MAC: mac, Dst: u.VTEP.ParentIPv4}); err != nil {
				return err
			}
		case dpmodel.RouteUpdate:
			if err := h.RouteAdd(netlinkx.Route{Dst: u.Dst, Gw: vteps[u.Route.DstNode].TunnelIPv4, LinkIndex: vx.Index, OnLink: true,
				Protocol: netlinkx.ProtocolBoot}); err != nil {
				return err
			}
		}
	}
	return nil
}

// twoNodes builds node A and node B on a bridge (10.0.0.1, 10.0.0.2) with one pod each (10.70.1.2 on
// A, 10.70.2.2 on B), plumbed by linux/cni, and returns the pods' namespaces and handles on the nodes.
func twoNodes(b *testing.B) (podA, podB ns.NetNS, nodes [2]*netlinkx.Kernel) {
	b.Helper()
	testenv.RequireRoot(b)
	sw := cnitest.NewNS(b)
	swh := cnitest.Handle(b, sw)
	la := netlink.NewLinkAttrs()
	la.Name = "br0"
	if err := swh.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		b.Fatal(err)
	}
	br, _ := swh.LinkByName("br0")
	if err := swh.LinkSetUp(br); err != nil {
		b.Fatal(err)
	}
	pods := [2]ns.NetNS{}
	for i := range 2 {
		n := cnitest.NewNS(b)
		pla := netlink.NewLinkAttrs()
		pla.Name, pla.MasterIndex = fmt.Sprintf("p%d", i), br.Attrs().Index
		if err := swh.LinkAdd(&netlink.Veth{LinkAttrs: pla, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(n.Fd())), PeerTxQLen: -1}); err != nil {
			b.Fatal(err)
		}
		p, _ := swh.LinkByName(pla.Name)
		if err := swh.LinkSetUp(p); err != nil {
			b.Fatal(err)
		}
		h, err := netlinkx.Open(n.Path(), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		eth, _ := h.LinkByName("eth0")
		lo, _ := h.LinkByName("lo")
		for _, err := range []error{h.LinkSetUp(lo.Index), h.LinkSetUp(eth.Index),
			h.AddrAdd(netlinkx.Addr{LinkIndex: eth.Index, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)}),
			sysctl(n, "/proc/sys/net/ipv4/ip_forward", "1"),
			// A default route, as a real node has: proxy ARP answers the pods' gateway only when it is routable.
			h.RouteAdd(netlinkx.Route{Dst: pfx("0.0.0.0/0"), Gw: ip("10.0.0.254")})} {
			if err != nil {
				b.Fatal(err)
			}
		}
		pod := cnitest.NewNS(b)
		req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: cni.HostVethName("", "bench", "pod"),
			Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(i + 1), 2}), 32)}, MTU: 1400}
		if err := n.Do(func(ns.NetNS) error { _, err := (&cni.PodNetwork{}).Setup(b.Context(), req); return err }); err != nil {
			b.Fatal(err)
		}
		pods[i], nodes[i] = pod, h
	}
	return pods[0], pods[1], nodes
}

// program sets up the pod-to-pod path on both nodes: tortie's Manager, or a hand-built VXLAN; with
// direct, unencapsulated routes via the other node instead.
func program(b *testing.B, nodes [2]*netlinkx.Kernel, tortie, direct bool) {
	b.Helper()
	names := []string{"a", "b"}
	for i, h := range nodes {
		me, other := names[i], names[1-i]
		myIP, otherIP := netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), netip.AddrFrom4([4]byte{10, 0, 0, byte(2 - i)})
		myTun, otherTun := netip.AddrFrom4([4]byte{10, 70, byte(i + 1), 0}), netip.AddrFrom4([4]byte{10, 70, byte(2 - i), 0})
		otherBlock := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(2 - i), 0}), 26)
		if direct {
			program1Direct(b, h, me, other, myIP, otherIP, otherBlock, tortie)
			continue
		}
		if !tortie {
			vx, err := h.LinkAdd(netlinkx.NewLink{Name: "vxhand", Kind: "vxlan", MTU: 1450, HardwareAddr: dpmodel.DerivedVTEPMAC(me),
				VXLAN: &netlinkx.VXLAN{VNI: 4096, Port: 4789, Local: myIP}})
			if err != nil {
				b.Fatal(err)
			}
			for _, err := range []error{
				h.AddrAdd(netlinkx.Addr{LinkIndex: vx.Index, Prefix: netip.PrefixFrom(myTun, 32)}), h.LinkSetUp(vx.Index),
				h.NeighSet(netlinkx.Neigh{LinkIndex: vx.Index, IP: otherTun, MAC: dpmodel.DerivedVTEPMAC(other)}),
				h.FDBSet(netlinkx.FDB{LinkIndex: vx.Index, MAC: dpmodel.DerivedVTEPMAC(other), Dst: otherIP}),
				h.RouteAdd(netlinkx.Route{Dst: otherBlock, Gw: otherTun, LinkIndex: vx.Index, OnLink: true}),
			} {
				if err != nil {
					b.Fatal(err)
				}
			}
			continue
		}
		m, err := New(Options{Handle: h, Local: LocalTunnels{VXLANv4: myTun}})
		if err != nil {
			b.Fatal(err)
		}
		feed(m, []dpmodel.Update{
			dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: me, VXLANEnabled: true, VXLANVNI: 4096, VXLANPort: 4789}},
			dpmodel.HostUpdate{Node: me, Host: dpmodel.Host{IPv4: netip.PrefixFrom(myIP, 24)}},
			dpmodel.HostUpdate{Node: other, Host: dpmodel.Host{IPv4: netip.PrefixFrom(otherIP, 24)}},
			dpmodel.VTEPUpdate{Node: other, VTEP: dpmodel.VTEP{TunnelIPv4: otherTun, MACv4: dpmodel.DerivedVTEPMAC(other).String(), ParentIPv4: otherIP}},
			dpmodel.RouteUpdate{Dst: otherBlock, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: dpmodel.EncapVXLAN, DstNode: other,
				DstNodeIP: otherIP}},
		})
		if err := m.Apply(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// program1Direct programs one node's unencapsulated route to the other node's block.
func program1Direct(b *testing.B, h netlinkx.Handle, me, other string, myIP, otherIP netip.Addr, otherBlock netip.Prefix, tortie bool) {
	b.Helper()
	eth, err := h.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	if !tortie {
		if err := h.RouteAdd(netlinkx.Route{Dst: otherBlock, Gw: otherIP, LinkIndex: eth.Index, OnLink: true}); err != nil {
			b.Fatal(err)
		}
		return
	}
	m, err := New(Options{Handle: h})
	if err != nil {
		b.Fatal(err)
	}
	feed(m, []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: me}},
		dpmodel.HostUpdate{Node: me, Host: dpmodel.Host{IPv4: netip.PrefixFrom(myIP, 24)}},
		dpmodel.HostUpdate{Node: other, Host: dpmodel.Host{IPv4: netip.PrefixFrom(otherIP, 24)}},
		dpmodel.RouteUpdate{Dst: otherBlock, Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, Encap: dpmodel.EncapNone, DstNode: other,
			DstNodeIP: otherIP, SameSubnet: true}},
	})
	if err := m.Apply(b.Context()); err != nil {
		b.Fatal(err)
	}
}

func pathBench(b *testing.B, tortie, direct bool, run func(b *testing.B, a, c ns.NetNS, dst netip.Addr)) {
	podA, podB, nodes := twoNodes(b)
	program(b, nodes, tortie, direct)
	run(b, podA, podB, ip("10.70.2.2"))
}

// BenchmarkPodRTT: one UDP request/response between pods on two nodes per op.
func BenchmarkPodRTT(b *testing.B) {
	for _, tc := range []struct {
		name           string
		tortie, direct bool
	}{{"tortie", true, false}, {"baseline", false, false}, {"tortie-direct", true, true}, {"baseline-direct", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			pathBench(b, tc.tortie, tc.direct, func(b *testing.B, a, c ns.NetNS, dst netip.Addr) {
				cnitest.UDPEcho(b, c, 7100)
				if err := cnitest.UDPPing(a, dst, 7100, 10*time.Second); err != nil {
					b.Fatal(err)
				}
				var conn net.Conn
				if err := a.Do(func(ns.NetNS) (err error) {
					conn, err = net.Dial("udp", netip.AddrPortFrom(dst, 7100).String())
					return err
				}); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = conn.Close() }()
				buf := make([]byte, 64)
				b.ResetTimer()
				for b.Loop() {
					_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := conn.Write(buf[:32]); err != nil {
						b.Fatal(err)
					}
					if _, err := conn.Read(buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkPodThroughput: 1 MiB over one TCP connection between pods on two nodes per op.
func BenchmarkPodThroughput(b *testing.B) {
	for _, tc := range []struct {
		name           string
		tortie, direct bool
	}{{"tortie", true, false}, {"baseline", false, false}, {"tortie-direct", true, true}, {"baseline-direct", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			pathBench(b, tc.tortie, tc.direct, func(b *testing.B, a, c ns.NetNS, dst netip.Addr) {
				var ln net.Listener
				if err := c.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp", ":7200"); return err }); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = ln.Close() }()
				go func() {
					for {
						s, err := ln.Accept()
						if err != nil {
							return
						}
						go func() {
							defer func() { _ = s.Close() }()
							buf := make([]byte, 64<<10)
							for {
								if _, err := s.Read(buf); err != nil {
									return
								}
							}
						}()
					}
				}()
				conn, err := tcpDial(a, dst, 7200)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = conn.Close() }()
				chunk := make([]byte, 1<<20)
				b.SetBytes(int64(len(chunk)))
				b.ResetTimer()
				for b.Loop() {
					if _, err := conn.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
