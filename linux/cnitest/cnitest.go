//go:build linux

// Package cnitest drives CNI plugins exactly as containerd does — libcni with a conflist, a result
// cache directory, CNI_PATH and CNI_ARGS — in network namespaces: a Node is a namespace playing a
// host (with an uplink and default routes, so proxy ARP answers its pods), a Pod is a namespace
// playing a sandbox. Plugins run inside the node's namespace. Tests (cmd/tortie-cni) and benchmarks
// use it; tortie-lab can too.
//
// PluginDir builds cmd/tortie-cni once per test binary and installs it under every name it answers
// to. Call Cleanup from TestMain after the tests to remove the build.
package cnitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ReferencePluginDir is where Debian's containernetworking-plugins package installs the reference
// plugins (ptp, bridge, host-local, ...).
const ReferencePluginDir = "/usr/lib/cni"

// PluginNames are the names the tortie-cni binary is installed as.
var PluginNames = []string{"tortie", "tortie-ipam", "calico", "calico-ipam"}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// PluginDir builds github.com/tortie-net/tortie/cmd/tortie-cni (once per test binary) and returns a
// directory holding it as tortie, tortie-ipam, calico and calico-ipam (symlinks to one binary, as the
// installer does).
func PluginDir(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = buildPlugin()
	})
	if build.err != nil {
		t.Fatalf("building the CNI plugin: %v", build.err)
	}
	return build.dir
}

func buildPlugin() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tortie-cnitest-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tortie-cni")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tortie-cni")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/tortie-cni: %w\n%s", err, out)
	}
	for _, name := range PluginNames {
		if err := os.Symlink("tortie-cni", filepath.Join(dir, name)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// Cleanup removes the plugin build. Call it after the tests (TestMain).
func Cleanup() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// ModuleRoot returns the directory of the tortie module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tortie-net/tortie\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root (go.mod of github.com/tortie-net/tortie) not found above the working directory")
		}
		dir = parent
	}
}

// Node is a network namespace playing a host.
type Node struct {
	Name string
	NS   ns.NetNS
	// CNI is the libcni client, with the plugin path and a cache directory of its own (as containerd
	// keeps /var/lib/cni).
	CNI      *libcni.CNIConfig
	CacheDir string
}

// Node addresses on the uplink; the uplink's far end is in the same namespace and answers nothing:
// it only gives the node the default routes a real node has.
var (
	NodeIPv4 = netip.MustParsePrefix("10.255.0.1/24")
	NodeIPv6 = netip.MustParsePrefix("fd00:ff::1/64")
)

// NewNode creates a node namespace with lo up, an uplink veth (uplink0 <-> uplink1) with the node's
// addresses, default routes out of it, and IPv4/IPv6 forwarding on. pluginDirs is CNI_PATH. Everything
// is removed at cleanup.
func NewNode(t testing.TB, name string, pluginDirs ...string) *Node {
	t.Helper()
	n := &Node{Name: name, NS: NewNS(t), CacheDir: t.TempDir()}
	n.CNI = libcni.NewCNIConfigWithCacheDir(pluginDirs, n.CacheDir, nil)
	h := Handle(t, n.NS)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("node %s: %s: %v", name, what, err)
		}
	}
	lo, err := h.LinkByName("lo")
	must("lo", err)
	must("lo up", h.LinkSetUp(lo))
	la := netlink.NewLinkAttrs()
	la.Name = "uplink0"
	must("uplink veth", h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "uplink1", PeerTxQLen: -1}))
	for _, l := range []string{"uplink1", "uplink0"} {
		link, err := h.LinkByName(l)
		must(l, err)
		must(l+" up", h.LinkSetUp(link))
	}
	up0, err := h.LinkByName("uplink0")
	must("uplink0", err)
	must("node IPv4", h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(NodeIPv4)}))
	must("node IPv6", h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(NodeIPv6), Flags: unix.IFA_F_NODAD}))
	must("default v4", h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Scope: netlink.SCOPE_LINK}))
	must("default v6", h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("::/0"))}))
	must("forwarding", n.Do(func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	}))
	return n
}

// Do runs f on an OS thread inside the node's namespace (locked for the duration, as ns.Do does), so
// that processes f starts — the plugins — run there too.
func (n *Node) Do(f func() error) error {
	return n.NS.Do(func(ns.NetNS) error { return f() })
}

// Add runs ADD of list for pod through libcni inside the node.
func (n *Node) Add(ctx context.Context, list *libcni.NetworkConfigList, pod *Pod) (types.Result, error) {
	var res types.Result
	err := n.Do(func() (err error) {
		res, err = n.CNI.AddNetworkList(ctx, list, pod.RuntimeConf())
		return err
	})
	return res, err
}

// Del runs DEL.
func (n *Node) Del(ctx context.Context, list *libcni.NetworkConfigList, pod *Pod) error {
	return n.Do(func() error { return n.CNI.DelNetworkList(ctx, list, pod.RuntimeConf()) })
}

// Check runs CHECK (with the cached ADD result as prevResult, as libcni does).
func (n *Node) Check(ctx context.Context, list *libcni.NetworkConfigList, pod *Pod) error {
	return n.Do(func() error { return n.CNI.CheckNetworkList(ctx, list, pod.RuntimeConf()) })
}

// GC runs GC with the given attachments as valid.
func (n *Node) GC(ctx context.Context, list *libcni.NetworkConfigList, valid ...*Pod) error {
	args := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{}}
	for _, p := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: p.ContainerID, IfName: p.IfName})
	}
	return n.Do(func() error { return n.CNI.GCNetworkList(ctx, list, args) })
}

