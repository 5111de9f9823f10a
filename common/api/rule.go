package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Action is what a policy rule does with a packet that matches it.
// +kubebuilder:validation:Enum=Allow;Deny;Log;Pass
type Action string

const (
	// Allow accepts the packet; no further policy is evaluated for it.
	Allow Action = "Allow"
	// Deny drops the packet.
	Deny Action = "Deny"
	// Log logs the packet and continues with the next rule (non-terminal).
	Log Action = "Log"
	// Pass skips the rest of the current tier and continues with the next tier.
	Pass Action = "Pass"
)

// Actions lists every rule action.
var Actions = []Action{Allow, Deny, Log, Pass}

// PolicyType says whether a policy applies to traffic entering or leaving the selected endpoints.
// +kubebuilder:validation:Enum=Ingress;Egress
type PolicyType string

const (
	PolicyTypeIngress PolicyType = "Ingress"
	PolicyTypeEgress  PolicyType = "Egress"
)

// PolicyPerformanceHint is an optimisation hint on a policy.
// +kubebuilder:validation:Enum=AssumeNeededOnEveryNode
type PolicyPerformanceHint string

// PerfHintAssumeNeededOnEveryNode tells the agent to program the policy on every node up front.
const PerfHintAssumeNeededOnEveryNode PolicyPerformanceHint = "AssumeNeededOnEveryNode"

// Protocol names.
const (
	ProtocolTCP     = "TCP"
	ProtocolUDP     = "UDP"
	ProtocolICMP    = "ICMP"
	ProtocolICMPv6  = "ICMPv6"
	ProtocolSCTP    = "SCTP"
	ProtocolUDPLite = "UDPLite"
)

// ProtocolNames lists the protocol names a Protocol may hold (lower-case spellings are also accepted).
var ProtocolNames = []string{ProtocolTCP, ProtocolUDP, ProtocolICMP, ProtocolICMPv6, ProtocolSCTP, ProtocolUDPLite}

// Protocol is an IP protocol given by name ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite") or by
// number (1-255). In JSON it is a string or a number; a string holding a number is read as that number.
// The zero value is "no protocol".
//
// +kubebuilder:validation:XIntOrString
// +kubebuilder:validation:Type=""
// +kubebuilder:validation:Schemaless
type Protocol struct {
	// Name is set for a named protocol.
	Name string `json:"-"`
	// Number is set (non-zero) for a numbered protocol.
	Number uint8 `json:"-"`
}

// ProtocolFromString returns the Protocol for a name or a decimal number.
func ProtocolFromString(s string) Protocol {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return Protocol{Number: uint8(n)}
	}
	return Protocol{Name: s}
}

// ProtocolFromInt returns a numbered Protocol.
func ProtocolFromInt(n uint8) Protocol { return Protocol{Number: n} }

// NewProtocol returns a pointer to the Protocol for a name or number string; handy in literals.
func NewProtocol(s string) *Protocol { p := ProtocolFromString(s); return &p }

// IsZero reports whether no protocol is set.
func (p Protocol) IsZero() bool { return p.Name == "" && p.Number == 0 }

// IsNumber reports whether the protocol is given by number.
func (p Protocol) IsNumber() bool { return p.Name == "" && p.Number != 0 }

// String returns the name, or the number in decimal.
func (p Protocol) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// Canonical returns the upper-case canonical spelling of a named protocol ("tcp" → "TCP"), or the number.
func (p Protocol) Canonical() string {
	if p.Name == "" {
		return p.String()
	}
	for _, n := range ProtocolNames {
		if strings.EqualFold(n, p.Name) {
			return n
		}
	}
	return p.Name
}

// SupportsPorts reports whether rules with this protocol may match ports (TCP, UDP, SCTP, by name or number).
func (p Protocol) SupportsPorts() bool {
	switch {
	case p.Name != "":
		c := p.Canonical()
		return c == ProtocolTCP || c == ProtocolUDP || c == ProtocolSCTP
	default:
		return p.Number == 6 || p.Number == 17 || p.Number == 132
	}
}

// MarshalJSON writes a number or a string.
func (p Protocol) MarshalJSON() ([]byte, error) {
	if p.IsNumber() {
		return []byte(strconv.Itoa(int(p.Number))), nil
	}
	return json.Marshal(p.Name)
}

