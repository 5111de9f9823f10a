package api

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/tortie-net/tortie/common/selector"
)

// Limits checked by Validate.
const (
	MaxRulesPerDirection = 1024
	MaxNetsPerRule       = 256
	MaxPortsPerRule      = 50
	MaxIPCooldownSeconds = 1200
)

// FieldError is one problem with one field.
//
// +kubebuilder:object:generate=false
type FieldError struct {
	// Field is the JSON path of the field, e.g. "spec.ingress[0].protocol".
	Field string
	// Reason says what is wrong and, where it helps, what to write instead.
	Reason string
}

func (e FieldError) String() string { return e.Field + ": " + e.Reason }

// ValidationError lists every problem Validate found in one object.
//
// +kubebuilder:object:generate=false
type ValidationError struct {
	Kind      string
	Namespace string
	Name      string
	Errors    []FieldError
}

// Error reads `IPPool "bad-pool": spec.blockSize: 33 is out of range 20-32 for IPv4`, with further
// problems joined by "; ". A namespaced object is named "<namespace>/<name>".
func (e *ValidationError) Error() string {
	var b strings.Builder
	name := e.Name
	if e.Namespace != "" {
		name = e.Namespace + "/" + name
	}
	fmt.Fprintf(&b, "%s %q: ", e.Kind, name)
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.String())
	}
	return b.String()
}

// Validate checks obj as Calico's validator would: names, CIDRs, ranges, enums, selectors and rules.
// It checks one object on its own; references to other objects (does the tier exist, does the profile
// exist) are the datastore's business. Validate accepts objects before or after SetDefaults: unset
// fields that have defaults are not errors. It returns nil or a *ValidationError.
func Validate(obj Resource) error {
	info, err := KindOf(obj)
	if err != nil {
		return err
	}
	v := &validator{}
	v.meta(obj, info)
	switch o := obj.(type) {
	case *IPPool:
		v.ipPool(&o.Spec)
	case *NetworkPolicy:
		v.policy(policyView{tier: o.Spec.Tier, order: o.Spec.Order, ingress: o.Spec.Ingress, egress: o.Spec.Egress,
			selector: o.Spec.Selector, types: o.Spec.Types, saSelector: o.Spec.ServiceAccountSelector, hints: o.Spec.PerformanceHints})
	case *GlobalNetworkPolicy:
		v.policy(policyView{tier: o.Spec.Tier, order: o.Spec.Order, ingress: o.Spec.Ingress, egress: o.Spec.Egress,
			selector: o.Spec.Selector, types: o.Spec.Types, saSelector: o.Spec.ServiceAccountSelector, hints: o.Spec.PerformanceHints,
			global: true, nsSelector: o.Spec.NamespaceSelector, doNotTrack: o.Spec.DoNotTrack, preDNAT: o.Spec.PreDNAT,
			applyOnForward: o.Spec.ApplyOnForward})
	case *Tier:
		v.order("spec.order", o.Spec.Order)
		if a := o.Spec.DefaultAction; a != nil && *a != Deny && *a != Pass {
			v.add("spec.defaultAction", "%q is not one of Deny, Pass", *a)
		}
	case *NetworkSet:
		v.nets("spec.nets", o.Spec.Nets, 0, 0)
	case *GlobalNetworkSet:
		v.nets("spec.nets", o.Spec.Nets, 0, 0)
	case *HostEndpoint:
		v.hostEndpoint(&o.Spec)
	case *StagedNetworkPolicy:
		v.policy(policyView{tier: o.Spec.Tier, order: o.Spec.Order, ingress: o.Spec.Ingress, egress: o.Spec.Egress,
			selector: o.Spec.Selector, types: o.Spec.Types, saSelector: o.Spec.ServiceAccountSelector, hints: o.Spec.PerformanceHints})
	case *StagedGlobalNetworkPolicy:
		v.policy(policyView{tier: o.Spec.Tier, order: o.Spec.Order, ingress: o.Spec.Ingress, egress: o.Spec.Egress,
			selector: o.Spec.Selector, types: o.Spec.Types, saSelector: o.Spec.ServiceAccountSelector, hints: o.Spec.PerformanceHints,
			global: true, nsSelector: o.Spec.NamespaceSelector, doNotTrack: o.Spec.DoNotTrack, preDNAT: o.Spec.PreDNAT,
			applyOnForward: o.Spec.ApplyOnForward})
	case *Profile:
		v.rules("spec.ingress", o.Spec.Ingress)
		v.rules("spec.egress", o.Spec.Egress)
		v.labels("spec.labelsToApply", o.Spec.LabelsToApply)
	case *BGPPeer:
		v.bgpPeer(&o.Spec)
	case *BGPConfiguration:
		v.bgpConfiguration(&o.Spec)
	case *FelixConfiguration:
		v.felix(&o.Spec)
	case *Node:
		v.node(&o.Spec)
	case *WorkloadEndpoint:
		v.workloadEndpoint(&o.Spec)
		v.workloadEndpointName(o)
	case *IPAMBlock:
		v.ipamBlock(&o.Spec)
	case *BlockAffinity:
		v.blockAffinity(&o.Spec)
	case *IPAMHandle:
		if o.Spec.HandleID == "" {
			v.add("spec.handleID", "must be set")
		}
	case *IPAMConfig:
		v.ipamConfig(o)
	case *IPReservation:
		v.reservedCIDRs(o.Spec.ReservedCIDRs)
	case *KubeControllersConfiguration:
		v.enabledDisabled("spec.healthChecks", o.Spec.HealthChecks)
		if n := o.Spec.Controllers.Node; n != nil {
			v.enabledDisabled("spec.controllers.node.syncLabels", n.SyncLabels)
			if n.HostEndpoint != nil {
				v.enabledDisabled("spec.controllers.node.hostEndpoint.autoCreate", n.HostEndpoint.AutoCreate)
			}
		}
		v.portNumber("spec.prometheusMetricsPort", o.Spec.PrometheusMetricsPort, 0)
	}
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Kind: info.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Errors: v.errs}
}

