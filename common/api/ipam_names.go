package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// Names of IPAM objects. Calico derives them from the objects' contents (a block from its CIDR, an
// affinity from its node and CIDR, a handle from its ID); tortie derives them the same way so that both
// find the same objects in the Kubernetes datastore, and the etcd datastore, whose keys hold the contents
// rather than the names, can turn one into the other.

// IPAMHandleName is the name of the IPAMHandle object of a handle ID: the ID in lower case, as Calico
// names it, when that is a valid object name (pods' "<network>.<containerID>", "ipip-tunnel-addr-<node>").
// Other IDs, which Calico cannot store in the Kubernetes datastore at all, get a name of valid
// characters made unique by 16 hex digits of the SHA-256 of the ID. Two IDs that differ only in case
// share a name, as they do in Calico.
func IPAMHandleName(handleID string) string {
	if lower := strings.ToLower(handleID); len(content.IsDNS1123Subdomain(lower)) == 0 {
		return lower
	}
	var b strings.Builder
	for _, r := range strings.ToLower(handleID) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	sum := sha256.Sum256([]byte(handleID))
	base := strings.Trim(b.String(), "-.")
	if len(base) > 200 {
		base = strings.Trim(base[:200], "-.")
	}
	if base == "" {
		base = "handle"
	}
	return base + "-" + hex.EncodeToString(sum[:])[:16]
}

// HashedIPAMHandleName reports whether name has the form IPAMHandleName gives IDs that are not valid
// object names (it ends in "-" and 16 hex digits). Any other name is the lower-cased ID.
func HashedIPAMHandleName(name string) bool {
	i := len(name) - 17
	return i > 0 && name[i] == '-' && isLowerHex(name[i+1:])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return s != ""
}

// ParseCIDRName inverts CIDRToName: "10-0-0-0-26" is 10.0.0.0/26 and "fd00---122" is fd00::/122. It
// accepts only names that CIDRToName gives for a masked prefix, so one name never means two blocks.
func ParseCIDRName(name string) (netip.Prefix, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return netip.Prefix{}, false
	}
	addr, bits := name[:i], name[i+1:]
	var s string
	if strings.Count(addr, "-") == 3 && !strings.Contains(addr, "--") {
		s = strings.ReplaceAll(addr, "-", ".") + "/" + bits
	} else {
		s = strings.ReplaceAll(addr, "-", ":") + "/" + bits
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p != p.Masked() || CIDRToName(p.String()) != name {
		return netip.Prefix{}, false
	}
	return p, true
}

// BlockAffinityNameParts are a host and block CIDR that BlockAffinityName turns into a given name.
//
// +k8s:deepcopy-gen=false
type BlockAffinityNameParts struct {
	Host string
	CIDR netip.Prefix
}

// SplitBlockAffinityName returns every (host, CIDR) that BlockAffinityName turns into name, shortest
// CIDR name first. Names are "<host>-<cidr name>" and both parts may contain '-', so a name can have
// more than one reading ("n-fd00-1---122" is host "n-fd00" with 1::/122, and host "n" with
// fd00:1::/122); callers
// look each one up. A shortened name (see BlockAffinityName) has none: it keeps only a prefix of the
// host, which ShortenedBlockAffinityName returns.
func SplitBlockAffinityName(name string) []BlockAffinityNameParts {
	var out []BlockAffinityNameParts
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '-' {
			continue
		}
		host := name[:i]
		p, ok := ParseCIDRName(name[i+1:])
		if !ok || host == "" {
			continue
		}
		if BlockAffinityName(host, p.String()) == name {
			out = append(out, BlockAffinityNameParts{Host: host, CIDR: p})
		}
	}
	return out
}

// ShortenedBlockAffinityName returns, for a name that may be a shortened BlockAffinityName, each
// reading of it: the prefix of the host that it keeps (Host) and the CIDR. The full host starts with
// that prefix; callers compare BlockAffinityName of each candidate with name.
func ShortenedBlockAffinityName(name string) []BlockAffinityNameParts {
	const hashLen = 11
	if len(name) != maxNameLength-1 || name[len(name)-hashLen-1] != '-' || !isLowerHex(name[len(name)-hashLen:]) {
		return nil
	}
	rest := name[:len(name)-hashLen-1]
	var out []BlockAffinityNameParts
	for i := len(rest) - 1; i > 0; i-- {
		if rest[i] != '-' {
			continue
		}
		p, ok := ParseCIDRName(rest[i+1:])
		if ok && i == maxNameLength-1-len(rest[i+1:])-13 {
			out = append(out, BlockAffinityNameParts{Host: rest[:i], CIDR: p})
		}
	}
	return out
}
