//go:build linux

package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	startnode "github.com/tortie-net/tortie/common/startup/node"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/netlinkx"
	"github.com/tortie-net/tortie/platform"
	"github.com/tortie-net/tortie/platform/agent"
)

func TestMain(m *testing.M) {
	code := testenv.Run(m)
	cnitest.Cleanup()
	os.Exit(code)
}

// dataplane adapts a Manager to platform.Dataplane for the agent (linux/dataplane composes it with
// the policy half in the product).
type dataplane struct{ *Manager }

func (dataplane) Capabilities() platform.Capabilities {
	return platform.Capabilities{Name: "linux-routing", VXLAN: true, IPIP: true, IPv6: true}
}

// lab is a cluster of network namespaces playing nodes: one or two L2 segments (a bridge each, in a
// switch namespace), a router namespace joining them, an etcd datastore, the real start-up, CNI
// plugin (through libcni) and agent (common/calc) on every node.
type lab struct {
	t         *testing.T
	be        datastore.Backend
	keys      map[string]any
	addrs     []string // etcd host:port, forwarded into every node
	pluginDir string
	switches  map[string]ns.NetNS
	nodes     map[string]*labNode
}

type labNode struct {
	name   string
	cn     *cnitest.Node
	addr   netip.Prefix
	dir    string
	h      *counting
	mgr    *Manager
	cancel context.CancelFunc
	done   chan error
	agent  *agent.Agent
}

// segments: subnet name → CIDRs of the underlay (IPv4, IPv6); the router takes .254 (::fe) on each.
var segments = map[string][2]netip.Prefix{
	"A": {netip.MustParsePrefix("10.10.0.0/24"), netip.MustParsePrefix("fd10::/64")},
	"B": {netip.MustParsePrefix("10.10.1.0/24"), netip.MustParsePrefix("fd10:0:0:1::/64")},
}

func newLab(t *testing.T, vxlanMode api.EncapMode) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	l := &lab{t: t, pluginDir: cnitest.PluginDir(t), switches: map[string]ns.NetNS{}, nodes: map[string]*labNode{}}
	eps := testenv.Etcd(t)
	prefix := "/" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	be, err := etcd.New(etcd.Config{Endpoints: eps, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	l.be = be
	l.keys = map[string]any{"datastore_type": "etcdv3", "etcd_endpoints": strings.Join(eps, ","), "etcd_key_prefix": prefix}
	for _, e := range eps {
		u, err := url.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		l.addrs = append(l.addrs, u.Host)
	}
	for name, cidr := range map[string]string{"lab-pool": "10.70.0.0/16", "lab-pool-v6": "fd70::/64"} {
		p := api.NewIPPool()
		p.Name = name
		p.Spec.CIDR = cidr
		p.Spec.VXLANMode = vxlanMode
		api.SetDefaults(p)
		if _, err := be.Create(t.Context(), p); err != nil {
			t.Fatalf("creating IPPool %s: %v", name, err)
		}
	}
	for name := range segments {
		sw := cnitest.NewNS(t)
		h := cnitest.Handle(t, sw)
		la := netlink.NewLinkAttrs()
		la.Name = "br0"
		must(t, "bridge", h.LinkAdd(&netlink.Bridge{LinkAttrs: la}))
		br, err := h.LinkByName("br0")
		must(t, "bridge", err)
		must(t, "bridge up", h.LinkSetUp(br))
		l.switches[name] = sw
	}
	// The router joins the segments.
	r := cnitest.NewNS(t)
	for i, seg := range []string{"A", "B"} {
		var gws []netip.Prefix
		for _, p := range segments[seg] {
			gws = append(gws, netip.PrefixFrom(router(p), p.Bits()))
		}
		l.plug(r, fmt.Sprintf("r%d", i), seg, gws...)
	}
	must(t, "router forwarding", forwarding(r))
	return l
}

// router is the router's address on segment p: .254 or ::fe.
func router(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	if p.Addr().Is4() {
		a[15] = 254
		return netip.AddrFrom16(a).Unmap()
	}
	a[15] = 0xfe
	return netip.AddrFrom16(a)
}

func forwarding(n ns.NetNS) error {
	return errors.Join(sysctl(n, "/proc/sys/net/ipv4/ip_forward", "1"), sysctl(n, "/proc/sys/net/ipv6/conf/all/forwarding", "1"))
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func sysctl(n ns.NetNS, path, v string) error {
	return n.Do(func(ns.NetNS) error { return os.WriteFile(path, []byte(v), 0) })
}

// plug connects namespace n to segment seg with a veth named ifname inside n, holding addrs.
func (l *lab) plug(n ns.NetNS, ifname, seg string, addrs ...netip.Prefix) {
	t := l.t
	t.Helper()
	sw := cnitest.Handle(t, l.switches[seg])
	br, err := sw.LinkByName("br0")
	must(t, "br0", err)
	port := fmt.Sprintf("p%d", len(mustLinks(t, sw)))
	la := netlink.NewLinkAttrs()
	la.Name, la.MasterIndex = port, br.Attrs().Index
	must(t, "veth", sw.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: ifname, PeerNamespace: netlink.NsFd(int(n.Fd())), PeerTxQLen: -1}))
	p, err := sw.LinkByName(port)
	must(t, port, err)
	must(t, "port up", sw.LinkSetUp(p))
	h := cnitest.Handle(t, n)
	lo, err := h.LinkByName("lo")
	must(t, "lo", err)
	must(t, "lo up", h.LinkSetUp(lo))
	link, err := h.LinkByName(ifname)
	must(t, ifname, err)
	for _, a := range addrs {
		must(t, "address", h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())},
			Flags: unix.IFA_F_NODAD}))
	}
	must(t, ifname+" up", h.LinkSetUp(link))
}

