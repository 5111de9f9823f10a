//go:build linux

package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDir is the state directory when TORTIE_LAB_DIR is not set.
const DefaultDir = "/run/tortie-lab"

// Names the lab gives what it creates in the root namespace and in /run/netns; Down finds leftovers by
// them.
const (
	// NamePrefix starts every network namespace and root-namespace link of the lab.
	NamePrefix = "tlab"
	// BridgeName is the underlay bridge.
	BridgeName = "tlab0"
	// RuleComment marks the root namespace's iptables rule that lets bridged underlay traffic through
	// a FORWARD chain whose policy may be DROP (br_netfilter passes bridged frames through iptables).
	RuleComment = "tortie-lab"
	// MarkerName is the GlobalNetworkSet whose annotation `sync` rewrites to learn a revision every
	// agent must reach. It has no nets, so it changes no policy.
	MarkerName = "tortie-lab-sync"
)

const stateFile = "state.json"

// State is what the lab made, as state.json records it.
type State struct {
	// Underlay is the bridge's subnet; the bridge holds its first address, node i the address 10+i.
	Underlay  netip.Prefix `json:"underlay"`
	PodCIDR   netip.Prefix `json:"podCIDR"`
	Encap     string       `json:"encap"`
	Datastore string       `json:"datastore"`
	// Dataplane is the agents' --dataplane (linux, or fake while the Linux dataplane is not wired).
	Dataplane string `json:"dataplane"`
	// NodeBin and CNIBin are the tortie-node and tortie-cni binaries the lab runs.
	NodeBin string `json:"nodeBin"`
	CNIBin  string `json:"cniBin"`
	// LabBin is tortie-lab (it serves the embedded etcd and the pods); EtcdBin is Debian's etcd for
	// --datastore etcd.
	LabBin  string `json:"labBin"`
	EtcdBin string `json:"etcdBin,omitempty"`
	// WinNodeBin and WinCNIBin are the tortie_fakehns builds of tortie-node and tortie-cni the Windows
	// nodes run (windows.go).
	WinNodeBin string `json:"winNodeBin,omitempty"`
	WinCNIBin  string `json:"winCNIBin,omitempty"`
	// Etcd is the datastore's process and client URL.
	Etcd    Proc    `json:"etcd"`
	EtcdURL string  `json:"etcdURL"`
	Nodes   []*Node `json:"nodes"`
	// Namespaces maps each namespace to its labels.
	Namespaces map[string]map[string]string `json:"namespaces"`
	// Pods by "ns/name".
	Pods map[string]*Pod `json:"pods"`
	// ServiceAccounts maps "ns/name" to the service account's labels (sa.go).
	ServiceAccounts map[string]map[string]string `json:"serviceAccounts,omitempty"`
	// Seq numbers pods' container IDs.
	Seq int `json:"seq"`

	// With --datastore kubernetes: the kube-apiserver (over Etcd), its URL, the binary, and the admin
	// kubeconfig the agents, the CNI plugin and tortiectl use (kube.go, kubeapi.go).
	APIServer        Proc   `json:"apiServer,omitzero"`
	APIServerURL     string `json:"apiServerURL,omitempty"`
	KubeAPIServerBin string `json:"kubeAPIServerBin,omitempty"`
	Kubeconfig       string `json:"kubeconfig,omitempty"`
}

// Proc is a detached process the lab started; StartTime (clock ticks since boot, /proc/PID/stat
// field 22) tells it from a later process that reused the pid.
type Proc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

// Node is one lab node.
type Node struct {
	Name  string       `json:"name"`
	Index int          `json:"index"`
	NetNS string       `json:"netns"`
	IP    netip.Prefix `json:"ip"`
	// HostLink is the root-namespace end of the node's underlay veth.
	HostLink string `json:"hostLink"`
	Agent    Proc   `json:"agent"`
	// Removed: `node del` took the node away; `node add` brings it back.
	Removed bool `json:"removed,omitempty"`
	// OS is "windows" for a Windows node (windows.go: `up --windows-nodes`), empty for Linux.
	OS string `json:"os,omitempty"`
}

// Port is one port a pod serves.
type Port struct {
	Name     string `json:"name"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"` // TCP or UDP
}

func (p Port) String() string { return fmt.Sprintf("%s=%d/%s", p.Name, p.Port, p.Protocol) }

// Pod is one lab pod.
type Pod struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Node        int               `json:"node"`
	Labels      map[string]string `json:"labels"`
	Ports       []Port            `json:"ports"`
	IP          netip.Addr        `json:"ip"`
	ContainerID string            `json:"containerID"`
	NetNS       string            `json:"netns"`
	Server      Proc              `json:"server"`
	// HNSNamespace is a Windows pod's sandbox: the HNS namespace in its node's fake HNS (it has no
	// network namespace or server; windows.go).
	HNSNamespace string `json:"hnsNamespace,omitempty"`
	// ServiceAccount is the pod's service account in its namespace ("" none); Profiles, when set by
	// `pod profiles`, replace the endpoint's profiles (kns.<ns>, ksa.<ns>.<sa>) (sa.go).
	ServiceAccount string   `json:"serviceAccount,omitempty"`
	Profiles       []string `json:"profiles,omitempty"`

	// UID is the Pod's uid in the Kubernetes datastore.
	UID string `json:"uid,omitempty"`
}

// ID is "ns/name".
func (p *Pod) ID() string { return p.Namespace + "/" + p.Name }

// node returns the node with index i (1-based).
func (s *State) node(i int) (*Node, error) {
	if i < 1 || i > len(s.Nodes) {
		return nil, fmt.Errorf("--node %d: the lab has nodes 1 to %d", i, len(s.Nodes))
	}
	if s.Nodes[i-1].Removed {
		return nil, fmt.Errorf("--node %d: node %s was removed (`node add` brings it back)", i, s.Nodes[i-1].Name)
	}
	return s.Nodes[i-1], nil
}

// liveNodes lists the nodes that were not removed.
func (s *State) liveNodes() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if !n.Removed {
			out = append(out, n)
		}
	}
	return out
}

// sortedPods lists the pods by namespace, then name.
func (s *State) sortedPods() []*Pod {
	ids := make([]string, 0, len(s.Pods))
	for id := range s.Pods {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		an, ap, _ := strings.Cut(a, "/")
		bn, bp, _ := strings.Cut(b, "/")
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(ap, bp)
	})
	out := make([]*Pod, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.Pods[id])
	}
	return out
}

// ErrNoLab means the state directory holds no lab.
var ErrNoLab = errors.New("no lab is up")

func loadState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s; start one with `tortie-lab up`)", ErrNoLab, filepath.Join(dir, stateFile))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the lab's state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w (the lab's state is damaged; `tortie-lab down` removes the lab)", filepath.Join(dir, stateFile), err)
	}
	if s.Namespaces == nil {
		s.Namespaces = map[string]map[string]string{}
	}
	if s.Pods == nil {
		s.Pods = map[string]*Pod{}
	}
	if s.ServiceAccounts == nil {
		s.ServiceAccounts = map[string]map[string]string{}
	}
	return &s, nil
}

// save writes the state atomically (rename), so a crash leaves the old or the new state.
func (s *State) save(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the lab's state: %w", err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the lab's state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("writing the lab's state: %w", err)
	}
	return nil
}

// lock takes the lab's lock (DIR.lock, beside the directory, so that Down can remove the directory
// while holding it) and returns its release.
func lock(dir string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("lab lock: %w", err)
	}
	path := filepath.Clean(dir) + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lab lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lab lock %s: %w", path, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}, nil
}
