//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// Windows nodes (`up --windows-nodes N`). A Windows node is, like a Linux node, a network namespace on
// the underlay (its agent's health port and its VXLAN endpoint live there), but its agent is the
// tortie_fakehns build of tortie-node running the Windows dataplane on a file-backed fake HNS
// (nodes/wI/hns.json), and its pods go through the tortie_fakehns build of tortie-cni: the Windows CNI
// flow (an HNS namespace, an HNS endpoint, IPAM with Windows' reserved addresses). Its pods are HNS
// endpoints only: no network namespace, no server; the probe answers for them from the fake
// (windowsprobe.go).

// OSWindows is Node.OS of a Windows node.
const OSWindows = "windows"

// Binaries of the Windows nodes: tortie_fakehns builds, found like the others (TORTIE_LAB_BIN_DIR,
// beside tortie-lab, PATH).
const (
	WinNodeBinName = "tortie-node-fakehns"
	WinCNIBinName  = "tortie-cni-fakehns"
)

// fakeHNSEnv is the variable both tortie_fakehns binaries read the fake HNS state file from.
const fakeHNSEnv = "TORTIE_FAKE_HNS"

// winNetwork is the HNS overlay network the Windows dataplane creates and the CNI plugin attaches to.
const winNetwork = "tortie-vxlan"

// checkWindows refuses --windows-nodes the lab cannot honour.
func (o *UpOptions) checkWindows() error {
	if o.WindowsNodes == 0 {
		return nil
	}
	if o.WindowsNodes < 0 || o.Nodes+o.WindowsNodes > MaxNodes {
		return fmt.Errorf("--windows-nodes=%d: use 0 to %d beside --nodes=%d (at most %d nodes in all)", o.WindowsNodes, MaxNodes-o.Nodes, o.Nodes, MaxNodes)
	}
	if o.Datastore == "kubernetes" {
		return errors.New("--windows-nodes with --datastore kubernetes: not supported yet (the lab's Windows pods have no Pod objects, " +
			"which the Kubernetes datastore derives endpoints from); use --datastore embedded or etcd")
	}
	if o.Encap != "vxlan" {
		return fmt.Errorf("--windows-nodes with --encap=%s: Windows nodes reach other nodes' pods only over VXLAN "+
			"(HNS overlay networks, as Calico for Windows); use --encap vxlan", o.Encap)
	}
	if o.WinNodeBin == "" || o.WinCNIBin == "" {
		return fmt.Errorf("--windows-nodes: no %s or %s binary (the tortie_fakehns builds: "+
			"`go build -tags tortie_fakehns -o DIR/%s ./cmd/tortie-node` and the same for ./cmd/tortie-cni as %s; "+
			"put them next to tortie-lab or in TORTIE_LAB_BIN_DIR)", WinNodeBinName, WinCNIBinName, WinNodeBinName, WinCNIBinName)
	}
	return nil
}

// fakeHNSPath is a Windows node's fake HNS state file.
func fakeHNSPath(dir string, n *Node) string { return filepath.Join(nodeDir(dir, n), "hns.json") }

// makeWindowsNodes adds o.WindowsNodes Windows nodes (w1..wN) after the Linux nodes: each a network
// namespace on the underlay, a fake HNS reporting the node's address as its provider address, and the
// Windows CNI configuration (makeNode).
func makeWindowsNodes(dir string, s *State, o UpOptions) error {
	if o.WindowsNodes == 0 {
		return nil
	}
	s.WinNodeBin, s.WinCNIBin = o.WinNodeBin, o.WinCNIBin
	if err := writeWinCNIBin(dir, o.WinCNIBin); err != nil {
		return err
	}
	for k := 1; k <= o.WindowsNodes; k++ {
		i := len(s.Nodes) + 1
		n := &Node{Name: fmt.Sprintf("w%d", k), Index: i, NetNS: fmt.Sprintf("%s-w%d", NamePrefix, k),
			IP: nodeIP(s.Underlay, i), HostLink: fmt.Sprintf("%s-w%d", NamePrefix, k), OS: OSWindows}
		s.Nodes = append(s.Nodes, n)
		if err := s.save(dir); err != nil {
			return err
		}
		if err := makeNode(dir, s, n); err != nil {
			return err
		}
		if _, err := hcnfake.Open(fakeHNSPath(dir, n), hcnfake.Options{ProviderAddress: n.IP.Addr()}); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// writeWinCNIBin makes dir/cni-bin-windows: the tortie_fakehns tortie-cni as tortie and tortie-ipam.
func writeWinCNIBin(dir, bin string) error {
	return linkCNIBin(filepath.Join(dir, "cni-bin-windows"), bin, "the Windows CNI plugin directory")
}

// writeWindowsConf writes a Windows node's CNI configuration (makeNode): the Windows plugin on the
// etcd datastore, no MTU (the agent sets the endpoints' encapsulation overhead).
func writeWindowsConf(dir string, s *State, n *Node) error {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "k8s-pod-network",
		"plugins": []any{map[string]any{
			"type":                   "tortie",
			"datastore_type":         "etcdv3",
			"etcd_endpoints":         s.EtcdURL,
			"nodename":               n.Name,
			"nodename_file_optional": true,
			"ipam_lock_file":         filepath.Join(nodeDir(dir, n), "ipam.lock"),
			"log_file_path":          filepath.Join(nodeDir(dir, n), "cni.log"),
			"log_level":              "info",
			"ipam":                   map[string]any{"type": "tortie-ipam"},
		}},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(nodeDir(dir, n), "cni.conflist"), data, 0o600)
}

// agentDataplane is the --dataplane node n's agent runs.
func agentDataplane(s *State, n *Node) string {
	if n.OS == OSWindows {
		return "windows"
	}
	return s.Dataplane
}

// startWindowsAgent starts the tortie_fakehns tortie-node with the Windows dataplane on the node's
// fake HNS, in the node's namespace (where its health port is).
func startWindowsAgent(dir string, s *State, n *Node) error {
	nd := nodeDir(dir, n)
	env := append(nodeEnv(s, n), fakeHNSEnv+"="+fakeHNSPath(dir, n))
	p, err := startDetached(n.NetNS, filepath.Join(nd, "tortie-node.log"), env, nil, s.WinNodeBin,
		"run", "--dataplane", "windows",
		"--nodename-file", filepath.Join(nd, "calico-nodename"), "--tortie-nodename-file", filepath.Join(nd, "nodename"),
		"--mtu-file", filepath.Join(nd, "mtu"))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	n.Agent = p
	return nil
}

// openFakeHNS opens a Windows node's fake HNS.
func (l *Lab) openFakeHNS(n *Node) (*hcnfake.HNS, error) {
	path := fakeHNSPath(l.dir, n)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("node %s: its fake HNS: %w", n.Name, err)
	}
	h, err := hcnfake.Open(path, hcnfake.Options{})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return h, nil
}

