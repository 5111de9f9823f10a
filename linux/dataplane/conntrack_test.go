//go:build linux

package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/iptables"
)

// ctState is a node with three local workloads: e1 (10.1.0.1) and e3 (10.1.0.3, fd00::3) list policy
// web (TCP 80 from the clients set), e2 (10.1.0.2) lists policy other (TCP 80 from the others set);
// e4 (10.1.0.4) uses profile prof. Tweaks edit the updates before they are applied.
func ctState(t testing.TB, tweak func(us []dpmodel.Update)) *dpmodel.State {
	t.Helper()
	web := dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "ns", Name: "web"}
	other := dpmodel.PolicyID{Tier: "default", Kind: "NetworkPolicy", Namespace: "ns", Name: "other"}
	allow80 := func(set string) []dpmodel.Rule {
		return []dpmodel.Rule{{Action: dpmodel.Allow, Protocol: 6, SrcIPSetIDs: []string{set}, DstPorts: []dpmodel.PortRange{{First: 80, Last: 80}}}}
	}
	hosts := func(as ...string) []dpmodel.Member {
		var ms []dpmodel.Member
		for _, a := range as {
			ms = append(ms, dpmodel.HostMember(netip.MustParseAddr(a)))
		}
		return ms
	}
	wep := func(name, v4, v6 string, pol dpmodel.PolicyID) dpmodel.Update {
		e := dpmodel.WorkloadEndpoint{InterfaceName: "cali" + name, IPv4Nets: []netip.Prefix{netip.MustParsePrefix(v4)}}
		if v6 != "" {
			e.IPv6Nets = []netip.Prefix{netip.MustParsePrefix(v6)}
		}
		if pol.Name != "" {
			e.Tiers = []dpmodel.TierInfo{{Name: "default", DefaultAction: dpmodel.Deny, Ingress: []dpmodel.PolicyID{pol}}}
		} else {
			e.ProfileIDs = []string{"prof"}
		}
		return dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Namespace: "ns", Name: name}, Endpoint: e}
	}
	us := []dpmodel.Update{
		dpmodel.ConfigUpdate{Config: dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}}},
		dpmodel.IPSetUpdate{ID: "s:clients", Type: dpmodel.IPSetNet, Members: hosts("10.0.0.1", "10.0.0.2")},
		dpmodel.IPSetUpdate{ID: "s:others", Type: dpmodel.IPSetNet, Members: hosts("10.0.0.1")},
		dpmodel.IPSetUpdate{ID: "s:unused", Type: dpmodel.IPSetNet, Members: hosts("10.0.0.9")},
		dpmodel.ProfileUpdate{ID: "prof", Profile: dpmodel.Profile{Inbound: allow80("s:others")}},
		dpmodel.PolicyUpdate{ID: web, Policy: dpmodel.Policy{Inbound: allow80("s:clients")}},
		dpmodel.PolicyUpdate{ID: other, Policy: dpmodel.Policy{Inbound: allow80("s:others")}},
		wep("e1", "10.1.0.1/32", "", web),
		wep("e2", "10.1.0.2/32", "", other),
		wep("e3", "10.1.0.3/32", "fd00::3/128", web),
		wep("e4", "10.1.0.4/32", "", dpmodel.PolicyID{}),
		dpmodel.RouteUpdate{Dst: netip.MustParsePrefix("10.9.0.0/26"), Route: dpmodel.Route{Type: dpmodel.RouteRemoteBlock, DstNode: "n2", DstNodeIP: netip.MustParseAddr("172.16.0.2")}},
	}
	if tweak != nil {
		tweak(us)
	}
	s := dpmodel.NewState()
	if err := s.ApplyAll(us); err != nil {
		t.Fatal(err)
	}
	return s
}

// ctSetMembers replaces the members of IP set id in us.
func ctSetMembers(id string, addrs ...string) func([]dpmodel.Update) {
	return func(us []dpmodel.Update) {
		for i, u := range us {
			if s, ok := u.(dpmodel.IPSetUpdate); ok && s.ID == id {
				s.Members = nil
				for _, a := range addrs {
					s.Members = append(s.Members, dpmodel.HostMember(netip.MustParseAddr(a)))
				}
				us[i] = s
			}
		}
	}
}

