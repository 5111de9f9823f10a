package autodetect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
)

// NodeAddressSource gives the addresses Kubernetes reports for this node. The node agent implements it
// with client-go (Node.Status.Addresses filtered to type InternalIP); this package does not import
// client-go so it stays usable without a Kubernetes datastore.
type NodeAddressSource interface {
	// InternalIPs returns the Node's InternalIP addresses in the order the Node lists them, as written
	// there (unparseable entries are skipped by the caller of this method).
	InternalIPs(ctx context.Context) ([]string, error)
}

// NodeAddressFunc adapts a function to NodeAddressSource.
type NodeAddressFunc func(ctx context.Context) ([]string, error)

// InternalIPs implements NodeAddressSource.
func (f NodeAddressFunc) InternalIPs(ctx context.Context) ([]string, error) { return f(ctx) }

// ErrNotFound is wrapped by every Detect error that means "the method ran but found no address", as
// opposed to a broken method, family or interface listing.
var ErrNotFound = errors.New("no matching address")

// Detection is a successful detection.
type Detection struct {
	// Prefix is the address with its interface prefix length (10.0.0.5/24).
	Prefix netip.Prefix
	// Interface is the interface it was found on.
	Interface string
}

// Detect runs one autodetection method for family (4 or 6) and returns the address with its interface
// prefix length, e.g. 10.0.0.5/24.
//
// Interfaces are walked in reverse of src's order, include and exclude regex lists are OR-ed and
// unanchored, and the first global-unicast address of the family on the first qualifying interface
// wins — Calico's mechanics. Interface up/down state is not considered (Calico doesn't either). k8s may
// be nil unless the method is kubernetes-internal-ip.
func Detect(ctx context.Context, m Method, family int, src InterfaceSource, k8s NodeAddressSource) (netip.Prefix, error) {
	d, err := DetectInterface(ctx, m, family, src, k8s)
	return d.Prefix, err
}

// DetectInterface is Detect that also reports the interface the address was found on.
func DetectInterface(ctx context.Context, m Method, family int, src InterfaceSource, k8s NodeAddressSource) (Detection, error) {
	if family != 4 && family != 6 {
		return Detection{}, fmt.Errorf("IP autodetection: family %d, want 4 or 6", family)
	}
	if src == nil {
		src = SystemInterfaces{}
	}
	exclusions := m.Exclusions
	if exclusions == nil {
		exclusions = DefaultExclusions(runtime.GOOS)
	}
	switch m.Kind {
	case "", FirstFound:
		return firstAddress(src, family, nil, exclusions, nil, m)
	case InterfaceMatch:
		return firstAddress(src, family, m.Regexes, nil, nil, m)
	case SkipInterface:
		return firstAddress(src, family, nil, append(exclusions[:len(exclusions):len(exclusions)], m.Regexes...), nil, m)
	case CIDR:
		return firstAddress(src, family, nil, nil, m.CIDRs, m)
	case CanReach:
		return canReach(ctx, src, family, m)
	case KubernetesInternalIP:
		return k8sInternalIP(ctx, src, k8s, family, m)
	}
	return Detection{}, fmt.Errorf("IP autodetection: unknown method kind %q", m.Kind)
}

// orRegexp joins regexes into one alternation, Calico's way: (a)|(b)|… . nil for an empty list.
func orRegexp(res []string) (*regexp.Regexp, error) {
	if len(res) == 0 {
		return nil, nil
	}
	return regexp.Compile("(" + strings.Join(res, ")|(") + ")")
}

func listInterfaces(src InterfaceSource) ([]Interface, error) {
	ifaces, err := src.List()
	if err != nil {
		return nil, fmt.Errorf("IP autodetection: %w", err)
	}
	return ifaces, nil
}

