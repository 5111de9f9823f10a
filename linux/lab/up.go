//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Encapsulations `up --encap` accepts, and the datastores of `up --datastore`.
var (
	Encaps     = []string{"vxlan", "vxlan-crosssubnet", "ipip", "none"}
	Datastores = []string{"embedded", "etcd", "kubernetes"}
	Dataplanes = []string{"auto", "linux", "fake"}
)

// Defaults for `up`.
var (
	DefaultUnderlay = netip.MustParsePrefix("172.31.0.0/24")
	DefaultPodCIDR  = netip.MustParsePrefix("10.244.0.0/16")
)

// MaxNodes bounds --nodes (addresses .11 to .10+N of the underlay; link names stay short).
const MaxNodes = 50

// ResyncInterval is the agents' refresh interval in the lab (FELIX_*REFRESHINTERVAL).
const ResyncInterval = 30 * time.Second

// healthPort is where each agent serves /readyz and /status (Felix's default HealthPort).
const healthPort = 9099

// UpOptions are `up`'s flags and the binaries it runs.
type UpOptions struct {
	Nodes     int
	PodCIDR   netip.Prefix
	Underlay  netip.Prefix
	Encap     string
	Datastore string
	// Dataplane is the agents' dataplane: linux, fake, or auto (linux when tortie-node has it).
	Dataplane string
	// NodeBin, CNIBin and LabBin are tortie-node, tortie-cni and tortie-lab (which serves the embedded
	// etcd and the pods); EtcdBin is Debian's etcd for --datastore etcd.
	NodeBin, CNIBin, LabBin, EtcdBin string
	// KubeAPIServerBin is the kube-apiserver for --datastore kubernetes (FindKubeAPIServer).
	KubeAPIServerBin string
	// ReadyTimeout bounds the wait for every agent to be ready (default 2 minutes).
	ReadyTimeout time.Duration
	// WindowsNodes adds Windows nodes (windows.go), run by WinNodeBin and WinCNIBin (tortie_fakehns
	// builds).
	WindowsNodes          int
	WinNodeBin, WinCNIBin string
}

func oneOf(flag, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s=%q: use one of %s", flag, v, strings.Join(allowed, ", "))
}

// Check refuses bad options before anything is made.
func (o *UpOptions) Check() error {
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		return fmt.Errorf("--nodes=%d: use 1 to %d", o.Nodes, MaxNodes)
	}
	if err := oneOf("--encap", o.Encap, Encaps); err != nil {
		return err
	}
	if err := oneOf("--datastore", o.Datastore, Datastores); err != nil {
		return err
	}
	if o.Datastore == "kubernetes" && o.KubeAPIServerBin == "" {
		return errors.New("--datastore=kubernetes: no kube-apiserver binary: set " + KubeAPIServerEnv + " to one, or build it with " +
			"ci/build-kube-apiserver.sh (it caches it in ~/.cache/tortie, where the lab finds it; `source ci/test-env.sh` does both)")
	}
	if err := oneOf("--dataplane", o.Dataplane, Dataplanes); err != nil {
		return err
	}
	if !o.PodCIDR.Addr().Is4() || o.PodCIDR.Bits() > 24 || o.PodCIDR.Bits() < 8 {
		return fmt.Errorf("--pod-cidr=%s: want an IPv4 CIDR from /8 to /24 (each node takes /26 blocks from it)", o.PodCIDR)
	}
	if !o.Underlay.Addr().Is4() || o.Underlay.Bits() > 25 || o.Underlay.Bits() < 8 {
		return fmt.Errorf("--underlay=%s: want an IPv4 CIDR from /8 to /25", o.Underlay)
	}
	o.PodCIDR, o.Underlay = o.PodCIDR.Masked(), o.Underlay.Masked()
	if o.PodCIDR.Overlaps(o.Underlay) {
		return fmt.Errorf("--pod-cidr=%s overlaps --underlay=%s; choose ranges apart", o.PodCIDR, o.Underlay)
	}
	if o.Datastore == "etcd" && o.EtcdBin == "" {
		return errors.New("--datastore=etcd: no etcd binary (apt-get install etcd-server, or set TORTIE_ETCD)")
	}
	if err := o.checkWindows(); err != nil {
		return err
	}
	for what, p := range map[string]string{"tortie-node": o.NodeBin, "tortie-cni": o.CNIBin, "tortie-lab": o.LabBin} {
		if p == "" {
			return fmt.Errorf("no %s binary found (run `make build`, or put it next to tortie-lab or on PATH)", what)
		}
	}
	return nil
}