type validator struct{ errs []FieldError }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// --- metadata ---

const nameRule = "must consist of lower-case letters, digits, '-' and '.', start and end with a letter or digit, and be at most 253 characters"

func (v *validator) meta(obj Resource, info KindInfo) {
	name := obj.GetName()
	switch {
	case name == "":
		v.add("metadata.name", "must be set")
	case len(content.IsDNS1123Subdomain(name)) > 0:
		v.add("metadata.name", "%q is not a valid name: %s", name, nameRule)
	}
	if ns := obj.GetNamespace(); ns != "" {
		if !info.Namespaced {
			v.add("metadata.namespace", "must be empty: %s is not namespaced", info.Kind)
		} else if len(content.IsDNS1123Label(ns)) > 0 {
			v.add("metadata.namespace", "%q is not a valid namespace: must consist of lower-case letters, digits and '-', start and end with a letter or digit, and be at most 63 characters", ns)
		}
	}
	v.labels("metadata.labels", obj.GetLabels())
	for _, k := range sortedKeys(obj.GetAnnotations()) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			v.add("metadata.annotations", "key %q is invalid: %s", k, strings.Join(msgs, "; "))
		}
	}
}

func (v *validator) labels(field string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			v.add(field, "key %q is invalid: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := content.IsLabelValue(labels[k]); len(msgs) > 0 {
			v.add(field+"["+k+"]", "value %q is invalid: %s", labels[k], strings.Join(msgs, "; "))
		}
	}
}

// --- shared field checks ---

func (v *validator) selector(field, s string) {
	if s == "" {
		return
	}
	if _, err := selector.Parse(s); err != nil {
		var pe *selector.ParseError
		if errors.As(err, &pe) {
			v.add(field, "%q is not a valid selector: at position %d: %s", s, pe.Pos, pe.Msg)
		} else {
			v.add(field, "%q is not a valid selector: %v", s, err)
		}
	}
}

func (v *validator) order(field string, o *float64) {
	if o != nil && (math.IsNaN(*o) || math.IsInf(*o, 0)) {
		v.add(field, "must be a finite number")
	}
}

func (v *validator) enabledDisabled(field, s string) {
	if s != "" && s != "Enabled" && s != "Disabled" {
		v.add(field, "%q is not one of Enabled, Disabled", s)
	}
}

func (v *validator) portNumber(field string, p *int, lo int) {
	if p != nil && (*p < lo || *p > 65535) {
		v.add(field, "%d is out of range %d-65535", *p, lo)
	}
}

// parseNet accepts a CIDR or a plain address (taken as a /32 or /128), as Calico does in rules and sets.
func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// nets checks a list of CIDRs or addresses; max 0 means no limit, ipVersion 0 means either family.
func (v *validator) nets(field string, nets []string, max, ipVersion int) {
	if max > 0 && len(nets) > max {
		v.add(field, "has %d entries, at most %d are allowed", len(nets), max)
	}
	for i, n := range nets {
		f := fmt.Sprintf("%s[%d]", field, i)
		p, err := parseNet(n)
		if err != nil {
			v.add(f, "%q is not a valid CIDR or IP address", n)
			continue
		}
		if ipVersion == 4 && !p.Addr().Is4() {
			v.add(f, "%q is IPv6 but the rule's ipVersion is 4", n)
		}
		if ipVersion == 6 && p.Addr().Is4() {
			v.add(f, "%q is IPv4 but the rule's ipVersion is 6", n)
		}
	}
}

// strictCIDR parses a CIDR that must be in network form (no host bits), e.g. a pool or a block.
func (v *validator) strictCIDR(field, s string) (netip.Prefix, bool) {
	if s == "" {
		v.add(field, "must be set")
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.add(field, "%q is not a valid CIDR", s)
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		v.add(field, "%q has host bits set; use %q", s, m.String())
		return m, false
	}
	return p, true
}

func (v *validator) ip(field, s string, version int) {
	if s == "" {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		v.add(field, "%q is not a valid IP address", s)
		return
	}
	if version == 4 && !a.Is4() {
		v.add(field, "%q is not an IPv4 address", s)
	}
	if version == 6 && !a.Is6() {
		v.add(field, "%q is not an IPv6 address", s)
	}
}

// ipOrCIDR accepts "10.0.0.5" or "10.0.0.5/24" (host bits allowed: it names an interface address).
func (v *validator) ipOrCIDR(field, s string, version int) {
	if s == "" {
		return
	}
	var a netip.Addr
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			v.add(field, "%q is not a valid IP address or CIDR", s)
			return
		}
		a = p.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			v.add(field, "%q is not a valid IP address or CIDR", s)
			return
		}
	}
	if version == 4 && !a.Is4() {
		v.add(field, "%q is not an IPv4 address", s)
	}
	if version == 6 && !a.Is6() {
		v.add(field, "%q is not an IPv6 address", s)
	}
}

