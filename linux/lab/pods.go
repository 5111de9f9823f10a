//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// PodOptions are `pod add`'s flags.
type PodOptions struct {
	// Node is the 1-based node index; 0 places the pod on the node with the fewest pods.
	Node   int
	Labels map[string]string
	// IP, when valid, is the address the pod gets (Calico's ipAddrs annotation; CNI_ARGS IP= here).
	IP    netip.Addr
	Ports []Port
	// ServiceAccount names a service account of the pod's namespace (`sa add` first); "" none.
	ServiceAccount string
}

// ParsePodID reads NS/NAME.
func ParsePodID(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", fmt.Errorf("pod %q: want NAMESPACE/NAME", s)
	}
	if err := checkDNSLabel("namespace", ns); err != nil {
		return "", "", fmt.Errorf("pod %q: %w", s, err)
	}
	if err := checkDNSLabel("pod name", name); err != nil {
		return "", "", fmt.Errorf("pod %q: %w", s, err)
	}
	return ns, name, nil
}

func (l *Lab) pod(id string) (*Pod, error) {
	if _, _, err := ParsePodID(id); err != nil {
		return nil, err
	}
	p, ok := l.s.Pods[id]
	if !ok {
		return nil, fmt.Errorf("no pod %q (`tortie-lab status` lists them)", id)
	}
	return p, nil
}

func (l *Lab) conflist(n *Node) (*libcni.NetworkConfigList, error) {
	conf, err := libcni.ConfListFromFile(filepath.Join(nodeDir(l.dir, n), "cni.conflist"))
	if err != nil {
		return nil, fmt.Errorf("node %s: CNI configuration: %w", n.Name, err)
	}
	return conf, nil
}

func (l *Lab) cni(n *Node) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{filepath.Join(l.dir, "cni-bin")}, filepath.Join(nodeDir(l.dir, n), "cni-cache"), nil)
}

func (p *Pod) runtimeConf() *libcni.RuntimeConf {
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", p.Namespace}, {"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID}, {"K8S_POD_UID", p.uid()}}
	return &libcni.RuntimeConf{ContainerID: p.ContainerID, NetNS: netnsPath(p.NetNS), IfName: "eth0", Args: args}
}

func (p *Pod) uid() string {
	if p.UID != "" {
		return p.UID
	}
	return "uid-" + p.ContainerID[:16]
}

// AddPod creates a pod: its namespace, CNI ADD on its node, its labels and ports on the workload
// endpoint, and its server. On failure what was made is undone.
func (l *Lab) AddPod(ctx context.Context, id string, o PodOptions) (err error) {
	ns, name, err := ParsePodID(id)
	if err != nil {
		return err
	}
	if _, ok := l.s.Namespaces[ns]; !ok {
		return fmt.Errorf("pod %s: no namespace %q; `tortie-lab ns add %s` first", id, ns, ns)
	}
	if _, ok := l.s.Pods[id]; ok {
		return fmt.Errorf("pod %s exists; `pod label` changes its labels, `pod del` removes it", id)
	}
	if err := l.checkServiceAccount(id, ns, o.ServiceAccount); err != nil {
		return err
	}
	if o.Node == 0 {
		o.Node = l.leastLoaded()
	}
	node, err := l.s.node(o.Node)
	if err != nil {
		return fmt.Errorf("pod %s: %w", id, err)
	}
	if o.IP.IsValid() && !l.s.PodCIDR.Contains(o.IP) {
		return fmt.Errorf("pod %s: --ip %s is outside the lab's pod CIDR %s", id, o.IP, l.s.PodCIDR)
	}
	if o.IP.IsValid() {
		for _, p := range l.s.Pods {
			if p.IP == o.IP {
				return fmt.Errorf("pod %s: --ip %s is pod %s's address", id, o.IP, p.ID())
			}
		}
	}
	if len(o.Ports) == 0 {
		o.Ports = DefaultPorts
	}
	names, nums := map[string]bool{}, map[string]bool{}
	for _, pt := range o.Ports {
		k := fmt.Sprintf("%d/%s", pt.Port, pt.Protocol)
		if names[pt.Name] || nums[k] {
			return fmt.Errorf("pod %s: --port %s repeats a port name or number", id, pt)
		}
		names[pt.Name], nums[k] = true, true
	}
	if o.Labels == nil {
		o.Labels = map[string]string{}
	}
	l.s.Seq++
	p := &Pod{Namespace: ns, Name: name, Node: o.Node, Labels: o.Labels, Ports: o.Ports, ServiceAccount: o.ServiceAccount,
		ContainerID: fmt.Sprintf("%016x%048x", time.Now().UnixNano(), l.s.Seq), NetNS: fmt.Sprintf("%s-p%d", NamePrefix, l.s.Seq)}
	if node.OS == OSWindows {
		return l.addWindowsPod(ctx, node, p, o.IP) // windows.go
	}
	conf, err := l.conflist(node)
	if err != nil {
		return err
	}
	if err := createNetNS(p.NetNS); err != nil {
		return fmt.Errorf("pod %s: %w", id, err)
	}
	undo := []func(){func() { _ = deleteNetNS(p.NetNS) }}
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if err := l.obj.createPod(ctx, node, p, o.IP); err != nil {
		return err
	}
	undo = append(undo, func() { l.obj.undoCreate(ctx, p) })
	rc := p.runtimeConf()
	if o.IP.IsValid() && l.obj.podCNIArgsIP() {
		rc.Args = append(rc.Args, [2]string{"IP", o.IP.String()})
	}
	cni := l.cni(node)
	var res *types100.Result
	err = inNetNS(node.NetNS, func() error {
		r, err := cni.AddNetworkList(ctx, conf, rc)
		if err != nil {
			return err
		}
		res, err = types100.GetResult(r)
		return err
	})
	if err != nil {
		return fmt.Errorf("pod %s: CNI ADD on node %s: %w", id, node.Name, err)
	}
	undo = append(undo, func() {
		_ = inNetNS(node.NetNS, func() error { return cni.DelNetworkList(context.WithoutCancel(ctx), conf, rc) })
	})
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap().Is4() {
			p.IP = a.Unmap()
		}
	}
	if !p.IP.IsValid() {
		return fmt.Errorf("pod %s: CNI ADD returned no IPv4 address: %v", id, res.IPs)
	}
	if err := l.obj.podStarted(ctx, node, p); err != nil {
		return err
	}
	if p.Server, err = l.startServer(p); err != nil {
		return err
	}
	l.s.Pods[id] = p
	return l.s.save(l.dir)
}

