package ipam

import (
	"encoding/json"
	"net/netip"
	"strings"
	"unicode"

	"github.com/tortie-net/tortie/common/api"
)

// PoolSelection is what a pod's (and its namespace's) annotations ask of IPAM.
type PoolSelection struct {
	// IPv4Pools and IPv6Pools are pool names or CIDRs for AutoAssignArgs; nil when not annotated.
	IPv4Pools []string `json:"ipv4Pools,omitempty"`
	IPv6Pools []string `json:"ipv6Pools,omitempty"`
	// IPAddrs are specific addresses for AssignIP (at most one per IP version); nil when not annotated.
	IPAddrs []netip.Addr `json:"ipAddrs,omitempty"`
	// Sources say where each setting came from ("pod" or "namespace"), keyed by annotation.
	Sources map[string]string `json:"sources,omitempty"`
}

// ParsePoolAnnotations reads Calico's IPAM annotations:
//
//   - cni.projectcalico.org/ipv4pools and cni.projectcalico.org/ipv6pools: a JSON list of pool names
//     or CIDRs. The pod's annotation wins over its namespace's, each key on its own. CIDRs must be of
//     the annotation's IP version.
//   - cni.projectcalico.org/ipAddrs: a JSON list of addresses, at most one IPv4 and one IPv6, read from
//     the pod only. It cannot be combined with the pod's pool annotations.
//
// (The CNI network configuration's pools come next in precedence; all matching pools last.) Errors are
// *AnnotationError, naming the annotation and whether it was the pod's or the namespace's, and wrap
// ErrInvalidAnnotation.
func ParsePoolAnnotations(podAnnotations, namespaceAnnotations map[string]string) (PoolSelection, error) {
	var sel PoolSelection
	pick := func(key string) (string, string, bool) {
		if v, ok := podAnnotations[key]; ok {
			return v, "pod", true
		}
		if v, ok := namespaceAnnotations[key]; ok {
			return v, "namespace", true
		}
		return "", "", false
	}
	note := func(key, src string) {
		if sel.Sources == nil {
			sel.Sources = map[string]string{}
		}
		sel.Sources[key] = src
	}
	for _, f := range []struct {
		key string
		ver int
		out *[]string
	}{
		{api.AnnotationIPv4Pools, 4, &sel.IPv4Pools},
		{api.AnnotationIPv6Pools, 6, &sel.IPv6Pools},
	} {
		v, src, ok := pick(f.key)
		if !ok {
			continue
		}
		pools, err := parsePoolList(f.key, src, v, f.ver)
		if err != nil {
			return PoolSelection{}, err
		}
		*f.out = pools
		note(f.key, src)
	}
	if v, ok := podAnnotations[api.AnnotationIPAddrs]; ok {
		for _, other := range []string{api.AnnotationIPv4Pools, api.AnnotationIPv6Pools} {
			if _, both := podAnnotations[other]; both {
				return PoolSelection{}, &AnnotationError{Annotation: api.AnnotationIPAddrs, Source: "pod", Value: v,
					Reason: "cannot be combined with " + other + " on the same pod; use one or the other"}
			}
		}
		addrs, err := parseIPAddrs(v)
		if err != nil {
			return PoolSelection{}, err
		}
		sel.IPAddrs = addrs
		sel.IPv4Pools, sel.IPv6Pools = nil, nil // specific addresses replace any namespace pools
		delete(sel.Sources, api.AnnotationIPv4Pools)
		delete(sel.Sources, api.AnnotationIPv6Pools)
		note(api.AnnotationIPAddrs, "pod")
	}
	return sel, nil
}

// parseStringList decodes a JSON list of strings.
func parseStringList(key, src, v string) ([]string, error) {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, &AnnotationError{Annotation: key, Source: src, Value: v,
			Reason: `must be a JSON list of strings, e.g. ["pool-a", "10.0.0.0/16"]: ` + err.Error()}
	}
	return list, nil
}

func parsePoolList(key, src, v string, ver int) ([]string, error) {
	list, err := parseStringList(key, src, v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		e = strings.TrimSpace(e)
		bad := func(reason string) error {
			return &AnnotationError{Annotation: key, Source: src, Value: v, Reason: "entry " + quote(e) + ": " + reason}
		}
		switch {
		case e == "":
			return nil, bad("an entry is empty; give a pool name or CIDR")
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, bad("not a valid CIDR (" + err.Error() + ")")
			}
			if p.Addr().Is4() != (ver == 4) {
				return nil, bad("is not an IPv" + string(rune('0'+ver)) + " CIDR; put it in the other family's annotation")
			}
		case strings.IndexFunc(e, unicode.IsSpace) >= 0:
			return nil, bad("a pool name cannot contain spaces")
		default:
			if _, err := netip.ParseAddr(e); err == nil {
				return nil, bad("is an address, not a pool; give a pool name or CIDR, or use " + api.AnnotationIPAddrs)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func parseIPAddrs(v string) ([]netip.Addr, error) {
	key := api.AnnotationIPAddrs
	list, err := parseStringList(key, "pod", v)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	var have4, have6 bool
	for _, e := range list {
		e = strings.TrimSpace(e)
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, &AnnotationError{Annotation: key, Source: "pod", Value: v, Reason: "entry " + quote(e) + " is not an IP address (no prefix length)"}
		}
		a = a.Unmap()
		if a.Is4() && have4 || a.Is6() && have6 {
			return nil, &AnnotationError{Annotation: key, Source: "pod", Value: v, Reason: "at most one IPv4 and one IPv6 address may be given"}
		}
		have4, have6 = have4 || a.Is4(), have6 || a.Is6()
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &AnnotationError{Annotation: key, Source: "pod", Value: v, Reason: "the list is empty; give at least one address or remove the annotation"}
	}
	return out, nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
