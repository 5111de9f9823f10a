//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/linux/lab"
)

// conn is a TCP connection from one lab pod to another, opened inside the source pod's namespace;
// the pod server echoes lines.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dialPod(t *testing.T, l *labT, src, dst string, port int) *conn {
	t.Helper()
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	sp, dp := s.Pods[src], s.Pods[dst]
	if sp == nil || dp == nil {
		t.Fatalf("no pods %s and %s in the lab", src, dst)
	}
	n, err := ns.GetNS("/run/netns/" + sp.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var c net.Conn
	if err := n.Do(func(ns.NetNS) error {
		c, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", dp.IP, port), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connecting %s → %s: %v", src, dst, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cc := &conn{c: c, r: bufio.NewReader(c)}
	if line, err := cc.r.ReadString('\n'); err != nil || line != dst+"\n" {
		t.Fatalf("greeting from %s: %q, %v", dst, line, err)
	}
	return cc
}

// echo checks the connection still carries data both ways.
func (c *conn) echo(t *testing.T, what string) {
	t.Helper()
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := fmt.Sprintf("still here: %s\n", what)
	if _, err := c.c.Write([]byte(msg)); err != nil {
		t.Fatalf("%s: writing on the established connection: %v", what, err)
	}
	if line, err := c.r.ReadString('\n'); err != nil || line != msg {
		t.Fatalf("%s: the established connection answered %q, %v", what, line, err)
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// hostState is what a node's dataplane programmed that a restart or an outage must not flush: its
// iptables rules of both backends (counters masked) and IP sets, read inside the node's namespace.
func hostState(t *testing.T, node string) string {
	t.Helper()
	var out bytes.Buffer
	for _, args := range [][]string{{"iptables-legacy-save"}, {"iptables-nft-save"}, {"ipset", "list"}} {
		cmd := exec.Command("ip", append([]string{"netns", "exec", lab.NamePrefix + "-" + node}, args...)...)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v in node %s: %v", args, node, err)
		}
		out.Write(counters.ReplaceAll(b, []byte("[0:0]")))
	}
	return regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(out.String(), "")
}

// TestReliability: an agent killed with SIGKILL and restarted, and the datastore stopped under traffic
// (60 s, TORTIE_E2E_OUTAGE overrides), leave connectivity and established connections as they were;
// the agents resync afterwards. With the Linux dataplane, the nodes' iptables rules and IP sets must
// not change either (nothing flushed, no spurious change).
func TestReliability(t *testing.T) {
	outage := 60 * time.Second
	if v := os.Getenv("TORTIE_E2E_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TORTIE_E2E_OUTAGE=%q: %v", v, err)
		}
		outage = d
	}
	l := newLab(t, "--nodes", "2")
	linux := l.dataplane() == "linux"
	l.must("", "ns", "add", "x", "--label", "ns=x")
	// x/a and x/b on n1, x/c on n2: the established connection x/a → x/c crosses nodes (routes, VXLAN,
	// the policy on n2) while n1's agent restarts. The fake dataplane cannot route between nodes, so
	// there x/c stays on n1.
	cNode := "2"
	if !linux {
		cNode = "1"
	}
	for _, p := range []struct{ name, node string }{{"a", "1"}, {"b", "1"}, {"c", cNode}} {
		l.must("", "pod", "add", "x/"+p.name, "--node", p.node, "--label", "pod="+p.name)
	}
	// Some policy, so that there is something to flush.
	l.must(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
`, "apply", "-f", "-")
	l.must("", "sync")
	before := l.probe("--port", "80")
	var hostBefore string
	if linux {
		hostBefore = hostState(t, "n1")
	}
	c := dialPod(t, l, "x/a", "x/c", 80)

	t.Run("agent killed and restarted", func(t *testing.T) {
		l.must("", "node", "kill", "1")
		if out := l.must("", "status"); !regexp.MustCompile(`(?m)^n1 .* gone `).MatchString(out) {
			t.Errorf("status after node kill 1 does not show n1's agent gone:\n%s", out)
		}
		c.echo(t, "agent dead")
		if got := l.probe("--port", "80"); !cmp.Equal(before, got) {
			t.Errorf("matrix with n1's agent dead (-before +now):\n%s", cmp.Diff(before, got))
		}
		l.must("", "node", "start", "1")
		l.must("", "sync")
		c.echo(t, "agent restarted")
		if got := l.probe("--port", "80"); !cmp.Equal(before, got) {
			t.Errorf("matrix after the restart (-before +now):\n%s", cmp.Diff(before, got))
		}
		if linux {
			if got := hostState(t, "n1"); got != hostBefore {
				t.Errorf("n1's rules changed across the agent's restart:\n%s", cmp.Diff(hostBefore, got))
			}
		}
	})

	t.Run("datastore stopped under traffic", func(t *testing.T) {
		pids := agentPIDs(t, l)
		l.must("", "datastore", "stop")
		deadline := time.Now().Add(outage)
		rounds := 0
		for rounds == 0 || time.Now().Before(deadline) {
			if got := l.probe("--port", "80"); !cmp.Equal(before, got) {
				t.Fatalf("matrix %s into the outage (-before +now):\n%s", time.Until(deadline), cmp.Diff(before, got))
			}
			c.echo(t, "datastore down")
			rounds++
			time.Sleep(2 * time.Second)
		}
		if _, errOut, code := l.run("", "sync", "--timeout", "3s"); code == 0 {
			t.Errorf("sync succeeded with the datastore down")
		} else if errOut == "" {
			t.Errorf("sync failed silently")
		}
		l.must("", "datastore", "start")
		l.must("", "sync", "--timeout", "2m")
		c.echo(t, "datastore back")
		if got := l.probe("--port", "80"); !cmp.Equal(before, got) {
			t.Errorf("matrix after the outage (-before +now):\n%s", cmp.Diff(before, got))
		}
		if got := agentPIDs(t, l); !cmp.Equal(pids, got) {
			t.Errorf("agents restarted during the outage: pids %v, then %v", pids, got)
		}
		if linux {
			if got := hostState(t, "n1"); got != hostBefore {
				t.Errorf("n1's rules changed across the outage:\n%s", cmp.Diff(hostBefore, got))
			}
		}
		t.Logf("%d probe rounds during a %s outage", rounds, outage)
	})
}

func agentPIDs(t *testing.T, l *labT) []int {
	t.Helper()
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, n := range s.Nodes {
		if !n.Agent.Alive() {
			t.Errorf("node %s's agent is not running", n.Name)
		}
		out = append(out, n.Agent.PID)
	}
	return out
}

// ipamCheck runs `tortiectl ipam check` on the lab's datastore and returns its exit code and output.
func ipamCheck(t *testing.T, l *labT) (int, string) {
	t.Helper()
	lb, err := lab.Open(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	var out bytes.Buffer
	code := lb.Tortiectl(t.Context(), []string{"ipam", "check"}, nil, &out, &out)
	return code, out.String()
}

// TestNodeRemovedAndReadded: removing a node deletes its pods and releases every address IPAM held
// for it (pods, tunnel address, block affinity); bringing it back and adding pods there again gives
// no address twice and leaves IPAM consistent.
func TestNodeRemovedAndReadded(t *testing.T) {
	l := newLab(t, "--nodes", "3")
	l.must("", "ns", "add", "x")
	for i, p := range []string{"a", "b", "c", "d"} {
		l.must("", "pod", "add", "x/"+p, "--node", fmt.Sprint(i%3+1))
	}
	if code, out := ipamCheck(t, l); code != 0 {
		t.Fatalf("ipam check before the removal: exit %d\n%s", code, out)
	}
	out := l.must("", "node", "del", "2")
	for _, s := range []string{"deleted pod x/b", "removed node n2"} {
		if !bytes.Contains([]byte(out), []byte(s)) {
			t.Errorf("node del 2 printed no %q:\n%s", s, out)
		}
	}
	if code, out := ipamCheck(t, l); code != 0 {
		t.Errorf("ipam check after node del: exit %d (something of n2 is still held)\n%s", code, out)
	}
	if _, errOut, code := l.run("", "pod", "add", "x/e", "--node", "2"); code == 0 || !bytes.Contains([]byte(errOut), []byte("was removed")) {
		t.Errorf("pod add on a removed node: exit %d, %q", code, errOut)
	}
	l.must("", "node", "add")
	l.must("", "pod", "add", "x/b", "--node", "2")
	l.must("", "pod", "add", "x/e", "--node", "2")
	l.must("", "sync")
	if code, out := ipamCheck(t, l); code != 0 {
		t.Errorf("ipam check after the node came back: exit %d\n%s", code, out)
	}
	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for id, p := range s.Pods {
		if other, dup := seen[p.IP.String()]; dup {
			t.Errorf("pods %s and %s both have %s", id, other, p.IP)
		}
		seen[p.IP.String()] = id
	}
	if got := l.probe("--port", "80"); got.Results["TCP/80"][1][4] != '.' {
		t.Errorf("x/b → x/e on the re-added node n2: %v", got.Results["TCP/80"])
	}
}

// TestDriftRepaired: with the Linux dataplane, rules removed behind the agent's back (node 1's FORWARD
// chain flushed, which drops tortie's hooks) are back within one resync interval (lab.ResyncInterval,
// plus the Apply).
func TestDriftRepaired(t *testing.T) {
	l := newLab(t, "--nodes", "1")
	if dp := l.dataplane(); dp != "linux" {
		t.Skipf("needs the Linux dataplane (it programs the rules that drift): tortie-node runs --dataplane %s", dp)
	}
	l.must("", "ns", "add", "x")
	l.must("", "pod", "add", "x/a", "--label", "pod=a")
	l.must("", "pod", "add", "x/b", "--label", "pod=b")
	l.must(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
`, "apply", "-f", "-")
	l.must("", "sync")
	before := hostState(t, "n1")
	// Flush with the backend the agent writes (the one holding tortie's chains).
	iptables := "iptables-nft"
	if out, err := exec.Command("ip", "netns", "exec", lab.NamePrefix+"-n1", "iptables-legacy-save").Output(); err == nil &&
		bytes.Contains(out, []byte(":tortie-")) {
		iptables = "iptables-legacy"
	}
	if out, err := exec.Command("ip", "netns", "exec", lab.NamePrefix+"-n1", iptables, "-w", "-F", "FORWARD").CombinedOutput(); err != nil {
		t.Fatalf("flushing FORWARD in n1: %v: %s", err, out)
	}
	if hostState(t, "n1") == before {
		t.Fatal("flushing FORWARD changed nothing: the drift was not real")
	}
	deadline := time.Now().Add(lab.ResyncInterval + 15*time.Second)
	for hostState(t, "n1") != before {
		if time.Now().After(deadline) {
			t.Fatalf("drift not repaired within one resync (%s):\n%s", lab.ResyncInterval, cmp.Diff(before, hostState(t, "n1")))
		}
		time.Sleep(time.Second)
	}
}