func (l *Lab) leastLoaded() int {
	count := make([]int, len(l.s.Nodes)+1)
	for _, p := range l.s.Pods {
		count[p.Node]++
	}
	best := 0
	for _, n := range l.s.liveNodes() {
		if best == 0 || count[n.Index] < count[best] {
			best = n.Index
		}
	}
	return best
}

// writeEndpoint puts the pod's labels and named ports on the workload endpoint the CNI plugin wrote
// (what the Kubernetes datastore derives from the Pod, and tortie-controllers' label mirror keeps in
// etcd mode).
func (l *Lab) writeEndpoint(ctx context.Context, node *Node, p *Pod) error {
	key := datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: p.Namespace, Name: api.WorkloadEndpointName(node.Name, "k8s", p.Name, "eth0")}
	for attempt := 0; ; attempt++ {
		cur, err := l.be.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("pod %s: reading WorkloadEndpoint %s: %w", p.ID(), key, err)
		}
		w := cur.(*api.WorkloadEndpoint).DeepCopy()
		w.Labels = maps.Clone(p.Labels)
		w.Labels[api.LabelNamespace] = p.Namespace
		w.Labels[api.LabelOrchestrator] = api.OrchestratorKubernetes
		setEndpointIdentity(w, p)
		w.Spec.Ports = nil
		for _, pt := range p.Ports {
			w.Spec.Ports = append(w.Spec.Ports, api.WorkloadEndpointPort{Name: pt.Name, Protocol: api.ProtocolFromString(pt.Protocol), Port: pt.Port})
		}
		_, err = l.be.Update(ctx, w)
		if err == nil {
			return nil
		}
		if attempt >= 5 || !errors.Is(err, datastore.ErrConflict) {
			return fmt.Errorf("pod %s: updating WorkloadEndpoint %s: %w", p.ID(), key, err)
		}
	}
}

func (l *Lab) podLog(p *Pod) string {
	return filepath.Join(l.dir, "pods", p.Namespace+"_"+p.Name+".log")
}

func (l *Lab) startServer(p *Pod) (Proc, error) {
	if err := os.MkdirAll(filepath.Join(l.dir, "pods"), 0o700); err != nil {
		return Proc{}, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return Proc{}, err
	}
	defer r.Close() //nolint:errcheck // read end
	args := []string{"serve-pod", "--id", p.ID(), "--log", l.podLog(p)}
	for _, pt := range p.Ports {
		args = append(args, "--port", pt.String())
	}
	proc, err := startDetached(p.NetNS, l.podLog(p), []string{"PATH=" + os.Getenv("PATH")}, w, l.s.LabBin, args...)
	_ = w.Close()
	if err != nil {
		return Proc{}, fmt.Errorf("pod %s: %w", p.ID(), err)
	}
	if err := waitReady(r, proc, l.podLog(p), "pod "+p.ID()+"'s server", 30*time.Second); err != nil {
		return Proc{}, err
	}
	return proc, nil
}

// LabelPod replaces a pod's labels.
func (l *Lab) LabelPod(ctx context.Context, id string, labels map[string]string) error {
	p, err := l.pod(id)
	if err != nil {
		return err
	}
	old := p.Labels
	p.Labels = labels
	if err := l.obj.labelPod(ctx, l.s.Nodes[p.Node-1], p); err != nil {
		p.Labels = old
		return err
	}
	return l.s.save(l.dir)
}

// DeletePod removes a pod: CNI DEL (which releases its address and workload endpoint), its server and
// its namespace.
func (l *Lab) DeletePod(ctx context.Context, id string) error {
	p, err := l.pod(id)
	if err != nil {
		return err
	}
	node := l.s.Nodes[p.Node-1]
	if node.OS == OSWindows {
		return l.deleteWindowsPod(ctx, node, p) // windows.go
	}
	conf, err := l.conflist(node)
	if err != nil {
		return err
	}
	cni := l.cni(node)
	if err := inNetNS(node.NetNS, func() error { return cni.DelNetworkList(ctx, conf, p.runtimeConf()) }); err != nil {
		return fmt.Errorf("pod %s: CNI DEL on node %s: %w", id, node.Name, err)
	}
	p.Server.kill()
	for _, pid := range labProcesses("/nonexistent-lab-dir", []string{p.NetNS}) {
		Proc{PID: pid}.forceKill()
	}
	if err := deleteNetNS(p.NetNS); err != nil {
		return fmt.Errorf("pod %s: %w", id, err)
	}
	if err := l.obj.deletePod(ctx, p); err != nil {
		return err
	}
	delete(l.s.Pods, id)
	return l.s.save(l.dir)
}
