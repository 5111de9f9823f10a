package calc

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
)

// world holds the resources a test has applied, so that the incremental result can be compared with a
// calculator fed the final resources in one batch.
type world struct {
	t     *testing.T
	node  string
	c     *Calculator
	state *dpmodel.State
	objs  map[datastore.Key]api.Resource
}

func newWorld(t *testing.T, node string) *world {
	t.Helper()
	return &world{t: t, node: node, c: New(Config{NodeName: node}), state: dpmodel.NewState(), objs: map[datastore.Key]api.Resource{}}
}

func keyOf(t *testing.T, obj api.Resource) datastore.Key {
	t.Helper()
	k, err := datastore.KeyOf(obj)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// put applies objects (new or modified) as one batch and checks the output keeps the contract.
func (w *world) put(objs ...api.Resource) []dpmodel.Update {
	w.t.Helper()
	var batch []datastore.Update
	for _, o := range objs {
		k := keyOf(w.t, o)
		typ := datastore.UpdateNew
		if _, ok := w.objs[k]; ok {
			typ = datastore.UpdateModified
		}
		w.objs[k] = o
		batch = append(batch, datastore.Update{Type: typ, Key: k, Value: o})
	}
	return w.batch(batch)
}

func (w *world) del(objs ...api.Resource) []dpmodel.Update {
	w.t.Helper()
	var batch []datastore.Update
	for _, o := range objs {
		k := keyOf(w.t, o)
		delete(w.objs, k)
		batch = append(batch, datastore.Update{Type: datastore.UpdateDeleted, Key: k})
	}
	return w.batch(batch)
}

func (w *world) batch(batch []datastore.Update) []dpmodel.Update {
	w.t.Helper()
	out := w.c.OnUpdates(batch)
	if err := w.state.ApplyAll(out); err != nil {
		w.t.Fatalf("calculation output breaks the dpmodel contract: %v\noutput: %v", err, out)
	}
	return out
}

// checkScratch compares the incremental state with one calculated from scratch (in reverse key order,
// to shake out order dependence).
func (w *world) checkScratch() {
	w.t.Helper()
	fresh := New(Config{NodeName: w.node})
	keys := slices.SortedFunc(maps.Keys(w.objs), func(a, b datastore.Key) int {
		return -compareStr(a.String(), b.String())
	})
	var batch []datastore.Update
	for _, k := range keys {
		batch = append(batch, datastore.Update{Type: datastore.UpdateNew, Key: k, Value: w.objs[k]})
	}
	st := dpmodel.NewState()
	if err := st.ApplyAll(fresh.OnUpdates(batch)); err != nil {
		w.t.Fatalf("from-scratch output breaks the contract: %v", err)
	}
	if d := cmp.Diff(exported(st), exported(w.state), cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); d != "" {
		w.t.Errorf("incremental state differs from the from-scratch state (-scratch +incremental):\n%s", d)
	}
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verdict evaluates one direction for the endpoint owning the address.
func (w *world) verdict(dir dpeval.Direction, src, dst string, proto uint8, port uint16) dpmodel.Action {
	w.t.Helper()
	p := dpeval.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, SrcPort: 40000, DstPort: port}
	r, name := dpeval.Side(w.state, dir, p)
	if name == "" {
		w.t.Fatalf("no local endpoint for %v of %v", dir, p)
	}
	return r.Verdict
}

// ---- resource builders ----

func namespace(name string, labels map[string]string) *api.Profile {
	p := api.NewProfile()
	p.Name = api.NamespaceProfileName(name)
	l := map[string]string{api.LabelPrefixNamespace + api.LabelName: name}
	for k, v := range labels {
		l[api.LabelPrefixNamespace+k] = v
	}
	p.Spec = api.ProfileSpec{Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}}, LabelsToApply: l}
	return p
}

func pod(ns, name, node, ip string, labels map[string]string) *api.WorkloadEndpoint {
	w := api.NewWorkloadEndpoint()
	w.Namespace = ns
	w.Name = api.WorkloadEndpointName(node, "k8s", name, "eth0")
	w.Labels = labels
	w.Spec = api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: node, Pod: name, Endpoint: "eth0",
		InterfaceName: "cali" + name, IPNetworks: []string{ip + "/32"}, Profiles: []string{api.NamespaceProfileName(ns)}}
	return w
}

func gnp(name string, order float64, sel string, mod func(*api.GlobalNetworkPolicySpec)) *api.GlobalNetworkPolicy {
	p := api.NewGlobalNetworkPolicy()
	p.Name = name
	p.Spec = api.GlobalNetworkPolicySpec{Order: &order, Selector: sel}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

func np(ns, name string, sel string, mod func(*api.NetworkPolicySpec)) *api.NetworkPolicy {
	p := api.NewNetworkPolicy()
	p.Namespace, p.Name = ns, name
	p.Spec = api.NetworkPolicySpec{Selector: sel}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

func tierRes(name string, order float64, pass bool) *api.Tier {
	t := api.NewTier()
	t.Name = name
	t.Spec.Order = &order
	if pass {
		a := api.Pass
		t.Spec.DefaultAction = &a
	}
	return t
}

func tcp() *api.Protocol { return api.NewProtocol("TCP") }

func kinds(us []dpmodel.Update) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Kind())
	}
	return out
}

func mustUpdate[T dpmodel.Update](t *testing.T, us []dpmodel.Update) T {
	t.Helper()
	for _, u := range us {
		if v, ok := u.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T in %v", zero, kinds(us))
	return zero
}

var _ = fmt.Sprint

// exported is a state's content without State's bookkeeping, for comparisons.
func exported(s *dpmodel.State) any {
	return []any{s.Config, s.IPSets, s.Policies, s.Profiles, s.Workloads, s.HostEndpoints, s.Routes, s.VTEPs, s.Pools, s.Hosts}
}
