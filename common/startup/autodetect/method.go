package autodetect

import (
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"strings"

	"github.com/tortie-net/tortie/common/config"
)

// Kind is an autodetection method name as written in IP_AUTODETECTION_METHOD.
type Kind string

// The autodetection methods (Calico's names).
const (
	// FirstFound: the first global-unicast address on any interface not matching the default exclusions.
	FirstFound Kind = "first-found"
	// InterfaceMatch (interface=REGEX,…): only interfaces whose name matches one of the regexes; no
	// default exclusions.
	InterfaceMatch Kind = "interface"
	// SkipInterface (skip-interface=REGEX,…): first-found with the regexes as extra exclusions.
	SkipInterface Kind = "skip-interface"
	// CanReach (can-reach=DEST): the local address the OS would use to reach DEST (IP or host name).
	CanReach Kind = "can-reach"
	// CIDR (cidr=CIDR,…): the first global-unicast address, on any interface, inside one of the CIDRs.
	CIDR Kind = "cidr"
	// KubernetesInternalIP: the Kubernetes Node's InternalIP of the family.
	KubernetesInternalIP Kind = "kubernetes-internal-ip"
)

// Env variable names for the method, Calico's and tortie's. The TORTIE_ name wins when both are set.
const (
	EnvIPv4Method       = "IP_AUTODETECTION_METHOD"
	EnvIPv6Method       = "IP6_AUTODETECTION_METHOD"
	EnvTortieIPv4Method = "TORTIE_IP_AUTODETECTION_METHOD"
	EnvTortieIPv6Method = "TORTIE_IP6_AUTODETECTION_METHOD"
)

// linuxDefaultExclusions is Calico's first-found exclusion list on Linux plus tortie's own devices.
var linuxDefaultExclusions = []string{
	`^docker.*`, `^cbr.*`, `^dummy.*`, `^podman.*`, `^virbr.*`, `^lxcbr.*`, `^veth.*`, `^lo`,
	`^br-.*`, `^cali.*`, `^tunl.*`, `^flannel.*`, `^kube-ipvs.*`, `^cni.*`,
	`^vxlan\.calico.*`, `^vxlan-v6\.calico.*`, `^wireguard\.cali.*`, `^wg-v6\.cali.*`, `^nodelocaldns.*`,
	// tortie's own devices (common/config/owned.go).
	`^` + regexp.QuoteMeta(config.VXLANDevice) + `.*`, `^` + regexp.QuoteMeta(config.VXLANDeviceV6) + `.*`,
}

// windowsDefaultExclusions is Calico's first-found exclusion list on Windows (HNS names).
var windowsDefaultExclusions = []string{
	`.*cbr.*`, `.*[Dd]ocker.*`, `.*\(nat\).*`, `.*Calico.*_ep`, `Loopback.*`, `.*Tailscale.*`,
}

// DefaultExclusions returns the interface-name regexes first-found and skip-interface exclude on goos
// (runtime.GOOS values; anything but "windows" gets the Linux list). The result is a fresh copy.
func DefaultExclusions(goos string) []string {
	if goos == "windows" {
		return append([]string(nil), windowsDefaultExclusions...)
	}
	return append([]string(nil), linuxDefaultExclusions...)
}

// Method is a parsed autodetection method. Build it with ParseMethod; the zero value is first-found
// with the running OS's default exclusions.
type Method struct {
	Kind Kind
	// Regexes are the user's interface-name regexes: the include list of interface=, the extra
	// exclusions of skip-interface=. Unanchored, OR-ed, matched with MatchString.
	Regexes []string
	// CIDRs are cidr='s networks (masked).
	CIDRs []netip.Prefix
	// Dest is can-reach's destination, an IP literal or a host name.
	Dest string
	// Exclusions are the built-in exclusions first-found and skip-interface apply. ParseMethod fills
	// them for the running OS; nil means DefaultExclusions(runtime.GOOS).
	Exclusions []string
}

// String renders the method in the env-var syntax ParseMethod accepts.
func (m Method) String() string {
	switch m.Kind {
	case "", FirstFound:
		return string(FirstFound)
	case InterfaceMatch, SkipInterface:
		return string(m.Kind) + "=" + strings.Join(m.Regexes, ",")
	case CIDR:
		s := make([]string, len(m.CIDRs))
		for i, c := range m.CIDRs {
			s[i] = c.String()
		}
		return string(CIDR) + "=" + strings.Join(s, ",")
	case CanReach:
		return string(CanReach) + "=" + m.Dest
	}
	return string(m.Kind)
}

