package calc

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/selector"
)

// Config configures a Calculator.
type Config struct {
	// NodeName is the node whose dataplane state is calculated: its workload and host endpoints are the
	// local ones, its blocks are blackholed, other nodes' blocks are routed towards them.
	NodeName string
	// Logger receives problems (invalid policies, missing profiles) once per change; nil discards.
	Logger *slog.Logger
	// OnProblems, when set, is called after a batch whenever the set of problems changed, with the
	// current problems (for a metric or a status endpoint).
	OnProblems func([]Problem)
}

// Problem is something the calculation could not compile; what it affects fails closed.
type Problem struct {
	// Object names the resource ("GlobalNetworkPolicy \"x\"", "Profile \"kns.y\"").
	Object string
	// Reason says what is wrong and what to do.
	Reason string
}

func (p Problem) String() string { return p.Object + ": " + p.Reason }

// Calculator turns the syncer's stream into one node's dpmodel updates. It is not safe for concurrent
// use; the agent calls it from one goroutine. See the package documentation for the graph.
type Calculator struct {
	cfg Config
	log *slog.Logger

	status datastore.Status

	all    *population // every endpoint and network set, for IP set membership
	local  *population // this node's endpoints, for policy selection
	polIdx *selIndex
	setIdx *selIndex

	profiles    map[string]*profile
	profileKids map[istr]idSet // profile name → entities listing it
	ids         idAllocator
	tiers       map[string]*tier
	policies    map[string]*policy
	policyByID  map[dpmodel.PolicyID]*policy
	setSpecs    map[string]ipsetSpec
	epPolicies  map[string]map[string]struct{} // local entity key → policy keys selecting it
	endpoints   map[string]*localEndpoint
	ipsets      map[string]*ipset

	routes routeInputs

	problems     map[string]Problem
	problemsSent []Problem

	seq sequencer
}

// New returns a Calculator for cfg.NodeName.
func New(cfg Config) *Calculator {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Calculator{
		cfg: cfg, log: log,
		all: newPopulation(), local: newPopulation(),
		profiles: map[string]*profile{}, profileKids: map[istr]idSet{},
		tiers: map[string]*tier{}, policies: map[string]*policy{}, policyByID: map[dpmodel.PolicyID]*policy{}, setSpecs: map[string]ipsetSpec{}, epPolicies: map[string]map[string]struct{}{},
		endpoints: map[string]*localEndpoint{}, ipsets: map[string]*ipset{},
		routes:   newRouteInputs(),
		problems: map[string]Problem{},
		seq:      newSequencer(),
	}
	c.polIdx = newSelIndex(c.local, c.onPolicyMatch)
	c.setIdx = newSelIndex(c.all, c.onIPSetMatch)
	return c
}

// OnStatus records the syncer's status. Updates are calculated whatever the status; the agent decides
// when to start programming (InSync).
func (c *Calculator) OnStatus(s datastore.Status) { c.status = s }

// Status returns the last status given to OnStatus.
func (c *Calculator) Status() datastore.Status { return c.status }

// OnUpdates applies a batch of datastore updates and returns the dpmodel updates that bring the
// dataplane to the new state, in dpmodel's dependency order. It is Apply for each update, then Flush.
func (c *Calculator) OnUpdates(batch []datastore.Update) []dpmodel.Update {
	for _, u := range batch {
		c.Apply(u)
	}
	return c.Flush()
}