// UnmarshalJSON reads a number (0-255) or a string.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = ProtocolFromString(s)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("protocol must be a name or a number 1-255, got %s", b)
	}
	if n < 0 || n > 255 {
		return fmt.Errorf("protocol number %d is out of range 1-255", n)
	}
	*p = Protocol{Number: uint8(n)}
	return nil
}

// Port is a port number, a range "min:max", or a named port (a name resolved per endpoint). In JSON a
// single port is a number, a range or a name is a string; a string holding a number is read as that number.
//
// +kubebuilder:validation:XIntOrString
// +kubebuilder:validation:Type=""
// +kubebuilder:validation:Schemaless
type Port struct {
	// MinPort and MaxPort bound a numeric range; they are equal for a single port.
	MinPort uint16 `json:"-"`
	MaxPort uint16 `json:"-"`
	// PortName is set for a named port, in which case MinPort and MaxPort are zero.
	PortName string `json:"-"`
}

// SinglePort returns a Port for one number.
func SinglePort(p uint16) Port { return Port{MinPort: p, MaxPort: p} }

// PortRange returns a Port for the range min:max (not checked; Validate reports min > max).
func PortRange(lo, hi uint16) Port { return Port{MinPort: lo, MaxPort: hi} }

// NamedPort returns a Port for a named port.
func NamedPort(name string) Port { return Port{PortName: name} }

// PortFromString parses "80", "1000:2000" or a port name. Numbers must be 0-65535; a range needs two
// numbers. Anything else that is not a number is taken as a name (its syntax is checked by Validate).
func PortFromString(s string) (Port, error) {
	if lo, hi, ok := strings.Cut(s, ":"); ok {
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil {
			return Port{}, fmt.Errorf("port range %q must be \"min:max\" with numbers 0-65535", s)
		}
		return Port{MinPort: uint16(l), MaxPort: uint16(h)}, nil
	}
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return Port{}, fmt.Errorf("port %q must be a number 0-65535, a range \"min:max\" or a port name", s)
		}
		return SinglePort(uint16(n)), nil
	}
	return Port{PortName: s}, nil
}

// IsNamed reports whether this is a named port.
func (p Port) IsNamed() bool { return p.PortName != "" }

// String returns "80", "1000:2000" or the name.
func (p Port) String() string {
	switch {
	case p.PortName != "":
		return p.PortName
	case p.MinPort == p.MaxPort:
		return strconv.Itoa(int(p.MinPort))
	default:
		return fmt.Sprintf("%d:%d", p.MinPort, p.MaxPort)
	}
}

// MarshalJSON writes a single port as a number, a range or name as a string.
func (p Port) MarshalJSON() ([]byte, error) {
	if p.PortName == "" && p.MinPort == p.MaxPort {
		return []byte(strconv.Itoa(int(p.MinPort))), nil
	}
	return json.Marshal(p.String())
}

// UnmarshalJSON reads a number or a string (see PortFromString).
func (p *Port) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := PortFromString(s)
		if err != nil {
			return err
		}
		*p = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("port must be a number 0-65535, a range \"min:max\" or a port name, got %s", b)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("port %d is out of range 0-65535", n)
	}
	*p = SinglePort(uint16(n))
	return nil
}

// ASNumber is a BGP AS number. JSON accepts a number or the "asdot" string form "<high>.<low>"; it is
// always written as a number, which is what the CRD schema allows.
//
// +kubebuilder:validation:Type=integer
// +kubebuilder:validation:Format=int64
// +kubebuilder:validation:Minimum=0
// +kubebuilder:validation:Maximum=4294967295
type ASNumber uint32

// ASNumberFromString parses "64512" or "1.10" (asdot).
func ASNumberFromString(s string) (ASNumber, error) {
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("AS number %q must be a number 0-4294967295 or \"<0-65535>.<0-65535>\"", s)
		}
		return ASNumber(h<<16 | l), nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("AS number %q must be a number 0-4294967295 or \"<0-65535>.<0-65535>\"", s)
	}
	return ASNumber(n), nil
}

// UnmarshalJSON reads a number or a string.
func (a *ASNumber) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ASNumberFromString(s)
		if err != nil {
			return err
		}
		*a = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 || n > 1<<32-1 {
		return fmt.Errorf("AS number must be a number 0-4294967295 or \"<0-65535>.<0-65535>\", got %s", b)
	}
	*a = ASNumber(n)
	return nil
}

