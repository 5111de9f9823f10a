package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/windows/hcn"
)

// DefaultMACPrefix starts the MAC of every pod endpoint (Calico's vxlan_mac_prefix default).
const DefaultMACPrefix = "0E-2A"

// Conf is the Windows part of the network configuration: Calico's Windows keys, read from the same
// document as common/cni.NetConf.
type Conf struct {
	// ServiceCIDRs are the cluster's service ranges: exceptions of the pod's OutBoundNAT and an SDNRoute
	// each (NeedEncap), so that service traffic goes to kube-proxy's load balancers. They come from the
	// "policies" list: the DestinationPrefix of ROUTE/SDNROUTE entries and the ExceptionList of
	// OutBoundNAT entries (Calico's Windows template puts the service range in both).
	ServiceCIDRs []netip.Prefix
	// MACPrefix is the first two bytes of pod MACs (vxlan_mac_prefix, "0E-2A").
	MACPrefix [2]byte
	// DefaultDeny adds an inbound deny-all ACL to a new endpoint until the agent renders its policy
	// (on unless windows_disable_default_deny_all_policy).
	DefaultDeny bool
	// LoopbackDSR (windows_loopback_DSR) gives each pod endpoint an OutBoundNAT policy whose
	// Destinations is the pod's own address, so that a pod reaching itself through a service keeps its
	// address as the source (kube-proxy with WinDSR); only where HNS supports DSR.
	LoopbackDSR bool
	// DNS is the "dns" section, given to the endpoint.
	DNS *hcn.DNS
	// Ignored lists Calico keys accepted but not acted on.
	Ignored []string
}

type rawWindowsConf struct {
	Mode                              string          `json:"mode"`
	VXLANMACPrefix                    string          `json:"vxlan_mac_prefix"`
	VXLANVNI                          json.RawMessage `json:"vxlan_vni"`
	WindowsDisableDefaultDenyAll      json.RawMessage `json:"windows_disable_default_deny_all_policy"`
	WindowsUseSingleNetwork           json.RawMessage `json:"windows_use_single_network"`
	WindowsLoopbackDSR                json.RawMessage `json:"windows_loopback_DSR"`
	WindowsDisableHostSubnetNATExclus json.RawMessage `json:"windows_disable_host_subnet_nat_exclusion"`
	Policies                          []struct {
		Name  string          `json:"Name"`
		Value json.RawMessage `json:"Value"`
	} `json:"policies"`
}

// policyValue is one entry's Value: v1 keys (ExceptionList, DestinationPrefix at the top) or v2 ones
// (Settings.Exceptions, Settings.DestinationPrefix).
type policyValue struct {
	Type              string   `json:"Type"`
	ExceptionList     []string `json:"ExceptionList"`
	DestinationPrefix string   `json:"DestinationPrefix"`
	NeedEncap         *bool    `json:"NeedEncap"`
	Settings          struct {
		Exceptions        []string `json:"Exceptions"`
		DestinationPrefix string   `json:"DestinationPrefix"`
		NeedEncap         *bool    `json:"NeedEncap"`
	} `json:"Settings"`
}

func invalid(key, format string, args ...any) error {
	return cnicore.Errorf(cnicore.CodeInvalidConfig, "invalid network configuration: %q %s", key, fmt.Sprintf(format, args...))
}

// parseBool reads a JSON boolean or a string "true"/"false"; absent is def.
func parseBool(key string, raw json.RawMessage, def bool) (bool, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return def, nil
	}
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalid(key, "is %s: it must be true or false", raw)
	}
	return v, nil
}