func (l *localAddrs) list() []string {
	var out []string
	for a := range l.hosts {
		out = append(out, a.String())
	}
	for _, p := range l.nets {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// TestAffectedAddrs: only the endpoints whose verdicts a change can alter are judged again.
func TestAffectedAddrs(t *testing.T) {
	tests := []struct {
		name  string
		tweak func([]dpmodel.Update)
		want  []string
	}{
		{"nothing changed", nil, nil},
		{"a route changed", func(us []dpmodel.Update) {
			r := us[len(us)-1].(dpmodel.RouteUpdate)
			r.Route.DstNodeIP = netip.MustParseAddr("172.16.0.3")
			us[len(us)-1] = r
		}, nil},
		{"the set of policy web shrank", ctSetMembers("s:clients", "10.0.0.2"), []string{"10.1.0.1", "10.1.0.3", "fd00::3"}},
		{"the set of policy other and profile prof grew", ctSetMembers("s:others", "10.0.0.1", "10.0.0.5"), []string{"10.1.0.2", "10.1.0.4"}},
		{"a set no rule uses changed", ctSetMembers("s:unused"), nil},
		{"policy other's rules changed", func(us []dpmodel.Update) {
			p := us[6].(dpmodel.PolicyUpdate)
			p.Policy.Inbound = nil
			us[6] = p
		}, []string{"10.1.0.2"}},
		{"profile prof's rules changed", func(us []dpmodel.Update) {
			us[4] = dpmodel.ProfileUpdate{ID: "prof"}
		}, []string{"10.1.0.4"}},
		{"e2 no longer lists a policy", func(us []dpmodel.Update) {
			w := us[8].(dpmodel.WorkloadEndpointUpdate)
			w.Endpoint.Tiers = nil
			us[8] = w
		}, []string{"10.1.0.2"}},
		{"e4 moved to a new address: judged at both", func(us []dpmodel.Update) {
			w := us[10].(dpmodel.WorkloadEndpointUpdate)
			w.Endpoint.IPv4Nets = []netip.Prefix{netip.MustParsePrefix("10.1.0.40/32")}
			us[10] = w
		}, []string{"10.1.0.4", "10.1.0.40"}},
		{"e4 removed", func(us []dpmodel.Update) {
			us[10] = dpmodel.WorkloadEndpointRemove{ID: dpmodel.WorkloadEndpointID{Namespace: "ns", Name: "e4"}}
		}, []string{"10.1.0.4"}},
	}
	prev := ctState(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := affectedAddrs(prev, ctState(t, tt.tweak))
			if d := cmp.Diff(tt.want, got.list()); d != "" {
				t.Errorf("affected addresses (-want +got):\n%s", d)
			}
			if got.empty() != (len(tt.want) == 0) {
				t.Errorf("empty() = %v with %v", got.empty(), got.list())
			}
		})
	}
}

// ctRecorder records the conntrack commands a runner is given. It has no namespace hook, like a
// runner that can only start processes.
type ctRecorder struct {
	r     iptables.Exec
	mu    sync.Mutex
	calls []string
}

func (r *ctRecorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *ctRecorder) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	if name == "conntrack" {
		call := strings.Join(args, " ")
		if len(args) > 0 && args[0] == "-D" {
			call = "-D"
		}
		r.record(call)
	}
	return r.r.Run(ctx, name, args, stdin)
}

// ctNSRecorder also runs Go code in the namespace (as iptables.Exec does), recorded as "netlink".
type ctNSRecorder struct{ *ctRecorder }

func (r ctNSRecorder) InNamespace(f func() error) error {
	r.record("netlink")
	return r.r.InNamespace(f)
}

// insertFlows creates established TCP entries (src, dst, sport, dport 80) in the namespace of r.
func insertFlows(t testing.TB, r iptables.Runner, flows [][2]string, sport func(i int) int) {
	t.Helper()
	var b bytes.Buffer
	for i, f := range flows {
		fmt.Fprintf(&b, "-I -s %s -d %s -p tcp --sport %d --dport 80 --state ESTABLISHED -t 3000\n", f[0], f[1], sport(i))
	}
	if _, err := r.Run(t.Context(), "conntrack", []string{"-R", "/dev/stdin"}, b.Bytes()); err != nil {
		t.Fatalf("creating %d conntrack entries: %v", len(flows), err)
	}
}

