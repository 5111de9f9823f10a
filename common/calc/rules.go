package calc

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/selector"
)

// compileRules turns a policy's or profile's rules into dpmodel rules, resolving selectors and named
// ports to IP set IDs. namespace is the policy's namespace ("" for global policies and profiles). It
// returns the IP sets the rules refer to (each set once per reference; the caller refs them) or the first
// rule that cannot be compiled.
func (c *Calculator) compileRules(owner, namespace string, rules []api.Rule, dir string) ([]dpmodel.Rule, []string, error) {
	var out []dpmodel.Rule
	var refs []string
	for i := range rules {
		r, sets, err := c.compileRule(namespace, &rules[i])
		if err != nil {
			field := "ingress"
			if dir == "outbound" {
				field = "egress"
			}
			return nil, nil, fmt.Errorf("spec.%s[%d]: %w", field, i, err)
		}
		r.ID = fmt.Sprintf("%s/%s/%d", owner, dir, i)
		out = append(out, r)
		refs = append(refs, sets...)
	}
	return out, refs, nil
}

// sideSpec is what one EntityRule compiles to.
type sideSpec struct {
	nets, notNets           []netip.Prefix
	sets, notSets           []string
	ports, notPorts         []dpmodel.PortRange
	namedSets, notNamedSets []string
}

func (c *Calculator) compileRule(namespace string, r *api.Rule) (dpmodel.Rule, []string, error) {
	out := dpmodel.Rule{}
	switch r.Action {
	case api.Allow:
		out.Action = dpmodel.Allow
	case api.Deny:
		out.Action = dpmodel.Deny
	case api.Pass:
		out.Action = dpmodel.Pass
	case api.Log:
		out.Action = dpmodel.Log
	default:
		return out, nil, fmt.Errorf("action %q is not Allow, Deny, Pass or Log", r.Action)
	}
	if r.IPVersion != nil {
		if *r.IPVersion != 4 && *r.IPVersion != 6 {
			return out, nil, fmt.Errorf("ipVersion %d is not 4 or 6", *r.IPVersion)
		}
		out.IPVersion = *r.IPVersion
	}
	var proto uint8
	if r.Protocol != nil {
		n, ok := protoNumber(*r.Protocol)
		if !ok {
			return out, nil, fmt.Errorf("protocol %q is unknown", r.Protocol.String())
		}
		proto, out.Protocol = n, n
	}
	if r.NotProtocol != nil {
		n, ok := protoNumber(*r.NotProtocol)
		if !ok {
			return out, nil, fmt.Errorf("notProtocol %q is unknown", r.NotProtocol.String())
		}
		out.NotProtocol = n
	}
	var err error
	if out.ICMP, err = icmpMatch("icmp", r.ICMP); err != nil {
		return out, nil, err
	}
	if out.NotICMP, err = icmpMatch("notICMP", r.NotICMP); err != nil {
		return out, nil, err
	}
	if r.Source.Services != nil || r.Destination.Services != nil {
		return out, nil, fmt.Errorf("services matches are not supported by tortie yet; use selectors")
	}
	src, err := c.compileSide(namespace, &r.Source, proto, "source")
	if err != nil {
		return out, nil, err
	}
	dst, err := c.compileSide(namespace, &r.Destination, proto, "destination")
	if err != nil {
		return out, nil, err
	}
	out.SrcNets, out.NotSrcNets, out.SrcIPSetIDs, out.NotSrcIPSetIDs = src.nets, src.notNets, src.sets, src.notSets
	out.SrcPorts, out.NotSrcPorts, out.SrcNamedPortIPSetIDs, out.NotSrcNamedPortIPSetIDs = src.ports, src.notPorts, src.namedSets, src.notNamedSets
	out.DstNets, out.NotDstNets, out.DstIPSetIDs, out.NotDstIPSetIDs = dst.nets, dst.notNets, dst.sets, dst.notSets
	out.DstPorts, out.NotDstPorts, out.DstNamedPortIPSetIDs, out.NotDstNamedPortIPSetIDs = dst.ports, dst.notPorts, dst.namedSets, dst.notNamedSets
	if r.Metadata != nil && len(r.Metadata.Annotations) > 0 {
		out.Annotations = r.Metadata.Annotations
	}
	return out, out.IPSetRefs(), nil
}

func icmpMatch(field string, f *api.ICMPFields) (*dpmodel.ICMPMatch, error) {
	if f == nil || (f.Type == nil && f.Code == nil) {
		return nil, nil
	}
	if f.Type == nil {
		return nil, fmt.Errorf("%s.code needs %s.type", field, field)
	}
	if *f.Type < 0 || *f.Type > 254 {
		return nil, fmt.Errorf("%s.type %d is not 0-254", field, *f.Type)
	}
	m := &dpmodel.ICMPMatch{Type: uint8(*f.Type)}
	if f.Code != nil {
		if *f.Code < 0 || *f.Code > 255 {
			return nil, fmt.Errorf("%s.code %d is not 0-255", field, *f.Code)
		}
		code := uint8(*f.Code)
		m.Code = &code
	}
	return m, nil
}

