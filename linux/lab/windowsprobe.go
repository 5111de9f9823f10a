//go:build linux

package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// The probe for pairs with a Windows pod. A Windows pod is an HNS endpoint in its node's fake HNS, with
// no kernel behind it, so a cell with one is decided in halves:
//
//   - the Windows half by the fake: the Windows endpoint's ACLs through the fake's evaluator
//     (EndpointVerdict: egress for a Windows source, ingress for a Windows destination), and for a
//     Windows source whose destination is on another node the fake's RemoteSubnetRoute for it, which
//     must name the destination node's underlay address and published VTEP MAC;
//   - the Linux half by real packets at the Windows node's VXLAN port: the Windows node's namespace
//     holds a UDP socket on its underlay address, port 4789, standing in for the vSwitch's VXLAN
//     endpoint. Linux → Windows: the Linux pod connects to the Windows pod's address; the cell is
//     allowed only if the Linux node's kernel encapsulates the first packet (through the Linux pod's
//     egress policy and the node's VXLAN route and FDB) to this node with the Windows VTEP MAC as its
//     inner destination. Windows → Linux: the lab sends the Windows pod's first packet (a TCP SYN or
//     the UDP probe), VXLAN-encapsulated as the fake's route says, to the Linux node, whose kernel
//     decapsulates it and applies the Linux pod's ingress policy; the cell is allowed only if the
//     Linux pod's answer (SYN-ACK, or the UDP reply with its id) comes back encapsulated to this node.
//
// Windows ↔ Windows cells are decided by the fake alone. `probe --json` lists the Windows pods in
// "answeredBy" ("hns-fake"), and the text matrix marks them with a legend.

// AnsweredByFake is the "answeredBy" value of a pod whose cells the fake HNS decides (in part).
const AnsweredByFake = "hns-fake"

// vxlanPort is the VXLAN UDP port (Calico's and HNS's default; the lab does not change it).
const vxlanPort = 4789

// winNode is what the probe knows of one node.
type winNode struct {
	n *Node
	// vtepMAC is the node's published VXLAN MAC (the router MAC of a Windows node's HNS network).
	vtepMAC net.HardwareAddr
	hns     *hcnfake.HNS // Windows nodes
	sock    *net.UDPConn // Windows nodes: the stand-in VXLAN endpoint
}

// capture is one packet seen at a Windows node's VXLAN port, decapsulated.
type capture struct {
	vni              uint32
	dstMAC, srcMAC   net.HardwareAddr
	src, dst         netip.Addr
	proto            uint8
	sport, dport     uint16
	tcpFlags         uint8
	payload          []byte
	fromNode, atNode netip.Addr
}

type waiter struct {
	match func(*capture) bool
	ch    chan struct{}
}

// winProber decides the cells with a Windows pod; nil when the lab has no Windows node.
type winProber struct {
	l       *Lab
	nodes   map[int]*winNode
	mu      sync.Mutex
	waiters map[*waiter]bool
	sport   atomic.Uint32
	wg      sync.WaitGroup
}

func (l *Lab) newWinProber(ctx context.Context) (*winProber, error) {
	w := &winProber{l: l, nodes: map[int]*winNode{}, waiters: map[*waiter]bool{}}
	w.sport.Store(uint32(32768 + time.Now().UnixNano()%16384))
	haveWin := false
	for _, n := range l.s.liveNodes() {
		if n.OS == OSWindows {
			haveWin = true
		}
	}
	if !haveWin {
		return nil, nil
	}
	for _, n := range l.s.liveNodes() {
		wn := &winNode{n: n}
		obj, err := l.be.Get(ctx, datastore.Key{Kind: api.KindNode, Name: n.Name})
		if err == nil {
			if nd, ok := obj.(*api.Node); ok {
				wn.vtepMAC, _ = net.ParseMAC(nd.Spec.VXLANTunnelMACAddr)
			}
		} else if !errors.Is(err, datastore.ErrNotFound) {
			w.close()
			return nil, fmt.Errorf("reading Node %s for its VTEP: %w", n.Name, err)
		}
		w.nodes[n.Index] = wn
		if n.OS != OSWindows {
			continue
		}
		if wn.hns, err = l.openFakeHNS(n); err != nil {
			w.close()
			return nil, err
		}
		err = inNetNS(n.NetNS, func() error {
			var err error
			wn.sock, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.IP.Addr(), vxlanPort)))
			return err
		})
		if err != nil {
			w.close()
			return nil, fmt.Errorf("node %s: listening on its VXLAN port %s:%d: %w", n.Name, n.IP.Addr(), vxlanPort, err)
		}
		w.wg.Go(func() { w.read(wn) })
	}
	return w, nil
}

