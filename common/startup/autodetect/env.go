package autodetect

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/tortie-net/tortie/common/config"
)

// Node address environment variables, by Calico's names. They are read under common/config's one alias
// rule (TORTIE_IP over IP over CALICO_IP), so a tortie manifest can override a value inherited from a
// Calico one without deleting it.
const (
	EnvIPv4 = "IP"
	EnvIPv6 = "IP6"
)

// Special values of IP / IP6.
const (
	ValueAutodetect = "autodetect"
	ValueNone       = "none"
)

// Source says where a resolved node address came from.
type Source string

const (
	// SourceAutodetected: found by the autodetection method.
	SourceAutodetected Source = "autodetected"
	// SourceEnv: given explicitly in IP / IP6.
	SourceEnv Source = "env"
	// SourceExisting: kept from the stored Node.
	SourceExisting Source = "existing"
	// SourceNone: the node has no address of this family.
	SourceNone Source = "none"
)

// NodeIP is the resolved node address of one family.
type NodeIP struct {
	// Prefix is the address with its prefix length; the zero Prefix when Source is SourceNone.
	Prefix netip.Prefix
	Source Source
	// Var is the environment variable that decided (IP, TORTIE_IP6, …), empty when none was set.
	Var string
	// Method is the autodetection method used or tried (when autodetection ran).
	Method Method
	// MethodVar is the variable Method came from, empty when it defaulted.
	MethodVar string
	// Interface is the host interface holding the address, when known.
	Interface string
	// Warning is a non-fatal problem the caller should log: autodetection failed and the stored
	// address was kept, or the address is not assigned to any host interface.
	Warning string
}

// ResolveNodeIP decides the node's address of one family (4 or 6) from IP / IP6, the address already stored on the Node (existing; zero if none) and, when it
// autodetects, IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD. It follows Calico's startup rules:
//
// IP, IP6 and the methods are read under common/config's alias rule (TORTIE_IP, IP, CALICO_IP).
//
// IPv4 (IP):
//   - unset and the Node has no IPv4 address → autodetect;
//   - unset and the Node has one → keep it;
//   - "autodetect" → autodetect on every start;
//   - "none" → no IPv4 address is configured or detected; an address already on the Node is kept
//     (Calico keeps it too — remove it from the Node to clear it);
//   - ADDR/LEN → used as given; ADDR → its prefix length is looked up on the host interfaces, and if the
//     address is on none of them it is used as /32 with a Warning (Calico warns and continues: the
//     address may be a NAT or VIP address the host legitimately answers for).
//
// IPv6 (IP6) is the same except that it is autodetected only when IP6=autodetect; unset keeps an
// existing address and otherwise leaves the node without IPv6.
//
// When autodetection fails and the Node already has an address, that address is kept with a Warning;
// when it has none, the error names the variables and the fix. An invalid IP / IP6 value or method is
// always an error. env nil means os.Getenv; src nil means SystemInterfaces; k8s may be nil unless the
// method is kubernetes-internal-ip.
func ResolveNodeIP(ctx context.Context, env func(string) string, existing netip.Prefix, family int,
	src InterfaceSource, k8s NodeAddressSource,
) (NodeIP, error) {
	if family != 4 && family != 6 {
		return NodeIP{}, fmt.Errorf("resolving the node address: family %d, want 4 or 6", family)
	}
	if env == nil {
		env = os.Getenv
	}
	if src == nil {
		src = SystemInterfaces{}
	}
	ipVar, methodVarName := EnvIPv4, EnvIPv4Method
	if family == 6 {
		ipVar, methodVarName = EnvIPv6, EnvIPv6Method
	}
	if existing.IsValid() && familyOf(existing.Addr()) != family {
		return NodeIP{}, fmt.Errorf("resolving the node IPv%d address: the stored Node address %s is not IPv%d", family, existing, family)
	}
	value, from := config.Lookup(env, ipVar)
	keep := func(v string) NodeIP {
		n := NodeIP{Prefix: existing, Source: SourceExisting, Var: v}
		n.Interface, n.Warning = checkOnHost(src, existing, "the stored Node address")
		return n
	}

	switch {
	case strings.EqualFold(value, ValueAutodetect) || (value == "" && family == 4 && !existing.IsValid()):
		methodValue, mFrom := config.Lookup(env, methodVarName)
		m, err := parseMethodEnv(mFrom, methodVarName, methodValue)
		if err != nil {
			return NodeIP{}, err
		}
		d, err := DetectInterface(ctx, m, family, src, k8s)
		if err == nil {
			return NodeIP{Prefix: d.Prefix, Source: SourceAutodetected, Var: from, Method: m, MethodVar: mFrom, Interface: d.Interface}, nil
		}
		if existing.IsValid() {
			n := keep(from)
			n.Method, n.MethodVar = m, mFrom
			n.Warning = joinWarnings(fmt.Sprintf("IPv%d autodetection failed, keeping the stored Node address %s: %v", family, existing, err), n.Warning)
			return n, nil
		}
		mName := methodVarName
		if mFrom != "" {
			mName = mFrom
		}
		return NodeIP{}, fmt.Errorf("no IPv%d address for this node: %w; choose another %s (%s) or set %s to this node's address (e.g. %s=%s)",
			family, err, mName, validForms, ipVar, ipVar, exampleAddr(family))
	case strings.EqualFold(value, ValueNone) || value == "":
		if existing.IsValid() {
			return keep(from), nil
		}
		return NodeIP{Source: SourceNone, Var: from}, nil
	}

	addr, bits, err := parseAddrOrPrefix(value, family)
	if err != nil {
		return NodeIP{}, fmt.Errorf("%s=%q: %w; %s takes an IPv%d address with or without a prefix length (e.g. %s=%s), %q or %q",
			from, value, err, ipVar, family, ipVar, exampleAddr(family), ValueAutodetect, ValueNone)
	}
	n := NodeIP{Prefix: netip.PrefixFrom(addr, bits), Source: SourceEnv, Var: from}
	if bits >= 0 {
		n.Interface, n.Warning = checkOnHost(src, n.Prefix, from+"="+value)
		return n, nil
	}
	// A bare address: complete the prefix length from the interface holding it.
	n.Prefix = netip.PrefixFrom(addr, addr.BitLen())
	ifaces, err := src.List()
	if err != nil {
		n.Warning = fmt.Sprintf("%s=%s: cannot list host interfaces to find its prefix length (%v); using %s", from, value, err, n.Prefix)
		return n, nil
	}
	if full, name, ok := LookupPrefix(ifaces, addr); ok {
		n.Prefix, n.Interface = full, name
		return n, nil
	}
	n.Warning = fmt.Sprintf("%s=%s is not assigned to any host interface; using %s (set %s=ADDR/LEN to give the prefix length)",
		from, value, n.Prefix, ipVar)
	return n, nil
}

