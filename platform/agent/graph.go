package agent

import (
	"log/slog"
	"reflect"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/calc"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
)

// Graph is the agent's calculation: common/calc behind the Calculator seam. common/calc computes
// policy, IP sets, endpoints, routes and VTEPs; Graph adds what depends on the agent's settings — the
// dataplane configuration, whose VXLAN and IPIP switches follow the IP pools unless a setting forces
// them (FELIX_VXLANENABLED, FELIX_IPINIPENABLED) — and reports the calculation's problems.
type Graph struct {
	node     string
	c        *calc.Calculator
	settings config.Agent
	pools    map[string]dpmodel.Pool // by IPPool name, for the encapsulation switches
	lastCfg  *dpmodel.Config
	problems func([]calc.Problem)
}

// GraphKinds are the kinds the calculation reads.
var GraphKinds = []string{
	api.KindFelixConfiguration, api.KindIPPool, api.KindNode, api.KindIPAMBlock,
	api.KindWorkloadEndpoint, api.KindHostEndpoint, api.KindNetworkSet, api.KindGlobalNetworkSet,
	api.KindProfile, api.KindTier, api.KindNetworkPolicy, api.KindGlobalNetworkPolicy,
}

// NewGraph returns the calculation for node. onProblems, when set, is called whenever the set of
// policies or profiles that could not be compiled changes (they fail closed meanwhile).
func NewGraph(node string, log *slog.Logger, onProblems func([]calc.Problem)) *Graph {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Graph{node: node, pools: map[string]dpmodel.Pool{}, problems: onProblems}
	g.c = calc.New(calc.Config{NodeName: node, Logger: log, OnProblems: func(ps []calc.Problem) {
		if g.problems != nil {
			g.problems(ps)
		}
	}})
	return g
}

// Calc returns the underlying calculation (for status and tracing).
func (g *Graph) Calc() *calc.Calculator { return g.c }

// Kinds implements Calculator.
func (g *Graph) Kinds() []datastore.ListOptions {
	out := make([]datastore.ListOptions, 0, len(GraphKinds))
	for _, k := range GraphKinds {
		out = append(out, datastore.ListOptions{Kind: k})
	}
	return out
}

// OnStatus implements Calculator.
func (g *Graph) OnStatus(s datastore.Status) { g.c.OnStatus(s) }

// OnConfig implements Calculator.
func (g *Graph) OnConfig(a config.Agent) []dpmodel.Update {
	g.settings = a
	return g.config(true)
}

// OnUpdates implements Calculator. The configuration goes first when the pools changed it, as
// dpmodel requires the ConfigUpdate to precede what depends on it.
func (g *Graph) OnUpdates(batch []datastore.Update) []dpmodel.Update {
	poolsChanged := false
	for _, u := range batch {
		if u.Key.Kind != api.KindIPPool {
			continue
		}
		poolsChanged = true
		p, ok := u.Value.(*api.IPPool)
		if u.Type == datastore.UpdateDeleted || !ok || p == nil {
			delete(g.pools, u.Key.Name)
			continue
		}
		g.pools[u.Key.Name] = dpmodel.Pool{
			IPIPMode: encapMode(p.Spec.IPIPMode), VXLANMode: encapMode(p.Spec.VXLANMode),
			NATOutgoing: p.Spec.NATOutgoing, Disabled: p.Spec.Disabled,
		}
	}
	out := g.c.OnUpdates(batch)
	if poolsChanged {
		if cfg := g.config(false); len(cfg) > 0 {
			out = append(cfg, out...)
		}
	}
	return out
}

func (g *Graph) config(force bool) []dpmodel.Update {
	var vxlan, ipip bool
	for _, p := range g.pools {
		vxlan = vxlan || (!p.Disabled && p.VXLANMode != dpmodel.EncapNever)
		ipip = ipip || (!p.Disabled && p.IPIPMode != dpmodel.EncapNever)
	}
	cfg := g.settings.Dataplane(g.node, vxlan, ipip)
	if !force && g.lastCfg != nil && reflect.DeepEqual(*g.lastCfg, cfg) {
		return nil
	}
	g.lastCfg = &cfg
	return []dpmodel.Update{dpmodel.ConfigUpdate{Config: cfg}}
}
