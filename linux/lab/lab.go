//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/cli"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
)

// Lab is an open lab: its state, locked, and a datastore client. Every method that changes the lab
// saves the state before returning. Close releases the lock.
type Lab struct {
	dir    string
	s      *State
	be     datastore.Backend
	obj    objects
	unlock func()
}

// Open locks the lab in dir and connects to its datastore.
func Open(dir string) (*Lab, error) {
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	s, err := loadState(dir)
	if err != nil {
		unlock()
		return nil, err
	}
	if s.Datastore == "kubernetes" {
		l, err := openKube(dir, s, unlock)
		if err != nil {
			unlock()
		}
		return l, err
	}
	be, err := etcd.New(etcd.Config{Endpoints: []string{s.EtcdURL}, DialTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("the lab's datastore %s: %w", s.EtcdURL, err)
	}
	l := &Lab{dir: dir, s: s, be: be, unlock: unlock}
	l.obj = etcdObjects{l}
	return l, nil
}

// Close releases the lab.
func (l *Lab) Close() {
	_ = l.be.Close()
	l.unlock()
}

// State returns the lab's state (read-only for callers).
func (l *Lab) State() *State { return l.s }

// Getenv is the environment tortiectl gets for the lab's datastore.
func (l *Lab) Getenv(k string) string {
	if l.s.Datastore == "kubernetes" {
		return kubeEnv(l.s, k)
	}
	switch k {
	case "DATASTORE_TYPE":
		return "etcdv3"
	case "ETCD_ENDPOINTS":
		return l.s.EtcdURL
	}
	return ""
}

// Tortiectl runs a tortiectl command line against the lab's datastore and returns its exit code.
func (l *Lab) Tortiectl(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if l.s.Datastore == "kubernetes" {
		if code, handled := l.kubeTortiectl(ctx, args, stdin, stdout, stderr); handled {
			return code
		}
	}
	return cli.Main(ctx, append([]string{"tortiectl"}, args...), cli.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: l.Getenv})
}

// ParseLabels reads k=v arguments (Kubernetes label syntax), refusing bad keys, values and repeats.
func ParseLabels(what string, args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", what, a)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: key %q: %s", what, a, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: value %q: %s", what, a, v, strings.Join(errs, "; "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: key %q given twice", what, k)
		}
		out[k] = v
	}
	return out, nil
}

func checkDNSLabel(what, name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%s %q: %s", what, name, strings.Join(errs, "; "))
	}
	return nil
}

// ---- namespaces ----

