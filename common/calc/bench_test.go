package calc

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/selector"
)

// benchCluster is a synthetic cluster: endpoints spread over nodes with localEPs on the local node n0,
// 100 namespaces with team labels, policies selecting by app with rules referencing role/version
// selectors, namespace selectors and ports.
type benchCluster struct {
	updates []datastore.Update
	weps    []*api.WorkloadEndpoint
}

func newBenchCluster(endpoints, nodes, localEPs, policies int) *benchCluster {
	bc := &benchCluster{}
	add := func(o api.Resource) {
		k, err := datastore.KeyOf(o)
		if err != nil {
			panic(err)
		}
		bc.updates = append(bc.updates, datastore.Update{Type: datastore.UpdateNew, Key: k, Value: o})
	}
	t := api.NewTier()
	t.Name = "security"
	o := 100.0
	t.Spec.Order = &o
	add(t)
	for i := range 100 {
		p := api.NewProfile()
		p.Name = api.NamespaceProfileName(fmt.Sprintf("ns%d", i))
		p.Spec = api.ProfileSpec{Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}},
			LabelsToApply: map[string]string{"pcns.team": fmt.Sprintf("team-%d", i%10), "pcns.projectcalico.org/name": fmt.Sprintf("ns%d", i)}}
		add(p)
	}
	roles := []string{"frontend", "backend", "db"}
	for i := range endpoints {
		node := "n0"
		if i >= localEPs {
			node = fmt.Sprintf("n%d", 1+(i-localEPs)%(nodes-1))
		}
		ns := fmt.Sprintf("ns%d", i%100)
		w := api.NewWorkloadEndpoint()
		w.Namespace, w.Name = ns, api.WorkloadEndpointName(node, "k8s", fmt.Sprintf("pod%d", i), "eth0")
		w.Labels = map[string]string{"app": fmt.Sprintf("app-%d", i%200), "role": roles[i%3], "version": fmt.Sprintf("v%d", i%5),
			api.LabelNamespace: ns, api.LabelOrchestrator: "k8s"}
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		w.Spec = api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: node, Pod: fmt.Sprintf("pod%d", i), Endpoint: "eth0",
			InterfaceName: fmt.Sprintf("cali%d", i), IPNetworks: []string{a.String() + "/32"}, Profiles: []string{api.NamespaceProfileName(ns)},
			Ports: []api.WorkloadEndpointPort{{Name: "http", Protocol: api.ProtocolFromString("TCP"), Port: 8080}}}
		bc.weps = append(bc.weps, w)
		add(w)
	}
	for j := range policies {
		ord := float64(j % 7)
		if j%10 == 0 {
			g := api.NewGlobalNetworkPolicy()
			g.Name = fmt.Sprintf("gnp%d", j)
			g.Spec = api.GlobalNetworkPolicySpec{Tier: "security", Order: &ord, Selector: fmt.Sprintf("role == 'db' && version == 'v%d'", j%5),
				Ingress: []api.Rule{{Action: api.Deny, Source: api.EntityRule{NamespaceSelector: fmt.Sprintf("team == 'team-%d'", j%10)}}, {Action: api.Pass}}}
			add(g)
			continue
		}
		p := api.NewNetworkPolicy()
		p.Namespace, p.Name = fmt.Sprintf("ns%d", j%100), fmt.Sprintf("np%d", j)
		p.Spec = api.NetworkPolicySpec{Order: &ord, Selector: fmt.Sprintf("app == 'app-%d'", j%200),
			Ingress: []api.Rule{{Action: api.Allow, Protocol: api.NewProtocol("TCP"),
				Source:      api.EntityRule{Selector: fmt.Sprintf("role == 'frontend' && version == 'v%d'", j%5)},
				Destination: api.EntityRule{Ports: []api.Port{api.SinglePort(80), api.SinglePort(443), api.NamedPort("http")}}}},
			Egress: []api.Rule{{Action: api.Allow, Destination: api.EntityRule{NamespaceSelector: fmt.Sprintf("team == 'team-%d'", (j+1)%10)}}}}
		add(p)
	}
	return bc
}