// nodeIP is node i's underlay address.
func nodeIP(underlay netip.Prefix, i int) netip.Prefix {
	a := underlay.Addr().As4()
	a[3] += byte(10 + i)
	return netip.PrefixFrom(netip.AddrFrom4(a), underlay.Bits())
}

// bridgeIP is the bridge's (and the datastore's) address.
func bridgeIP(underlay netip.Prefix) netip.Prefix {
	a := underlay.Addr().As4()
	a[3]++
	return netip.PrefixFrom(netip.AddrFrom4(a), underlay.Bits())
}

// Up creates a lab in dir: the bridge, the datastore, the nodes and their agents, and returns once
// every agent is ready. If anything fails, what was made is removed again (Down) and the error
// returned.
func Up(ctx context.Context, dir string, o UpOptions, out io.Writer) (err error) {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if err := o.Check(); err != nil {
		return err
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("a lab is already up (%s); `tortie-lab down` removes it", dir)
	}
	if left := leftovers(dir); len(left) > 0 {
		return fmt.Errorf("a previous lab left %s; `tortie-lab down` removes it", strings.Join(left, ", "))
	}
	if err := checkRoutes(o.Underlay, o.PodCIDR); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	s := &State{Underlay: o.Underlay, PodCIDR: o.PodCIDR, Encap: o.Encap, Datastore: o.Datastore,
		NodeBin: o.NodeBin, CNIBin: o.CNIBin, LabBin: o.LabBin, EtcdBin: o.EtcdBin, KubeAPIServerBin: o.KubeAPIServerBin, Namespaces: map[string]map[string]string{}, Pods: map[string]*Pod{}}
	defer func() {
		if err != nil {
			printf(out, "up failed; removing what it made\n")
			if derr := down(dir, io.Discard); derr != nil {
				err = errors.Join(err, fmt.Errorf("removing the failed lab: %w", derr))
			}
		}
	}()
	if err := s.save(dir); err != nil {
		return err
	}
	start := time.Now()
	progress := func(format string, args ...any) {
		printf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	progress("underlay bridge %s %s", BridgeName, bridgeIP(o.Underlay))
	if err := makeBridge(o.Underlay); err != nil {
		return err
	}
	progress("datastore: %s etcd on %s", strings.Replace(o.Datastore, "kubernetes", "embedded", 1), bridgeIP(o.Underlay).Addr())
	if err := startEtcd(dir, s); err != nil {
		return err
	}
	if err := s.save(dir); err != nil {
		return err
	}
	if s.Datastore == "kubernetes" {
		if err := upKube(ctx, dir, s, progress); err != nil {
			return err
		}
	}
	if err := writeCNIBin(dir, o.CNIBin); err != nil {
		return err
	}
	for i := 1; i <= o.Nodes; i++ {
		n := &Node{Name: fmt.Sprintf("n%d", i), Index: i, NetNS: fmt.Sprintf("%s-n%d", NamePrefix, i),
			IP: nodeIP(o.Underlay, i), HostLink: fmt.Sprintf("%s-n%d", NamePrefix, i)}
		s.Nodes = append(s.Nodes, n)
		if err := s.save(dir); err != nil {
			return err
		}
		if err := makeNode(dir, s, n); err != nil {
			return err
		}
	}
	if err := makeWindowsNodes(dir, s, o); err != nil {
		return err
	}
	if s.Datastore == "kubernetes" {
		progress("Kubernetes Nodes %s", strings.Join(nodeNames(s.Nodes), " "))
		if err := installKubeNodes(ctx, s); err != nil {
			return err
		}
	}
	s.Dataplane = o.Dataplane
	if s.Dataplane == "auto" {
		s.Dataplane = detectDataplane(ctx, o.NodeBin, s.Nodes[0].NetNS)
		if s.Dataplane == "fake" {
			printf(out, "%s\n", "NOTE: this tortie-node has no Linux dataplane yet (`run --dataplane linux` says it is not wired); "+
				"the agents run --dataplane fake: policy is computed but not enforced, and pods on different nodes do not reach each other")
		}
	}
	for _, n := range s.Nodes {
		progress("node %s (%s): tortie-node run --dataplane %s", n.Name, n.IP.Addr(), agentDataplane(s, n))
		if err := startAgent(dir, s, n); err != nil {
			return err
		}
		if err := s.save(dir); err != nil {
			return err
		}
	}
	if err := waitAgents(ctx, dir, s, 0, o.ReadyTimeout); err != nil {
		return err
	}
	progress("lab up: %d nodes ready", len(s.Nodes))
	return nil
}

// leftovers names what a previous lab left in the root namespace and /run/netns.
func leftovers(dir string) []string {
	var out []string
	if names, _ := labNetNS(); len(names) > 0 {
		out = append(out, "network namespaces "+strings.Join(names, " "))
	}
	if links, _ := labLinks(); len(links) > 0 {
		out = append(out, "links "+strings.Join(links, " "))
	}
	if _, err := os.Stat(dir); err == nil {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			out = append(out, "the state directory "+dir)
		}
	}
	return out
}

