//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/linux/lab"
	"github.com/tortie-net/tortie/platform/dptest/policy/reference"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

var winBins struct {
	once sync.Once
	err  error
}

// buildWindowsBins adds the tortie_fakehns builds of tortie-node and tortie-cni to binDir, as
// `up --windows-nodes` looks for them.
func buildWindowsBins(t *testing.T) {
	t.Helper()
	if binDir == "" {
		t.Skip("the lab needs root (network namespaces, a bridge)")
	}
	winBins.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			winBins.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		for bin, pkg := range map[string]string{lab.WinNodeBinName: "./cmd/tortie-node", lab.WinCNIBinName: "./cmd/tortie-cni"} {
			cmd := exec.CommandContext(ctx, "go", "build", "-tags", "tortie_fakehns", "-o", filepath.Join(binDir, bin), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				winBins.err = fmt.Errorf("go build -tags tortie_fakehns %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if winBins.err != nil {
		t.Fatal(winBins.err)
	}
}

// winPods: two Linux nodes (n1, n2) and one Windows node (node 3, w1); pods of x and y on each, two
// on the Windows node so that a pair shares its vSwitch.
var winPods = []struct{ id, node string }{
	{"x/a", "1"}, {"x/b", "2"}, {"x/w", "3"}, {"y/a", "1"}, {"y/v", "3"}, {"y/w", "3"},
}

// The policies applied one after the other (each stays), conformance-style.
var winSteps = []struct{ what, doc string }{
	{"default deny ingress in y", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: "y"}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`},
	{"y allows ingress from namespace x by label", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-x, namespace: "y"}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: "x"}}
`},
	{"x's pods may send only to TCP port 81", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-81, namespace: "x"}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {protocol: TCP, port: 81}
`},
	{"pod x/w takes TCP port 80 from y's pods only", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: w-80-from-y, namespace: "x"}
spec:
  podSelector: {matchLabels: {pod: "w"}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: "y"}}
    ports:
    - {protocol: TCP, port: 80}
`},
}