func (v *validator) mac(field, s string) {
	if s == "" {
		return
	}
	if _, err := net.ParseMAC(s); err != nil {
		v.add(field, "%q is not a valid MAC address", s)
	}
}

func (v *validator) asNumber(field string, a *ASNumber) {
	if a != nil && *a == 0 {
		v.add(field, "0 is out of range 1-4294967295")
	}
}

const portNameRule = "must be at most 15 lower-case letters, digits and '-', contain a letter, and not begin or end with '-' or contain '--'"

func (v *validator) portName(field, name string) {
	if len(k8svalidation.IsValidPortName(name)) > 0 {
		v.add(field, "%q is not a valid port name: %s", name, portNameRule)
	}
}

// protocol checks a protocol name or number.
func (v *validator) protocol(field string, p *Protocol) {
	if p == nil {
		return
	}
	if p.IsZero() {
		v.add(field, "protocol number 0 is out of range 1-255")
		return
	}
	if p.Name == "" {
		return
	}
	for _, n := range ProtocolNames {
		if p.Name == n || p.Name == strings.ToLower(n) {
			return
		}
	}
	v.add(field, "%q is not a protocol; use one of %s or a number 1-255", p.Name, strings.Join(ProtocolNames, ", "))
}

// --- policy ---

type policyView struct {
	tier                                        string
	order                                       *float64
	ingress, egress                             []Rule
	selector, saSelector, nsSelector            string
	types                                       []PolicyType
	hints                                       []PolicyPerformanceHint
	global, doNotTrack, preDNAT, applyOnForward bool
}

func (v *validator) policy(p policyView) {
	if p.tier != "" && len(content.IsDNS1123Label(p.tier)) > 0 {
		v.add("spec.tier", "%q is not a valid tier name: must consist of lower-case letters, digits and '-', start and end with a letter or digit, and be at most 63 characters", p.tier)
	}
	v.order("spec.order", p.order)
	v.selector("spec.selector", p.selector)
	v.selector("spec.serviceAccountSelector", p.saSelector)
	v.selector("spec.namespaceSelector", p.nsSelector)
	hasType := map[PolicyType]bool{}
	for i, t := range p.types {
		f := fmt.Sprintf("spec.types[%d]", i)
		switch {
		case t != PolicyTypeIngress && t != PolicyTypeEgress:
			v.add(f, "%q is not one of Ingress, Egress", t)
		case hasType[t]:
			v.add(f, "%q is listed twice", t)
		}
		hasType[t] = true
	}
	// Rules of a direction that types leaves out are accepted and never enforced, as Calico does (its
	// validator has no such check; Felix renders only the listed directions): docs/compatibility.md.
	for i, h := range p.hints {
		if h != PerfHintAssumeNeededOnEveryNode {
			v.add(fmt.Sprintf("spec.performanceHints[%d]", i), "%q is not one of %s", h, PerfHintAssumeNeededOnEveryNode)
		}
	}
	if p.doNotTrack && p.preDNAT {
		v.add("spec.preDNAT", "preDNAT and doNotTrack cannot both be true")
	}
	if (p.doNotTrack || p.preDNAT) && !p.applyOnForward {
		v.add("spec.applyOnForward", "must be true when preDNAT or doNotTrack is true")
	}
	if p.preDNAT && (len(p.egress) > 0 || hasType[PolicyTypeEgress]) {
		v.add("spec.preDNAT", "a preDNAT policy applies to ingress only; remove its egress rules and the Egress type")
	}
	v.rules("spec.ingress", p.ingress)
	v.rules("spec.egress", p.egress)
}

func (v *validator) rules(field string, rules []Rule) {
	if len(rules) > MaxRulesPerDirection {
		v.add(field, "has %d rules, at most %d are allowed", len(rules), MaxRulesPerDirection)
	}
	for i := range rules {
		v.rule(fmt.Sprintf("%s[%d]", field, i), &rules[i])
	}
}

func (v *validator) rule(field string, r *Rule) {
	switch r.Action {
	case "":
		v.add(field+".action", "must be set to one of Allow, Deny, Log, Pass")
	case Allow, Deny, Log, Pass:
	default:
		v.add(field+".action", "%q is not one of Allow, Deny, Log, Pass", r.Action)
	}
	ipVersion := 0
	if r.IPVersion != nil {
		ipVersion = *r.IPVersion
		if ipVersion != 4 && ipVersion != 6 {
			v.add(field+".ipVersion", "%d is not 4 or 6", ipVersion)
			ipVersion = 0
		}
	}
	v.protocol(field+".protocol", r.Protocol)
	v.protocol(field+".notProtocol", r.NotProtocol)
	v.icmp(field+".icmp", r.ICMP, r.Protocol, ipVersion)
	v.icmp(field+".notICMP", r.NotICMP, r.Protocol, ipVersion)
	v.entity(field+".source", &r.Source, r.Protocol, ipVersion)
	v.entity(field+".destination", &r.Destination, r.Protocol, ipVersion)
	v.ruleNetFamilies(field, r)
}