// checkRoutes refuses ranges that collide with the host's routes.
func checkRoutes(ranges ...netip.Prefix) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		dst := netip.PrefixFrom(a.Unmap(), ones)
		if ones == 0 {
			continue
		}
		for _, p := range ranges {
			if dst.Overlaps(p) {
				return fmt.Errorf("%s overlaps the host's route to %s; choose another range (--underlay, --pod-cidr)", p, dst)
			}
		}
	}
	return nil
}

func labLinks() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, NamePrefix) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

func makeBridge(underlay netip.Prefix) error {
	la := netlink.NewLinkAttrs()
	la.Name = BridgeName
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		return fmt.Errorf("creating bridge %s: %w", BridgeName, err)
	}
	br, err := netlink.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", BridgeName, err)
	}
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(bridgeIP(underlay))}); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", BridgeName, bridgeIP(underlay), err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: up: %w", BridgeName, err)
	}
	// br_netfilter passes bridged frames through the root namespace's FORWARD chain, whose policy a
	// container runtime may have set to DROP: let the underlay through.
	if _, err := exec.LookPath("iptables"); err == nil {
		if err := run("iptables", "-w", "-I", "FORWARD", "-i", BridgeName, "-o", BridgeName,
			"-m", "comment", "--comment", RuleComment, "-j", "ACCEPT"); err != nil {
			return fmt.Errorf("allowing bridged underlay traffic: %w", err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func startEtcd(dir string, s *State) error {
	ip := bridgeIP(s.Underlay).Addr().String()
	client, peer := "http://"+ip+":2379", "http://"+ip+":2380"
	data := filepath.Join(dir, "etcd")
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close() //nolint:errcheck // read end
	var p Proc
	switch s.Datastore {
	case "embedded", "kubernetes": // the kube-apiserver's storage is the embedded etcd
		p, err = startDetached("", filepath.Join(dir, "etcd.log"), os.Environ(), w, s.LabBin,
			"serve-etcd", "--data-dir", data, "--client-url", client, "--peer-url", peer)
	case "etcd":
		_ = w.Close()
		p, err = startDetached("", filepath.Join(dir, "etcd.log"), os.Environ(), nil, s.EtcdBin,
			"--name", "tortie-lab", "--data-dir", data, "--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "tortie-lab="+peer,
			"--unsafe-no-fsync")
	}
	_ = w.Close()
	if err != nil {
		return err
	}
	s.Etcd, s.EtcdURL = p, client
	if s.Datastore != "etcd" {
		return waitReady(r, p, filepath.Join(dir, "etcd.log"), "the embedded etcd", time.Minute)
	}
	// Debian's etcd has no ready pipe: wait until it accepts connections.
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", ip+":2379", time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if !p.Alive() || time.Now().After(deadline) {
			return fmt.Errorf("etcd did not start: %w\n%s", err, logTail(filepath.Join(dir, "etcd.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until a child wrote "ok" to its ready pipe.
func waitReady(r *os.File, p Proc, logPath, what string, timeout time.Duration) error {
	_ = r.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 3)
	n, err := io.ReadFull(r, buf)
	if err == nil && string(buf[:n]) == "ok\n" {
		return nil
	}
	p.kill()
	return fmt.Errorf("%s did not start (%w); its log:\n%s", what, err, logTail(logPath))
}

// logTail returns the last lines of a log file, indented.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// writeCNIBin makes dir/cni-bin, the CNI_PATH: tortie-cni under the names the conflist uses.
func writeCNIBin(dir, cniBin string) error {
	return linkCNIBin(filepath.Join(dir, "cni-bin"), cniBin, "CNI plugin directory")
}

// linkCNIBin makes the CNI_PATH directory d holding bin as tortie and tortie-ipam.
func linkCNIBin(d, bin, what string) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	for _, name := range []string{"tortie", "tortie-ipam"} {
		if err := os.Symlink(abs, filepath.Join(d, name)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func nodeDir(dir string, n *Node) string { return filepath.Join(dir, "nodes", n.Name) }

// makeNode creates the node's namespace, its underlay link and its CNI configuration.
func makeNode(dir string, s *State, n *Node) error {
	if err := os.MkdirAll(nodeDir(dir, n), 0o700); err != nil {
		return err
	}
	if err := createNetNS(n.NetNS); err != nil {
		return err
	}
	br, err := netlink.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", BridgeName, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MasterIndex = n.HostLink, br.Attrs().Index
	peer := n.HostLink + "p"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		return fmt.Errorf("node %s: creating veth %s: %w", n.Name, n.HostLink, err)
	}
	host, err := netlink.LinkByName(n.HostLink)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("node %s: %s up: %w", n.Name, n.HostLink, err)
	}
	pl, err := netlink.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	nsh, err := netns.GetFromPath(netnsPath(n.NetNS))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer nsh.Close() //nolint:errcheck // read-only handle
	if err := netlink.LinkSetNsFd(pl, int(nsh)); err != nil {
		return fmt.Errorf("node %s: moving %s into %s: %w", n.Name, peer, n.NetNS, err)
	}
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("node %s: netlink: %w", n.Name, err)
	}
	defer h.Close()
	eth, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	steps := []struct {
		what string
		f    func() error
	}{
		{"naming eth0", func() error { return h.LinkSetName(eth, "eth0") }},
		{"eth0 address", func() error { return h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(n.IP)}) }},
		{"eth0 up", func() error { return h.LinkSetUp(eth) }},
		{"default route", func() error {
			return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: bridgeIP(s.Underlay).Addr().AsSlice()})
		}},
	}
	for _, st := range steps {
		if err := st.f(); err != nil {
			return fmt.Errorf("node %s: %s: %w", n.Name, st.what, err)
		}
	}
	if err := inNetNS(n.NetNS, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	}); err != nil {
		return fmt.Errorf("node %s: forwarding: %w", n.Name, err)
	}
	if n.OS == OSWindows {
		return writeWindowsConf(dir, s, n) // windows.go
	}
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "k8s-pod-network",
		"plugins": []any{map[string]any{
			"type":                   "tortie",
			"nodename":               n.Name,
			"nodename_file_optional": true,
			"ipam_lock_file":         filepath.Join(nodeDir(dir, n), "ipam.lock"),
			"log_file_path":          filepath.Join(nodeDir(dir, n), "cni.log"),
			"log_level":              "info",
			"mtu":                    1450,
			"ipam":                   map[string]any{"type": "tortie-ipam"},
		}},
	}
	maps.Copy(conf["plugins"].([]any)[0].(map[string]any), cniDatastore(s))
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(nodeDir(dir, n), "cni.conflist"), data, 0o600)
}