func mustLinks(t *testing.T, h *netlink.Handle) []netlink.Link {
	ls, err := h.LinkList()
	must(t, "links", err)
	return ls
}

type ifaces []autodetect.Interface

func (i ifaces) List() ([]autodetect.Interface, error) { return i, nil }

// addNode creates node name on segment seg with host number host (10.10.x.<host>, fd10:…::<host>),
// runs the real start-up for it (Node resource, tunnel addresses, VTEP MACs) and starts its agent.
func (l *lab) addNode(name, seg string, host byte) *labNode {
	t := l.t
	t.Helper()
	var addrs []netip.Prefix
	for _, p := range segments[seg] {
		a := p.Masked().Addr().As16()
		a[15] = host
		addrs = append(addrs, netip.PrefixFrom(netip.AddrFrom16(a).Unmap(), p.Bits()))
	}
	n := &labNode{name: name, addr: addrs[0], dir: t.TempDir()}
	nns := cnitest.NewNS(t)
	n.cn = &cnitest.Node{Name: name, NS: nns, CacheDir: filepath.Join(n.dir, "cache")}
	n.cn.CNI = libcni.NewCNIConfigWithCacheDir([]string{l.pluginDir}, n.cn.CacheDir, nil)
	l.plug(nns, "eth0", seg, addrs...)
	h := cnitest.Handle(t, nns)
	for _, p := range segments[seg] {
		zero := net.IP(netip.IPv6Unspecified().AsSlice())
		if p.Addr().Is4() {
			zero = net.IP(netip.IPv4Unspecified().AsSlice())
		}
		must(t, "default route", h.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: zero, Mask: net.CIDRMask(0, p.Addr().BitLen())},
			Gw: router(p).AsSlice()}))
	}
	must(t, "forwarding", forwarding(nns))
	for _, a := range l.addrs {
		n.cn.Forward(t, a)
	}
	env := map[string]string{"NODENAME": name, "IP": addrs[0].String(), "IP6": addrs[1].String(), "NO_DEFAULT_POOLS": "true"}
	res, err := startnode.Run(t.Context(), startnode.Options{
		Backend: l.be, DatastoreType: startnode.DatastoreEtcd, Env: func(k string) string { return env[k] },
		Interfaces: ifaces{{Name: "eth0", Index: 2, Up: true, MTU: 1500, Addrs: addrs}},
		Files: startnode.Files{NodenameFile: filepath.Join(n.dir, "nodename"), TortieNodenameFile: filepath.Join(n.dir, "tortie-nodename"),
			MTUFile: filepath.Join(n.dir, "startup-mtu")},
		Hostname: func() (string, error) { return name, nil },
	})
	must(t, "node start-up "+name, err)
	for _, tr := range res.Tunnels {
		if tr.Address != "" {
			t.Logf("node %s: %s %s", name, tr.Type, tr.Address)
		}
	}
	kh, err := netlinkx.Open(nns.Path(), 10*time.Second)
	must(t, "netlink", err)
	t.Cleanup(func() { _ = kh.Close() })
	n.h = &counting{Handle: kh}
	l.nodes[name] = n
	l.startAgent(n)
	return n
}