func parseMethodEnv(from, calicoName, value string) (Method, error) {
	name := from
	if name == "" {
		name = calicoName
	}
	return ParseMethodVar(name, value)
}

// parseAddrOrPrefix parses ADDR or ADDR/LEN of the family; bits is -1 for a bare address.
func parseAddrOrPrefix(s string, family int) (addr netip.Addr, bits int, err error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("not an address or CIDR: %w", err)
		}
		if familyOf(p.Addr()) != family {
			return netip.Addr{}, 0, fmt.Errorf("not an IPv%d CIDR", family)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Addr{}, 0, fmt.Errorf("not an IPv%d CIDR", family)
			}
			return p.Addr().Unmap(), p.Bits() - 96, nil
		}
		return p.Addr(), p.Bits(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("not an address or CIDR: %w", err)
	}
	if a.Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("zoned (link-local) addresses cannot be node addresses")
	}
	if familyOf(a) != family {
		return netip.Addr{}, 0, fmt.Errorf("not an IPv%d address", family)
	}
	return a.Unmap(), -1, nil
}

// checkOnHost mirrors Calico's validateIP: an address that is not on any host interface is allowed but
// worth a warning. It returns the interface holding it, or a warning.
func checkOnHost(src InterfaceSource, p netip.Prefix, what string) (iface, warning string) {
	ifaces, err := src.List()
	if err != nil {
		return "", fmt.Sprintf("cannot confirm %s %s is assigned to this host: %v", what, p, err)
	}
	if _, name, ok := LookupPrefix(ifaces, p.Addr()); ok {
		return name, ""
	}
	return "", fmt.Sprintf("cannot confirm %s %s is assigned to this host: no interface holds %s", what, p, p.Addr())
}

func joinWarnings(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func exampleAddr(family int) string {
	if family == 6 {
		return "2001:db8::5/64"
	}
	return "10.0.0.5/24"
}