// ruleNetFamilies refuses what Calico refuses in a rule's nets: IPv4 and IPv6 CIDRs mixed across
// source and destination nets and notNets (a packet has one family, so such a rule is inconsistent),
// and a catch-all CIDR in notNets (it matches no traffic).
func (v *validator) ruleNetFamilies(field string, r *Rule) {
	var seen4, seen6 bool
	for _, f := range []struct {
		name    string
		nets    []string
		negated bool
	}{
		{field + ".source.nets", r.Source.Nets, false}, {field + ".source.notNets", r.Source.NotNets, true},
		{field + ".destination.nets", r.Destination.Nets, false}, {field + ".destination.notNets", r.Destination.NotNets, true},
	} {
		var v4, v6 bool
		for i, n := range f.nets {
			p, err := parseNet(n)
			if err != nil {
				continue // reported by nets
			}
			v4 = v4 || p.Addr().Is4()
			v6 = v6 || !p.Addr().Is4()
			if f.negated && p.Bits() == 0 {
				v.add(fmt.Sprintf("%s[%d]", f.name, i), "%q is a catch-all CIDR: negated, it matches no traffic", n)
			}
		}
		if v4 && v6 || v4 && seen6 || v6 && seen4 {
			v.add(f.name, "rule contains both IPv4 and IPv6 CIDRs; write one rule per IP version")
		}
		seen4, seen6 = seen4 || v4, seen6 || v6
	}
}

// reservedCIDRs checks IPReservation entries: each must be a CIDR, as Calico's CRD schema requires
// (format cidr); a single address is written with /32 or /128.
func (v *validator) reservedCIDRs(cidrs []string) {
	for i, n := range cidrs {
		f := fmt.Sprintf("spec.reservedCIDRs[%d]", i)
		if !strings.Contains(n, "/") {
			if a, err := netip.ParseAddr(n); err == nil {
				v.add(f, "%q is an IP address, not a CIDR; write %q to reserve one address", n, netip.PrefixFrom(a, a.BitLen()).String())
				continue
			}
		}
		if _, err := netip.ParsePrefix(n); err != nil {
			v.add(f, "%q is not a valid CIDR", n)
		}
	}
}

// workloadEndpointName checks that a WorkloadEndpoint's name is the one its node, orchestrator, pod (or
// workload) and endpoint determine, as Calico requires.
func (v *validator) workloadEndpointName(o *WorkloadEndpoint) {
	s := &o.Spec
	workload := s.Pod
	if workload == "" {
		workload = s.Workload
	}
	if s.Node == "" || s.Orchestrator == "" || workload == "" || s.Endpoint == "" {
		return // the missing fields are reported elsewhere, or the name cannot be derived
	}
	if want := WorkloadEndpointName(s.Node, s.Orchestrator, workload, s.Endpoint); o.Name != want {
		v.add("metadata.name", "%q does not match spec.node, spec.orchestrator, spec.pod and spec.endpoint: expected %q", o.Name, want)
	}
}

func (v *validator) icmp(field string, f *ICMPFields, proto *Protocol, ipVersion int) {
	if f == nil {
		return
	}
	canon := ""
	if proto != nil {
		canon = proto.Canonical()
	}
	switch {
	case canon != ProtocolICMP && canon != ProtocolICMPv6 && canon != "1" && canon != "58":
		v.add(field, "ICMP matches need protocol ICMP or ICMPv6")
	case ipVersion == 6 && (canon == ProtocolICMP || canon == "1"):
		v.add(field, "protocol ICMP does not match ipVersion 6; use ICMPv6")
	case ipVersion == 4 && (canon == ProtocolICMPv6 || canon == "58"):
		v.add(field, "protocol ICMPv6 does not match ipVersion 4; use ICMP")
	}
	if f.Type != nil && (*f.Type < 0 || *f.Type > 254) {
		v.add(field+".type", "%d is out of range 0-254", *f.Type)
	}
	if f.Code != nil {
		if *f.Code < 0 || *f.Code > 255 {
			v.add(field+".code", "%d is out of range 0-255", *f.Code)
		}
		if f.Type == nil {
			v.add(field+".code", "needs type to be set too")
		}
	}
}

func (v *validator) entity(field string, e *EntityRule, proto *Protocol, ipVersion int) {
	v.nets(field+".nets", e.Nets, MaxNetsPerRule, ipVersion)
	v.nets(field+".notNets", e.NotNets, MaxNetsPerRule, ipVersion)
	v.selector(field+".selector", e.Selector)
	v.selector(field+".notSelector", e.NotSelector)
	v.selector(field+".namespaceSelector", e.NamespaceSelector)
	v.ports(field+".ports", e.Ports, proto)
	v.ports(field+".notPorts", e.NotPorts, proto)
	if sa := e.ServiceAccounts; sa != nil {
		v.selector(field+".serviceAccounts.selector", sa.Selector)
		for i, n := range sa.Names {
			if len(content.IsDNS1123Subdomain(n)) > 0 {
				v.add(fmt.Sprintf("%s.serviceAccounts.names[%d]", field, i), "%q is not a valid service account name: %s", n, nameRule)
			}
		}
	}
	if s := e.Services; s != nil {
		if s.Name == "" {
			v.add(field+".services.name", "must be set")
		}
		if len(e.Nets)+len(e.NotNets) > 0 || e.Selector != "" || e.NotSelector != "" || e.NamespaceSelector != "" || e.ServiceAccounts != nil {
			v.add(field+".services", "cannot be combined with nets, notNets, selector, notSelector, namespaceSelector or serviceAccounts")
		}
	}
}