// ParseConf reads the Windows keys of c. Errors are *types.Error naming the key and the fix (code 7, or 2
// for a setting tortie does not implement).
func ParseConf(c *cnicore.NetConf) (Conf, error) {
	var raw rawWindowsConf
	if err := json.Unmarshal(c.Bytes, &raw); err != nil {
		return Conf{}, invalid("policies", "cannot be read: %v (a list of {\"Name\": \"EndpointPolicy\", \"Value\": {...}})", err)
	}
	out := Conf{}
	switch strings.ToLower(raw.Mode) {
	case "", "vxlan":
	default:
		return Conf{}, cnicore.Errorf(cnicore.CodeUnsupportedField,
			"unsupported network configuration field \"mode\"=%q: tortie on Windows runs the VXLAN overlay only; set \"mode\": \"vxlan\" or remove the key", raw.Mode)
	}
	prefix := raw.VXLANMACPrefix
	if prefix == "" {
		prefix = DefaultMACPrefix
	}
	b, err := parseMACPrefix(prefix)
	if err != nil {
		return Conf{}, invalid("vxlan_mac_prefix", "is %q: write two hexadecimal bytes as \"0E-2A\"", raw.VXLANMACPrefix)
	}
	out.MACPrefix = b
	disable, err := parseBool("windows_disable_default_deny_all_policy", raw.WindowsDisableDefaultDenyAll, false)
	if err != nil {
		return Conf{}, err
	}
	out.DefaultDeny = !disable
	if out.LoopbackDSR, err = parseBool("windows_loopback_DSR", raw.WindowsLoopbackDSR, false); err != nil {
		return Conf{}, err
	}
	if single, err := parseBool("windows_use_single_network", raw.WindowsUseSingleNetwork, true); err != nil {
		return Conf{}, err
	} else if !single {
		return Conf{}, cnicore.Errorf(cnicore.CodeUnsupportedField,
			"unsupported network configuration field \"windows_use_single_network\"=false: tortie keeps one HNS network per node (kube-proxy on Windows expects it); remove the key")
	}
	for _, k := range []struct {
		key string
		raw json.RawMessage
	}{{"vxlan_vni", raw.VXLANVNI}, {"windows_disable_host_subnet_nat_exclusion", raw.WindowsDisableHostSubnetNATExclus}} {
		if len(k.raw) > 0 && string(k.raw) != "null" {
			out.Ignored = append(out.Ignored, k.key)
		}
	}

	seen := map[netip.Prefix]bool{}
	addService := func(key, s string) error {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is4() {
			return invalid(key, "has %q, which is not an IPv4 CIDR: list the cluster's service range, e.g. \"10.96.0.0/12\"", s)
		}
		if p = p.Masked(); !seen[p] {
			seen[p] = true
			out.ServiceCIDRs = append(out.ServiceCIDRs, p)
		}
		return nil
	}
	for i, pol := range raw.Policies {
		key := fmt.Sprintf("policies[%d]", i)
		if pol.Name != "EndpointPolicy" {
			return Conf{}, invalid(key+".Name", "is %q: tortie reads only \"EndpointPolicy\" entries", pol.Name)
		}
		var v policyValue
		if err := json.Unmarshal(pol.Value, &v); err != nil {
			return Conf{}, invalid(key+".Value", "cannot be read: %v", err)
		}
		switch strings.ToUpper(v.Type) {
		case "OUTBOUNDNAT":
			for _, e := range append(v.ExceptionList, v.Settings.Exceptions...) {
				if err := addService(key+".Value.ExceptionList", e); err != nil {
					return Conf{}, err
				}
			}
		case "ROUTE", "SDNROUTE":
			dst := v.DestinationPrefix
			if dst == "" {
				dst = v.Settings.DestinationPrefix
			}
			if err := addService(key+".Value.DestinationPrefix", dst); err != nil {
				return Conf{}, err
			}
			if (v.NeedEncap != nil && !*v.NeedEncap) || (v.Settings.NeedEncap != nil && !*v.Settings.NeedEncap) {
				return Conf{}, cnicore.Errorf(cnicore.CodeUnsupportedField,
					"unsupported network configuration field %q=false: service routes on the overlay always need encapsulation; set it to true", key+".Value.NeedEncap")
			}
		default:
			return Conf{}, cnicore.Errorf(cnicore.CodeUnsupportedField,
				"unsupported network configuration field %q=%q: tortie derives a pod's endpoint policies itself and reads only OutBoundNAT and ROUTE/SDNROUTE entries (the service range); remove the entry",
				key+".Value.Type", v.Type)
		}
	}
	if len(c.DNS.Nameservers) > 0 || len(c.DNS.Search) > 0 || c.DNS.Domain != "" {
		out.DNS = &hcn.DNS{Domain: c.DNS.Domain, Search: c.DNS.Search, ServerList: c.DNS.Nameservers, Options: c.DNS.Options}
	}
	return out, nil
}

func parseMACPrefix(s string) ([2]byte, error) {
	var out [2]byte
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == ':' })
	if len(parts) != 2 {
		return out, fmt.Errorf("want two bytes")
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return out, fmt.Errorf("byte %q", p)
		}
		out[i] = byte(v)
	}
	return out, nil
}