func (w *winProber) close() {
	if w == nil {
		return
	}
	for _, wn := range w.nodes {
		if wn.sock != nil {
			_ = wn.sock.Close()
		}
	}
	w.wg.Wait()
}

// handles reports whether the cell src → dst has a Windows pod.
func (w *winProber) handles(src, dst *Pod) bool {
	return w != nil && (w.win(src) || w.win(dst))
}

func (w *winProber) win(p *Pod) bool {
	wn := w.nodes[p.Node]
	return wn != nil && wn.n.OS == OSWindows
}

// answeredBy lists the pods whose cells the fake decides (in part).
func (w *winProber) answeredBy(pods []*Pod) map[string]string {
	if w == nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range pods {
		if w.win(p) {
			out[p.ID()] = AnsweredByFake
		}
	}
	return out
}

func protoNum(proto string) uint8 {
	if proto == "UDP" {
		return 17
	}
	return 6
}

// probe decides one cell with a Windows pod; the error says why it is blocked.
func (w *winProber) probe(ctx context.Context, src, dst *Pod, t target, timeout time.Duration) error {
	sn, dn := w.nodes[src.Node], w.nodes[dst.Node]
	if sn == nil || dn == nil {
		return errors.New("a node of the pair is gone")
	}
	if src == dst {
		return nil // a pod's own address stays in its own stack: no ACL layer sees it (as loopback on Linux)
	}
	sport := uint16(32768 + w.sport.Add(1)%28000)
	pkt := hcnfake.Packet{Src: src.IP, Dst: dst.IP, Protocol: protoNum(t.proto), SrcPort: sport, DstPort: t.port}
	if w.win(src) {
		v, err := sn.hns.EndpointVerdict(src.IP, hcn.DirectionOut, pkt)
		if err != nil {
			return fmt.Errorf("node %s: %w", sn.n.Name, err)
		}
		if !v.Allowed {
			return errors.New(v.Reason)
		}
	}
	if w.win(dst) {
		v, err := dn.hns.EndpointVerdict(dst.IP, hcn.DirectionIn, pkt)
		if err != nil {
			return fmt.Errorf("node %s: %w", dn.n.Name, err)
		}
		if !v.Allowed {
			return errors.New(v.Reason)
		}
	}
	if w.win(src) && sn == dn {
		return nil // through the node's vSwitch: both ends' ACLs decided
	}
	if w.win(src) {
		r, ok := sn.hns.RemoteRoute(winNetwork, dst.IP)
		if !ok {
			return fmt.Errorf("node %s: no RemoteSubnetRoute covers %s", sn.n.Name, dst.IP)
		}
		mac, err := net.ParseMAC(strings.ReplaceAll(r.DistributedRouterMacAddress, "-", ":"))
		if err != nil || r.ProviderAddress != dn.n.IP.Addr().String() || !macEqual(mac, dn.vtepMAC) {
			return fmt.Errorf("node %s: RemoteSubnetRoute %s goes to %s (%s), not node %s's VTEP %s (%s)",
				sn.n.Name, r.DestinationPrefix, r.ProviderAddress, r.DistributedRouterMacAddress, dn.n.Name, dn.n.IP.Addr(), dn.vtepMAC)
		}
		if w.win(dst) {
			return nil // vSwitch to vSwitch: both ends' ACLs and the route decided
		}
		return w.inject(ctx, sn, dn, src, dst, t, sport, uint32(r.IsolationId), mac, timeout)
	}
	return w.fromLinux(ctx, src, dst, dn, t, timeout)
}

