//go:build linux

package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/tortie-net/tortie/common/calc"
	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
	linuxcni "github.com/tortie-net/tortie/linux/cni"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/platform/dptest/policy"
)

// The policy suite's cluster in network namespaces: three node namespaces on one bridge (192.168.50.1-3)
// and the nine pods as namespaces wired to their node by linux/cni exactly as the CNI plugin does (veth
// cali<ns><pod>, /32 host route, proxy ARP), with TCP and UDP servers on ports 80-82 and static routes
// between nodes for the remote pods (the routing manager's job on a real node). Built once and reused
// by every case: each case starts with every node's rules removed (Cleanup) and conntrack flushed.
type testCluster struct {
	nodes map[string]ns.NetNS
	pods  map[string]ns.NetNS // "x/a" -> namespace
}

var probePorts = []int{80, 81, 82}

func buildCluster(t testing.TB) *testCluster {
	t.Helper()
	c := &testCluster{nodes: map[string]ns.NetNS{}, pods: map[string]ns.NetNS{}}
	lan := cnitest.NewNS(t)
	lh := cnitest.Handle(t, lan)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("bridge", lh.LinkAdd(br))
	must("bridge up", lh.LinkSetUp(br))
	nodeIP := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, 50, byte(i + 1)}) }
	for i, n := range policy.Nodes {
		node := cnitest.NewNS(t)
		c.nodes[n] = node
		nh := cnitest.Handle(t, node)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "up-" + n}
		must("uplink", nh.LinkAdd(veth))
		peer, err := nh.LinkByName("up-" + n)
		must("uplink peer", err)
		must("uplink to lan", nh.LinkSetNsFd(peer, int(lan.Fd())))
		peer, err = lh.LinkByName("up-" + n)
		must("uplink in lan", err)
		must("enslave", lh.LinkSetMaster(peer, br))
		must("lan up", lh.LinkSetUp(peer))
		eth, err := nh.LinkByName("eth0")
		must("eth0", err)
		must("eth0 addr", nh.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: nodeIP(i).AsSlice(), Mask: net.CIDRMask(24, 32)}}))
		must("eth0 up", nh.LinkSetUp(eth))
		// Proxy ARP answers the pods' gateway (169.254.1.1) only when the node has a route to it.
		must("default route", nh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Scope: netlink.SCOPE_LINK}))
		// The agent's start-up enables forwarding on a real node.
		must("forwarding", node.Do(func(ns.NetNS) error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
		}))
		lo, err := nh.LinkByName("lo")
		must("lo", err)
		must("lo up", nh.LinkSetUp(lo))
	}
	for _, nsName := range policy.Namespaces {
		for pi, pod := range policy.PodNames {
			node := policy.Nodes[pi]
			p := cnitest.NewNS(t)
			id := nsName + "/" + pod
			c.pods[id] = p
			addr := podAddr(id)
			var err error
			must("node "+node, c.nodes[node].Do(func(ns.NetNS) error {
				_, err = (&linuxcni.PodNetwork{}).Setup(context.Background(), cnicore.InterfaceRequest{NetNS: p.Path(),
					ContainerIfName: "eth0", HostIfName: "cali" + nsName + pod, Addresses: []netip.Prefix{netip.PrefixFrom(addr, 32)}})
				return nil
			}))
			must("pod "+id, err)
			// Routes to this pod from the other nodes.
			for j, other := range policy.Nodes {
				if j == pi {
					continue
				}
				oh := cnitest.Handle(t, c.nodes[other])
				must("route", oh.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: nodeIP(pi).AsSlice()}))
			}
			c.serve(t, p)
		}
	}
	return c
}

func podAddr(id string) netip.Addr {
	nsName, pod, _ := strings.Cut(id, "/")
	return netip.AddrFrom4([4]byte{10, 0, byte(slices.Index(policy.Namespaces, nsName) + 1), byte(slices.Index(policy.PodNames, pod) + 1)})
}

// serve starts TCP servers (accept and close) and UDP echo servers on probePorts inside the pod.
func (c *testCluster) serve(t testing.TB, p ns.NetNS) {
	t.Helper()
	for _, port := range probePorts {
		var l net.Listener
		if err := p.Do(func(ns.NetNS) (err error) {
			l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				_ = conn.Close()
			}
		}()
		t.Cleanup(func() { _ = l.Close() })
		cnitest.UDPEcho(t, p, port)
	}
}