func (v *validator) ports(field string, ports []Port, proto *Protocol) {
	if len(ports) == 0 {
		return
	}
	if proto == nil || !proto.SupportsPorts() {
		v.add(field, "ports need protocol TCP, UDP or SCTP")
	}
	if len(ports) > MaxPortsPerRule {
		v.add(field, "has %d entries, at most %d are allowed", len(ports), MaxPortsPerRule)
	}
	for i, p := range ports {
		f := fmt.Sprintf("%s[%d]", field, i)
		if p.PortName != "" {
			v.portName(f, p.PortName)
		} else if p.MinPort > p.MaxPort {
			v.add(f, "range %q has min greater than max", p.String())
		}
	}
}

// --- per kind ---

func (v *validator) ipPool(s *IPPoolSpec) {
	p, ok := v.strictCIDR("spec.cidr", s.CIDR)
	is6 := ok && p.Addr().Is6()
	if ok {
		linkLocal4, linkLocal6 := netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")
		if p.Overlaps(linkLocal4) {
			v.add("spec.cidr", "%q overlaps the link-local range 169.254.0.0/16", s.CIDR)
		}
		if p.Overlaps(linkLocal6) {
			v.add("spec.cidr", "%q overlaps the link-local range fe80::/10", s.CIDR)
		}
		bs := s.BlockSize
		if bs == 0 {
			bs = DefaultIPv4BlockSize
			if is6 {
				bs = DefaultIPv6BlockSize
			}
		}
		switch {
		case !is6 && (bs < 20 || bs > 32):
			v.add("spec.blockSize", "%d is out of range 20-32 for IPv4", bs)
		case is6 && (bs < 116 || bs > 128):
			v.add("spec.blockSize", "%d is out of range 116-128 for IPv6", bs)
		case p.Bits() > bs:
			v.add("spec.cidr", "prefix /%d is smaller than one block (blockSize %d); use a prefix of /%d or shorter", p.Bits(), bs, bs)
		}
	} else if s.BlockSize != 0 && (s.BlockSize < 20 || s.BlockSize > 128) {
		v.add("spec.blockSize", "%d is out of range 20-32 (IPv4) or 116-128 (IPv6)", s.BlockSize)
	}
	v.encapMode("spec.ipipMode", s.IPIPMode)
	v.encapMode("spec.vxlanMode", s.VXLANMode)
	ipip := s.IPIPMode != "" && s.IPIPMode != EncapNever
	vxlan := s.VXLANMode != "" && s.VXLANMode != EncapNever
	if ipip && is6 {
		v.add("spec.ipipMode", "IPIP is not supported on IPv6 pools; use vxlanMode or Never")
	}
	if ipip && vxlan {
		v.add("spec.ipipMode", "%q cannot be combined with vxlanMode %q; enable one encapsulation per pool", s.IPIPMode, s.VXLANMode)
	}
	v.selector("spec.nodeSelector", s.NodeSelector)
	v.selector("spec.namespaceSelector", s.NamespaceSelector)
	lb, other := false, false
	for i, u := range s.AllowedUses {
		switch u {
		case IPPoolAllowedUseLoadBalancer:
			lb = true
		case IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel:
			other = true
		default:
			v.add(fmt.Sprintf("spec.allowedUses[%d]", i), "%q is not one of Workload, Tunnel, LoadBalancer", u)
		}
	}
	if lb && other {
		v.add("spec.allowedUses", "LoadBalancer cannot be combined with Workload or Tunnel")
	}
	if lb && (ipip || vxlan) {
		v.add("spec.allowedUses", "LoadBalancer pools cannot use IPIP or VXLAN encapsulation")
	}
	if m := s.AssignmentMode; m != nil && *m != AssignmentModeAutomatic && *m != AssignmentModeManual {
		v.add("spec.assignmentMode", "%q is not one of Automatic, Manual", *m)
	}
}

func (v *validator) encapMode(field string, m EncapMode) {
	switch m {
	case "", EncapNever, EncapAlways, EncapCrossSubnet:
	default:
		v.add(field, "%q is not one of Never, Always, CrossSubnet", m)
	}
}

func (v *validator) hostEndpoint(s *HostEndpointSpec) {
	if s.Node == "" {
		v.add("spec.node", "must be set")
	}
	if s.InterfaceName == "" && len(s.ExpectedIPs) == 0 {
		v.add("spec", "set interfaceName (\"*\" for all interfaces) or expectedIPs")
	}
	for i, ip := range s.ExpectedIPs {
		v.ip(fmt.Sprintf("spec.expectedIPs[%d]", i), ip, 0)
	}
	for i, p := range s.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		v.portName(f+".name", p.Name)
		if !p.Protocol.SupportsPorts() {
			v.add(f+".protocol", "%q is not one of TCP, UDP, SCTP", p.Protocol.String())
		}
		if p.Port == 0 {
			v.add(f+".port", "must be set (1-65535)")
		}
	}
}

