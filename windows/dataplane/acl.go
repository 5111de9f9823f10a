package dataplane

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/windows/hcn"
)

// A gap is a rule HNS cannot express exactly. It is rendered so that the endpoint denies more, never
// less: an Allow is narrowed (to nothing when need be), a Deny is widened, a Pass becomes a Deny of
// the widened match, a Log is left out (it never decides).
type gap struct {
	Rule   string // the rule's dpmodel ID
	What   string // what HNS cannot express
	Effect string
}

// Gap kinds, as counted by Status.Gaps.
const (
	gapAllowNarrowed = "allow narrowed"
	gapDenyWidened   = "deny widened"
	gapPassToDeny    = "pass became deny"
	gapLogSkipped    = "log not rendered"
	// gapHostEndpoint counts local host endpoints whose policy is not enforced: the host's own traffic
	// does not cross an HNS endpoint (docs/dataplane-windows.md, "Host endpoints").
	gapHostEndpoint = "host endpoint not enforced"
	// gapHostForward counts local host endpoints with preDNAT or doNotTrack policy: pods' traffic
	// through the host is denied in the directions they have policy for.
	gapHostForward = "host endpoint forward traffic denied"
	// gapHostForwardWidened counts host endpoints of a named interface with applyOnForward policy: it
	// applies to all pods' traffic through the host, not only to that interface's.
	gapHostForwardWidened = "host endpoint forward policy widened"
)

// ruleMatch is a rule's match as cubes: under matches a subset of what the rule matches, over a
// superset; they are equal when the rule is exact (no gaps).
type ruleMatch struct {
	over, under []cube
	gaps        []string
	// except are exact cubes the rule does not match even where over/under do: notProtocol without
	// protocol, negated named ports. HNS cannot negate, but a first-match list can: the flattener
	// first sends the packets of each except cube on to the rule's successors, then adds the rule.
	except []cube
}

func (m ruleMatch) exact() bool { return len(m.gaps) == 0 }

// compiler turns dpmodel rules into cubes and endpoints' tiers into ordered ACLs. One compiler serves
// one Apply; it memoises rule matches.
type compiler struct {
	state   *dpmodel.State
	setRefs bool // SetPolicy IP sets are available
	memo    map[*dpmodel.Rule]ruleMatch
	// maxEntries bounds a direction's flattened rule list (Pass flattening multiplies rules).
	maxEntries int
}

func newCompiler(s *dpmodel.State, setRefs bool, maxEntries int) *compiler {
	return &compiler{state: s, setRefs: setRefs, memo: map[*dpmodel.Rule]ruleMatch{}, maxEntries: maxEntries}
}

func (c *compiler) setMembers(id string) ([]netip.Prefix, bool) {
	s, ok := c.state.IPSets[id]
	if !ok || s.Type != dpmodel.IPSetNet {
		return nil, false
	}
	nets := make([]netip.Prefix, 0, len(s.Members))
	for _, m := range s.Members {
		nets = append(nets, m.Net)
	}
	return v4Only(nets), true
}

// addrCond compiles one side's address matches. ok is false when a referenced set is missing or of the
// wrong type (a calculation bug): the caller then treats the side as inexpressible.
func (c *compiler) addrCond(nets []netip.Prefix, setIDs []string, notNets []netip.Prefix, notSets []string) (addrs, bool) {
	a := anyAddrs
	if len(nets) > 0 {
		a = addrs{nets: v4Only(nets)}
	}
	ok := true
	for _, id := range setIDs {
		ms, found := c.setMembers(id)
		if !found {
			ok = false
			continue
		}
		a = a.intersect(addrs{nets: ms})
	}
	a = a.minus(notNets)
	for _, id := range notSets {
		ms, found := c.setMembers(id)
		if !found {
			ok = false
			continue
		}
		a = a.minus(ms)
	}
	if c.setRefs && len(setIDs) == 1 && len(nets) == 0 && len(notNets) == 0 && len(notSets) == 0 && ok && !a.empty() {
		a.set = setIDs[0]
	}
	return a, ok
}