// probeTimeout bounds one attempt; a probe that times out is tried once more with twice as long, so a
// slow machine does not turn an allowed flow into a denied one. Denied flows are rejected (DenyAction
// Reject) and fail at once, so timeouts are rare.
const probeTimeout = 400 * time.Millisecond

// send sends one probe from src to dst and reports whether it got through (and back).
func (c *testCluster) send(src, dst string, p policy.Probe, timeout time.Duration) (ok, timedOut bool, err error) {
	to := podAddr(dst)
	err = c.pods[src].Do(func(ns.NetNS) error {
		switch p.Protocol {
		case 6:
			d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{Port: int(p.SrcPort)}, Control: reuseAddr}
			conn, err := d.Dial("tcp4", netip.AddrPortFrom(to, p.DstPort).String())
			if err == nil {
				_ = conn.Close()
				ok = true
				return nil
			}
			timedOut = isTimeout(err)
			return nil
		case 17:
			d := net.Dialer{LocalAddr: &net.UDPAddr{Port: int(p.SrcPort)}, Control: reuseAddr}
			conn, err := d.Dial("udp4", netip.AddrPortFrom(to, p.DstPort).String())
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			if _, err := conn.Write([]byte("probe")); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(timeout))
			buf := make([]byte, 16)
			_, err = conn.Read(buf)
			ok = err == nil
			timedOut = err != nil && isTimeout(err)
			return nil
		case 1:
			conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			id := int(pingID.Add(1) & 0xffff)
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("probe")}}
			b, _ := msg.Marshal(nil)
			if _, err := conn.WriteTo(b, &net.IPAddr{IP: to.AsSlice()}); err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			_ = conn.SetReadDeadline(deadline)
			buf := make([]byte, 1500)
			for {
				n, from, err := conn.ReadFrom(buf)
				if err != nil {
					timedOut = isTimeout(err)
					return nil
				}
				m, err := icmp.ParseMessage(1, buf[:n])
				if err != nil {
					continue
				}
				switch body := m.Body.(type) {
				case *icmp.Echo:
					if m.Type == ipv4.ICMPTypeEchoReply && body.ID == id && from.String() == to.String() {
						ok = true
						return nil
					}
				case *icmp.DstUnreach:
					// A rejection of our echo (its quoted header names our destination).
					if len(body.Data) >= 20 && netip.AddrFrom4([4]byte(body.Data[16:20])) == to {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("protocol %d is not probed", p.Protocol)
	})
	return ok, timedOut, err
}

var pingID atomic.Uint32

// reuseAddr lets the parallel probes of one pod share the suite's source port (40000): each is
// connected to a different destination, so the kernel tells their packets apart.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT)
}

// linuxCluster is one case's policy.Dataplane: per node the calculation and this dataplane, over the
// shared namespaces.
type linuxCluster struct {
	c     *testCluster
	calcs map[string]*calc.Calculator
	dps   map[string]*Dataplane
	// cache: probe kind -> "src>dst" -> allowed; reset by Update.
	cache map[string]map[string]bool
	// unprobed counts probes answered by the reference interpreter instead of packets (see Allowed).
	unprobed map[string]int
}

func (c *testCluster) newDataplane(t *testing.T) policy.Dataplane {
	lc := &linuxCluster{c: c, calcs: map[string]*calc.Calculator{}, dps: map[string]*Dataplane{},
		cache: map[string]map[string]bool{}, unprobed: map[string]int{}}
	for _, n := range policy.Nodes {
		lc.calcs[n] = calc.New(calc.Config{NodeName: n})
		dp := New(Options{Runner: nsExec(c.nodes[n]), Backend: "nft"})
		if err := dp.Cleanup(t.Context()); err != nil {
			t.Fatalf("node %s: Cleanup before the case: %v", n, err)
		}
		dp.OnUpdate(dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: n, InterfacePrefixes: []string{"cali"},
			DefaultEndpointToHostAction: "Drop", DenyAction: "Reject"}})
		lc.dps[n] = dp
	}
	t.Cleanup(func() {
		if len(lc.unprobed) > 0 {
			t.Logf("answered by the reference interpreter, not by packets: %v", lc.unprobed)
		}
	})
	return lc
}

