//go:build linux

package dataplane

import (
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/dpmodel"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// text renders a hostState the way the golden files hold it: tables in write order, hooks, then chains
// by name, then IP sets.
func (h *hostState) text() string {
	var b strings.Builder
	keys := slices.SortedFunc(maps.Keys(h.Tables), func(a, c tableKey) int {
		if a.Family != c.Family {
			return a.Family - c.Family
		}
		return slices.Index([]string{"raw", "mangle", "nat", "filter"}, a.Name) - slices.Index([]string{"raw", "mangle", "nat", "filter"}, c.Name)
	})
	for _, k := range keys {
		t := h.Tables[k]
		fmt.Fprintf(&b, "*%s (IPv%d)\n", k.Name, k.Family)
		for _, c := range slices.Sorted(maps.Keys(t.Hooks)) {
			for _, r := range t.Hooks[c] {
				fmt.Fprintf(&b, "  hook %s %s\n", c, r)
			}
		}
		for _, c := range slices.Sorted(maps.Keys(t.Chains)) {
			fmt.Fprintf(&b, "  :%s\n", c)
			for _, r := range t.Chains[c] {
				fmt.Fprintf(&b, "    %s\n", r)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(h.Sets)) {
		s := h.Sets[n]
		fmt.Fprintf(&b, "ipset %s %s IPv%d: %s\n", n, s.Type, s.Family, strings.Join(s.Members, " "))
	}
	return b.String()
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mustState(t *testing.T, us ...dpmodel.Update) *dpmodel.State {
	t.Helper()
	s := dpmodel.NewState()
	if err := s.ApplyAll(us); err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	polAllow = dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "x", Name: "allow-web"}
	polSec   = dpmodel.PolicyID{Tier: "security", Kind: "GlobalNetworkPolicy", Name: "block-bad"}
	polHost  = dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "host"}
	polFwd   = dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "fwd"}
	polRaw   = dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "raw"}
	polPre   = dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "prednat"}
)

func code(c uint8) *uint8 { return &c }

