package calc

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
)

// TestAssumeNeededOnEveryNode: the hint makes a policy (and its IP sets) present before any local
// endpoint needs it.
func TestAssumeNeededOnEveryNode(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(namespace("x", nil), pod("x", "b", "n2", "10.0.0.2", map[string]string{"app": "b"}))
	p := gnp("pre", 1, "app == 'a'", func(s *api.GlobalNetworkPolicySpec) {
		s.PerformanceHints = []api.PolicyPerformanceHint{api.PerfHintAssumeNeededOnEveryNode}
		s.Ingress = []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "app == 'b'"}}}
	})
	out := w.put(p)
	if diff := cmp.Diff([]string{"IPSetUpdate", "PolicyUpdate"}, kinds(out)); diff != "" {
		t.Errorf("preloaded policy (-want +got):\n%s", diff)
	}
	// The endpoint arrives: only the endpoint is new.
	out = w.put(pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "a"}))
	if diff := cmp.Diff([]string{"ProfileUpdate", "WorkloadEndpointUpdate", "RouteUpdate"}, kinds(out)); diff != "" {
		t.Errorf("endpoint arrival (-want +got):\n%s", diff)
	}
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != allow {
		t.Errorf("verdict %v", v)
	}
	w.checkScratch()
}

// TestEndpointMovesAndPolicyChangesTier: an endpoint that moves to another node is removed; a policy whose
// tier changes gets a new ID, and the old one goes after the endpoints stop listing it.
func TestEndpointMovesAndPolicyChangesTier(t *testing.T) {
	w := newWorld(t, "n1")
	w.put(namespace("x", nil), tierRes("t", 5, false))
	a := pod("x", "a", "n1", "10.0.0.1", map[string]string{"app": "a"})
	w.put(a)
	p := gnp("p", 1, "app == 'a'", func(s *api.GlobalNetworkPolicySpec) { s.Ingress = []api.Rule{{Action: api.Deny}} })
	w.put(p)
	p2 := p.DeepCopy()
	p2.Spec.Tier = "t"
	out := w.put(p2)
	if diff := cmp.Diff([]string{"PolicyUpdate", "WorkloadEndpointUpdate", "PolicyRemove"}, kinds(out)); diff != "" {
		t.Errorf("tier change (-want +got):\n%s", diff)
	}
	if _, ok := w.state.Policies[dpmodel.PolicyID{Tier: "t", Kind: "GlobalNetworkPolicy", Name: "p"}]; !ok {
		t.Errorf("policy not under its new tier: %v", w.state.Policies)
	}
	moved := a.DeepCopy()
	moved.Spec.Node = "n2"
	out = w.put(moved)
	if len(w.state.Workloads) != 0 || len(w.state.Policies) != 0 || len(w.state.Profiles) != 0 {
		t.Errorf("after the move: %v", kinds(out))
	}
	w.checkScratch()
}

// TestProfileDeletedWhileUsed: deleting a profile an endpoint lists fails closed; re-creating it opens.
func TestProfileDeletedWhileUsed(t *testing.T) {
	w := newWorld(t, "n1")
	ns := namespace("x", map[string]string{"team": "a"})
	w.put(ns, pod("x", "a", "n1", "10.0.0.1", nil))
	w.del(ns)
	if v := w.verdict(dpeval.Egress, "10.0.0.1", "10.9.9.9", 17, 53); v != deny {
		t.Errorf("deleted profile: %v, want Deny", v)
	}
	w.put(ns)
	if v := w.verdict(dpeval.Egress, "10.0.0.1", "10.9.9.9", 17, 53); v != allow {
		t.Errorf("re-created profile: %v, want Allow", v)
	}
	w.checkScratch()
}

// TestServiceAccountSelectorAndLabels: a policy's serviceAccountSelector reads the pcsa. labels of the
// endpoint's service-account profile, and a change to those labels re-evaluates the selection.
func TestServiceAccountSelectorAndLabels(t *testing.T) {
	w := newWorld(t, "n1")
	sa := api.NewProfile()
	sa.Name = api.ServiceAccountProfileName("x", "web")
	sa.Spec.LabelsToApply = map[string]string{"pcsa.role": "web"}
	a := pod("x", "a", "n1", "10.0.0.1", nil)
	a.Spec.ServiceAccountName = "web"
	a.Spec.Profiles = append(a.Spec.Profiles, sa.Name)
	w.put(namespace("x", nil), sa, a)
	w.put(np("x", "p", "", func(s *api.NetworkPolicySpec) {
		s.ServiceAccountSelector = "role == 'web'"
		s.Ingress = []api.Rule{{Action: api.Deny}}
	}))
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != deny {
		t.Errorf("selected by SA labels: %v, want Deny", v)
	}
	sa2 := sa.DeepCopy()
	sa2.Spec.LabelsToApply = map[string]string{"pcsa.role": "db"}
	w.put(sa2)
	if v := w.verdict(dpeval.Ingress, "10.0.0.2", "10.0.0.1", 6, 80); v != allow {
		t.Errorf("after SA relabel: %v, want Allow", v)
	}
	w.checkScratch()
}