// Apply applies one datastore update without emitting anything; Flush emits the accumulated changes.
// Kinds the calculation does not use (and staged policies) are ignored.
func (c *Calculator) Apply(u datastore.Update) {
	del := u.Type == datastore.UpdateDeleted || u.Value == nil
	k := u.Key
	switch k.Kind {
	case api.KindWorkloadEndpoint:
		key := "wep/" + k.Namespace + "/" + k.Name
		if del {
			c.removeEntity(key)
			return
		}
		if w, ok := u.Value.(*api.WorkloadEndpoint); ok {
			c.upsertWorkload(key, w)
		}
	case api.KindHostEndpoint:
		key := "hep/" + k.Name
		if del {
			c.removeEntity(key)
			return
		}
		if h, ok := u.Value.(*api.HostEndpoint); ok {
			c.upsertHost(key, h)
		}
	case api.KindNetworkSet:
		key := "ns/" + k.Namespace + "/" + k.Name
		if del {
			c.removeEntity(key)
			return
		}
		if s, ok := u.Value.(*api.NetworkSet); ok {
			c.upsertNetworkSet(key, kindNetworkSet, s.Namespace, s.Labels, s.Spec.Nets, func() string { return fmt.Sprintf("NetworkSet %s/%s", s.Namespace, s.Name) })
		}
	case api.KindGlobalNetworkSet:
		key := "gns/" + k.Name
		if del {
			c.removeEntity(key)
			return
		}
		if s, ok := u.Value.(*api.GlobalNetworkSet); ok {
			c.upsertNetworkSet(key, kindGlobalNetworkSet, "", s.Labels, s.Spec.Nets, func() string { return fmt.Sprintf("GlobalNetworkSet %q", s.Name) })
		}
	case api.KindProfile:
		if del {
			c.setProfile(k.Name, nil)
			return
		}
		if p, ok := u.Value.(*api.Profile); ok {
			c.setProfile(k.Name, p)
		}
	case api.KindTier:
		if del {
			c.setTier(k.Name, nil)
			return
		}
		if t, ok := u.Value.(*api.Tier); ok {
			c.setTier(k.Name, t)
		}
	case api.KindNetworkPolicy:
		key := "np/" + k.Namespace + "/" + k.Name
		if del {
			c.setPolicy(key, nil)
			return
		}
		if p, ok := u.Value.(*api.NetworkPolicy); ok {
			c.setPolicy(key, newNetworkPolicy(p))
		}
	case api.KindGlobalNetworkPolicy:
		key := "gnp//" + k.Name
		if del {
			c.setPolicy(key, nil)
			return
		}
		if p, ok := u.Value.(*api.GlobalNetworkPolicy); ok {
			c.setPolicy(key, newGlobalNetworkPolicy(p))
		}
	case api.KindIPPool, api.KindNode, api.KindIPAMBlock:
		c.routes.apply(k, del, u.Value)
		c.seq.routesDirty = true
	}
}

// ---- entities ----

// parseNets parses CIDRs or plain addresses; what does not parse is reported by the caller.
func parseNets(ss []string) ([]netip.Prefix, []string) {
	var out []netip.Prefix
	var bad []string
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, s)
	}
	return out, bad
}

func (c *Calculator) upsertWorkload(key string, w *api.WorkloadEndpoint) {
	// Calico's computed labels; the Kubernetes datastore sets them already, etcd writers may not.
	var computed [3]label
	computed[0] = label{intern(api.LabelNamespace), intern(w.Namespace)}
	n := 1
	if w.Spec.Orchestrator != "" {
		computed[n] = label{intern(api.LabelOrchestrator), intern(w.Spec.Orchestrator)}
		n++
	}
	if sa := w.Spec.ServiceAccountName; sa != "" && len(sa) < 63 {
		computed[n] = label{intern(api.LabelServiceAccount), intern(sa)}
		n++
	}
	own := labelsFromMap(w.Labels, computed[:n]...)
	nets, bad := parseNets(w.Spec.IPNetworks)
	c.setEntityProblem(key, func() string { return fmt.Sprintf("WorkloadEndpoint %s/%s", w.Namespace, w.Name) }, badNets("spec.ipNetworks", bad))
	var ports []namedPort
	for _, p := range w.Spec.Ports {
		if n, ok := protoNumber(p.Protocol); ok && p.Name != "" {
			ports = append(ports, namedPort{name: intern(p.Name), proto: n, port: p.Port})
		}
	}
	e := &entity{key: key, kind: kindWorkload, own: own, parents: internAll(w.Spec.Profiles), nets: nets, ports: ports,
		node: intern(w.Spec.Node), local: w.Spec.Node == c.cfg.NodeName}
	var le *localEndpoint
	if e.local {
		// A copy of its own: the decoded object shares memory pages with the rest of the snapshot, which
		// the one endpoint in a hundred that is local would otherwise keep from being returned.
		le = &localEndpoint{key: key, wep: w.DeepCopy()}
	}
	c.upsertEntity(e, le)
}