func (l *Lab) writeProfile(ctx context.Context, name string, labels map[string]string) error {
	p := kube.NamespaceProfile(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	p.ResourceVersion = ""
	return l.putProfile(ctx, p) // sa.go
}

// AddNamespace adds a namespace with labels (its kns.<name> profile).
func (l *Lab) AddNamespace(ctx context.Context, name string, labels map[string]string) error {
	if err := checkDNSLabel("namespace", name); err != nil {
		return err
	}
	if _, ok := l.s.Namespaces[name]; ok {
		return fmt.Errorf("namespace %q exists; `ns label %s k=v...` changes its labels", name, name)
	}
	if err := l.obj.putNamespace(ctx, name, labels, true); err != nil {
		return err
	}
	l.s.Namespaces[name] = labels
	return l.s.save(l.dir)
}

// LabelNamespace replaces a namespace's labels.
func (l *Lab) LabelNamespace(ctx context.Context, name string, labels map[string]string) error {
	if _, ok := l.s.Namespaces[name]; !ok {
		return fmt.Errorf("no namespace %q (namespaces: %s)", name, strings.Join(slices.Sorted(maps.Keys(l.s.Namespaces)), " "))
	}
	if err := l.obj.putNamespace(ctx, name, labels, false); err != nil {
		return err
	}
	l.s.Namespaces[name] = labels
	return l.s.save(l.dir)
}

// DeleteNamespace deletes an empty namespace: its profile and the NetworkPolicies and NetworkSets in
// it, as Kubernetes deletes a namespace's objects.
func (l *Lab) DeleteNamespace(ctx context.Context, name string) error {
	if _, ok := l.s.Namespaces[name]; !ok {
		return fmt.Errorf("no namespace %q", name)
	}
	var pods []string
	for _, p := range l.s.sortedPods() {
		if p.Namespace == name {
			pods = append(pods, p.ID())
		}
	}
	if len(pods) > 0 {
		return fmt.Errorf("namespace %q still has pods %s; delete them first (`pod del`)", name, strings.Join(pods, " "))
	}
	if err := l.obj.deleteNamespace(ctx, name); err != nil {
		return err
	}
	delete(l.s.Namespaces, name)
	return l.s.save(l.dir)
}

// deleteEtcdNamespace deletes a namespace's profile and the NetworkPolicies and NetworkSets in it.
func (l *Lab) deleteEtcdNamespace(ctx context.Context, name string) error {
	for _, kind := range []string{api.KindNetworkPolicy, api.KindNetworkSet} {
		objs, _, err := l.be.List(ctx, datastore.ListOptions{Kind: kind, Namespace: name})
		if err != nil {
			return fmt.Errorf("listing %ss in %s: %w", kind, name, err)
		}
		for _, o := range objs {
			if _, err := l.be.Delete(ctx, datastore.Key{Kind: kind, Namespace: name, Name: o.GetName()}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return fmt.Errorf("deleting %s %s/%s: %w", kind, name, o.GetName(), err)
			}
		}
	}
	if err := l.deleteNamespaceServiceAccounts(ctx, name); err != nil {
		return err
	}
	if _, err := l.be.Delete(ctx, datastore.Key{Kind: api.KindProfile, Name: api.NamespaceProfileName(name)}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("deleting Profile %s: %w", api.NamespaceProfileName(name), err)
	}
	return nil
}

// ---- sync and status ----

// AgentStatus is what an agent's /status says (platform/agent.Status).
type AgentStatus struct {
	Node            string `json:"node"`
	Datastore       string `json:"datastore"`
	Ready           bool   `json:"ready"`
	SeenRevision    int64  `json:"seenRevision"`
	AppliedRevision int64  `json:"appliedRevision"`
	Applies         int64  `json:"applies"`
}

func agentStatus(ctx context.Context, n *Node) (AgentStatus, error) {
	var st AgentStatus
	url := "http://" + netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), healthPort).String() + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := nodeHTTPClient(n).Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s: %w", url, err)
	}
	return st, nil
}