func macEqual(a, b net.HardwareAddr) bool {
	return len(a) == 6 && a.String() == b.String()
}

// wait registers a waiter for a capture matching m, runs send until the capture arrives or the timeout.
func (w *winProber) wait(ctx context.Context, timeout time.Duration, m func(*capture) bool, send func(context.Context) error) error {
	wt := &waiter{match: m, ch: make(chan struct{})}
	w.mu.Lock()
	w.waiters[wt] = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.waiters, wt)
		w.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var sendErr error
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		sendErr = send(ctx)
	}()
	select {
	case <-wt.ch:
		cancel()
		<-sent // the packet arrived: how the sender stopped does not matter
		return nil
	case <-ctx.Done():
		<-sent
		return errors.Join(errors.New("no packet arrived"), sendErr)
	}
}

// fromLinux: the Linux pod's first packet must leave its node encapsulated to the Windows node, with
// the Windows VTEP MAC as the inner destination.
func (w *winProber) fromLinux(ctx context.Context, src, dst *Pod, dn *winNode, t target, timeout time.Duration) error {
	proto := protoNum(t.proto)
	match := func(c *capture) bool {
		return c.atNode == dn.n.IP.Addr() && c.src == src.IP && c.dst == dst.IP && c.proto == proto && c.dport == t.port &&
			macEqual(c.dstMAC, dn.vtepMAC) && (proto != 6 || c.tcpFlags&0x12 == 0x02)
	}
	addr := netip.AddrPortFrom(dst.IP, t.port).String()
	return w.wait(ctx, timeout, match, func(ctx context.Context) error {
		return inNetNS(src.NetNS, func() error {
			var d net.Dialer
			if t.proto == "TCP" {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					_ = c.Close()
				}
				return nil
			}
			c, err := d.DialContext(ctx, "udp", addr)
			if err != nil {
				return err
			}
			defer c.Close() //nolint:errcheck // probe
			for ctx.Err() == nil {
				_, _ = c.Write([]byte("probe"))
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
			return nil
		})
	})
}