// portDisjunct is one alternative of a side's port match: a port list, or a named-port group (the
// addresses of the members with this protocol and port).
type portDisjunct struct {
	proto uint8
	addr  addrs
	ports ports
}

func (c *compiler) portDisjuncts(ranges []dpmodel.PortRange, named []string, notRanges []dpmodel.PortRange) ([]portDisjunct, bool) {
	ok := true
	var out []portDisjunct
	if len(ranges) == 0 && len(named) == 0 {
		out = append(out, portDisjunct{addr: anyAddrs, ports: anyPorts})
	}
	if len(ranges) > 0 {
		out = append(out, portDisjunct{addr: anyAddrs, ports: ports{ranges: normRanges(ranges)}})
	}
	for _, id := range named {
		groups, found := c.namedPortGroups(id)
		if !found {
			ok = false
			continue
		}
		out = append(out, groups...)
	}
	for i := range out {
		out[i].ports = out[i].ports.minus(notRanges)
	}
	return out, ok
}

// namedPortGroups returns a named-port IP set's IPv4 members as one alternative per (protocol, port):
// the members' addresses with that port. ok is false when the set is missing or of the wrong type.
func (c *compiler) namedPortGroups(id string) ([]portDisjunct, bool) {
	s, found := c.state.IPSets[id]
	if !found || s.Type != dpmodel.IPSetIPPort {
		return nil, false
	}
	type key struct {
		proto uint8
		port  uint16
	}
	groups := map[key][]netip.Prefix{}
	for _, m := range s.Members {
		if m.Net.Addr().Is4() {
			k := key{m.Protocol, m.Port}
			groups[k] = append(groups[k], m.Net)
		}
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
	})
	out := make([]portDisjunct, 0, len(keys))
	for _, k := range keys {
		out = append(out, portDisjunct{proto: k.proto, addr: addrs{nets: normNets(groups[k])},
			ports: ports{ranges: []dpmodel.PortRange{{First: k.port, Last: k.port}}}})
	}
	return out, true
}

// match compiles a rule's match (IPv4 only: the overlay carries no IPv6).
func (c *compiler) match(r *dpmodel.Rule) ruleMatch {
	if m, ok := c.memo[r]; ok {
		return m
	}
	m := c.compile(r)
	c.memo[r] = m
	return m
}

