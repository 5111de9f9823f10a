package policy

import (
	"bytes"
	"embed"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	networkingv1 "k8s.io/api/networking/v1"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/platform/dptest/policy/reference"
)

//go:embed cases.yaml
var casesFS embed.FS

// CasesFile is the data file's name, for error messages and -update.
const CasesFile = "cases.yaml"

// Namespaces, pod names and nodes of the model.
var (
	Namespaces = []string{"x", "y", "z"}
	PodNames   = []string{"a", "b", "c"}
	Nodes      = []string{"n1", "n2", "n3"}
	// DefaultProbes are checked when a case lists none.
	DefaultProbes = []string{"tcp/80", "tcp/81", "udp/80", "udp/81"}
)

// Probe is one packet of the matrix.
type Probe struct {
	// Src and Dst are "ns/pod"; SrcNode and DstNode the nodes they run on.
	Src, Dst         string
	SrcNode, DstNode string
	SrcIP, DstIP     netip.Addr
	Protocol         uint8
	SrcPort, DstPort uint16
	ICMPType         uint8
	ICMPCode         uint8
}

// Dataplane is what the suite drives: a cluster of the model's nodes enforcing policy.
type Dataplane interface {
	// Update delivers one step's changes to the cluster's resources, in the syncer's form (the first
	// call carries every resource as UpdateNew).
	Update(t testing.TB, batch []datastore.Update)
	// Allowed reports whether the probe passes egress policy at its source and ingress policy at its
	// destination.
	Allowed(t testing.TB, p Probe) bool
}

// Case is one truth-table case of the data file.
type Case struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description,omitempty"`
	Probes      []string `yaml:"probes,omitempty"`
	Steps       []Step   `yaml:"steps"`
}

// Step is one change and the matrices expected after it.
type Step struct {
	Apply       string                       `yaml:"apply,omitempty"`
	Delete      string                       `yaml:"delete,omitempty"`
	PodLabels   map[string]map[string]string `yaml:"podLabels,omitempty"`
	NSLabels    map[string]map[string]string `yaml:"nsLabels,omitempty"`
	RemovePods  []string                     `yaml:"removePods,omitempty"`
	AddPods     []string                     `yaml:"addPods,omitempty"`
	PodProfiles map[string][]string          `yaml:"podProfiles,omitempty"`
	// Expect maps a probe (or "*" for every probe) to its matrix.
	Expect map[string]string `yaml:"expect"`
}

type file struct {
	Cases []Case `yaml:"cases"`
}

// LoadCases reads the embedded data file.
func LoadCases() ([]Case, error) {
	data, err := casesFS.ReadFile(CasesFile)
	if err != nil {
		return nil, err
	}
	return parseCases(data)
}

func parseCases(data []byte) ([]Case, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", CasesFile, err)
	}
	seen := map[string]bool{}
	for i, c := range f.Cases {
		if c.Name == "" || seen[c.Name] {
			return nil, fmt.Errorf("%s: case %d: name %q is empty or not unique", CasesFile, i+1, c.Name)
		}
		seen[c.Name] = true
		if len(c.Steps) == 0 {
			return nil, fmt.Errorf("%s: case %q has no steps", CasesFile, c.Name)
		}
		for _, p := range c.probes() {
			if _, err := parseProbe(p); err != nil {
				return nil, fmt.Errorf("%s: case %q: %w", CasesFile, c.Name, err)
			}
		}
	}
	return f.Cases, nil
}

func (c *Case) probes() []string {
	if len(c.Probes) > 0 {
		return c.Probes
	}
	return DefaultProbes
}

type probeSpec struct {
	proto    string
	port     int
	icmpType int
	icmpCode int
	protoNum uint8
}

// parseProbe reads "tcp/80", "udp/81", "sctp/80" or "icmp/<type>/<code>".
func parseProbe(s string) (probeSpec, error) {
	parts := strings.Split(s, "/")
	bad := fmt.Errorf("probe %q is not tcp/<port>, udp/<port>, sctp/<port> or icmp/<type>/<code>", s)
	switch {
	case parts[0] == "icmp" && len(parts) == 3:
		t, err1 := strconv.Atoi(parts[1])
		c, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return probeSpec{}, bad
		}
		return probeSpec{proto: "ICMP", icmpType: t, icmpCode: c, protoNum: 1}, nil
	case len(parts) == 2:
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			return probeSpec{}, bad
		}
		switch parts[0] {
		case "tcp":
			return probeSpec{proto: "TCP", port: n, protoNum: 6}, nil
		case "udp":
			return probeSpec{proto: "UDP", port: n, protoNum: 17}, nil
		case "sctp":
			return probeSpec{proto: "SCTP", port: n, protoNum: 132}, nil
		}
	}
	return probeSpec{}, bad
}