// validForms is the list of forms quoted in every parse error.
const validForms = "first-found (the default), interface=REGEX[,REGEX…], skip-interface=REGEX[,REGEX…], " +
	"can-reach=IP-OR-HOSTNAME, cidr=CIDR[,CIDR…], kubernetes-internal-ip"

// MethodError reports an invalid autodetection method. Var is the environment variable it came from
// (empty when ParseMethod was called without one).
type MethodError struct {
	Var    string
	Value  string
	Reason string
}

func (e *MethodError) Error() string {
	name := e.Var
	if name == "" {
		name = EnvIPv4Method + "/" + EnvIPv6Method
	}
	return fmt.Sprintf("invalid IP autodetection method %s=%q: %s; valid forms are %s (for example %s=interface=eth0,ens.*)",
		name, e.Value, e.Reason, validForms, name)
}

// listSep is Calico's separator for the regex and CIDR lists: a comma with optional blanks around it.
var listSep = regexp.MustCompile(`\s*,\s*`)

// ParseMethod parses an IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD value; "" means first-found.
// It is stricter than Calico where Calico would fail later or silently do something odd: regexes must
// compile, CIDRs must parse, lists and the can-reach destination must not be empty, and
// kubernetes-internal-ip must be written exactly. Errors are *MethodError.
func ParseMethod(s string) (Method, error) {
	return parseMethod("", s, runtime.GOOS)
}

// ParseMethodVar is ParseMethod for a value read from the named environment variable; errors name it.
func ParseMethodVar(varName, s string) (Method, error) {
	return parseMethod(varName, s, runtime.GOOS)
}

func parseMethod(varName, s, goos string) (Method, error) {
	fail := func(format string, args ...any) (Method, error) {
		return Method{}, &MethodError{Var: varName, Value: s, Reason: fmt.Sprintf(format, args...)}
	}
	v := strings.TrimSpace(s)
	if v == "" || v == string(FirstFound) {
		return Method{Kind: FirstFound, Exclusions: DefaultExclusions(goos)}, nil
	}
	if v == string(KubernetesInternalIP) {
		return Method{Kind: KubernetesInternalIP}, nil
	}
	name, arg, hasArg := strings.Cut(v, "=")
	kind := Kind(name)
	switch kind {
	case InterfaceMatch, SkipInterface, CIDR, CanReach:
	case FirstFound, KubernetesInternalIP:
		return fail("%s takes no argument", kind)
	default:
		return fail("unknown method %q", name)
	}
	if !hasArg {
		return fail("%s needs an argument after %q", kind, "=")
	}
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return fail("%s= has an empty argument", kind)
	}
	switch kind {
	case InterfaceMatch, SkipInterface:
		res := listSep.Split(arg, -1)
		for _, r := range res {
			if r == "" {
				return fail("%s= has an empty regex in its list", kind)
			}
			if _, err := regexp.Compile(r); err != nil {
				return fail("interface regex %q does not compile: %v", r, err)
			}
		}
		m := Method{Kind: kind, Regexes: res}
		if kind == SkipInterface {
			m.Exclusions = DefaultExclusions(goos)
		}
		return m, nil
	case CIDR:
		var cidrs []netip.Prefix
		for _, c := range listSep.Split(arg, -1) {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fail("%q is not a CIDR (want e.g. 10.0.0.0/8 or fd00::/8): %v", c, err)
			}
			cidrs = append(cidrs, p.Masked())
		}
		return Method{Kind: CIDR, CIDRs: cidrs}, nil
	default: // CanReach
		dest := arg
		if len(dest) > 2 && dest[0] == '[' && dest[len(dest)-1] == ']' {
			dest = dest[1 : len(dest)-1]
		}
		if !validDest(dest) {
			return fail("can-reach= takes one IP address or host name, not %q", arg)
		}
		return Method{Kind: CanReach, Dest: dest}, nil
	}
}

// validDest accepts the characters of host names and IP literals (with an optional zone).
func validDest(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == ':', r == '%':
		default:
			return false
		}
	}
	return true
}