func (c *Calculator) upsertHost(key string, h *api.HostEndpoint) {
	nets, bad := parseNets(h.Spec.ExpectedIPs)
	c.setEntityProblem(key, func() string { return fmt.Sprintf("HostEndpoint %q", h.Name) }, badNets("spec.expectedIPs", bad))
	var ports []namedPort
	for _, p := range h.Spec.Ports {
		if n, ok := protoNumber(p.Protocol); ok && p.Name != "" {
			ports = append(ports, namedPort{name: intern(p.Name), proto: n, port: p.Port})
		}
	}
	e := &entity{key: key, kind: kindHost, own: labelsFromMap(h.Labels), parents: internAll(h.Spec.Profiles), nets: nets,
		ports: ports, node: intern(h.Spec.Node), local: h.Spec.Node == c.cfg.NodeName}
	var le *localEndpoint
	if e.local {
		le = &localEndpoint{key: key, hep: h.DeepCopy()} // see upsertWorkload
	}
	c.upsertEntity(e, le)
}

func (c *Calculator) upsertNetworkSet(key string, kind entityKind, ns string, lbls map[string]string, nets []string, what func() string) {
	own := labelsFromMap(lbls)
	var parents []istr
	if ns != "" {
		// A namespaced network set is selected like the namespace's endpoints: it carries the namespace
		// label and inherits the namespace's labels.
		own = labelsFromMap(lbls, label{intern(api.LabelNamespace), intern(ns)})
		parents = []istr{intern(api.NamespaceProfileName(ns))}
	}
	ps, bad := parseNets(nets)
	c.setEntityProblem(key, what, badNets("spec.nets", bad))
	c.upsertEntity(&entity{key: key, kind: kind, own: own, parents: parents, nets: ps, node: intern("")}, nil)
}

// profileNames returns the profile names e lists (nil for none).
func (e *entity) profileNames() []string {
	if len(e.parents) == 0 {
		return nil
	}
	out := make([]string, len(e.parents))
	for i, p := range e.parents {
		out[i] = p.Value()
	}
	return out
}

func badNets(field string, bad []string) string {
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %s not a CIDR or address; ignored, fix the resource", field, strings.Join(bad, ", "))
}

// flatten computes the labels selectors see: own labels over the profiles' labels, first profile first.
func (c *Calculator) flatten(e *entity) {
	var l labels
	for i := len(e.parents) - 1; i >= 0; i-- {
		if pr := c.profiles[e.parents[i].Value()]; pr != nil {
			l = l.with(pr.ilabels)
		}
	}
	// With no profile labels the own slice is the flattened one; sharing it is safe, label sets are
	// never written after they are built.
	e.labels = l.with(e.own)
}

func (c *Calculator) upsertEntity(e *entity, le *localEndpoint) {
	c.flatten(e)
	old := c.all.entities[e.key]
	oldIface := ""
	if prev := c.endpoints[e.key]; prev != nil && prev.wep != nil {
		oldIface = prev.wep.Spec.InterfaceName
	}
	if old != nil {
		e.id = old.id
		c.unparent(old)
	} else {
		e.id = c.ids.get()
	}
	for _, p := range e.parents {
		kids := c.profileKids[p]
		kids.add(e.id)
		c.profileKids[p] = kids
	}
	var parents []string
	if e.local {
		parents = e.profileNames()
	}
	c.all.upsert(e, old)
	oldLocal := c.local.entities[e.key]
	switch {
	case e.local:
		if oldLocal == nil {
			c.endpoints[e.key] = le
			c.refProfiles(le, parents)
		} else {
			prev := c.endpoints[e.key]
			le.profiles = prev.profiles
			c.endpoints[e.key] = le
			c.refProfiles(le, parents)
		}
		c.local.upsert(e, oldLocal)
		c.seq.dirtyEndpoint(e.key)
	case oldLocal != nil:
		c.removeLocal(e.key)
	}
	if e.kind == kindWorkload && (old == nil || !slices.Equal(old.nets, e.nets) || old.node != e.node || e.local && oldIface != le.wep.Spec.InterfaceName) {
		c.seq.routesDirty = true
	}
}