// ---- the model ----

type podState struct {
	ns, name string
	labels   map[string]string
	profiles []string
	present  bool
}

func (p *podState) id() string { return p.ns + "/" + p.name }

func podIP(ns, pod string) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(slices.Index(Namespaces, ns) + 1), byte(slices.Index(PodNames, pod) + 1)})
}

func podNode(pod string) string { return Nodes[slices.Index(PodNames, pod)] }

// model is the cluster's resources during a case.
type model struct {
	nsLabels map[string]map[string]string
	pods     []*podState
	objs     map[datastore.Key]api.Resource // Calico resources applied by the case
	k8s      map[string]*networkingv1.NetworkPolicy
	sent     map[datastore.Key]api.Resource // what the dataplane holds
}

func newModel() *model {
	m := &model{nsLabels: map[string]map[string]string{}, objs: map[datastore.Key]api.Resource{},
		k8s: map[string]*networkingv1.NetworkPolicy{}, sent: map[datastore.Key]api.Resource{}}
	for _, ns := range Namespaces {
		m.nsLabels[ns] = map[string]string{"ns": ns}
		for _, p := range PodNames {
			m.pods = append(m.pods, &podState{ns: ns, name: p, labels: map[string]string{"pod": p}, present: true,
				profiles: []string{api.NamespaceProfileName(ns), api.ServiceAccountProfileName(ns, "sa-"+p)}})
		}
	}
	return m
}

func (m *model) pod(id string) (*podState, error) {
	for _, p := range m.pods {
		if p.id() == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no pod %q in the model (use x/a ... z/c)", id)
}

var podPorts = []api.WorkloadEndpointPort{
	{Name: "serve-80-tcp", Protocol: api.ProtocolFromString("TCP"), Port: 80},
	{Name: "serve-81-tcp", Protocol: api.ProtocolFromString("TCP"), Port: 81},
	{Name: "serve-80-udp", Protocol: api.ProtocolFromString("UDP"), Port: 80},
	{Name: "serve-81-udp", Protocol: api.ProtocolFromString("UDP"), Port: 81},
}

// resources renders the model as the datastore holds it (as the Kubernetes datastore presents pods,
// namespaces and service accounts).
func (m *model) resources() map[datastore.Key]api.Resource {
	out := maps.Clone(m.objs)
	add := func(o api.Resource) {
		k, err := datastore.KeyOf(o)
		if err != nil {
			panic(err)
		}
		out[k] = o
	}
	for _, ns := range Namespaces {
		p := api.NewProfile()
		p.Name = api.NamespaceProfileName(ns)
		l := map[string]string{api.LabelPrefixNamespace + api.LabelName: ns}
		for k, v := range m.nsLabels[ns] {
			l[api.LabelPrefixNamespace+k] = v
		}
		p.Spec = api.ProfileSpec{Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}}, LabelsToApply: l}
		add(p)
		for _, pod := range PodNames {
			sa := api.NewProfile()
			sa.Name = api.ServiceAccountProfileName(ns, "sa-"+pod)
			sa.Spec.LabelsToApply = map[string]string{"pcsa.sa": pod, api.LabelPrefixServiceAccount + api.LabelName: "sa-" + pod}
			add(sa)
		}
	}
	for _, p := range m.pods {
		if !p.present {
			continue
		}
		node := podNode(p.name)
		w := api.NewWorkloadEndpoint()
		w.Namespace, w.Name = p.ns, api.WorkloadEndpointName(node, "k8s", p.name, "eth0")
		w.Labels = maps.Clone(p.labels)
		w.Labels[api.LabelNamespace] = p.ns
		w.Labels[api.LabelOrchestrator] = api.OrchestratorKubernetes
		w.Labels[api.LabelServiceAccount] = "sa-" + p.name
		w.Spec = api.WorkloadEndpointSpec{Orchestrator: "k8s", Node: node, Pod: p.name, Endpoint: "eth0",
			ServiceAccountName: "sa-" + p.name, InterfaceName: "cali" + p.ns + p.name,
			IPNetworks: []string{podIP(p.ns, p.name).String() + "/32"}, Profiles: slices.Clone(p.profiles), Ports: podPorts}
		add(w)
	}
	for _, np := range m.k8s {
		conv, _, err := api.ConvertK8sNetworkPolicy(np)
		if err != nil {
			panic(err) // checked when applied
		}
		add(conv)
	}
	return out
}