// startAgent runs the real agent (syncer → common/calc → Manager) for n.
func (l *lab) startAgent(n *labNode) {
	t := l.t
	t.Helper()
	obj, err := l.be.Get(t.Context(), datastore.Key{Kind: api.KindNode, Name: n.name})
	must(t, "reading Node "+n.name, err)
	m, err := New(Options{Handle: n.h, Local: LocalTunnelsFromNode(obj.(*api.Node)), MTUFile: filepath.Join(n.dir, "mtu")})
	must(t, "routing manager", err)
	cfgFile := filepath.Join(n.dir, "felix.cfg")
	must(t, "felix.cfg", os.WriteFile(cfgFile, nil, 0o600))
	env := map[string]string{"FELIX_CONFIGFILE": cfgFile, "FELIX_HEALTHENABLED": "false", "FELIX_ROUTEREFRESHINTERVAL": "1s",
		"FELIX_IPTABLESREFRESHINTERVAL": "1s", "FELIX_IPSETSREFRESHINTERVAL": "1s"}
	settings, err := config.LoadAgent(func(k string) string { return env[k] }, n.name, nil)
	must(t, "settings", err)
	a, err := agent.New(agent.Options{NodeName: n.name, Dataplane: dataplane{m}, Settings: settings,
		Syncer: func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
			return datastore.NewSyncer(l.be, cb, kinds)
		}, HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"})
	must(t, "agent", err)
	ctx, cancel := context.WithCancel(context.Background())
	n.mgr, n.cancel, n.done, n.agent = m, cancel, make(chan error, 1), a
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(func() { n.stopAgent(t) })
}

func (n *labNode) stopAgent(t *testing.T) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("agent %s: %v", n.name, err)
	}
	n.cancel = nil
}

func (l *lab) cniConf(n *labNode) *libcni.NetworkConfigList {
	t := l.t
	t.Helper()
	plugin := map[string]any{
		"type": "tortie", "nodename": n.name, "nodename_file_optional": true,
		"ipam_lock_file": filepath.Join(n.dir, "ipam.lock"), "mtu": 1400, "log_file_path": filepath.Join(n.dir, "cni.log"),
		"ipam": map[string]any{"type": "tortie-ipam", "assign_ipv6": "true", "ipv4_pools": []string{"lab-pool"},
			"ipv6_pools": []string{"lab-pool-v6"}},
	}
	for k, v := range l.keys {
		plugin[k] = v
	}
	b, err := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "k8s-pod-network", "plugins": []any{plugin}})
	must(t, "conflist", err)
	return cnitest.ConfList(t, string(b))
}

// pod creates a pod on n through the real CNI plugin and returns it with its addresses.
func (l *lab) pod(n *labNode, name string) (*cnitest.Pod, []netip.Addr) {
	t := l.t
	t.Helper()
	p := cnitest.NewPod(t, "default", name)
	r, err := n.cn.Add(t.Context(), l.cniConf(n), p)
	if err != nil {
		if data, rerr := os.ReadFile(filepath.Join(n.dir, "cni.log")); rerr == nil {
			t.Logf("cni log:\n%s", data)
		}
		t.Fatalf("CNI ADD %s on %s: %v", name, n.name, err)
	}
	res, err := types100.GetResult(r)
	must(t, "result", err)
	var out []netip.Addr
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	if len(out) != 2 {
		t.Fatalf("pod %s: addresses %v, want one IPv4 and one IPv6", name, out)
	}
	return p, out
}

// tcpEcho serves a TCP echo on port inside n until cleanup.
func tcpEcho(t testing.TB, n ns.NetNS, port int) {
	t.Helper()
	var ln net.Listener
	must(t, "listen", n.Do(func(ns.NetNS) (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}))
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close() })
}