func (c *compiler) compile(r *dpmodel.Rule) ruleMatch {
	var m ruleMatch
	if r.IPVersion == 6 {
		return m // never matches IPv4: exact
	}
	base := anyCube
	base.proto = r.Protocol
	if r.NotProtocol != 0 {
		if r.Protocol == r.NotProtocol {
			return m
		}
		if r.Protocol == 0 {
			m.except = append(m.except, cube{proto: r.NotProtocol, src: anyAddrs, dst: anyAddrs, srcPorts: anyPorts, dstPorts: anyPorts})
		}
	}
	if r.ICMP != nil {
		m.gaps = append(m.gaps, "ICMP type/code")
	}
	if r.NotICMP != nil {
		m.gaps = append(m.gaps, "notICMP type/code")
	}
	src, ok := c.addrCond(r.SrcNets, r.SrcIPSetIDs, r.NotSrcNets, r.NotSrcIPSetIDs)
	if !ok {
		m.gaps = append(m.gaps, "missing source IP set")
	}
	dst, ok := c.addrCond(r.DstNets, r.DstIPSetIDs, r.NotDstNets, r.NotDstIPSetIDs)
	if !ok {
		m.gaps = append(m.gaps, "missing destination IP set")
	}
	for _, side := range []struct {
		ids  []string
		name string
		src  bool
	}{{r.NotSrcNamedPortIPSetIDs, "source", true}, {r.NotDstNamedPortIPSetIDs, "destination", false}} {
		for _, id := range side.ids {
			groups, ok := c.namedPortGroups(id)
			if !ok {
				m.gaps = append(m.gaps, "missing negated "+side.name+" named-port set")
				continue
			}
			for _, g := range groups {
				if g.proto != 6 && g.proto != 17 {
					// HNS takes ports with TCP and UDP only: this exclusion cannot be expressed.
					m.gaps = append(m.gaps, "negated "+side.name+" named port with protocol "+dpmodel.ProtoName(g.proto))
					continue
				}
				e := cube{proto: g.proto, src: anyAddrs, dst: anyAddrs, srcPorts: anyPorts, dstPorts: anyPorts}
				if side.src {
					e.src, e.srcPorts = g.addr, g.ports
				} else {
					e.dst, e.dstPorts = g.addr, g.ports
				}
				m.except = append(m.except, e)
			}
		}
	}
	sds, ok := c.portDisjuncts(r.SrcPorts, r.SrcNamedPortIPSetIDs, r.NotSrcPorts)
	if !ok {
		m.gaps = append(m.gaps, "missing source named-port set")
	}
	dds, ok := c.portDisjuncts(r.DstPorts, r.DstNamedPortIPSetIDs, r.NotDstPorts)
	if !ok {
		m.gaps = append(m.gaps, "missing destination named-port set")
	}
	ruleExact := len(m.gaps) == 0
	portGap := false
	for _, sd := range sds {
		for _, dd := range dds {
			x := base
			x.src, x.dst = src, dst
			x = x.intersect(cube{proto: sd.proto, src: sd.addr, dst: dd.addr, srcPorts: sd.ports, dstPorts: anyPorts})
			x = x.intersect(cube{proto: dd.proto, src: anyAddrs, dst: anyAddrs, srcPorts: anyPorts, dstPorts: dd.ports})
			if x.empty() {
				continue
			}
			if (!x.srcPorts.any || !x.dstPorts.any) && x.proto != 6 && x.proto != 17 {
				// HNS takes ports with TCP and UDP only.
				portGap = true
				x.srcPorts, x.dstPorts = anyPorts, anyPorts
				m.over = append(m.over, x)
				continue
			}
			m.over = append(m.over, x)
			if ruleExact {
				m.under = append(m.under, x)
			}
		}
	}
	if portGap {
		m.gaps = append(m.gaps, "ports with protocol "+dpmodel.ProtoName(r.Protocol))
	}
	return m
}

// entry is one line of a direction's first-match decision list.
type entry struct {
	c     cube
	allow bool
	rule  string
}

// stage is a tier (or a profile: a stage whose end passes on) flattened to its rules in order.
type stage struct {
	rules       []*dpmodel.Rule
	defaultPass bool
	// gate marks a host endpoint's forward tier placed in front of the pod's stages: there an Allow does
	// not decide but continues at stage allowTo (the next host endpoint's tiers, or the pod's), and a
	// Pass or a Pass default beyond the host endpoint's last tier (last) denies.
	gate, last bool
	allowTo    int
}

var denyAll = &dpmodel.Rule{Action: dpmodel.Deny, ID: "tortie/fail-closed"}

// stages builds the stages of one direction of an endpoint: its tiers that have policies in that
// direction, then each profile; a missing policy or profile (a calculation bug) denies.
func (c *compiler) stages(tiers []dpmodel.TierInfo, profiles []string, ingress bool) []stage {
	var out []stage
	for _, t := range tiers {
		ids := t.Egress
		if ingress {
			ids = t.Ingress
		}
		if len(ids) == 0 {
			continue
		}
		st := stage{defaultPass: t.DefaultAction == dpmodel.Pass}
		for _, id := range ids {
			p, ok := c.state.Policies[id]
			if !ok {
				st.rules = append(st.rules, denyAll)
				continue
			}
			rules := p.Outbound
			if ingress {
				rules = p.Inbound
			}
			for i := range rules {
				st.rules = append(st.rules, &rules[i])
			}
		}
		out = append(out, st)
	}
	for _, id := range profiles {
		p, ok := c.state.Profiles[id]
		st := stage{defaultPass: true}
		if !ok {
			st.rules = append(st.rules, denyAll)
		} else {
			rules := p.Outbound
			if ingress {
				rules = p.Inbound
			}
			for i := range rules {
				st.rules = append(st.rules, &rules[i])
			}
		}
		out = append(out, st)
	}
	return out
}