// Status runs STATUS.
func (n *Node) Status(ctx context.Context, list *libcni.NetworkConfigList) error {
	return n.Do(func() error { return n.CNI.GetStatusNetworkList(ctx, list) })
}

// Links lists the node's interface names.
func (n *Node) Links(t testing.TB) []string {
	t.Helper()
	return LinkNames(t, n.NS)
}

// Pod is a sandbox: a network namespace and the identifiers containerd passes.
type Pod struct {
	NS                   ns.NetNS
	Namespace, Name, UID string
	ContainerID, IfName  string
	// ExtraArgs are appended to CNI_ARGS.
	ExtraArgs [][2]string
}

var podSeq struct {
	mu sync.Mutex
	n  int
}

// NewPod creates a sandbox namespace for pod namespace/name with a fresh container ID, removed at
// cleanup.
func NewPod(t testing.TB, namespace, name string) *Pod {
	t.Helper()
	podSeq.mu.Lock()
	podSeq.n++
	seq := podSeq.n
	podSeq.mu.Unlock()
	p := &Pod{NS: NewNS(t), Namespace: namespace, Name: name, IfName: "eth0",
		ContainerID: fmt.Sprintf("%08x%056x", os.Getpid(), seq), UID: fmt.Sprintf("uid-%d", seq)}
	// The handle is closed at once: an open netlink socket inside the namespace would keep it alive
	// after Delete, and tests delete namespaces to play a dead sandbox.
	h, err := netlink.NewHandleAt(netns.NsHandle(p.NS.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", p.NS.Path(), err)
	}
	defer h.Close()
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	return p
}

// RuntimeConf is what containerd passes for the pod.
func (p *Pod) RuntimeConf() *libcni.RuntimeConf {
	args := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID},
		{"K8S_POD_UID", p.UID},
	}
	return &libcni.RuntimeConf{ContainerID: p.ContainerID, NetNS: p.NS.Path(), IfName: p.IfName, Args: append(args, p.ExtraArgs...)}
}

// Delete removes the pod's namespace now (a sandbox that died), as at cleanup.
func (p *Pod) Delete() { DeleteNS(p.NS) }

// ConfList parses a conflist.
func ConfList(t testing.TB, conf string) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.NetworkConfFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("parsing conflist: %v\n%s", err, conf)
	}
	return l
}

// NewNS returns a fresh bind-mounted network namespace, removed at cleanup.
func NewNS(t testing.TB) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("creating network namespace: %v", err)
	}
	t.Cleanup(func() { DeleteNS(n) })
	return n
}

// DeleteNS closes and unmounts n; it tolerates being called twice.
func DeleteNS(n ns.NetNS) {
	_ = n.Close()
	_ = testutils.UnmountNS(n)
	_ = os.Remove(n.Path())
}

// Handle returns a netlink handle inside n, closed at cleanup.
func Handle(t testing.TB, n ns.NetNS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(n.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Path(), err)
	}
	t.Cleanup(h.Close)
	return h
}

// LinkNames lists the interfaces in n, sorted by name.
func LinkNames(t testing.TB, n ns.NetNS) []string {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(n.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Path(), err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("listing links in %s: %v", n.Path(), err)
	}
	out := make([]string, 0, len(links))
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	slices.Sort(out)
	return out
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// UDPEcho starts a UDP echo server on port inside n and returns a stop function.
func UDPEcho(t testing.TB, n ns.NetNS, port int) func() {
	t.Helper()
	var conn net.PacketConn
	if err := n.Do(func(ns.NetNS) error {
		var err error
		conn, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("UDP echo in %s: %v", n.Path(), err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			k, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteTo(buf[:k], from)
		}
	}()
	stop := func() { _ = conn.Close(); <-done }
	t.Cleanup(stop)
	return stop
}

// UDPPing sends a datagram from inside n to addr:port and waits for the echo, retrying for up to
// timeout (the first packets may race ARP/ND).
func UDPPing(n ns.NetNS, addr netip.Addr, port int, timeout time.Duration) error {
	return n.Do(func(ns.NetNS) error {
		conn, err := net.Dial("udp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		deadline := time.Now().Add(timeout)
		msg := []byte("tortie-ping")
		buf := make([]byte, 64)
		var last error
		for time.Now().Before(deadline) {
			if _, err := conn.Write(msg); err != nil {
				last = err
				time.Sleep(100 * time.Millisecond)
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			k, err := conn.Read(buf)
			if err == nil && string(buf[:k]) == string(msg) {
				return nil
			}
			last = err
		}
		return fmt.Errorf("no UDP echo from %s within %s: %w", addr, timeout, last)
	})
}

// Forward makes addr ("127.0.0.1:2379") inside the node reach the same address in the test's own
// network namespace, where etcd and kube-apiserver listen: a TCP relay whose listening socket is
// created inside the node (a socket stays in the namespace it was created in) and whose outgoing
// connections are made from the test process's namespace. Plugins running in the node then use the
// datastore URLs unchanged. It stops at cleanup.
func (n *Node) Forward(t testing.TB, addr string) {
	t.Helper()
	var l net.Listener
	if err := n.Do(func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("node %s: listening on %s: %v", n.Name, addr, err)
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = in.Close() }()
				out, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				defer func() { _ = out.Close() }()
				track(in, true)
				track(out, true)
				defer track(in, false)
				defer track(out, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); closeWrite(out); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); closeWrite(in); done <- struct{}{} }()
				<-done
				<-done
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