func firstAddress(src InterfaceSource, family int, incl, excl []string, cidrs []netip.Prefix, m Method) (Detection, error) {
	inRE, err := orRegexp(incl)
	if err != nil {
		return Detection{}, fmt.Errorf("IP autodetection method %s: interface regexes: %w", m, err)
	}
	exRE, err := orRegexp(excl)
	if err != nil {
		return Detection{}, fmt.Errorf("IP autodetection method %s: exclusion regexes: %w", m, err)
	}
	ifaces, err := listInterfaces(src)
	if err != nil {
		return Detection{}, err
	}
	considered := 0
	for i := len(ifaces) - 1; i >= 0; i-- {
		ifc := ifaces[i]
		if inRE != nil && !inRE.MatchString(ifc.Name) {
			continue
		}
		if exRE != nil && exRE.MatchString(ifc.Name) {
			continue
		}
		considered++
		for _, p := range ifc.Addrs {
			a := p.Addr().Unmap()
			if familyOf(a) != family || !a.IsGlobalUnicast() || !inAny(a, cidrs) {
				continue
			}
			return Detection{Prefix: netip.PrefixFrom(a, p.Bits()), Interface: ifc.Name}, nil
		}
	}
	if considered == 0 {
		return Detection{}, fmt.Errorf("IP autodetection method %s: no host interface qualifies (%d listed): %w", m, len(ifaces), ErrNotFound)
	}
	return Detection{}, fmt.Errorf("IP autodetection method %s: none of the %d qualifying interfaces has a global-unicast IPv%d address: %w",
		m, considered, family, ErrNotFound)
}

func inAny(a netip.Addr, cidrs []netip.Prefix) bool {
	if len(cidrs) == 0 {
		return true
	}
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

func canReach(ctx context.Context, src InterfaceSource, family int, m Method) (Detection, error) {
	if ip, err := netip.ParseAddr(m.Dest); err == nil && familyOf(ip) != family {
		return Detection{}, fmt.Errorf("IP autodetection method %s: %s is not an IPv%d address; use an IPv%d destination in %s",
			m, m.Dest, family, family, methodVar(family))
	}
	finder, ok := src.(SourceAddrFinder)
	if !ok {
		finder = SystemInterfaces{}
	}
	local, err := finder.SourceAddr(ctx, family, m.Dest)
	if err != nil {
		return Detection{}, fmt.Errorf("IP autodetection method %s: %w (%w)", m, err, ErrNotFound)
	}
	ifaces, err := listInterfaces(src)
	if err != nil {
		return Detection{}, err
	}
	p, name, ok := LookupPrefix(ifaces, local)
	if !ok {
		return Detection{}, fmt.Errorf("IP autodetection method %s: the OS picked %s, which is not on any host interface: %w", m, local, ErrNotFound)
	}
	return Detection{Prefix: p, Interface: name}, nil
}

func k8sInternalIP(ctx context.Context, src InterfaceSource, k8s NodeAddressSource, family int, m Method) (Detection, error) {
	if k8s == nil {
		return Detection{}, fmt.Errorf("IP autodetection method %s needs the Kubernetes Node, and this node has none (not running on Kubernetes?); choose another method in %s",
			m, methodVar(family))
	}
	addrs, err := k8s.InternalIPs(ctx)
	if err != nil {
		return Detection{}, fmt.Errorf("IP autodetection method %s: reading the Kubernetes Node's addresses: %w", m, err)
	}
	var ip netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" || familyOf(a) != family {
			continue
		}
		ip = a.Unmap()
		break
	}
	if !ip.IsValid() {
		return Detection{}, fmt.Errorf("IP autodetection method %s: the Kubernetes Node has no IPv%d InternalIP (it has %q): %w", m, family, addrs, ErrNotFound)
	}
	ifaces, err := listInterfaces(src)
	if err != nil {
		return Detection{}, err
	}
	// Calico fails here too when the InternalIP is not a local address: the prefix length is unknown
	// and the address would not be this host's.
	p, name, ok := LookupPrefix(ifaces, ip)
	if !ok {
		return Detection{}, fmt.Errorf("IP autodetection method %s: the Kubernetes Node's InternalIP %s is not on any host interface: %w", m, ip, ErrNotFound)
	}
	return Detection{Prefix: p, Interface: name}, nil
}

func methodVar(family int) string {
	if family == 6 {
		return EnvIPv6Method
	}
	return EnvIPv4Method
}