// tcpDial connects from inside n to addr:port, retrying until a deadline (routes converge
// asynchronously: the agents apply what the datastore says).
func tcpDial(n ns.NetNS, addr netip.Addr, port int) (net.Conn, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var c net.Conn
		err := n.Do(func(ns.NetNS) (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), 2*time.Second)
			return err
		})
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// echo sends msg over c and expects it back.
func echo(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

type labPod struct {
	name string
	node *labNode
	p    *cnitest.Pod
	ips  []netip.Addr // IPv4, IPv6
}

// connectivity checks TCP and UDP both ways between every pair of pods on different nodes (the pods
// run echo servers on 7070/tcp and 7071/udp).
func connectivity(t *testing.T, pods []labPod) {
	t.Helper()
	for _, a := range pods {
		for _, b := range pods {
			if a.node == b.node {
				continue
			}
			for _, dst := range b.ips {
				c, err := tcpDial(a.p.NS, dst, 7070)
				if err != nil {
					t.Errorf("TCP %s (%s) → %s %s (%s): %v", a.name, a.node.name, b.name, dst, b.node.name, err)
					continue
				}
				if err := echo(c, "hello from "+a.name); err != nil {
					t.Errorf("TCP echo %s → %s %s: %v", a.name, b.name, dst, err)
				}
				_ = c.Close()
				if err := cnitest.UDPPing(a.p.NS, dst, 7071, 30*time.Second); err != nil {
					t.Errorf("UDP %s (%s) → %s %s (%s): %v", a.name, a.node.name, b.name, dst, b.node.name, err)
				}
			}
		}
	}
}

// routesOf returns n's tortie routes as text (see hostText).
func routesOf(t *testing.T, n *labNode) []string {
	kh, err := netlinkx.Open(n.cn.NS.Path(), 10*time.Second)
	must(t, "netlink", err)
	defer func() { _ = kh.Close() }()
	return hostText(t, kh)
}

// threeNodes adds node1..3 (host numbers 11..13) on the given segments, each with one dual-stack pod
// running echo servers.
func threeNodes(t *testing.T, l *lab, segs [3]string) ([]*labNode, []labPod) {
	var nodes []*labNode
	var pods []labPod
	for i, seg := range segs {
		nodes = append(nodes, l.addNode(fmt.Sprintf("node%d", i+1), seg, byte(11+i)))
	}
	for _, n := range nodes {
		p, a := l.pod(n, "pod-"+n.name)
		pods = append(pods, labPod{name: "pod-" + n.name, node: n, p: p, ips: a})
		tcpEcho(t, p.NS, 7070)
		cnitest.UDPEcho(t, p.NS, 7071)
	}
	return nodes, pods
}

func TestKernelVXLAN(t *testing.T) {
	l := newLab(t, api.EncapAlways)
	nodes, pods := threeNodes(t, l, [3]string{"A", "A", "A"})
	connectivity(t, pods)
	got := routesOf(t, nodes[0])
	t.Logf("node1:\n%s", strings.Join(got, "\n"))
	if !hasLine(got, "link vxlan.tortie vxlan mtu 1450 up=true") {
		t.Errorf("node1 has no vxlan.tortie with MTU 1450 (1500-50):\n%s", strings.Join(got, "\n"))
	}
	if !hasLine(got, "dev vxlan.tortie onlink proto 116") {
		t.Errorf("node1 routes nothing through vxlan.tortie:\n%s", strings.Join(got, "\n"))
	}
	if !hasLine(got, "link vxlan-v6.tortie vxlan mtu 1430 up=true") || !hasLine(got, "dev vxlan-v6.tortie onlink proto 116") {
		t.Errorf("node1 has no vxlan-v6.tortie with MTU 1430 (1500-70) and routes through it:\n%s", strings.Join(got, "\n"))
	}
	// The pod MTU is the smaller of the two in use.
	if b, err := os.ReadFile(filepath.Join(nodes[0].dir, "mtu")); err != nil || string(b) != "1430" {
		t.Errorf("MTU file %q, %v; want 1430", b, err)
	}

	t.Run("drift repair", func(t *testing.T) {
		n := nodes[0]
		h, err := netlinkx.Open(n.cn.NS.Path(), 10*time.Second)
		must(t, "netlink", err)
		defer func() { _ = h.Close() }()
		before := hostText(t, h)
		vx, err := h.LinkByName(config.VXLANDevice)
		must(t, "vxlan device", err)
		must(t, "deleting the device", h.LinkDel(vx.Index))
		waitFor(t, "the device, its entries and routes to come back", func() bool {
			return strings.Join(hostText(t, h), "\n") == strings.Join(before, "\n")
		})
		connectivity(t, pods)
	})

	t.Run("restart without loss", func(t *testing.T) {
		n := nodes[1]
		c, err := tcpDial(pods[0].p.NS, pods[1].ips[0], 7070)
		must(t, "dial", err)
		defer func() { _ = c.Close() }()
		must(t, "echo before", echo(c, "before"))
		n.stopAgent(t)
		n.h.writes.Store(0)
		l.startAgent(n)
		waitFor(t, "the new agent's first apply", func() bool { return n.agent.Health().Ready().OK })
		must(t, "echo after restart (same connection)", echo(c, "after"))
		n.stopAgent(t)
		if w := n.h.writes.Load(); w != 0 {
			t.Errorf("the restarted agent made %d netlink writes; want 0 (adopt, no flush)", w)
		}
		l.startAgent(n)
	})

	t.Run("cleanup", func(t *testing.T) {
		// As `tortie-node cleanup` would: the agent stopped, a manager with no state removes what tortie
		// owns and nothing else.
		n := nodes[2]
		n.stopAgent(t)
		h, err := netlinkx.Open(n.cn.NS.Path(), 10*time.Second)
		must(t, "netlink", err)
		defer func() { _ = h.Close() }()
		tunnels := map[int]bool{linkIndex(h, config.VXLANDevice): true, linkIndex(h, config.VXLANDeviceV6): true}
		delete(tunnels, 0)
		// others lists the routes tortie does not own, leaving out the kernel's own on tortie's devices
		// (link-local), which go with them.
		others := func() []string {
			routes, err := h.RouteList(netlinkx.TableMain)
			must(t, "routes", err)
			var out []string
			for _, r := range routes {
				if r.Protocol != config.RouteProtocol && !tunnels[r.LinkIndex] {
					out = append(out, r.String())
				}
			}
			slices.Sort(out)
			return out
		}
		before := others()
		if len(before) == 0 {
			t.Fatal("no foreign routes to watch; the test proves nothing")
		}
		m, err := New(Options{Handle: h})
		must(t, "manager", err)
		must(t, "Cleanup", m.Cleanup(t.Context()))
		if got := hostText(t, h); len(got) != 0 {
			t.Errorf("after Cleanup tortie still owns:\n%s", strings.Join(got, "\n"))
		}
		if diff := cmp.Diff(before, others()); diff != "" {
			t.Errorf("Cleanup changed routes it does not own (-before +after):\n%s", diff)
		}
		must(t, "second Cleanup", m.Cleanup(t.Context()))
	})
}

// linkIndex returns name's index (0 when it does not exist).
func linkIndex(h netlinkx.Handle, name string) int {
	l, err := h.LinkByName(name)
	if err != nil {
		return 0
	}
	return l.Index
}

func hasLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKernelCrossSubnet: node1 and node2 share segment A, node3 is on B behind a router. Traffic
// between node1 and node2 goes unencapsulated; to and from node3 over VXLAN.
func TestKernelCrossSubnet(t *testing.T) {
	l := newLab(t, api.EncapCrossSubnet)
	nodes, pods := threeNodes(t, l, [3]string{"A", "A", "B"})
	connectivity(t, pods)
	got := strings.Join(routesOf(t, nodes[0]), "\n")
	t.Logf("node1:\n%s", got)
	for _, want := range []string{"via 10.10.0.12 dev eth0 onlink proto 116", "via fd10::c dev eth0 onlink proto 116"} {
		if !strings.Contains(got, want) {
			t.Errorf("node1 has no direct route to node2's block (%q):\n%s", want, got)
		}
	}
	for _, want := range []string{"dev vxlan.tortie onlink proto 116", "dev vxlan-v6.tortie onlink proto 116"} {
		if !strings.Contains(got, want) {
			t.Errorf("node1 has no VXLAN route to node3's block (%q):\n%s", want, got)
		}
	}
}

// TestKernelNoEncap: all nodes on one segment, no encapsulation: direct routes via the node
// addresses.
func TestKernelNoEncap(t *testing.T) {
	l := newLab(t, api.EncapNever)
	nodes, pods := threeNodes(t, l, [3]string{"A", "A", "A"})
	connectivity(t, pods)
	got := strings.Join(routesOf(t, nodes[0]), "\n")
	t.Logf("node1:\n%s", got)
	if strings.Contains(got, "vxlan") {
		t.Errorf("a VXLAN device or route without encapsulation:\n%s", got)
	}
	if !strings.Contains(got, "via 10.10.0.12 dev eth0 onlink proto 116") || !strings.Contains(got, "via 10.10.0.13 dev eth0 onlink proto 116") ||
		!strings.Contains(got, "via fd10::c dev eth0 onlink proto 116") || !strings.Contains(got, "via fd10::d dev eth0 onlink proto 116") {
		t.Errorf("node1 lacks direct routes to the other nodes' blocks:\n%s", got)
	}
}