// NewASNumber returns a pointer to n; handy in literals.
func NewASNumber(n uint32) *ASNumber { a := ASNumber(n); return &a }

// Rule is one policy rule. A packet matches when every field that is set matches; the rule's action then
// applies.
type Rule struct {
	// Action is what happens to matching packets: Allow, Deny, Log or Pass.
	Action Action `json:"action"`
	// IPVersion restricts the rule to IPv4 (4) or IPv6 (6).
	// +kubebuilder:validation:Enum=4;6
	// +optional
	IPVersion *int `json:"ipVersion,omitempty"`
	// Protocol is a protocol name or number.
	// +optional
	Protocol *Protocol `json:"protocol,omitempty"`
	// ICMP matches ICMP type and code (Protocol must be ICMP or ICMPv6).
	// +optional
	ICMP *ICMPFields `json:"icmp,omitempty"`
	// NotProtocol is the negation of Protocol.
	// +optional
	NotProtocol *Protocol `json:"notProtocol,omitempty"`
	// NotICMP is the negation of ICMP.
	// +optional
	NotICMP *ICMPFields `json:"notICMP,omitempty"`
	// Source matches the packet's source.
	// +optional
	Source EntityRule `json:"source,omitzero"`
	// Destination matches the packet's destination.
	// +optional
	Destination EntityRule `json:"destination,omitzero"`
	// HTTP matches HTTP requests (application-layer policy; kept for compatibility, not enforced by tortie).
	// +optional
	HTTP *HTTPMatch `json:"http,omitempty"`
	// Metadata carries annotations about the rule.
	// +optional
	Metadata *RuleMetadata `json:"metadata,omitempty"`
}

// RuleMetadata carries free-form annotations on a rule.
type RuleMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// HTTPMatch matches HTTP request attributes.
type HTTPMatch struct {
	// +optional
	Methods []string `json:"methods,omitempty"`
	// +optional
	Paths []HTTPPath `json:"paths,omitempty"`
}

// HTTPPath is an exact or prefix HTTP path match.
type HTTPPath struct {
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// ICMPFields matches ICMP type and code. Code requires Type.
type ICMPFields struct {
	// Type is the ICMP type, 0-254.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=254
	// +optional
	Type *int `json:"type,omitempty"`
	// Code is the ICMP code, 0-255.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	// +optional
	Code *int `json:"code,omitempty"`
}

// EntityRule matches one side (source or destination) of a packet. Set fields are AND-ed.
type EntityRule struct {
	// Nets matches addresses in any of these CIDRs (at most 256).
	// +optional
	Nets []string `json:"nets,omitempty"`
	// Selector matches endpoints and network sets by label.
	// +optional
	Selector string `json:"selector,omitempty"`
	// NamespaceSelector matches endpoints in namespaces whose labels match ("all()" = every namespace,
	// "global()" = non-namespaced things only).
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// Services matches the endpoints of a Kubernetes Service; cannot be combined with nets, selectors or
	// service accounts.
	// +optional
	Services *ServiceMatch `json:"services,omitempty"`
	// Ports matches ports (at most 50); needs Protocol TCP, UDP or SCTP.
	// +optional
	Ports []Port `json:"ports,omitempty"`
	// NotNets is the negation of Nets.
	// +optional
	NotNets []string `json:"notNets,omitempty"`
	// NotSelector is the negation of Selector; unlike "!sel" in Selector it also matches non-tortie peers.
	// +optional
	NotSelector string `json:"notSelector,omitempty"`
	// NotPorts is the negation of Ports.
	// +optional
	NotPorts []Port `json:"notPorts,omitempty"`
	// ServiceAccounts matches endpoints by service account.
	// +optional
	ServiceAccounts *ServiceAccountMatch `json:"serviceAccounts,omitempty"`
}

// ServiceAccountMatch matches endpoints by service account name and/or labels (AND-ed).
type ServiceAccountMatch struct {
	// +optional
	Names []string `json:"names,omitempty"`
	// +optional
	Selector string `json:"selector,omitempty"`
}

// ServiceMatch names a Kubernetes Service.
type ServiceMatch struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