// goldenStates are representative desired states.
func goldenStates(t *testing.T) map[string]*dpmodel.State {
	cfg := dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, IPv6Enabled: true,
		FailsafeInbound:  []dpmodel.ProtoPort{{Protocol: "tcp", Port: 22}, {Protocol: "udp", Port: 68}},
		FailsafeOutbound: []dpmodel.ProtoPort{{Protocol: "tcp", Port: 2379}, {Protocol: "udp", Port: 53, Net: pfx("10.96.0.0/12")}}}
	workloads := []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: cfg},
		dpmodel.IPSetUpdate{ID: "s:web", Type: dpmodel.IPSetNet, Members: []dpmodel.Member{{Net: pfx("10.0.1.1/32")}, {Net: pfx("fd00::1/128")}, {Net: pfx("192.168.0.0/16")}}},
		dpmodel.IPSetUpdate{ID: "n:http", Type: dpmodel.IPSetIPPort, Members: []dpmodel.Member{{Net: pfx("10.0.1.1/32"), Protocol: 6, Port: 8080}}},
		dpmodel.ProfileUpdate{ID: "kns.x", Profile: dpmodel.Profile{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Allow}}}},
		dpmodel.PolicyUpdate{ID: polSec, Policy: dpmodel.Policy{
			Inbound: []dpmodel.Rule{
				{Action: dpmodel.Log, LogPrefix: "bad"},
				{Action: dpmodel.Deny, SrcNets: []netip.Prefix{pfx("10.9.0.0/16"), pfx("10.8.0.0/16"), pfx("fd09::/64")}},
				{Action: dpmodel.Pass},
			},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Deny, Protocol: 1, ICMP: &dpmodel.ICMPMatch{Type: 8, Code: code(0)}}, {Action: dpmodel.Pass, NotDstNets: []netip.Prefix{pfx("10.0.0.0/8")}}},
		}},
		dpmodel.PolicyUpdate{ID: polAllow, Policy: dpmodel.Policy{
			Inbound: []dpmodel.Rule{
				{Action: dpmodel.Allow, Protocol: 6, SrcIPSetIDs: []string{"s:web"}, DstPorts: []dpmodel.PortRange{{First: 80, Last: 80}, {First: 8000, Last: 8100}}, DstNamedPortIPSetIDs: []string{"n:http"}},
				{Action: dpmodel.Allow, NotProtocol: 17, NotSrcIPSetIDs: []string{"s:web"}, NotDstPorts: []dpmodel.PortRange{{First: 9, Last: 9}}},
				{Action: dpmodel.Allow, IPVersion: 6, Protocol: 58, ICMP: &dpmodel.ICMPMatch{Type: 128}},
			},
			Outbound: []dpmodel.Rule{{Action: dpmodel.Allow, DstNets: []netip.Prefix{pfx("0.0.0.0/0")}}, {Action: dpmodel.Allow, NotICMP: &dpmodel.ICMPMatch{Type: 3}}},
		}},
		dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "x", Name: "n1-k8s-a-eth0"}, Endpoint: dpmodel.WorkloadEndpoint{
			Pod: "a", InterfaceName: "calixa", IPv4Nets: []netip.Prefix{pfx("10.0.1.1/32")}, IPv6Nets: []netip.Prefix{pfx("fd00::1/128")},
			Tiers: []dpmodel.TierInfo{
				{Name: "security", DefaultAction: dpmodel.Pass, Ingress: []dpmodel.PolicyID{polSec}, Egress: []dpmodel.PolicyID{polSec}},
				{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{polAllow}, Egress: []dpmodel.PolicyID{polAllow}},
			},
			ProfileIDs: []string{"kns.x"}, AllowSpoofedSourcePrefixes: []netip.Prefix{pfx("10.99.0.0/24")}}},
		dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "x", Name: "n1-k8s-b-eth0"}, Endpoint: dpmodel.WorkloadEndpoint{
			Pod: "b", InterfaceName: "calixb", IPv4Nets: []netip.Prefix{pfx("10.0.1.2/32")}, ProfileIDs: []string{"kns.x"}}},
		dpmodel.PoolUpdate{CIDR: pfx("10.0.0.0/16"), Pool: dpmodel.Pool{NATOutgoing: true}},
		dpmodel.PoolUpdate{CIDR: pfx("10.1.0.0/16"), Pool: dpmodel.Pool{}},
		dpmodel.PoolUpdate{CIDR: pfx("fd00::/48"), Pool: dpmodel.Pool{NATOutgoing: true}},
	}
	hostCfg := cfg
	hostCfg.IPv6Enabled = false
	hostCfg.DenyAction = "Reject"
	hostCfg.DefaultEndpointToHostAction = "Accept"
	hostCfg.NATOutgoingAddress = netip.MustParseAddr("192.168.0.10")
	allowTCP22 := dpmodel.Policy{Inbound: []dpmodel.Rule{{Action: dpmodel.Allow, Protocol: 6, DstPorts: []dpmodel.PortRange{{First: 22, Last: 22}}}}}
	denyAll := dpmodel.Policy{Inbound: []dpmodel.Rule{{Action: dpmodel.Deny}}, Outbound: []dpmodel.Rule{{Action: dpmodel.Deny}}}
	tier := func(ids ...dpmodel.PolicyID) []dpmodel.TierInfo {
		return []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: ids, Egress: ids}}
	}
	fwd, raw, pre := denyAll, denyAll, allowTCP22
	fwd.ApplyOnForward, raw.Untracked, pre.PreDNAT = true, true, true
	hosts := []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: hostCfg},
		dpmodel.PolicyUpdate{ID: polHost, Policy: allowTCP22},
		dpmodel.PolicyUpdate{ID: polFwd, Policy: fwd},
		dpmodel.PolicyUpdate{ID: polRaw, Policy: raw},
		dpmodel.PolicyUpdate{ID: polPre, Policy: pre},
		dpmodel.HostEndpointUpdate{ID: "eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "eth0", Tiers: tier(polHost),
			ForwardTiers: tier(polFwd), UntrackedTiers: tier(polRaw), PreDNATTiers: []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{polPre}}}}},
		dpmodel.HostEndpointUpdate{ID: "all", Endpoint: dpmodel.HostEndpoint{InterfaceName: "*", Tiers: tier(polHost)}},
		dpmodel.PoolUpdate{CIDR: pfx("10.0.0.0/16"), Pool: dpmodel.Pool{NATOutgoing: true}},
	}
	// Host endpoints with VXLAN and IPIP: the tunnels' packets from and to the other nodes are accepted
	// ahead of host endpoint policy.
	tunCfg := hostCfg
	tunCfg.VXLANEnabled, tunCfg.IPIPEnabled, tunCfg.VXLANPort = true, true, 4790
	tunnels := []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: tunCfg},
		dpmodel.PolicyUpdate{ID: polHost, Policy: denyAll},
		dpmodel.HostEndpointUpdate{ID: "eth0", Endpoint: dpmodel.HostEndpoint{InterfaceName: "eth0", Tiers: tier(polHost)}},
		dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("172.31.0.11/24")}},
		dpmodel.HostUpdate{Node: "n2", Host: dpmodel.Host{IPv4: pfx("172.31.0.12/24"), IPv6: pfx("fd31::12/64")}},
		dpmodel.VTEPUpdate{Node: "n3", VTEP: dpmodel.VTEP{TunnelIPv4: netip.MustParseAddr("10.0.3.0"), MACv4: "66:00:00:00:00:03", ParentIPv4: netip.MustParseAddr("172.31.0.13")}},
	}
	var many []dpmodel.Update
	many = append(many, dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1"}})
	for i := range 40 {
		many = append(many, dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "ns", Name: fmt.Sprint("w", i)},
			Endpoint: dpmodel.WorkloadEndpoint{InterfaceName: fmt.Sprintf("cali%02x", i*7), IPv4Nets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32)}}})
	}
	return map[string]*dpmodel.State{
		"empty":                  mustState(t),
		"workloads":              mustState(t, workloads...),
		"host-endpoints":         mustState(t, hosts...),
		"host-endpoints-tunnels": mustState(t, tunnels...),
		"dispatch-tree":          mustState(t, many...),
	}
}

// TestRenderGolden compares the rendering of representative states with testdata/*.golden (review a
// change with `go test -run TestRenderGolden -update` and git diff).
func TestRenderGolden(t *testing.T) {
	for name, s := range goldenStates(t) {
		t.Run(name, func(t *testing.T) {
			got := render(s).text()
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("rendering differs from %s (-want +got):\n%s", path, d)
			}
			// Rendering is deterministic.
			if again := render(s).text(); again != got {
				t.Errorf("two renderings of the same state differ")
			}
		})
	}
}
