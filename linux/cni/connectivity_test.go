//go:build linux

package cni

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/cnitest"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// TestConnectivity puts two pods on one node and proves the wiring carries
// traffic: pod to pod over UDP (IPv4 and IPv6, both directions), and pod to
// node with ICMP (ping).
func TestConnectivity(t *testing.T) {
	requireRoot(t)
	node, podA, podB := newNode(t), cnitest.NewNS(t), cnitest.NewNS(t)
	a := cnicore.InterfaceRequest{NetNS: podA.Path(), ContainerIfName: "eth0", HostIfName: HostVethName("", "default", "pod-a"),
		Addresses: prefixes("10.65.4.1/32", "fd00:65::4:1/128")}
	b := cnicore.InterfaceRequest{NetNS: podB.Path(), ContainerIfName: "eth0", HostIfName: HostVethName("", "default", "pod-b"),
		Addresses: prefixes("10.65.4.2/32", "fd00:65::4:2/128")}
	mustSetup(t, node, a)
	mustSetup(t, node, b)

	// The pods' IPv6 gateway is the host end's link-local address; the
	// kernel adds it once the carrier is up (asynchronously, via linkwatch).
	for _, r := range []cnicore.InterfaceRequest{a, b} {
		eventually(t, "fe80::ecee:eeff:feee:eeee on "+r.HostIfName, func() bool {
			h := cnitest.Handle(t, node)
			l, err := h.LinkByName(r.HostIfName)
			if err != nil {
				return false
			}
			addrs, err := h.AddrList(l, netlink.FAMILY_V6)
			if err != nil {
				return false
			}
			for _, ad := range addrs {
				if ad.IP.Equal(gatewayV6.AsSlice()) {
					return true
				}
			}
			return false
		})
	}

	tests := []struct {
		name     string
		from, to ns.NetNS
		dst      netip.Addr
	}{
		{"A to B IPv4", podA, podB, b.Addresses[0].Addr()},
		{"B to A IPv4", podB, podA, a.Addresses[0].Addr()},
		{"A to B IPv6", podA, podB, b.Addresses[1].Addr()},
		{"B to A IPv6", podB, podA, a.Addresses[1].Addr()},
	}
	for _, tt := range tests {
		t.Run("udp "+tt.name, func(t *testing.T) {
			udpEcho(t, tt.from, tt.to, tt.dst)
		})
	}

	for _, dst := range []netip.Addr{nodeIPv4, nodeIPv6} {
		t.Run("ping node "+dst.String(), func(t *testing.T) {
			ping(t, podA, dst)
		})
	}
}

// udpEcho serves a UDP echo on dst inside to and exchanges a datagram with
// it from inside from, retrying for a bounded time (the first packets wait
// for neighbour resolution).
func udpEcho(t *testing.T, from, to ns.NetNS, dst netip.Addr) {
	t.Helper()
	var srv *net.UDPConn
	doIn(t, to, func() (err error) {
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
		return err
	})
	defer srv.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, peer, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDPAddrPort(buf[:n], peer)
		}
	}()

	var cl *net.UDPConn
	doIn(t, from, func() (err error) {
		cl, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv.LocalAddr().(*net.UDPAddr).AddrPort()))
		return err
	})
	defer cl.Close()

	// Any echo of any datagram sent proves the path; a late echo of an
	// earlier try counts (comparing with the latest only would stay one
	// behind for ever once the first reply is slower than a try).
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1500)
	var lastErr error
	for i := 0; time.Now().Before(deadline); i++ {
		if _, err := cl.Write(fmt.Appendf(nil, "hello %d", i)); err != nil {
			lastErr = err // e.g. ECONNREFUSED from an earlier ICMP error; retry
		}
		_ = cl.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := cl.Read(buf)
		if err == nil && bytes.HasPrefix(buf[:n], []byte("hello ")) {
			if i > 0 {
				t.Logf("UDP echo from %s after %d tries", dst, i+1)
			}
			return
		}
		if err != nil {
			lastErr = err
		}
	}
	t.Fatalf("no UDP echo from %s within 5s (last error: %v)", dst, lastErr)
}

// ping runs iputils ping inside pod (via nsenter) a few times.
func ping(t *testing.T, pod ns.NetNS, dst netip.Addr) {
	t.Helper()
	for _, tool := range []string{"nsenter", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (apt-get install util-linux iputils-ping)", tool)
		}
	}
	var out []byte
	var err error
	for range 3 {
		out, err = exec.CommandContext(t.Context(), "nsenter", "--net="+pod.Path(), "ping", "-c1", "-W1", dst.String()).CombinedOutput()
		if err == nil {
			return
		}
	}
	t.Fatalf("ping %s from %s: %v\n%s", dst, pod.Path(), err, out)
}