// inject sends the Windows pod's first packet as the Windows node's vSwitch would, VXLAN-encapsulated
// to the Linux node the fake's route names, and waits for the Linux pod's answer to come back
// encapsulated.
func (w *winProber) inject(ctx context.Context, sn, dn *winNode, src, dst *Pod, t target, sport uint16, vni uint32, dstMAC net.HardwareAddr, timeout time.Duration) error {
	if len(sn.vtepMAC) != 6 {
		return fmt.Errorf("node %s has published no VTEP MAC", sn.n.Name)
	}
	proto := protoNum(t.proto)
	payload := []byte("probe")
	if proto == 6 {
		payload = nil
	}
	frame := vxlanFrame(vni, dstMAC, sn.vtepMAC, src.IP, dst.IP, proto, sport, t.port, payload)
	want := dst.ID() + "\n"
	refused := make(chan struct{}, 1)
	match := func(c *capture) bool {
		if c.atNode != sn.n.IP.Addr() || c.src != dst.IP || c.dst != src.IP || c.proto != proto || c.sport != t.port || c.dport != sport {
			return false
		}
		if proto == 6 {
			if c.tcpFlags&0x04 != 0 {
				select {
				case refused <- struct{}{}:
				default:
				}
				return false
			}
			return c.tcpFlags&0x12 == 0x12
		}
		return strings.HasPrefix(string(c.payload), want)
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dn.n.IP.Addr(), vxlanPort))
	return w.wait(ctx, timeout, match, func(ctx context.Context) error {
		for {
			if _, err := sn.sock.WriteToUDP(frame, to); err != nil {
				return fmt.Errorf("sending to %s: %w", to, err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-refused:
				return errors.New("refused (RST)")
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
}

// read decapsulates what arrives at a Windows node's VXLAN port and wakes the matching waiters.
func (w *winProber) read(wn *winNode) {
	buf := make([]byte, 65536)
	for {
		n, from, err := wn.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c, ok := decapsulate(buf[:n])
		if !ok {
			continue
		}
		c.fromNode, c.atNode = from.Addr().Unmap(), wn.n.IP.Addr()
		w.mu.Lock()
		for wt := range w.waiters {
			if wt.match(c) {
				close(wt.ch)
				delete(w.waiters, wt)
			}
		}
		w.mu.Unlock()
	}
}

// decapsulate parses VXLAN | Ethernet | IPv4 | TCP or UDP.
func decapsulate(b []byte) (*capture, bool) {
	if len(b) < 8+14+20 || b[0]&0x08 == 0 {
		return nil, false
	}
	c := &capture{vni: uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])}
	b = b[8:]
	c.dstMAC, c.srcMAC = net.HardwareAddr(append([]byte(nil), b[0:6]...)), net.HardwareAddr(append([]byte(nil), b[6:12]...))
	if binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		return nil, false
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 {
		return nil, false
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < ihl+8 || total > len(ip) {
		return nil, false
	}
	c.proto = ip[9]
	c.src, c.dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	l4 := ip[ihl:total]
	c.sport, c.dport = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
	switch c.proto {
	case 6:
		if len(l4) < 20 {
			return nil, false
		}
		c.tcpFlags = l4[13]
	case 17:
		c.payload = append([]byte(nil), l4[8:]...)
	default:
		return nil, false
	}
	return c, true
}

// vxlanFrame builds VXLAN | Ethernet | IPv4 | (TCP SYN or UDP with payload), checksums included.
func vxlanFrame(vni uint32, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, proto uint8, sport, dport uint16, payload []byte) []byte {
	var l4 []byte
	if proto == 6 {
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint32(l4[4:], uint32(time.Now().UnixNano())) // sequence number
		l4[12] = 5 << 4                                                   // data offset
		l4[13] = 0x02                                                     // SYN
		binary.BigEndian.PutUint16(l4[14:], 64240)                        // window
	} else {
		l4 = make([]byte, 8+len(payload))
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], payload)
	}
	s4, d4 := src.As4(), dst.As4()
	pseudo := make([]byte, 0, 12+len(l4))
	pseudo = append(pseudo, s4[:]...)
	pseudo = append(pseudo, d4[:]...)
	pseudo = append(pseudo, 0, proto, byte(len(l4)>>8), byte(len(l4)))
	pseudo = append(pseudo, l4...)
	sum := checksum(pseudo)
	if proto == 6 {
		binary.BigEndian.PutUint16(l4[16:], sum)
	} else {
		if sum == 0 {
			sum = 0xffff
		}
		binary.BigEndian.PutUint16(l4[6:], sum)
	}
	ip := make([]byte, 20, 20+len(l4))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], uint16(sport)) // identification
	ip[6] = 0x40                                      // don't fragment
	ip[8] = 64                                        // TTL
	ip[9] = proto
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	ip = append(ip, l4...)

	out := make([]byte, 8, 8+14+len(ip))
	out[0] = 0x08
	out[4], out[5], out[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	out = append(out, dstMAC...)
	out = append(out, srcMAC...)
	out = append(out, 0x08, 0x00)
	return append(out, ip...)
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// legend is the text matrix's line naming the pods the fake answers for (empty when none).
func (m *Matrix) legend() string {
	if len(m.AnsweredBy) == 0 {
		return ""
	}
	var ids []string
	for _, p := range m.Pods {
		if m.AnsweredBy[p] != "" {
			ids = append(ids, p)
		}
	}
	return fmt.Sprintf("legend: rows and columns of %s (pods on Windows nodes) are answered by the fake HNS "+
		"(its ACL evaluator and remote routes) for the Windows half; the Linux half by real packets at VXLAN\n", strings.Join(ids, " "))
}

// answeredByJSON is `,"answeredBy":{...}` in Pods order, or empty.
func (m *Matrix) answeredByJSON() string {
	if len(m.AnsweredBy) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`,"answeredBy":{`)
	first := true
	for _, p := range m.Pods {
		if v := m.AnsweredBy[p]; v != "" {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(strconv.Quote(p) + ":" + strconv.Quote(v))
		}
	}
	b.WriteString("}")
	return b.String()
}