// waitAgents waits until every agent is ready and has applied revision rev.
func waitAgents(ctx context.Context, dir string, s *State, rev int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var waiting []string
		for _, n := range s.liveNodes() {
			if !n.Agent.Alive() {
				return fmt.Errorf("node %s: tortie-node exited; its log (%s):\n%s", n.Name,
					nodeDir(dir, n)+"/tortie-node.log", logTail(nodeDir(dir, n)+"/tortie-node.log"))
			}
			st, err := agentStatus(ctx, n)
			switch {
			case err != nil:
				waiting = append(waiting, fmt.Sprintf("%s (%v)", n.Name, err))
			case !st.Ready:
				waiting = append(waiting, fmt.Sprintf("%s (not ready: datastore %s)", n.Name, st.Datastore))
			case st.AppliedRevision < rev:
				waiting = append(waiting, fmt.Sprintf("%s (applied revision %d < %d; seen %d)", n.Name, st.AppliedRevision, rev, st.SeenRevision))
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agents not in sync after %s: %s", timeout, strings.Join(waiting, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Sync returns once every agent has programmed the datastore's current state: it rewrites the
// MarkerName GlobalNetworkSet and waits until every agent is ready and has applied its revision.
func (l *Lab) Sync(ctx context.Context, timeout time.Duration) error {
	rev, err := l.touchMarker(ctx)
	if err != nil {
		return err
	}
	return waitAgents(ctx, l.dir, l.s, rev, timeout)
}

func (l *Lab) touchMarker(ctx context.Context) (int64, error) {
	for attempt := 0; ; attempt++ {
		var res api.Resource
		cur, err := l.be.Get(ctx, datastore.Key{Kind: api.KindGlobalNetworkSet, Name: MarkerName})
		switch {
		case errors.Is(err, datastore.ErrNotFound):
			m := api.NewGlobalNetworkSet()
			m.Name = MarkerName
			m.Annotations = map[string]string{"lab.tortie.net/sync": "0"}
			res, err = l.be.Create(ctx, m)
		case err == nil:
			m := cur.(*api.GlobalNetworkSet).DeepCopy()
			n, _ := strconv.Atoi(m.Annotations["lab.tortie.net/sync"])
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations["lab.tortie.net/sync"] = strconv.Itoa(n + 1)
			res, err = l.be.Update(ctx, m)
		}
		if err == nil {
			rev, perr := strconv.ParseInt(res.GetResourceVersion(), 10, 64)
			if perr != nil {
				return 0, fmt.Errorf("sync marker: revision %q is not a number", res.GetResourceVersion())
			}
			return rev, nil
		}
		if attempt >= 5 || !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrAlreadyExists) {
			return 0, fmt.Errorf("writing the sync marker GlobalNetworkSet %s: %w", MarkerName, err)
		}
	}
}

// Status writes the nodes with their agents' health and the pods with their addresses.
func (l *Lab) Status(ctx context.Context, w io.Writer) error {
	printf(w, "datastore %s (%s, pid %d, %s)  pods %s  encap %s  dataplane %s\n", l.s.EtcdURL, l.s.Datastore, l.s.Etcd.PID,
		aliveWord(l.s.Etcd.Alive()), l.s.PodCIDR, l.s.Encap, l.s.Dataplane)
	if l.s.Datastore == "kubernetes" {
		printKubeStatus(ctx, w, l.s)
	}
	printf(w, "\n")
	printf(w, "%-6s %-8s %-15s %-8s %-8s %-34s\n", "NODE", "OS", "ADDRESS", "PID", "PROCESS", "AGENT")
	for _, n := range l.s.Nodes {
		if n.Removed {
			printf(w, "%-6s %-8s %-15s %-8s %-8s %s\n", n.Name, nodeOS(n), n.IP.Addr(), "-", "removed", "-")
			continue
		}
		agent := "unreachable"
		if st, err := agentStatus(ctx, n); err == nil {
			agent = fmt.Sprintf("ready=%t datastore=%s revision=%d", st.Ready, st.Datastore, st.AppliedRevision)
		}
		printf(w, "%-6s %-8s %-15s %-8d %-8s %s\n", n.Name, nodeOS(n), n.IP.Addr(), n.Agent.PID, aliveWord(n.Agent.Alive()), agent)
	}
	printf(w, "\n%-14s %-5s %-15s %-8s %-40s %s\n", "POD", "NODE", "ADDRESS", "SERVER", "PORTS", "LABELS")
	for _, p := range l.s.sortedPods() {
		var ports []string
		for _, pt := range p.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", pt.Port, pt.Protocol))
		}
		printf(w, "%-14s %-5s %-15s %-8s %-40s %s\n", p.ID(), l.s.Nodes[p.Node-1].Name, p.IP, serverWord(p),
			strings.Join(ports, ","), labelString(p.Labels))
	}
	if len(l.s.Namespaces) > 0 {
		printf(w, "\n%-14s %s\n", "NAMESPACE", "LABELS")
		for _, ns := range slices.Sorted(maps.Keys(l.s.Namespaces)) {
			printf(w, "%-14s %s\n", ns, labelString(l.s.Namespaces[ns]))
		}
	}
	return nil
}

func aliveWord(b bool) string {
	if b {
		return "running"
	}
	return "gone"
}

func labelString(m map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, ",")
}

// printf writes progress and tables; there is nothing useful to do when the terminal is gone.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

// KillAgent kills node i's tortie-node with SIGKILL (a crash: nothing is cleaned up).
func (l *Lab) KillAgent(i int) error {
	n, err := l.s.node(i)
	if err != nil {
		return err
	}
	n.Agent.kill()
	return nil
}

// StartAgent starts node i's tortie-node again if it is not running, and waits until it is ready.
func (l *Lab) StartAgent(ctx context.Context, i int, timeout time.Duration) error {
	n, err := l.s.node(i)
	if err != nil {
		return err
	}
	if !n.Agent.Alive() {
		if err := startAgent(l.dir, l.s, n); err != nil {
			return err
		}
		if err := l.s.save(l.dir); err != nil {
			return err
		}
	}
	return waitAgents(ctx, l.dir, &State{Nodes: []*Node{n}}, 0, timeout)
}

// StopDatastore kills the datastore's process (the agents keep their state and retry).
func (l *Lab) StopDatastore() {
	l.s.Etcd.kill()
}