// nodeEnv is the agent's environment: Calico's variables as a calico-node DaemonSet sets them.
func nodeEnv(s *State, n *Node) []string {
	vxlan, ipip := "Never", "Never"
	switch s.Encap {
	case "vxlan":
		vxlan = "Always"
	case "vxlan-crosssubnet":
		vxlan = "CrossSubnet"
	case "ipip":
		ipip = "Always"
	}
	return append(datastoreEnv(s), []string{
		"PATH=" + os.Getenv("PATH"),
		"NODENAME=" + n.Name,
		"IP=" + n.IP.String(),
		"WAIT_FOR_DATASTORE=true",
		"CALICO_IPV4POOL_CIDR=" + s.PodCIDR.String(),
		"CALICO_IPV4POOL_VXLAN=" + vxlan,
		"CALICO_IPV4POOL_IPIP=" + ipip,
		"FELIX_HEALTHENABLED=true",
		"FELIX_HEALTHHOST=0.0.0.0",
		"FELIX_HEALTHPORT=" + strconv.Itoa(healthPort),
		"FELIX_LOGSEVERITYSCREEN=info",
		// Resync (drift repair) every 30 s instead of 90-180 s, so a lab shows and tests repair quickly.
		"FELIX_ROUTEREFRESHINTERVAL=" + strconv.Itoa(int(ResyncInterval.Seconds())),
		"FELIX_IPTABLESREFRESHINTERVAL=" + strconv.Itoa(int(ResyncInterval.Seconds())),
		"FELIX_IPSETSREFRESHINTERVAL=" + strconv.Itoa(int(ResyncInterval.Seconds())),
	}...)
}

