//go:build linux

package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/common/dpmodel"
	policyp "github.com/tortie-net/tortie/platform/dptest/policy"
)

// echoServer accepts connections on port inside p and echoes lines back.
func echoServer(t testing.TB, p ns.NetNS, port int) {
	t.Helper()
	var l net.Listener
	if err := p.Do(func(ns.NetNS) (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// roundTrip sends a line on c and waits for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, msg string) error {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// restartState is node n1's desired state: pods x/a and y/a, y/a accepting TCP 90 from x/a only.
func restartState(allow bool) []dpmodel.Update {
	pol := dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "y", Name: "web"}
	var in []dpmodel.Rule
	if allow {
		in = []dpmodel.Rule{{Action: dpmodel.Allow, Protocol: 6, SrcIPSetIDs: []string{"s:clients"}, DstPorts: []dpmodel.PortRange{{First: 90, Last: 90}}}}
	}
	return []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, DenyAction: "Drop"}},
		dpmodel.IPSetUpdate{ID: "s:clients", Type: dpmodel.IPSetNet, Members: []dpmodel.Member{dpmodel.HostMember(podAddr("x/a"))}},
		dpmodel.ProfileUpdate{ID: "allow", Profile: dpmodel.Profile{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow}}}},
		dpmodel.PolicyUpdate{ID: pol, Policy: dpmodel.Policy{Inbound: in}},
		dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "x", Name: "a"}, Endpoint: dpmodel.WorkloadEndpoint{
			InterfaceName: "calixa", IPv4Nets: []netip.Prefix{netip.PrefixFrom(podAddr("x/a"), 32)}, ProfileIDs: []string{"allow"}}},
		dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "y", Name: "a"}, Endpoint: dpmodel.WorkloadEndpoint{
			InterfaceName: "caliya", IPv4Nets: []netip.Prefix{netip.PrefixFrom(podAddr("y/a"), 32)}, ProfileIDs: []string{"allow"},
			Tiers: []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{pol}}}}},
	}
}

// TestRestartKeepsFlows: an established TCP connection between two pods survives the agent's death
// and restart, because the new dataplane's first Apply adopts the rules it finds (it writes nothing at
// all when they are current: no flush, no window without rules). The agent keeps no state outside the
// kernel, so dropping the Dataplane value without Cleanup is what kill -9 leaves behind. Then a
// policy that denies the flow makes the dataplane delete its conntrack entry, and the connection stops.
func TestRestartKeepsFlows(t *testing.T) {
	needRoot(t)
	c := buildCluster(t)
	r := nsExec(c.nodes["n1"])
	echoServer(t, c.pods["y/a"], 90)

	first := New(Options{Runner: r, Backend: "nft", Conntrack: true})
	for _, u := range restartState(true) {
		first.OnUpdate(u)
	}
	if err := first.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if err := c.pods["x/a"].Do(func(ns.NetNS) (err error) {
		conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(podAddr("y/a"), 90).String(), 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connecting x/a to y/a:90 under a policy that allows it: %v", err)
	}
	defer func() { _ = conn.Close() }()
	rd := bufio.NewReader(conn)
	if err := roundTrip(conn, rd, "before"); err != nil {
		t.Fatal(err)
	}
	// A new connection from another pod is denied (the policy is enforced).
	if ok, _, _ := c.send("z/a", "y/a", probeLike(90), probeTimeout); ok {
		t.Fatal("z/a reached y/a:90, which the policy denies")
	}

	// kill -9: the first dataplane is gone without cleaning up; a new one starts from nothing.
	first = nil
	second := New(Options{Runner: r, Backend: "nft", Conntrack: true})
	for _, u := range restartState(true) {
		second.OnUpdate(u)
	}
	if err := second.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := second.Writes(); n != 0 {
		t.Errorf("the restarted dataplane's first Apply wrote %d times; it must adopt the current rules", n)
	}
	if err := roundTrip(conn, rd, "after restart"); err != nil {
		t.Fatalf("the established connection did not survive the restart: %v", err)
	}

	// The policy now denies x/a too: the established flow's conntrack entry is deleted, and its next
	// packets meet the new policy.
	for _, u := range restartState(false) {
		second.OnUpdate(u)
	}
	if err := second.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(conn, rd, "after deny"); err == nil {
		t.Error("the established connection still works after a policy denied it (conntrack entry not deleted)")
	}
}

func probeLike(port uint16) policyp.Probe {
	return policyp.Probe{Protocol: 6, DstPort: port}
}
