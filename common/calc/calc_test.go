package calc

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
)

const (
	allow = dpmodel.Allow
	deny  = dpmodel.Deny
)

// TestPolicyLifecycle follows a policy through selection, label churn, namespace label changes and
// deletion, checking verdicts, the contract on every batch and that the incremental state always equals
// one calculated from scratch.
func TestPolicyLifecycle(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(namespace("x", map[string]string{"team": "blue"}), namespace("y", nil))
	a := pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "web"})
	b := pod("y", "b", "n2", "10.0.0.2", map[string]string{"app": "db"})
	c := pod("y", "c", "n1", "10.0.0.3", map[string]string{"app": "db"})
	w.put(a, b, c)
	if got := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); got != allow {
		t.Fatalf("no policy: ingress to a = %v, want Allow (namespace profile)", got)
	}
	// Only pods of namespaces labelled team=blue may reach web on 80.
	pol := np("x", "web", "app == 'web'", func(s *api.NetworkPolicySpec) {
		s.Ingress = []api.Rule{{Action: api.Allow, Protocol: tcp(),
			Source:      api.EntityRule{NamespaceSelector: "team == 'blue'"},
			Destination: api.EntityRule{Ports: []api.Port{api.SinglePort(80)}}}}
	})
	out := w.put(pol)
	if diff := cmp.Diff([]string{"IPSetUpdate", "PolicyUpdate", "WorkloadEndpointUpdate"}, kinds(out)); diff != "" {
		t.Errorf("policy add emitted (-want +got):\n%s", diff)
	}
	w.checkScratch()
	if got := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); got != deny {
		t.Errorf("y/b → x/a:80 = %v, want Deny (y is not blue)", got)
	}
	// Namespace y gets the label: its endpoints join the IP set without touching the policy.
	out = w.put(namespace("y", map[string]string{"team": "blue"}))
	if diff := cmp.Diff([]string{"IPSetDelta"}, kinds(out)); diff != "" {
		t.Errorf("namespace relabel emitted (-want +got):\n%s", diff)
	}
	delta := mustUpdate[dpmodel.IPSetDelta](t, out)
	wantAdded := []dpmodel.Member{dpmodel.HostMember(netip.MustParseAddr("10.0.0.2")), dpmodel.HostMember(netip.MustParseAddr("10.0.0.3"))}
	if diff := cmp.Diff(wantAdded, delta.Added, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("IP set delta added (-want +got):\n%s", diff)
	}
	if got := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); got != allow {
		t.Errorf("after relabel y/b → x/a:80 = %v, want Allow", got)
	}
	if got := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 81); got != deny {
		t.Errorf("y/b → x/a:81 = %v, want Deny", got)
	}
	w.checkScratch()
	// a stops being web: the policy is no longer needed on n1, and goes with its IP set, in order.
	a2 := pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "other"})
	out = w.put(a2)
	if diff := cmp.Diff([]string{"WorkloadEndpointUpdate", "PolicyRemove", "IPSetRemove"}, kinds(out)); diff != "" {
		t.Errorf("label change emitted (-want +got):\n%s", diff)
	}
	w.checkScratch()
	w.put(a)
	w.del(pol)
	if len(w.state.Policies) != 0 || len(w.state.IPSets) != 0 {
		t.Errorf("after delete: policies %v, IP sets %v remain", w.state.Policies, w.state.IPSets)
	}
	w.del(c)
	if _, ok := w.state.Workloads[dpmodel.WorkloadEndpointID{Namespace: "y", Name: c.Name}]; ok {
		t.Error("deleted endpoint still in the state")
	}
	w.checkScratch()
}

// TestTierOrder checks Felix's ordering: tiers by order (nil last) then name, policies by order (nil
// last) then name, and that Pass and a tier's default action behave.
func TestTierOrder(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(namespace("x", nil), pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "a"}))
	w.put(tierRes("security", 100, false), tierRes("audit", 100, true), tierRes("last", 0, false))
	w.put(api.NewTier()) // ignored: no name, never selected
	one := func(name, tier string, order *float64, act api.Action) *api.GlobalNetworkPolicy {
		p := gnp(name, 0, "app == 'a'", func(s *api.GlobalNetworkPolicySpec) {
			s.Tier = tier
			s.Ingress = []api.Rule{{Action: act}}
		})
		p.Spec.Order = order
		return p
	}
	o := func(f float64) *float64 { return &f }
	w.put(one("z-first", "security", o(1), api.Pass), one("a-nil", "security", nil, api.Deny),
		one("b-two", "security", o(2), api.Deny), one("aud", "audit", o(1), api.Log), one("def", "default", o(5), api.Allow))
	we := w.state.Workloads[dpmodel.WorkloadEndpointID{Namespace: "x", Name: api.WorkloadEndpointName("n1", "k8s", "a", "eth0")}]
	var got []string
	for _, ti := range we.Tiers {
		var names []string
		for _, id := range ti.Ingress {
			names = append(names, id.Name)
		}
		got = append(got, ti.Name+":"+ti.DefaultAction.String()+":"+strings.Join(names, ","))
	}
	want := []string{"audit:Pass:aud", "security:Deny:z-first,b-two,a-nil", "default:Deny:def"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tiers (-want +got):\n%s", diff)
	}
	// audit logs and passes by default, security's first policy passes, default allows.
	if v := w.verdict(dpeval.Ingress, "10.9.9.9", "10.0.0.1", 6, 80); v != allow {
		t.Errorf("verdict %v, want Allow via Pass and the default tier", v)
	}
	w.put(one("z-first", "security", o(1), api.Log))
	if v := w.verdict(dpeval.Ingress, "10.9.9.9", "10.0.0.1", 6, 80); v != deny {
		t.Errorf("verdict %v, want Deny from security's b-two", v)
	}
	w.checkScratch()
}