// errTooManyRules is returned when flattening exceeds the rule budget.
var errTooManyRules = fmt.Errorf("too many ACL rules after flattening Pass rules and tiers")

type flattener struct {
	c      *compiler
	stages []stage
	out    []entry
	gaps   []gap
	over   bool
}

func (f *flattener) add(e entry) {
	if len(f.out) >= f.c.maxEntries {
		f.over = true
		return
	}
	f.out = append(f.out, e)
}

// flatten appends the decision list of the stages from i on, restricted to ctx. The list it appends
// always ends with an entry matching all of ctx, so nothing in ctx falls through it.
func (f *flattener) flatten(i int, ctx cube) { f.flattenFrom(i, 0, ctx) }

// flattenFrom is flatten starting at rule j of stage i.
func (f *flattener) flattenFrom(i, j int, ctx cube) {
	if f.over {
		return
	}
	if i == len(f.stages) {
		f.add(entry{c: ctx, allow: false, rule: "end of profiles"})
		return
	}
	for ; j < len(f.stages[i].rules); j++ {
		r := f.stages[i].rules[j]
		m := f.c.match(r)
		if r.Action == dpmodel.Allow || r.Action == dpmodel.Deny || r.Action == dpmodel.Pass {
			// The packets the rule excludes go on to its successors first; what follows the
			// sub-lists only sees the others. Each sub-list ends covering its cube.
			covered := false
			for _, e := range m.except {
				x := e.intersect(ctx)
				if x.empty() {
					continue
				}
				f.flattenFrom(i, j+1, x)
				if x.equal(ctx) {
					covered = true
					break
				}
			}
			if covered {
				return
			}
		}
		var cubes []cube
		allow := false
		st := f.stages[i]
		action := r.Action
		if st.gate && st.last && action == dpmodel.Pass {
			action = dpmodel.Deny // the host endpoint has no further tier to pass to
		}
		switch {
		case st.gate && action == dpmodel.Allow:
			// Both the host endpoint and the pod must allow: continue with the next stage group.
			if !m.exact() {
				f.gaps = append(f.gaps, gap{r.ID, strings.Join(m.gaps, ", "), gapAllowNarrowed})
			}
			for _, o := range m.under {
				x := o.intersect(ctx)
				if x.empty() {
					continue
				}
				f.flatten(st.allowTo, x)
				if x.equal(ctx) {
					return
				}
			}
			continue
		case action == dpmodel.Allow:
			cubes, allow = m.under, true
			if !m.exact() {
				f.gaps = append(f.gaps, gap{r.ID, strings.Join(m.gaps, ", "), gapAllowNarrowed})
			}
		case action == dpmodel.Deny:
			cubes = m.over
			if !m.exact() {
				f.gaps = append(f.gaps, gap{r.ID, strings.Join(m.gaps, ", "), gapDenyWidened})
			}
		case action == dpmodel.Pass:
			if !m.exact() {
				cubes = m.over
				f.gaps = append(f.gaps, gap{r.ID, strings.Join(m.gaps, ", "), gapPassToDeny})
				break
			}
			for _, o := range m.over {
				x := o.intersect(ctx)
				if x.empty() {
					continue
				}
				f.flatten(i+1, x)
				if x.equal(ctx) {
					return
				}
			}
			continue
		case action == dpmodel.Log:
			f.gaps = append(f.gaps, gap{r.ID, "the Log action", gapLogSkipped})
			continue
		default:
			continue
		}
		for _, o := range cubes {
			x := o.intersect(ctx)
			if x.empty() {
				continue
			}
			f.add(entry{c: x, allow: allow, rule: r.ID})
			if x.equal(ctx) {
				return // the rest is unreachable
			}
		}
	}
	if st := f.stages[i]; st.defaultPass && (!st.gate || !st.last) { // nothing to pass to after a host endpoint's last tier
		f.flatten(i+1, ctx)
		return
	}
	f.add(entry{c: ctx, allow: false, rule: "end of tier"})
}