func (v *validator) bgpPeer(s *BGPPeerSpec) {
	if s.Node != "" && s.NodeSelector != "" {
		v.add("spec.nodeSelector", "cannot be combined with node; use one of them")
	}
	if s.PeerIP != "" && s.PeerSelector != "" {
		v.add("spec.peerSelector", "cannot be combined with peerIP; use one of them")
	}
	v.selector("spec.nodeSelector", s.NodeSelector)
	v.selector("spec.peerSelector", s.PeerSelector)
	v.selector("spec.localWorkloadSelector", s.LocalWorkloadSelector)
	if s.PeerIP != "" {
		if _, err := ParsePeerIP(s.PeerIP); err != nil {
			v.add("spec.peerIP", "%v", err)
		}
		if s.ASNumber == 0 {
			v.add("spec.asNumber", "must be set (1-4294967295) when peerIP is set")
		}
	}
	v.asNumber("spec.localASNumber", s.LocalASNumber)
	switch s.SourceAddress {
	case "", SourceAddressUseNodeIP, SourceAddressNone:
	default:
		v.add("spec.sourceAddress", "%q is not one of UseNodeIP, None", s.SourceAddress)
	}
	if m := s.NextHopMode; m != nil && *m != NextHopAuto && *m != NextHopSelf && *m != NextHopKeep {
		v.add("spec.nextHopMode", "%q is not one of Auto, Self, Keep", *m)
	}
	if m := s.ReversePeering; m != nil && *m != ReversePeeringAuto && *m != ReversePeeringManual {
		v.add("spec.reversePeering", "%q is not one of Auto, Manual", *m)
	}
	if n := s.NumAllowedLocalASNumbers; n != nil && (*n < 0 || *n > 10) {
		v.add("spec.numAllowedLocalASNumbers", "%d is out of range 0-10", *n)
	}
	if s.ReachableBy != "" {
		v.ip("spec.reachableBy", s.ReachableBy, 0)
	}
}

// ParsePeerIP parses a BGPPeer peerIP: "10.0.0.1", "10.0.0.1:1179", "fd00::1" or "[fd00::1]:1179". The
// port is 0 when absent.
func ParsePeerIP(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 0), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address, \"<IPv4>:<port>\" or \"[<IPv6>]:<port>\"", s)
	}
	return ap, nil
}

func (v *validator) bgpConfiguration(s *BGPConfigurationSpec) {
	v.asNumber("spec.asNumber", s.ASNumber)
	for i, b := range s.ServiceClusterIPs {
		v.nets(fmt.Sprintf("spec.serviceClusterIPs[%d].cidr", i), []string{b.CIDR}, 0, 0)
	}
	for i, b := range s.ServiceExternalIPs {
		v.nets(fmt.Sprintf("spec.serviceExternalIPs[%d].cidr", i), []string{b.CIDR}, 0, 0)
	}
	for i, b := range s.ServiceLoadBalancerIPs {
		v.nets(fmt.Sprintf("spec.serviceLoadBalancerIPs[%d].cidr", i), []string{b.CIDR}, 0, 0)
	}
	names := map[string]bool{}
	for i, c := range s.Communities {
		f := fmt.Sprintf("spec.communities[%d]", i)
		if c.Name == "" {
			v.add(f+".name", "must be set")
		}
		names[c.Name] = true
		if !validCommunity(c.Value) {
			v.add(f+".value", "%q is not a community: use \"<0-65535>:<0-65535>\" or \"<0-4294967295>:<0-4294967295>:<0-4294967295>\"", c.Value)
		}
	}
	for i, pa := range s.PrefixAdvertisements {
		f := fmt.Sprintf("spec.prefixAdvertisements[%d]", i)
		v.nets(f+".cidr", []string{pa.CIDR}, 0, 0)
		for j, c := range pa.Communities {
			if !names[c] && !validCommunity(c) {
				v.add(fmt.Sprintf("%s.communities[%d]", f, j), "%q is neither a community defined in spec.communities nor a community value", c)
			}
		}
	}
	if m := s.BindMode; m != nil && *m != BindModeNone && *m != BindModeNodeIP {
		v.add("spec.bindMode", "%q is not one of None, NodeIP", *m)
	}
	v.ip("spec.localWorkloadPeeringIPV4", s.LocalWorkloadPeeringIPV4, 4)
	v.ip("spec.localWorkloadPeeringIPV6", s.LocalWorkloadPeeringIPV6, 6)
	if m := s.ServiceLoadBalancerAggregation; m != nil {
		v.enabledDisabled("spec.serviceLoadBalancerAggregation", *m)
	}
	if m := s.ProgramClusterRoutes; m != nil && *m != "Enabled" && *m != "Disabled" && *m != "EnabledNoEncapOnly" {
		v.add("spec.programClusterRoutes", "%q is not one of Enabled, Disabled, EnabledNoEncapOnly", *m)
	}
}

func validCommunity(s string) bool {
	parts := strings.Split(s, ":")
	bits := 0
	switch len(parts) {
	case 2:
		bits = 16
	case 3:
		bits = 32
	default:
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, bits); err != nil {
			return false
		}
	}
	return true
}

// felixLogLevels are the levels Calico's schema accepts for the log severity fields (any case).
var felixLogLevels = []string{"Trace", "Debug", "Info", "Warning", "Error", "Fatal"}