// TestInvalidPolicyFailsClosed: a rule that cannot be compiled makes the policy deny for the endpoints it
// selects, is reported, and does not disturb other policies.
func TestInvalidPolicyFailsClosed(t *testing.T) {
	var reported [][]Problem
	w := newWorld(t, "n1")
	w.c.cfg.OnProblems = func(p []Problem) { reported = append(reported, p) }
	w.put(namespace("x", nil), pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "a"}),
		pod("x", "b", "n1", "10.0.0.2", map[string]string{"app": "b"}))
	bad := gnp("bad", 1, "app == 'a'", func(s *api.GlobalNetworkPolicySpec) {
		s.Ingress = []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "app == "}}}
	})
	good := gnp("good", 2, "app == 'b'", func(s *api.GlobalNetworkPolicySpec) {
		s.Ingress = []api.Rule{{Action: api.Allow}}
	})
	w.put(bad, good)
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != deny {
		t.Errorf("endpoint selected by the invalid policy: %v, want Deny", v)
	}
	if v := w.verdict(dpeval.Ingress, "10.0.0.1", "10.0.0.2", 6, 80); v != allow {
		t.Errorf("endpoint of the valid policy: %v, want Allow", v)
	}
	p := w.state.Policies[dpmodel.PolicyID{Tier: "default", Kind: "GlobalNetworkPolicy", Name: "bad"}]
	if !p.Invalid || !strings.Contains(p.Reason, "spec.ingress[0]: source.selector") {
		t.Errorf("invalid policy = %+v, want Invalid with the field in the reason", p)
	}
	probs := w.c.Problems()
	if len(probs) != 1 || !strings.Contains(probs[0].Object, `GlobalNetworkPolicy "bad"`) {
		t.Errorf("Problems() = %v", probs)
	}
	if len(reported) != 1 {
		t.Errorf("OnProblems called %d times, want 1", len(reported))
	}
	w.put(gnp("bad", 1, "app == 'a'", nil))
	if len(w.c.Problems()) != 0 || len(reported) != 2 || len(reported[1]) != 0 {
		t.Errorf("after the fix: problems %v, reported %v", w.c.Problems(), reported)
	}
	// An unparsable policy selector selects nothing, and is reported.
	w.put(gnp("badsel", 1, "app ==", nil))
	if len(w.c.Problems()) != 1 {
		t.Errorf("bad selector not reported: %v", w.c.Problems())
	}
	w.checkScratch()
}

// TestMissingProfile: an endpoint listing a profile that does not exist denies all traffic until it
// appears.
func TestMissingProfile(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(pod("x", "a", "n1", "10.0.0.1", nil))
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != deny {
		t.Errorf("missing profile: %v, want Deny", v)
	}
	if len(w.c.Problems()) != 1 {
		t.Errorf("missing profile not reported: %v", w.c.Problems())
	}
	w.put(namespace("x", nil))
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != allow {
		t.Errorf("profile present: %v, want Allow", v)
	}
	if len(w.c.Problems()) != 0 {
		t.Errorf("problem remains: %v", w.c.Problems())
	}
	w.checkScratch()
}