// winState reads the lab's state file.
func winState(t *testing.T, l *labT) lab.State {
	t.Helper()
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// winReference is the reference evaluator's view of the lab: its namespaces and pods as the state
// file records them, and the policies applied so far.
func winReference(t *testing.T, s lab.State, docs []string) *reference.Cluster {
	t.Helper()
	c := &reference.Cluster{Namespaces: map[string]map[string]string{}, ServiceAccounts: map[string]map[string]string{}}
	for ns, labels := range s.Namespaces {
		c.Namespaces[ns] = maps.Clone(labels)
	}
	for _, id := range slices.Sorted(maps.Keys(s.Pods)) {
		p := s.Pods[id]
		rp := &reference.Pod{Namespace: p.Namespace, Name: p.Name, Labels: maps.Clone(p.Labels), IP: p.IP,
			Profiles: []string{api.NamespaceProfileName(p.Namespace)}}
		for _, pt := range p.Ports {
			rp.Ports = append(rp.Ports, reference.Port{Name: pt.Name, Protocol: pt.Protocol, Port: int(pt.Port)})
		}
		c.Pods = append(c.Pods, rp)
	}
	for _, d := range docs {
		var np networkingv1.NetworkPolicy
		if err := sigyaml.UnmarshalStrict([]byte(d), &np); err != nil {
			t.Fatalf("test policy: %v", err)
		}
		c.K8sPolicies = append(c.K8sPolicies, &np)
	}
	return c
}

// winExpected is the reference evaluator's matrix for key ("TCP/80") in the probe's pod order; a pod's
// own address is always reached (it never leaves the pod).
func winExpected(c *reference.Cluster, pods []string, key string) []string {
	proto, port, _ := strings.Cut(key, "/")
	byID := map[string]*reference.Pod{}
	for _, p := range c.Pods {
		byID[p.Namespace+"/"+p.Name] = p
	}
	var rows []string
	for _, s := range pods {
		var b strings.Builder
		for _, d := range pods {
			var n int
			_, _ = fmt.Sscan(port, &n)
			ok := s == d || c.Allowed(reference.Flow{Src: byID[s], Dst: byID[d], Protocol: proto, Port: n})
			b.WriteByte(map[bool]byte{true: '.', false: 'X'}[ok])
		}
		rows = append(rows, b.String())
	}
	return rows
}

func winCompare(t *testing.T, what string, got matrix, c *reference.Cluster) {
	t.Helper()
	for _, key := range []string{"TCP/80", "TCP/81", "UDP/80", "UDP/81"} {
		want := winExpected(c, got.Pods, key)
		if diff := cmp.Diff(want, got.Results[key]); diff != "" {
			t.Errorf("%s: %s matrix differs from the reference evaluator's (-want +got), pods %v:\n%s", what, key, got.Pods, diff)
		}
	}
}

// winMatrix is probe --json with the answeredBy field.
type winMatrix struct {
	matrix
	AnsweredBy map[string]string `json:"answeredBy"`
}

// TestWindowsNodes: a mixed lab (two Linux nodes, one Windows node on the fake HNS, over VXLAN). Pods on
// the Windows node get addresses through the Windows CNI flow from the same pool as the Linux pods,
// none twice and none Windows reserves; with no policy every pair is allowed; after each of a handful
// of policies the matrices equal the reference evaluator's; the cells with a Windows pod are marked as
// answered by the fake; `pod del` on the Windows node removes the HNS endpoint and releases the
// address; `down` leaves nothing (newLab's cleanup: no namespace, link, process, fake HNS file).
func TestWindowsNodes(t *testing.T) {
	buildWindowsBins(t)
	_, errOut, code := (&labT{t: t, dir: filepath.Join(t.TempDir(), "refused")}).run("", "up", "--nodes", "1", "--windows-nodes", "1", "--encap", "ipip")
	if code == 0 || !strings.Contains(errOut, "--encap vxlan") {
		t.Errorf("up --windows-nodes 1 --encap ipip: exit %d, want a refusal naming --encap vxlan:\n%s", code, errOut)
	}

	pool := netip.MustParsePrefix("10.66.0.0/16")
	l := newLab(t, "--nodes", "2", "--windows-nodes", "1", "--pod-cidr", pool.String())
	if dp := l.dataplane(); dp != "linux" {
		t.Skipf("needs the Linux dataplane on the Linux nodes; tortie-node runs --dataplane %s", dp)
	}
	st := l.must("", "status")
	if !strings.Contains(st, "w1     windows") || !strings.Contains(st, "n1     linux") {
		t.Errorf("status does not show the nodes' OS:\n%s", st)
	}
	for _, ns := range []string{"x", "y"} {
		l.must("", "ns", "add", ns, "--label", "ns="+ns)
	}
	for _, p := range winPods {
		_, name, _ := strings.Cut(p.id, "/")
		l.must("", "pod", "add", p.id, "--node", p.node, "--label", "pod="+name)
	}

	s := winState(t, l)
	seen := map[netip.Addr]string{}
	var winIDs []string
	for _, p := range winPods {
		got := s.Pods[p.id]
		if !pool.Contains(got.IP) {
			t.Errorf("pod %s: address %s outside the pool %s", p.id, got.IP, pool)
		}
		if other, dup := seen[got.IP]; dup {
			t.Errorf("pods %s and %s both have %s", other, p.id, got.IP)
		}
		seen[got.IP] = p.id
		if p.node == "3" {
			winIDs = append(winIDs, p.id)
			// Windows reserves its block's network, gateway, host-endpoint and broadcast addresses (/26).
			blk, _ := got.IP.Prefix(26)
			last := blk.Addr().As4()
			last[3] += 63
			if r := []netip.Addr{blk.Addr(), blk.Addr().Next(), blk.Addr().Next().Next(), netip.AddrFrom4(last)}; slices.Contains(r, got.IP) {
				t.Errorf("Windows pod %s got %s, an address Windows reserves in block %s", p.id, got.IP, blk)
			}
			if got.HNSNamespace == "" {
				t.Errorf("Windows pod %s has no HNS namespace", p.id)
			}
		}
	}
	hnsPath := filepath.Join(l.dir, "nodes", "w1", "hns.json")
	endpointIPs := func() []string {
		h, err := hcnfake.Open(hnsPath, hcnfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		eps, err := h.ListEndpoints(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range eps {
			if e.Flags&hcn.EndpointRemote == 0 {
				for _, c := range e.IpConfigurations {
					out = append(out, c.IpAddress)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	var wantEPs []string
	for _, id := range winIDs {
		wantEPs = append(wantEPs, s.Pods[id].IP.String())
	}
	slices.Sort(wantEPs)
	if diff := cmp.Diff(wantEPs, endpointIPs()); diff != "" {
		t.Errorf("HNS endpoints on w1 (-want +got):\n%s", diff)
	}

	l.must("", "sync")
	var m winMatrix
	if err := json.Unmarshal([]byte(l.must("", "probe", "--json", "--timeout", "3s")), &m); err != nil {
		t.Fatal(err)
	}
	wantMarks := map[string]string{}
	for _, id := range winIDs {
		wantMarks[id] = lab.AnsweredByFake
	}
	if diff := cmp.Diff(wantMarks, m.AnsweredBy); diff != "" {
		t.Errorf("probe --json answeredBy (-want +got):\n%s", diff)
	}
	winCompare(t, "no policy", m.matrix, winReference(t, s, nil))
	if text := l.must("", "probe", "--port", "80", "--timeout", "3s"); !strings.Contains(text, "legend: rows and columns of x/w y/v y/w") {
		t.Errorf("the text matrix has no legend for the Windows pods:\n%s", text)
	}

	var docs []string
	for _, step := range winSteps {
		l.must(step.doc, "apply", "-f", "-")
		docs = append(docs, step.doc)
		l.must("", "sync")
		winCompare(t, step.what, l.probe("--timeout", "2s"), winReference(t, winState(t, l), docs))
	}

	// pod del on the Windows node: the endpoint goes, the address is released (a new pod can take it).
	gone := s.Pods["y/v"].IP
	l.must("", "pod", "del", "y/v")
	if slices.Contains(endpointIPs(), gone.String()) {
		t.Errorf("the HNS endpoint of y/v (%s) is still on w1 after pod del", gone)
	}
	l.must("", "pod", "add", "y/u", "--node", "3", "--label", "pod=u", "--ip", gone.String())
	if code, out := ipamCheck(t, l); code != 0 {
		t.Errorf("ipam check after pod del and add on the Windows node: exit %d\n%s", code, out)
	}
	l.must("", "sync")
	winCompare(t, "after replacing y/v by y/u", l.probe("--timeout", "2s"), winReference(t, winState(t, l), docs))
	if _, err := os.Stat(hnsPath); err != nil {
		t.Errorf("the fake HNS state of w1: %v", err)
	}
}