func (v *validator) felix(s *FelixConfigurationSpec) {
	for _, l := range []struct{ field, val string }{{"spec.logSeverityScreen", s.LogSeverityScreen}, {"spec.logSeverityFile", s.LogSeverityFile}, {"spec.logSeveritySys", s.LogSeveritySys}} {
		if l.val != "" && !slices.ContainsFunc(felixLogLevels, func(x string) bool { return strings.EqualFold(x, l.val) }) {
			v.add(l.field, "%q is not one of %s", l.val, strings.Join(felixLogLevels, ", "))
		}
	}
	v.portNumber("spec.vxlanPort", s.VXLANPort, 1)
	if n := s.VXLANVNI; n != nil && (*n < 1 || *n > 1<<24-1) {
		v.add("spec.vxlanVNI", "%d is out of range 1-16777215", *n)
	}
	v.portNumber("spec.healthPort", s.HealthPort, 0)
	v.portNumber("spec.prometheusMetricsPort", s.PrometheusMetricsPort, 0)
	v.portNumber("spec.wireguardListeningPort", s.WireguardListeningPort, 1)
	v.portNumber("spec.wireguardListeningPortV6", s.WireguardListeningPortV6, 1)
	for _, m := range []struct {
		field string
		mtu   *int
	}{{"spec.vxlanMTU", s.VXLANMTU}, {"spec.vxlanMTUV6", s.VXLANMTUV6}, {"spec.ipipMTU", s.IPIPMTU}, {"spec.wireguardMTU", s.WireguardMTU}, {"spec.wireguardMTUV6", s.WireguardMTUV6}} {
		if m.mtu != nil && *m.mtu < 0 {
			v.add(m.field, "%d must not be negative (0 means detect)", *m.mtu)
		}
	}
	for i, r := range s.RouteTableRanges {
		if r.Min < 1 || r.Max > math.MaxUint32 || r.Min > r.Max {
			v.add(fmt.Sprintf("spec.routeTableRanges[%d]", i), "%d-%d is not a range within 1-4294967295 with min <= max", r.Min, r.Max)
		}
	}
	for _, fp := range []struct {
		field string
		ports *[]ProtoPort
	}{{"spec.failsafeInboundHostPorts", s.FailsafeInboundHostPorts}, {"spec.failsafeOutboundHostPorts", s.FailsafeOutboundHostPorts}} {
		if fp.ports == nil {
			continue
		}
		for i, p := range *fp.ports {
			f := fmt.Sprintf("%s[%d]", fp.field, i)
			if pr := strings.ToUpper(p.Protocol); pr != "" && pr != ProtocolTCP && pr != ProtocolUDP && pr != ProtocolSCTP {
				v.add(f+".protocol", "%q is not one of TCP, UDP, SCTP", p.Protocol)
			}
			if p.Net != "" {
				v.nets(f+".net", []string{p.Net}, 0, 0)
			}
		}
	}
	if p := s.NATPortRange; p != nil && (p.PortName != "" || p.MinPort > p.MaxPort) {
		v.add("spec.natPortRange", "%q is not a port range \"min:max\" with min <= max", p.String())
	}
	if s.KubeNodePortRanges != nil {
		for i, p := range *s.KubeNodePortRanges {
			if p.PortName != "" || p.MinPort > p.MaxPort {
				v.add(fmt.Sprintf("spec.kubeNodePortRanges[%d]", i), "%q is not a port range \"min:max\" with min <= max", p.String())
			}
		}
	}
	if s.ExternalNodesCIDRList != nil {
		v.nets("spec.externalNodesCIDRList", *s.ExternalNodesCIDRList, 0, 0)
	}
	if s.InterfacePrefix != "" && strings.ContainsAny(s.InterfacePrefix, " /") {
		v.add("spec.interfacePrefix", "%q must not contain spaces or '/'", s.InterfacePrefix)
	}
	v.ip("spec.natOutgoingAddress", s.NATOutgoingAddress, 0)
	v.ip("spec.deviceRouteSourceAddress", s.DeviceRouteSourceAddress, 4)
	v.ip("spec.deviceRouteSourceAddressIPv6", s.DeviceRouteSourceAddressIPv6, 6)
	v.enabledDisabled("spec.ipForwarding", s.IPForwarding)
}

func (v *validator) node(s *NodeSpec) {
	if b := s.BGP; b != nil {
		v.asNumber("spec.bgp.asNumber", b.ASNumber)
		v.ipOrCIDR("spec.bgp.ipv4Address", b.IPv4Address, 4)
		v.ipOrCIDR("spec.bgp.ipv6Address", b.IPv6Address, 6)
		v.ip("spec.bgp.ipv4IPIPTunnelAddr", b.IPv4IPIPTunnelAddr, 4)
		v.ip("spec.bgp.routeReflectorClusterID", b.RouteReflectorClusterID, 4)
	}
	v.ip("spec.ipv4VXLANTunnelAddr", s.IPv4VXLANTunnelAddr, 4)
	v.ip("spec.ipv6VXLANTunnelAddr", s.IPv6VXLANTunnelAddr, 6)
	v.mac("spec.vxlanTunnelMACAddr", s.VXLANTunnelMACAddr)
	v.mac("spec.vxlanTunnelMACAddrV6", s.VXLANTunnelMACAddrV6)
	if w := s.Wireguard; w != nil {
		v.ip("spec.wireguard.interfaceIPv4Address", w.InterfaceIPv4Address, 4)
		v.ip("spec.wireguard.interfaceIPv6Address", w.InterfaceIPv6Address, 6)
	}
	for i, a := range s.Addresses {
		f := fmt.Sprintf("spec.addresses[%d].address", i)
		if a.Address == "" {
			v.add(f, "must be set")
		}
		v.ipOrCIDR(f, a.Address, 0)
	}
	for i, o := range s.OrchRefs {
		if o.Orchestrator == "" {
			v.add(fmt.Sprintf("spec.orchRefs[%d].orchestrator", i), "must be set")
		}
	}
	for i, itf := range s.Interfaces {
		for j, a := range itf.Addresses {
			v.ipOrCIDR(fmt.Sprintf("spec.interfaces[%d].addresses[%d]", i, j), a, 0)
		}
	}
}