// compileSide compiles one EntityRule with Calico's namespace rules: in a namespaced policy a selector,
// notSelector or service-account match without a namespaceSelector is confined to the policy's
// namespace; a namespaceSelector is written against namespace labels (pcns.<key> on endpoints), all()
// there meaning every namespaced endpoint and global() everything not namespaced; service-account names
// and selectors (pcsa.<key>) are AND-ed with the selector.
func (c *Calculator) compileSide(namespace string, e *api.EntityRule, proto uint8, side string) (sideSpec, error) {
	var s sideSpec
	var bad []string
	s.nets, bad = parseNets(e.Nets)
	if len(bad) > 0 {
		return s, fmt.Errorf("%s.nets: %s is not a CIDR", side, strings.Join(bad, ", "))
	}
	s.notNets, bad = parseNets(e.NotNets)
	if len(bad) > 0 {
		return s, fmt.Errorf("%s.notNets: %s is not a CIDR", side, strings.Join(bad, ", "))
	}
	var terms []string
	nsSel, err := prefixed(e.NamespaceSelector, api.LabelPrefixNamespace, selHasNamespace, selNoNamespace)
	if err != nil {
		return s, fmt.Errorf("%s.namespaceSelector: %w", side, err)
	}
	hasSA := e.ServiceAccounts != nil && (len(e.ServiceAccounts.Names) > 0 || e.ServiceAccounts.Selector != "")
	switch {
	case nsSel != "":
		terms = append(terms, nsSel)
	case namespace != "" && (e.Selector != "" || e.NotSelector != "" || hasSA):
		terms = append(terms, nsEquals(namespace))
	}
	if e.Selector != "" {
		if _, err := selector.Parse(e.Selector); err != nil {
			return s, fmt.Errorf("%s.selector: %w", side, err)
		}
		terms = append(terms, e.Selector)
	}
	if hasSA {
		if n := e.ServiceAccounts.Names; len(n) > 0 {
			q := make([]string, len(n))
			for i, v := range n {
				q[i] = quote(v)
			}
			terms = append(terms, api.LabelServiceAccount+" in {"+strings.Join(q, ",")+"}")
		}
		sa, err := prefixed(e.ServiceAccounts.Selector, api.LabelPrefixServiceAccount, nil, nil)
		if err != nil {
			return s, fmt.Errorf("%s.serviceAccounts.selector: %w", side, err)
		}
		terms = append(terms, sa)
	}
	var positive *selector.Selector
	if len(terms) > 0 {
		if positive, err = joinSelectors(terms...); err != nil {
			return s, fmt.Errorf("%s: %w", side, err)
		}
		s.sets = []string{c.netSetID(positive)}
	}
	if e.NotSelector != "" {
		ns, err := selector.Parse(e.NotSelector)
		if err != nil {
			return s, fmt.Errorf("%s.notSelector: %w", side, err)
		}
		s.notSets = []string{c.netSetID(ns)}
	}
	portSel := positive
	if portSel == nil {
		portSel = mustParse("all()")
	}
	var perr error
	s.ports, s.namedSets, perr = c.compilePorts(e.Ports, proto, portSel)
	if perr != nil {
		return s, fmt.Errorf("%s.ports: %w", side, perr)
	}
	s.notPorts, s.notNamedSets, perr = c.compilePorts(e.NotPorts, proto, portSel)
	if perr != nil {
		return s, fmt.Errorf("%s.notPorts: %w", side, perr)
	}
	return s, nil
}

func (c *Calculator) compilePorts(ports []api.Port, proto uint8, sel *selector.Selector) ([]dpmodel.PortRange, []string, error) {
	var ranges []dpmodel.PortRange
	var named []string
	for _, p := range ports {
		if proto != 6 && proto != 17 && proto != 132 {
			return nil, nil, fmt.Errorf("port %s needs protocol TCP, UDP or SCTP", p)
		}
		if p.IsNamed() {
			named = append(named, c.namedSetID(sel, proto, p.PortName))
			continue
		}
		if p.MinPort > p.MaxPort {
			return nil, nil, fmt.Errorf("port range %s has min > max", p)
		}
		ranges = append(ranges, dpmodel.PortRange{First: p.MinPort, Last: p.MaxPort})
	}
	return ranges, slices.Compact(named), nil
}

// IP set IDs: a selector's set is the selector's unique ID (Calico's); a named-port set hashes the
// selector, protocol and port name ("n:" prefix, as Felix does). Each ID's definition is remembered so
// that refIPSet can start the set.
func (c *Calculator) netSetID(s *selector.Selector) string {
	id := s.UniqueID()
	if _, ok := c.setSpecs[id]; !ok {
		c.setSpecs[id] = ipsetSpec{sel: s}
	}
	return id
}

func (c *Calculator) namedSetID(s *selector.Selector, proto uint8, name string) string {
	sum := sha256.Sum224([]byte(fmt.Sprintf("%s\x00%d\x00%s", s.String(), proto, name)))
	id := "n:" + base64.RawURLEncoding.EncodeToString(sum[:])
	if _, ok := c.setSpecs[id]; !ok {
		c.setSpecs[id] = ipsetSpec{sel: s, named: true, proto: proto, port: name}
	}
	return id
}