// listFlows returns the "src>dst" pairs of the IPv4 conntrack entries in r's namespace.
func listFlows(t testing.TB, r iptables.Runner) []string {
	t.Helper()
	out, err := r.Run(t.Context(), "conntrack", []string{"-L", "-f", "ipv4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f, ok := parseFlow(sc.Text()); ok {
			got = append(got, f.src.String()+">"+f.dst.String())
		}
	}
	slices.Sort(got)
	return got
}

// TestDeleteDeniedFlowsKernel: in a throwaway namespace's real conntrack table, after each change the
// entries of newly denied flows are gone and every other entry stays; conntrack is listed only for the
// families of the affected endpoints' addresses (not at all when no verdict can change), and the
// deletions take one netlink dump per family (one `conntrack -D` each with a runner that cannot run Go
// code in its namespace).
func TestDeleteDeniedFlowsKernel(t *testing.T) {
	flows := [][2]string{
		{"10.0.0.1", "10.1.0.1"}, {"10.0.0.2", "10.1.0.1"}, {"10.0.0.1", "10.1.0.2"},
		{"10.0.0.1", "10.1.0.3"}, {"10.0.0.5", "10.1.0.2"},
	}
	tests := []struct {
		name      string
		prev      func([]dpmodel.Update)
		next      func([]dpmodel.Update)
		noNS      bool
		wantCalls []string
		wantLeft  []string
	}{
		{
			name: "set shrank, endpoints with IPv6", next: ctSetMembers("s:clients", "10.0.0.2"),
			wantCalls: []string{"-L -f ipv4", "netlink", "-L -f ipv6"},
			wantLeft:  []string{"10.0.0.1>10.1.0.2", "10.0.0.2>10.1.0.1", "10.0.0.5>10.1.0.2"},
		},
		{
			name: "policy of an IPv4-only endpoint denies everything: 10.0.0.1's entry deleted, 10.0.0.5's was denied before", next: func(us []dpmodel.Update) {
				p := us[6].(dpmodel.PolicyUpdate)
				p.Policy.Inbound = nil
				us[6] = p
			},
			wantCalls: []string{"-L -f ipv4", "netlink"},
			wantLeft:  []string{"10.0.0.1>10.1.0.1", "10.0.0.1>10.1.0.3", "10.0.0.2>10.1.0.1", "10.0.0.5>10.1.0.2"},
		},
		{
			name: "a runner without a namespace hook: one conntrack -D each", next: ctSetMembers("s:clients", "10.0.0.2"), noNS: true,
			wantCalls: []string{"-L -f ipv4", "-D", "-D", "-L -f ipv6"},
			wantLeft:  []string{"10.0.0.1>10.1.0.2", "10.0.0.2>10.1.0.1", "10.0.0.5>10.1.0.2"},
		},
		{
			name: "only a route changed", next: func(us []dpmodel.Update) {
				r := us[len(us)-1].(dpmodel.RouteUpdate)
				r.Route.DstNodeIP = netip.MustParseAddr("172.16.0.3")
				us[len(us)-1] = r
			},
			wantCalls: nil,
			wantLeft:  []string{"10.0.0.1>10.1.0.1", "10.0.0.1>10.1.0.2", "10.0.0.1>10.1.0.3", "10.0.0.2>10.1.0.1", "10.0.0.5>10.1.0.2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := newNS(t)
			insertFlows(t, r, flows, func(i int) int { return 10000 + i })
			rec := &ctRecorder{r: r}
			var run iptables.Runner = ctNSRecorder{rec}
			if tt.noNS {
				run = rec
			}
			d := New(Options{Runner: run, Conntrack: true})
			if err := d.deleteDeniedFlows(t.Context(), ctState(t, tt.prev), ctState(t, tt.next)); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.wantCalls, rec.calls); d != "" {
				t.Errorf("conntrack commands (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantLeft, listFlows(t, r)); d != "" {
				t.Errorf("entries left (-want +got):\n%s", d)
			}
		})
	}
}