func (v *validator) workloadEndpoint(s *WorkloadEndpointSpec) {
	for i, n := range s.IPNetworks {
		f := fmt.Sprintf("spec.ipNetworks[%d]", i)
		if _, err := parseNet(n); err != nil {
			v.add(f, "%q is not a valid CIDR or IP address", n)
		}
	}
	v.ip("spec.ipv4Gateway", s.IPv4Gateway, 4)
	v.ip("spec.ipv6Gateway", s.IPv6Gateway, 6)
	for i, n := range s.IPNATs {
		f := fmt.Sprintf("spec.ipNATs[%d]", i)
		if n.InternalIP == "" {
			v.add(f+".internalIP", "must be set")
		}
		if n.ExternalIP == "" {
			v.add(f+".externalIP", "must be set")
		}
		v.ip(f+".internalIP", n.InternalIP, 0)
		v.ip(f+".externalIP", n.ExternalIP, 0)
	}
	v.mac("spec.mac", s.MAC)
	for i, p := range s.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		v.portName(f+".name", p.Name)
		if !p.Protocol.SupportsPorts() {
			v.add(f+".protocol", "%q is not one of TCP, UDP, SCTP", p.Protocol.String())
		}
		if p.Port == 0 {
			v.add(f+".port", "must be set (1-65535)")
		}
		v.ip(f+".hostIP", p.HostIP, 0)
	}
	v.nets("spec.allowSpoofedSourcePrefixes", s.AllowSpoofedSourcePrefixes, 0, 0)
}

func (v *validator) ipamBlock(s *IPAMBlockSpec) {
	p, ok := v.strictCIDR("spec.cidr", s.CIDR)
	if s.Affinity != nil {
		kind, owner, found := strings.Cut(*s.Affinity, ":")
		if !found || owner == "" || (kind != AffinityTypeHost && kind != AffinityTypeVirtual) {
			v.add("spec.affinity", "%q is not \"host:<node>\" or \"virtual:<name>\"", *s.Affinity)
		}
	}
	if !ok {
		return
	}
	size := 1 << (p.Addr().BitLen() - p.Bits())
	if p.Addr().BitLen()-p.Bits() > 16 {
		v.add("spec.cidr", "prefix /%d is too large for a block", p.Bits())
		return
	}
	if len(s.Allocations) != size {
		v.add("spec.allocations", "has %d entries; the block %s has %d addresses", len(s.Allocations), p, size)
	}
	for i, a := range s.Allocations {
		if a != nil && (*a < 0 || *a >= len(s.Attributes)) {
			v.add(fmt.Sprintf("spec.allocations[%d]", i), "attribute index %d is out of range 0-%d", *a, len(s.Attributes)-1)
		}
	}
	for i, u := range s.Unallocated {
		if u < 0 || u >= size {
			v.add(fmt.Sprintf("spec.unallocated[%d]", i), "ordinal %d is out of range 0-%d", u, size-1)
		}
	}
}

func (v *validator) blockAffinity(s *BlockAffinitySpec) {
	switch s.State {
	case BlockAffinityPending, BlockAffinityConfirmed, BlockAffinityPendingDeletion:
	case "":
		v.add("spec.state", "must be set to one of pending, confirmed, pendingDeletion")
	default:
		v.add("spec.state", "%q is not one of pending, confirmed, pendingDeletion", s.State)
	}
	if s.Node == "" {
		v.add("spec.node", "must be set")
	}
	if s.Type != "" && s.Type != AffinityTypeHost && s.Type != AffinityTypeVirtual {
		v.add("spec.type", "%q is not one of host, virtual", s.Type)
	}
	v.strictCIDR("spec.cidr", s.CIDR)
	if s.Deleted != "" && s.Deleted != "true" && s.Deleted != "false" {
		v.add("spec.deleted", "%q is not \"true\" or \"false\"", s.Deleted)
	}
}

func (v *validator) ipamConfig(o *IPAMConfig) {
	if o.Name != "" && o.Name != IPAMConfigName {
		v.add("metadata.name", "%q is not allowed: IPAMConfiguration is a singleton named %q", o.Name, IPAMConfigName)
	}
	s := &o.Spec
	if s.MaxBlocksPerHost < 0 {
		v.add("spec.maxBlocksPerHost", "%d must not be negative", s.MaxBlocksPerHost)
	}
	if s.MaxBlocksPerHost > 0 && !s.StrictAffinity {
		v.add("spec.maxBlocksPerHost", "%d needs strictAffinity: true", s.MaxBlocksPerHost)
	}
	if c := s.IPCooldownSeconds; c != nil && (*c < 0 || *c > MaxIPCooldownSeconds) {
		v.add("spec.ipCooldownSeconds", "%d is out of range 0-%d", *c, MaxIPCooldownSeconds)
	}
	if p := s.KubeVirtVMAddressPersistence; p != nil {
		v.enabledDisabled("spec.kubeVirtVMAddressPersistence", *p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