var benchSizes = []struct {
	name      string
	endpoints int
	nodes     int
}{{"1k", 1000, 10}, {"10k", 10000, 100}}

// reportCPU adds cpu-ns/op (this process's user+system CPU per iteration): it varies much less than
// wall time when the machine is shared.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkCalcCold: the whole cluster, from nothing to the node's complete dpmodel state.
func BenchmarkCalcCold(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bc := newBenchCluster(sz.endpoints, sz.nodes, 250, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for b.Loop() {
				c := New(Config{NodeName: "n0"})
				if out := c.OnUpdates(bc.updates); len(out) == 0 {
					b.Fatal("no output")
				}
			}
		})
	}
}

// BenchmarkNaiveMatch is the baseline for the cold calculation: the O(selectors × endpoints) matching
// an index avoids — every policy selector against the local endpoints and every rule selector against
// every endpoint — with no output built.
func BenchmarkNaiveMatch(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bc := newBenchCluster(sz.endpoints, sz.nodes, 250, 1000)
			var polSels, ruleSels []*selector.Selector
			for _, u := range bc.updates {
				switch p := u.Value.(type) {
				case *api.NetworkPolicy:
					polSels = append(polSels, selector.MustParse(p.Spec.Selector))
					ruleSels = append(ruleSels, selector.MustParse(p.Spec.Ingress[0].Source.Selector))
				case *api.GlobalNetworkPolicy:
					polSels = append(polSels, selector.MustParse(p.Spec.Selector))
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for b.Loop() {
				n := 0
				for _, s := range polSels {
					for _, w := range bc.weps[:250] {
						if s.Evaluate(w.Labels) {
							n++
						}
					}
				}
				for _, s := range ruleSels {
					for _, w := range bc.weps {
						if s.Evaluate(w.Labels) {
							n++
						}
					}
				}
				if n == 0 {
					b.Fatal("nothing matched")
				}
			}
		})
	}
}

// BenchmarkCalcLabelChange: one endpoint's label changes (alternately a local and a remote endpoint,
// changing policy selection and IP set membership); time to the dpmodel delta. Reports p99.
func BenchmarkCalcLabelChange(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bc := newBenchCluster(sz.endpoints, sz.nodes, 250, 1000)
			c := New(Config{NodeName: "n0"})
			c.OnUpdates(bc.updates)
			targets := []int{3, 251, 17, sz.endpoints - 1, 120, sz.endpoints / 2}
			var durs []time.Duration
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			stopCPU := reportCPU(b)
			for b.Loop() {
				w := bc.weps[targets[i%len(targets)]].DeepCopy()
				if w.Labels["role"] == "frontend" {
					w.Labels["role"] = "backend"
				} else {
					w.Labels["role"] = "frontend"
				}
				bc.weps[targets[i%len(targets)]] = w
				i++
				k, _ := datastore.KeyOf(w)
				start := time.Now()
				out := c.OnUpdates([]datastore.Update{{Type: datastore.UpdateModified, Key: k, Value: w}})
				durs = append(durs, time.Since(start))
				_ = out
			}
			b.StopTimer()
			stopCPU()
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkCalcHeap reports the heap the calculation holds per endpoint (all endpoints of the cluster,
// with 1,000 policies), after a cold start.
func BenchmarkCalcHeap(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bc := newBenchCluster(sz.endpoints, sz.nodes, 250, 1000)
			var perEP float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				c := New(Config{NodeName: "n0"})
				c.OnUpdates(bc.updates)
				runtime.GC()
				runtime.ReadMemStats(&after)
				perEP = float64(after.HeapAlloc-before.HeapAlloc) / float64(sz.endpoints)
				runtime.KeepAlive(c)
			}
			b.ReportMetric(perEP, "heap-B/endpoint")
		})
	}
}