// setPolicyID is the SetPolicy Id of a dpmodel IP set.
func setPolicyID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "tortie-s-" + hex.EncodeToString(sum[:10])
}

// render turns a decision list into HNS ACLs for one direction. Priorities start at first and grow only
// when the action changes: HNS breaks ties between equal priorities its own way, so only rules with the
// same action (whose order does not matter) share one. Address and port lists are chunked to chunk
// entries; a cube whose lists need several chunks becomes their cartesian product.
func render(entries []entry, direction string, first uint16, chunk int) ([]hcn.ACLSetting, error) {
	var out []hcn.ACLSetting
	prio := uint32(first)
	for i, e := range entries {
		if i > 0 && e.allow != entries[i-1].allow {
			prio++
		}
		if prio > 65000 {
			return nil, fmt.Errorf("%w: the %s rules need more than %d HNS priorities", errTooManyRules, direction, 65000-int(first))
		}
		local, remote := e.c.dst, e.c.src
		localPorts, remotePorts := e.c.dstPorts, e.c.srcPorts
		if direction == hcn.DirectionOut {
			local, remote = e.c.src, e.c.dst
			localPorts, remotePorts = e.c.srcPorts, e.c.dstPorts
		}
		action := hcn.ActionBlock
		if e.allow {
			action = hcn.ActionAllow
		}
		proto := hcn.ProtocolAny
		if e.c.proto != 0 {
			proto = strconv.Itoa(int(e.c.proto))
		}
		for _, la := range addrChunks(local, chunk) {
			for _, ra := range addrChunks(remote, chunk) {
				for _, lp := range portChunks(localPorts, chunk) {
					for _, rp := range portChunks(remotePorts, chunk) {
						out = append(out, hcn.ACLSetting{
							Id:        fmt.Sprintf("tortie-%s-%d", strings.ToLower(direction), len(out)),
							Protocols: proto, Action: action, Direction: direction,
							LocalAddresses: la, RemoteAddresses: ra, LocalPorts: lp, RemotePorts: rp,
							RuleType: hcn.RuleTypeSwitch, Priority: uint16(prio),
						})
					}
				}
			}
		}
	}
	return out, nil
}

func addrChunks(a addrs, chunk int) []string {
	if a.any {
		return []string{""}
	}
	if a.set != "" {
		return []string{setPolicyID(a.set)}
	}
	var out []string
	for c := range slices.Chunk(a.nets, chunk) {
		parts := make([]string, len(c))
		for i, p := range c {
			if p.IsSingleIP() {
				parts[i] = p.Addr().String()
			} else {
				parts[i] = p.String()
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

func portChunks(p ports, chunk int) []string {
	if p.any {
		return []string{""}
	}
	var out []string
	for c := range slices.Chunk(p.ranges, chunk) {
		parts := make([]string, len(c))
		for i, r := range c {
			if r.First == r.Last {
				parts[i] = strconv.Itoa(int(r.First))
			} else {
				parts[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

// referencedSets returns the IP set IDs the entries refer to by SetPolicy.
func referencedSets(entries []entry, into map[string]bool) {
	for _, e := range entries {
		for _, a := range []addrs{e.c.src, e.c.dst} {
			if a.set != "" && !a.any {
				into[a.set] = true
			}
		}
	}
}