// StartDatastore starts the datastore again on the same data and address, if it is not running.
func (l *Lab) StartDatastore() error {
	if l.s.Etcd.Alive() {
		return nil
	}
	if err := startEtcd(l.dir, l.s); err != nil {
		return err
	}
	return l.s.save(l.dir)
}

// RemoveNode takes node i away as an operator would: its pods are deleted (CNI DEL releases their
// addresses), its agent stopped, its namespace and link removed, its Node deleted, and what IPAM still
// holds for it (tunnel addresses, block affinities) released through `tortiectl ipam check` and
// `ipam release --from-report`.
func (l *Lab) RemoveNode(ctx context.Context, i int, out io.Writer) error {
	n, err := l.s.node(i)
	if err != nil {
		return err
	}
	if len(l.s.liveNodes()) == 1 {
		return fmt.Errorf("node %s is the lab's last node; `tortie-lab down` removes the lab", n.Name)
	}
	for _, p := range l.s.sortedPods() {
		if p.Node == i {
			if err := l.DeletePod(ctx, p.ID()); err != nil {
				return err
			}
			printf(out, "deleted pod %s\n", p.ID())
		}
	}
	n.Agent.kill()
	for _, pid := range labProcesses("/nonexistent-lab-dir", []string{n.NetNS}) {
		Proc{PID: pid}.forceKill()
	}
	if link, err := netlink.LinkByName(n.HostLink); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("node %s: deleting link %s: %w", n.Name, n.HostLink, err)
		}
	}
	if err := deleteNetNS(n.NetNS); err != nil {
		return err
	}
	n.Removed = true
	if err := l.s.save(l.dir); err != nil {
		return err
	}
	if _, err := l.be.Delete(ctx, datastore.Key{Kind: api.KindNode, Name: n.Name}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("deleting Node %s: %w", n.Name, err)
	}
	report := filepath.Join(l.dir, "ipam-report-"+n.Name+".json")
	var msgs strings.Builder
	// ipam check exits non-zero when it finds problems (the removed node's, here); the report is what counts.
	if code := l.Tortiectl(ctx, []string{"ipam", "check", "-o", report}, nil, &msgs, &msgs); code == 0 {
		printf(out, "removed node %s; IPAM holds nothing for it\n", n.Name)
		return nil
	}
	if _, err := os.Stat(report); err != nil {
		return fmt.Errorf("node %s: tortiectl ipam check wrote no report: %s", n.Name, msgs.String())
	}
	msgs.Reset()
	if code := l.Tortiectl(ctx, []string{"ipam", "release", "--from-report", report}, nil, &msgs, &msgs); code != 0 {
		return fmt.Errorf("node %s: tortiectl ipam release: %s", n.Name, msgs.String())
	}
	printf(out, "removed node %s\n%s", n.Name, msgs.String())
	return nil
}

// AddNode brings back the first removed node, else adds a new one, and waits until its agent is
// ready; it returns the node's index.
func (l *Lab) AddNode(ctx context.Context, timeout time.Duration) (int, error) {
	var n *Node
	for _, c := range l.s.Nodes {
		if c.Removed {
			n = c
			break
		}
	}
	if n == nil {
		i := len(l.s.Nodes) + 1
		if i > MaxNodes {
			return 0, fmt.Errorf("the lab has %d nodes, the most it can", MaxNodes)
		}
		n = &Node{Name: fmt.Sprintf("n%d", i), Index: i, NetNS: fmt.Sprintf("%s-n%d", NamePrefix, i),
			IP: nodeIP(l.s.Underlay, i), HostLink: fmt.Sprintf("%s-n%d", NamePrefix, i), Removed: true}
		l.s.Nodes = append(l.s.Nodes, n)
	}
	if err := makeNode(l.dir, l.s, n); err != nil {
		return 0, err
	}
	if err := l.obj.addNode(ctx, n); err != nil {
		return 0, err
	}
	n.Removed = false
	if err := startAgent(l.dir, l.s, n); err != nil {
		return 0, err
	}
	if err := l.s.save(l.dir); err != nil {
		return 0, err
	}
	return n.Index, waitAgents(ctx, l.dir, &State{Nodes: []*Node{n}}, 0, timeout)
}