func startAgent(dir string, s *State, n *Node) error {
	if n.OS == OSWindows {
		return startWindowsAgent(dir, s, n)
	}
	nd := nodeDir(dir, n)
	p, err := startDetached(n.NetNS, filepath.Join(nd, "tortie-node.log"), nodeEnv(s, n), nil, s.NodeBin,
		"run", "--dataplane", s.Dataplane,
		"--nodename-file", filepath.Join(nd, "calico-nodename"), "--tortie-nodename-file", filepath.Join(nd, "nodename"),
		"--mtu-file", filepath.Join(nd, "mtu"))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	n.Agent = p
	return nil
}

// detectDataplane runs `tortie-node run --dataplane linux` against no datastore in a node's
// namespace: a tortie-node without the Linux dataplane refuses at once saying it is not wired.
func detectDataplane(ctx context.Context, nodeBin, netnsName string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []byte
	_ = inNetNS(netnsName, func() error {
		cmd := exec.CommandContext(ctx, nodeBin, "run", "--dataplane", "linux", "--datastore-timeout", "1s",
			"--nodename-file", os.DevNull, "--tortie-nodename-file", os.DevNull, "--mtu-file", os.DevNull)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATASTORE_TYPE=etcdv3", "ETCD_ENDPOINTS=http://127.0.0.1:9", "NODENAME=probe"}
		out, _ = cmd.CombinedOutput()
		return nil
	})
	if strings.Contains(string(out), "not wired") {
		return "fake"
	}
	return "linux"
}