func (lc *linuxCluster) Update(t testing.TB, batch []datastore.Update) {
	t.Helper()
	for _, n := range policy.Nodes {
		dp := lc.dps[n]
		for _, u := range lc.calcs[n].OnUpdates(batch) {
			dp.OnUpdate(u)
		}
		if err := dp.Apply(t.Context()); err != nil {
			t.Fatalf("node %s: Apply: %v", n, err)
		}
		// Earlier probes' flows must not be carried by the conntrack fast path into the new policy.
		if _, err := nsExec(lc.c.nodes[n]).Run(t.Context(), "conntrack", []string{"-F"}, nil); err != nil {
			t.Fatalf("node %s: conntrack -F: %v", n, err)
		}
	}
	clear(lc.cache)
}

func probeKind(p policy.Probe) string {
	return fmt.Sprintf("%d/%d/%d/%d", p.Protocol, p.DstPort, p.ICMPType, p.ICMPCode)
}

// probed says whether a probe is sent as a real packet: TCP, UDP and ICMP echo requests between two
// different pods. The others are answered by dpeval on the nodes' desired states: a pod's packets to
// its own address never leave its namespace (no policy can see them), this kernel has no SCTP in
// namespaces, and an ICMP error or echo reply that answers nothing is conntrack INVALID and dropped
// before policy, as in Calico.
func probed(p policy.Probe) bool {
	if p.Src == p.Dst {
		return false
	}
	return p.Protocol == 6 || p.Protocol == 17 || (p.Protocol == 1 && p.ICMPType == 8 && p.ICMPCode == 0)
}

func (lc *linuxCluster) Allowed(t testing.TB, p policy.Probe) bool {
	t.Helper()
	if !probed(p) {
		reason := "other"
		switch {
		case p.Src == p.Dst:
			reason = "to itself"
		case p.Protocol == 132:
			reason = "sctp"
		case p.Protocol == 1:
			reason = "icmp other than echo"
		}
		lc.unprobed[reason]++
		pkt := dpeval.Packet{Src: p.SrcIP, Dst: p.DstIP, Protocol: p.Protocol, SrcPort: p.SrcPort, DstPort: p.DstPort, ICMPType: p.ICMPType, ICMPCode: p.ICMPCode}
		eg, _ := dpeval.Side(lc.dps[p.SrcNode].state, dpeval.Egress, pkt)
		in, _ := dpeval.Side(lc.dps[p.DstNode].state, dpeval.Ingress, pkt)
		return eg.Verdict == dpmodel.Allow && in.Verdict == dpmodel.Allow
	}
	kind := probeKind(p)
	m, ok := lc.cache[kind]
	if !ok {
		m = lc.probeAll(t, p)
		lc.cache[kind] = m
	}
	v, ok := m[p.Src+">"+p.Dst]
	if !ok {
		t.Fatalf("probe %s -> %s was not sent (is the pod present on its node?)", p.Src, p.Dst)
	}
	return v
}

// present lists the pods whose endpoints the nodes hold.
func (lc *linuxCluster) present() []string {
	var out []string
	for _, dp := range lc.dps {
		for _, w := range dp.state.Workloads {
			nsName, pod := w.InterfaceName[4:5], w.InterfaceName[5:]
			out = append(out, nsName+"/"+pod)
		}
	}
	slices.Sort(out)
	return out
}

// probeAll sends the probe between every two different present pods, in parallel.
func (lc *linuxCluster) probeAll(t testing.TB, like policy.Probe) map[string]bool {
	t.Helper()
	pods := lc.present()
	out := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 24)
	var firstErr error
	for _, s := range pods {
		for _, d := range pods {
			if s == d {
				continue
			}
			p := like
			p.Src, p.Dst = s, d
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				ok, timedOut, err := lc.c.send(s, d, p, probeTimeout)
				if err == nil && !ok && timedOut {
					ok, _, err = lc.c.send(s, d, p, 2*probeTimeout)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("probe %s -> %s: %w", s, d, err)
				}
				out[s+">"+d] = ok
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

// TestPolicyConformance runs the policy truth tables (platform/dptest/policy) through calc → this
// dataplane on three nodes in network namespaces, probed with real TCP, UDP and ICMP packets between
// the nine pods.
func TestPolicyConformance(t *testing.T) {
	needRoot(t)
	c := buildCluster(t)
	policy.Run(t, c.newDataplane)
}