func (c *Calculator) unparent(e *entity) {
	for _, p := range e.parents {
		kids := c.profileKids[p]
		kids.remove(e.id)
		if kids.len() == 0 {
			delete(c.profileKids, p)
		} else {
			c.profileKids[p] = kids
		}
	}
}

func (c *Calculator) removeLocal(key string) {
	c.local.remove(key)
	if le := c.endpoints[key]; le != nil {
		c.refProfiles(le, nil)
	}
	delete(c.endpoints, key)
	c.seq.dirtyEndpoint(key)
}

func (c *Calculator) removeEntity(key string) {
	e := c.all.entities[key]
	if e == nil {
		return
	}
	if c.local.entities[key] != nil {
		c.removeLocal(key)
	}
	c.unparent(e)
	c.all.remove(key)
	c.ids.put(e.id)
	if e.kind == kindWorkload {
		c.seq.routesDirty = true
	}
	c.setProblem(key, "", "")
}

// reparentKids re-flattens the labels of every entity that lists profile name (its labels changed): the
// namespace label change case.
func (c *Calculator) reparentKids(name string) {
	kids := c.profileKids[intern(name)]
	for _, old := range c.all.sortedByKey(kids.appendTo(nil)) {
		k := old.key
		e := *old
		c.flatten(&e)
		if slices.Equal(e.labels, old.labels) {
			continue
		}
		c.all.upsert(&e, old)
		if oldLocal := c.local.entities[k]; oldLocal != nil {
			c.local.upsert(&e, oldLocal)
		}
	}
}

// ---- problems ----

// setEntityProblem is setProblem for the entity key (entity keys, "wep/…", "hep/…", "ns/…", "gns/…",
// are distinct from the other problem IDs), describing the object only when there is a problem: every
// entity of the cluster comes through here.
func (c *Calculator) setEntityProblem(key string, object func() string, reason string) {
	if reason == "" {
		if _, ok := c.problems[key]; ok {
			c.setProblem(key, "", "")
		}
		return
	}
	c.setProblem(key, object(), reason)
}

func (c *Calculator) setProblem(id, object, reason string) {
	if reason == "" {
		delete(c.problems, id)
		return
	}
	p := Problem{Object: object, Reason: reason}
	if old, ok := c.problems[id]; ok && old == p {
		return
	}
	c.problems[id] = p
	c.log.Warn("calculation problem; the affected endpoints fail closed", "object", object, "reason", reason)
}

// Problems returns what the calculation could not compile, sorted by object.
func (c *Calculator) Problems() []Problem {
	out := slices.Collect(maps.Values(c.problems))
	slices.SortFunc(out, func(a, b Problem) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// ---- helpers ----

func protoNumber(p api.Protocol) (uint8, bool) {
	if p.IsNumber() {
		return p.Number, true
	}
	switch p.Canonical() {
	case api.ProtocolTCP:
		return 6, true
	case api.ProtocolUDP:
		return 17, true
	case api.ProtocolICMP:
		return 1, true
	case api.ProtocolICMPv6:
		return 58, true
	case api.ProtocolSCTP:
		return 132, true
	case api.ProtocolUDPLite:
		return 136, true
	}
	return 0, false
}

func mustParse(s string) *selector.Selector { return selector.MustParse(s) }