// TestNamedPortsAndSets: named ports become ip,port sets whose members follow endpoint changes; network
// sets' nets join selector sets; a set shared by two policies is sent once and removed after both.
func TestNamedPortsAndSets(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(namespace("x", nil))
	a := pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "a"})
	a.Spec.Ports = []api.WorkloadEndpointPort{{Name: "http", Protocol: api.ProtocolFromString("TCP"), Port: 8080}}
	b := pod("x", "b", "n2", "10.0.0.2", map[string]string{"app": "b"})
	w.put(a, b)
	ns := api.NewGlobalNetworkSet()
	ns.Name, ns.Labels, ns.Spec.Nets = "ext", map[string]string{"app": "b"}, []string{"192.168.0.0/16"}
	w.put(ns)
	mk := func(name string) *api.GlobalNetworkPolicy {
		return gnp(name, 1, "app == 'a'", func(s *api.GlobalNetworkPolicySpec) {
			s.Ingress = []api.Rule{{Action: api.Allow, Protocol: tcp(), Source: api.EntityRule{Selector: "app == 'b'"},
				Destination: api.EntityRule{Ports: []api.Port{api.NamedPort("http")}}}}
		})
	}
	out := w.put(mk("p1"), mk("p2"))
	sets := 0
	for _, u := range out {
		if _, ok := u.(dpmodel.IPSetUpdate); ok {
			sets++
		}
	}
	if sets != 2 {
		t.Errorf("two policies sharing two sets sent %d IPSetUpdates, want 2: %v", sets, kinds(out))
	}
	for _, tc := range []struct {
		src  string
		port uint16
		want dpmodel.Action
	}{{"10.0.0.2", 8080, allow}, {"192.168.3.4", 8080, allow}, {"10.0.0.2", 80, deny}, {"10.0.0.9", 8080, deny}} {
		if v := w.verdict(dpeval.Ingress, tc.src, "10.0.0.1", 6, tc.port); v != tc.want {
			t.Errorf("%s → a:%d = %v, want %v", tc.src, tc.port, v, tc.want)
		}
	}
	// The named port moves.
	a.Spec.Ports[0].Port = 9090
	w.put(a)
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 9090); v != allow {
		t.Errorf("after port change: %v, want Allow", v)
	}
	w.del(mk("p1"))
	if len(w.state.IPSets) != 2 {
		t.Errorf("sets still referenced by p2 removed: %v", w.state.IPSets)
	}
	w.del(mk("p2"))
	if len(w.state.IPSets) != 0 {
		t.Errorf("unreferenced sets remain: %v", w.state.IPSets)
	}
	w.checkScratch()
}

// TestHostEndpointLists: doNotTrack, preDNAT and applyOnForward policies go to their own lists.
func TestHostEndpointLists(t *testing.T) {
	w := newWorld(t, "n1")
	h := api.NewHostEndpoint()
	h.Name, h.Labels = "n1-eth0", map[string]string{"host": "yes"}
	h.Spec = api.HostEndpointSpec{Node: "n1", InterfaceName: "eth0", ExpectedIPs: []string{"192.168.1.1"}}
	w.put(h)
	mk := func(name string, f func(*api.GlobalNetworkPolicySpec)) *api.GlobalNetworkPolicy {
		return gnp(name, 1, "has(host)", func(s *api.GlobalNetworkPolicySpec) {
			s.Ingress = []api.Rule{{Action: api.Allow}}
			f(s)
		})
	}
	w.put(mk("normal", func(*api.GlobalNetworkPolicySpec) {}), mk("untracked", func(s *api.GlobalNetworkPolicySpec) { s.DoNotTrack = true }),
		mk("prednat", func(s *api.GlobalNetworkPolicySpec) { s.PreDNAT = true }),
		mk("fwd", func(s *api.GlobalNetworkPolicySpec) { s.ApplyOnForward = true }))
	he := w.state.HostEndpoints["n1-eth0"]
	names := func(ts []dpmodel.TierInfo) []string {
		var out []string
		for _, t := range ts {
			for _, id := range t.Ingress {
				out = append(out, id.Name)
			}
		}
		return out
	}
	got := [][]string{names(he.Tiers), names(he.UntrackedTiers), names(he.PreDNATTiers), names(he.ForwardTiers)}
	want := [][]string{{"fwd", "normal"}, {"untracked"}, {"prednat"}, {"fwd"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("host endpoint lists (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("192.168.1.1")}, he.ExpectedIPs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("expected IPs (-want +got):\n%s", diff)
	}
	// Another node's host endpoint is not local.
	h2 := h.DeepCopy()
	h2.Name, h2.Spec.Node = "n2-eth0", "n2"
	w.put(h2)
	if _, ok := w.state.HostEndpoints["n2-eth0"]; ok {
		t.Error("remote host endpoint emitted")
	}
	w.checkScratch()
}

// TestIndexAvoidsRescan checks that an entity update evaluates only candidate selectors.
func TestIndexAvoidsRescan(t *testing.T) {
	pop := newPopulation()
	var events []string
	idx := newSelIndex(pop, func(id string, e *entity, on bool) {
		if on {
			events = append(events, "+"+id+" "+e.key)
		} else {
			events = append(events, "-"+id+" "+e.key)
		}
	})
	for i := range 100 {
		idx.add("s"+string(rune('a'+i%26))+string(rune('a'+i/26)), mustParse("app == 'v"+string(rune('a'+i%26))+string(rune('a'+i/26))+"'"))
	}
	idx.add("any", mustParse("!has(x)"))
	e := &entity{key: "e1", labels: labelsFromMap(map[string]string{"app": "vaa"})}
	pop.upsert(e, nil)
	slices.Sort(events)
	if diff := cmp.Diff([]string{"+any e1", "+saa e1"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	cand := map[string]struct{}{}
	idx.candidates(e.labels, cand)
	if len(cand) != 1 {
		t.Errorf("candidates for one label value: %d selectors, want 1", len(cand))
	}
	events = nil
	e2 := &entity{key: "e1", labels: labelsFromMap(map[string]string{"app": "vab", "x": "1"})}
	pop.upsert(e2, e)
	slices.Sort(events)
	if diff := cmp.Diff([]string{"+sab e1", "-any e1", "-saa e1"}, events); diff != "" {
		t.Errorf("events after relabel (-want +got):\n%s", diff)
	}
}