// deleteDeniedFlowsFullScan is the earlier implementation, kept as the benchmark's baseline: after any
// change to policy, profiles, endpoints or IP sets it lists both families' whole tables, judges every
// entry and deletes each denied one with its own `conntrack -D`.
func deleteDeniedFlowsFullScan(ctx context.Context, r iptables.Runner, prev, next *dpmodel.State) (int, error) {
	if reflect.DeepEqual(prev.Policies, next.Policies) && reflect.DeepEqual(prev.Profiles, next.Profiles) &&
		reflect.DeepEqual(prev.Workloads, next.Workloads) && reflect.DeepEqual(prev.HostEndpoints, next.HostEndpoints) &&
		reflect.DeepEqual(prev.IPSets, next.IPSets) {
		return 0, nil
	}
	deleted := 0
	for _, fam := range []string{"ipv4", "ipv6"} {
		out, err := r.Run(ctx, "conntrack", []string{"-L", "-f", fam}, nil)
		if err != nil {
			return deleted, err
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			f, ok := parseFlow(sc.Text())
			if !ok || !deniedNow(prev, next, f) {
				continue
			}
			if _, err := r.Run(ctx, "conntrack", deleteArgs(f), nil); err != nil && !strings.Contains(err.Error(), "0 flow entries") {
				return deleted, err
			}
			deleted++
		}
	}
	return deleted, nil
}

// BenchmarkConntrackDeny: the conntrack step of the Apply after one policy changed to deny, on a node
// with 250 local endpoints × 1,000 policies (benchState, with each policy's first rule allowing TCP 80
// from the 1,000-member cluster set) and 20,000 established flows from cluster members to the local
// endpoints in a throwaway namespace's conntrack table. Policy p0 is first in endpoint w0's list;
// changing it to deny TCP 80 from the cluster set newly denies w0's 80 flows. ours = deleteDeniedFlows
// (only the endpoints listing p0, deletions over netlink); baseline = the earlier full scan
// (deleteDeniedFlowsFullScan). The table is reloaded before each round, outside the timer.
func BenchmarkConntrackDeny(b *testing.B) {
	needRoot(b)
	const local, policies, entries = 250, 1000, 20000
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	var prevUs, nextUs []dpmodel.Update
	for _, u := range benchState(local, policies, 1000) {
		if p, ok := u.(dpmodel.PolicyUpdate); ok {
			in := slices.Clone(p.Policy.Inbound)
			in[0].SrcIPSetIDs = []string{"s:cluster"}
			p.Policy.Inbound = in
			prevUs = append(prevUs, p)
			if p.ID.Name == "p0" {
				p.Policy.Inbound = []dpmodel.Rule{{Action: dpmodel.Deny, Protocol: 6, SrcIPSetIDs: []string{"s:cluster"}}}
			}
			nextUs = append(nextUs, p)
			continue
		}
		prevUs, nextUs = append(prevUs, u), append(nextUs, u)
	}
	prev, next := mustStateOf(b, prevUs), mustStateOf(b, nextUs)
	var table bytes.Buffer
	for i := range entries {
		fmt.Fprintf(&table, "-I -s %s -d %s -p tcp --sport %d --dport 80 --state ESTABLISHED -t 3000\n",
			addr(1<<20+i%1000), addr(1<<22+i%local), 1024+i/local)
	}
	n := cnitest.NewNS(b)
	r := nsExec(n)
	reload := func() {
		if _, err := r.Run(b.Context(), "conntrack", []string{"-F"}, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Run(b.Context(), "conntrack", []string{"-R", "/dev/stdin"}, table.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	count := func() int {
		out, err := r.Run(b.Context(), "conntrack", []string{"-L", "-f", "ipv4"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return bytes.Count(out, []byte("\n"))
	}
	check := func() {
		if got, want := count(), entries-entries/local; got != want {
			b.Fatalf("%d conntrack entries left, want %d (w0's %d deleted)", got, want, entries/local)
		}
	}
	b.Run("ours", func(b *testing.B) {
		d := New(Options{Runner: r, Conntrack: true})
		for b.Loop() {
			b.StopTimer()
			reload()
			b.StartTimer()
			if err := d.deleteDeniedFlows(b.Context(), prev, next); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			check()
			b.StartTimer()
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			reload()
			b.StartTimer()
			if _, err := deleteDeniedFlowsFullScan(b.Context(), r, prev, next); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			check()
			b.StartTimer()
		}
	})
}