// envExec runs CNI plugins with extra environment variables (the fake HNS of the node).
type envExec struct {
	*invoke.DefaultExec
	env []string
}

func (e envExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	return e.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, append(environ, e.env...))
}

func (l *Lab) winCNI(n *Node) *libcni.CNIConfig {
	ex := envExec{DefaultExec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}, env: []string{fakeHNSEnv + "=" + fakeHNSPath(l.dir, n)}}
	return libcni.NewCNIConfigWithCacheDir([]string{filepath.Join(l.dir, "cni-bin-windows")}, filepath.Join(nodeDir(l.dir, n), "cni-cache"), ex)
}

func (p *Pod) winRuntimeConf() *libcni.RuntimeConf {
	rc := p.runtimeConf()
	rc.NetNS = p.HNSNamespace
	return rc
}

// addWindowsPod is AddPod on a Windows node, as containerd does it there: an HNS namespace for the
// sandbox, then CNI ADD through the Windows plugin (an HNS endpoint in the overlay network, attached to
// the namespace; an address from the same pools, never one Windows reserves).
func (l *Lab) addWindowsPod(ctx context.Context, node *Node, p *Pod, ip netip.Addr) (err error) {
	p.NetNS = ""
	conf, err := l.conflist(node)
	if err != nil {
		return err
	}
	h, err := l.openFakeHNS(node)
	if err != nil {
		return err
	}
	ns, err := h.CreateNamespace(ctx, &hcn.Namespace{Type: hcn.NamespaceGuest})
	if err != nil {
		return fmt.Errorf("pod %s: creating its HNS namespace on node %s: %w", p.ID(), node.Name, err)
	}
	p.HNSNamespace = ns.ID
	undo := []func(){func() { _ = h.DeleteNamespace(context.WithoutCancel(ctx), ns.ID) }}
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	rc := p.winRuntimeConf()
	if ip.IsValid() {
		rc.Args = append(rc.Args, [2]string{"IP", ip.String()})
	}
	cni := l.winCNI(node)
	r, err := cni.AddNetworkList(ctx, conf, rc)
	if err != nil {
		return fmt.Errorf("pod %s: CNI ADD on Windows node %s: %w", p.ID(), node.Name, err)
	}
	undo = append(undo, func() { _ = cni.DelNetworkList(context.WithoutCancel(ctx), conf, rc) })
	res, err := types100.GetResult(r)
	if err != nil {
		return fmt.Errorf("pod %s: CNI ADD on Windows node %s: %w", p.ID(), node.Name, err)
	}
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap().Is4() {
			p.IP = a.Unmap()
		}
	}
	if !p.IP.IsValid() {
		return fmt.Errorf("pod %s: CNI ADD returned no IPv4 address: %v", p.ID(), res.IPs)
	}
	if err := l.writeEndpoint(ctx, node, p); err != nil {
		return err
	}
	l.s.Pods[p.ID()] = p
	return l.s.save(l.dir)
}

// deleteWindowsPod is DeletePod on a Windows node: CNI DEL (the HNS endpoint, the address, the
// workload endpoint), then the sandbox's HNS namespace.
func (l *Lab) deleteWindowsPod(ctx context.Context, node *Node, p *Pod) error {
	conf, err := l.conflist(node)
	if err != nil {
		return err
	}
	if err := l.winCNI(node).DelNetworkList(ctx, conf, p.winRuntimeConf()); err != nil {
		return fmt.Errorf("pod %s: CNI DEL on Windows node %s: %w", p.ID(), node.Name, err)
	}
	if h, err := l.openFakeHNS(node); err == nil {
		if err := h.DeleteNamespace(ctx, p.HNSNamespace); err != nil && !errors.Is(err, hcn.ErrNotFound) {
			return fmt.Errorf("pod %s: deleting its HNS namespace %s: %w", p.ID(), p.HNSNamespace, err)
		}
	}
	delete(l.s.Pods, p.ID())
	return l.s.save(l.dir)
}

// nodeOS is what `status` shows in the OS column.
func nodeOS(n *Node) string {
	if n.OS == "" {
		return "linux"
	}
	return n.OS
}

// serverWord is what `status` shows in the SERVER column: a Windows pod has no server, its HNS
// endpoint answers through the fake (windowsprobe.go).
func serverWord(p *Pod) string {
	if p.HNSNamespace != "" {
		return "hns"
	}
	return aliveWord(p.Server.Alive())
}