// step applies one step to the model and returns the syncer updates for the dataplane.
func (m *model) step(s *Step) ([]datastore.Update, error) {
	if s.Apply != "" {
		if err := m.applyDocs(s.Apply, false); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}
	if s.Delete != "" {
		if err := m.applyDocs(s.Delete, true); err != nil {
			return nil, fmt.Errorf("delete: %w", err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.PodLabels)) {
		p, err := m.pod(id)
		if err != nil {
			return nil, fmt.Errorf("podLabels: %w", err)
		}
		p.labels = maps.Clone(s.PodLabels[id])
	}
	for _, ns := range slices.Sorted(maps.Keys(s.NSLabels)) {
		if !slices.Contains(Namespaces, ns) {
			return nil, fmt.Errorf("nsLabels: no namespace %q (use x, y or z)", ns)
		}
		m.nsLabels[ns] = maps.Clone(s.NSLabels[ns])
	}
	for _, id := range s.RemovePods {
		p, err := m.pod(id)
		if err != nil {
			return nil, fmt.Errorf("removePods: %w", err)
		}
		p.present = false
	}
	for _, id := range s.AddPods {
		p, err := m.pod(id)
		if err != nil {
			return nil, fmt.Errorf("addPods: %w", err)
		}
		p.present = true
	}
	for _, id := range slices.Sorted(maps.Keys(s.PodProfiles)) {
		p, err := m.pod(id)
		if err != nil {
			return nil, fmt.Errorf("podProfiles: %w", err)
		}
		p.profiles = slices.Clone(s.PodProfiles[id])
	}
	now := m.resources()
	var batch []datastore.Update
	keys := slices.SortedFunc(maps.Keys(now), func(a, b datastore.Key) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		old, ok := m.sent[k]
		switch {
		case !ok:
			batch = append(batch, datastore.Update{Type: datastore.UpdateNew, Key: k, Value: now[k]})
		case !reflect.DeepEqual(old, now[k]):
			batch = append(batch, datastore.Update{Type: datastore.UpdateModified, Key: k, Value: now[k]})
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(m.sent), func(a, b datastore.Key) int { return strings.Compare(a.String(), b.String()) }) {
		if _, ok := now[k]; !ok {
			batch = append(batch, datastore.Update{Type: datastore.UpdateDeleted, Key: k})
		}
	}
	m.sent = now
	return batch, nil
}

// applyDocs applies or deletes YAML documents: Kubernetes NetworkPolicies (networking.k8s.io/v1) and
// calicoctl resources.
func (m *model) applyDocs(text string, del bool) error {
	for i, doc := range strings.Split(text, "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
		}
		if err := sigyaml.Unmarshal([]byte(doc), &head); err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
		if strings.HasPrefix(head.APIVersion, "networking.k8s.io/") {
			var np networkingv1.NetworkPolicy
			if err := sigyaml.UnmarshalStrict([]byte(doc), &np); err != nil {
				return fmt.Errorf("document %d: %w", i+1, err)
			}
			if np.Namespace == "" {
				return fmt.Errorf("document %d: NetworkPolicy %q needs metadata.namespace", i+1, np.Name)
			}
			if del {
				delete(m.k8s, np.Namespace+"/"+np.Name)
				continue
			}
			if _, _, err := api.ConvertK8sNetworkPolicy(&np); err != nil {
				return fmt.Errorf("document %d: %w", i+1, err)
			}
			m.k8s[np.Namespace+"/"+np.Name] = &np
			continue
		}
		objs, err := api.Decode([]byte(doc), CasesFile)
		if err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
		for _, o := range objs {
			info, err := api.KindOf(o)
			if err != nil {
				return err
			}
			if info.Namespaced && o.GetNamespace() == "" {
				return fmt.Errorf("document %d: %s %q needs metadata.namespace", i+1, info.Kind, o.GetName())
			}
			k, err := datastore.KeyOf(o)
			if err != nil {
				return err
			}
			if del {
				delete(m.objs, k)
				continue
			}
			api.SetDefaults(o)
			m.objs[k] = o
		}
	}
	return nil
}

// reference builds the reference evaluator's view of the model.
func (m *model) reference() *reference.Cluster {
	c := &reference.Cluster{Namespaces: map[string]map[string]string{}, ServiceAccounts: map[string]map[string]string{}}
	for _, ns := range Namespaces {
		c.Namespaces[ns] = maps.Clone(m.nsLabels[ns])
		for _, p := range PodNames {
			c.ServiceAccounts[ns+"/sa-"+p] = map[string]string{"sa": p}
		}
	}
	for _, p := range m.pods {
		if !p.present {
			continue
		}
		rp := &reference.Pod{Namespace: p.ns, Name: p.name, Labels: maps.Clone(p.labels), IP: podIP(p.ns, p.name),
			ServiceAccount: "sa-" + p.name, Profiles: slices.Clone(p.profiles)}
		for _, pt := range podPorts {
			rp.Ports = append(rp.Ports, reference.Port{Name: pt.Name, Protocol: pt.Protocol.String(), Port: int(pt.Port)})
		}
		c.Pods = append(c.Pods, rp)
	}
	keys := slices.SortedFunc(maps.Keys(m.objs), func(a, b datastore.Key) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		switch o := m.objs[k].(type) {
		case *api.Tier:
			c.Tiers = append(c.Tiers, o)
		case *api.NetworkPolicy:
			c.Policies = append(c.Policies, o)
		case *api.GlobalNetworkPolicy:
			c.GlobalPolicies = append(c.GlobalPolicies, o)
		case *api.NetworkSet:
			c.NetworkSets = append(c.NetworkSets, o)
		case *api.GlobalNetworkSet:
			c.GlobalSets = append(c.GlobalSets, o)
		case *api.HostEndpoint:
			c.HostEndpoints = append(c.HostEndpoints, o)
		case *api.Profile:
			c.Profiles = append(c.Profiles, o)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.k8s)) {
		c.K8sPolicies = append(c.K8sPolicies, m.k8s[k])
	}
	return c
}

// allPods lists the model's pods in matrix order.
func allPods() []string {
	var out []string
	for _, ns := range Namespaces {
		for _, p := range PodNames {
			out = append(out, ns+"/"+p)
		}
	}
	return out
}

// matrix renders verdicts: one line per source, one character per destination.
func (m *model) matrix(allowed func(src, dst *podState) bool) string {
	var b strings.Builder
	for _, s := range m.pods {
		b.WriteString(s.id() + " ")
		for _, d := range m.pods {
			switch {
			case !s.present || !d.present:
				b.WriteByte('-')
			case allowed(s, d):
				b.WriteByte('.')
			default:
				b.WriteByte('X')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (m *model) probe(s, d *podState, ps probeSpec) Probe {
	p := Probe{Src: s.id(), Dst: d.id(), SrcNode: podNode(s.name), DstNode: podNode(d.name),
		SrcIP: podIP(s.ns, s.name), DstIP: podIP(d.ns, d.name), Protocol: ps.protoNum, SrcPort: 40000}
	if ps.proto == "ICMP" {
		p.ICMPType, p.ICMPCode = uint8(ps.icmpType), uint8(ps.icmpCode)
	} else {
		p.DstPort = uint16(ps.port)
	}
	return p
}

// expected returns a step's expected matrix for a probe.
func expected(s *Step, probe string) (string, bool) {
	if m, ok := s.Expect[probe]; ok {
		return m, true
	}
	m, ok := s.Expect["*"]
	return m, ok
}

func normalise(m string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(m), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n") + "\n"
}

// Run runs every case against a fresh dataplane made by newDataplane.
func Run(t *testing.T, newDataplane func(t *testing.T) Dataplane) {
	cases, err := LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			dp := newDataplane(t)
			m := newModel()
			for i := range c.Steps {
				s := &c.Steps[i]
				batch, err := m.step(s)
				if err != nil {
					t.Fatalf("%s: case %q step %d: %v", CasesFile, c.Name, i+1, err)
				}
				dp.Update(t, batch)
				for _, probe := range c.probes() {
					want, ok := expected(s, probe)
					if !ok {
						t.Fatalf("%s: case %q step %d: no expected matrix for %s", CasesFile, c.Name, i+1, probe)
					}
					ps, _ := parseProbe(probe)
					got := m.matrix(func(src, dst *podState) bool { return dp.Allowed(t, m.probe(src, dst, ps)) })
					if normalise(got) != normalise(want) {
						t.Errorf("case %q step %d probe %s: matrix (rows from, columns to %s)\ngot:\n%swant:\n%s",
							c.Name, i+1, probe, strings.Join(allPods(), " "), got, normalise(want))
					}
				}
			}
		})
	}
}
