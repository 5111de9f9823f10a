//go:build linux

package dataplane

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
)

// Chain names. Every name starts with config.ChainPrefix; docs/dataplane-linux.md lists them.
const (
	chainInput       = config.ChainPrefix + "INPUT"
	chainForward     = config.ChainPrefix + "FORWARD"
	chainOutput      = config.ChainPrefix + "OUTPUT"
	chainPrerouting  = config.ChainPrefix + "PREROUTING"
	chainPostrouting = config.ChainPrefix + "POSTROUTING"
	chainFromWL      = config.ChainPrefix + "from-wl-dispatch"
	chainToWL        = config.ChainPrefix + "to-wl-dispatch"
	chainWLToHost    = config.ChainPrefix + "wl-to-host"
	chainFromHEP     = config.ChainPrefix + "from-hep-dispatch"
	chainToHEP       = config.ChainPrefix + "to-hep-dispatch"
	chainFromHEPFwd  = config.ChainPrefix + "from-hep-fwd"
	chainToHEPFwd    = config.ChainPrefix + "to-hep-fwd"
	chainFailsafeIn  = config.ChainPrefix + "failsafe-in"
	chainFailsafeOut = config.ChainPrefix + "failsafe-out"
	chainNATOutgoing = config.ChainPrefix + "nat-outgoing"
)

// IP set names of the pools (NAT outgoing): every pool, and the natOutgoing ones.
func poolsSetName(fam int) string { return fmt.Sprintf("%s%dpools", config.IPSetPrefix, fam) }
func masqSetName(fam int) string  { return fmt.Sprintf("%s%dmasq", config.IPSetPrefix, fam) }

// hostsSetName names the IP set of the nodes' underlay addresses (tunnel packets from and to them pass
// host endpoint policy).
func hostsSetName(fam int) string { return fmt.Sprintf("%s%dhosts", config.IPSetPrefix, fam) }

// hashName appends a URL-safe hash of key to prefix, cut so that the name has at most max characters.
func hashName(prefix, key string, max int) string {
	sum := sha256.Sum256([]byte(key))
	h := base64.RawURLEncoding.EncodeToString(sum[:])
	return prefix + h[:max-len(prefix)]
}

// setName names the kernel IP set of one family of a dpmodel IP set ("tortie-4s<hash>").
func setName(fam int, id string) string {
	return hashName(fmt.Sprintf("%s%ds", config.IPSetPrefix, fam), id, config.MaxIPSetNameLen)
}

// netsSetName names the IP set that holds a rule's list of CIDRs ("tortie-4n<hash>").
func netsSetName(fam int, nets []netip.Prefix) string {
	var b strings.Builder
	for _, n := range nets {
		b.WriteString(n.String() + ",")
	}
	return hashName(fmt.Sprintf("%s%dn", config.IPSetPrefix, fam), b.String(), config.MaxIPSetNameLen)
}

// Policy and profile chains: "tortie-pi-<hash>" (inbound) and "tortie-po-<hash>" (outbound);
// "tortie-pri-<hash>" and "tortie-pro-<hash>" for profiles. The hash is of the ID, so the name is
// stable across restarts and shared by every endpoint that uses the policy.
func policyChain(id dpmodel.PolicyID, inbound bool) string {
	p := "po-"
	if inbound {
		p = "pi-"
	}
	return hashName(config.ChainPrefix+p, id.String(), config.MaxChainNameLen)
}

func profileChain(id string, inbound bool) string {
	p := "pro-"
	if inbound {
		p = "pri-"
	}
	return hashName(config.ChainPrefix+p, id, config.MaxChainNameLen)
}

// Endpoint chains: "tortie-tw-<iface>" (to a workload: its ingress policy), "tortie-fw-<iface>" (from
// a workload: its egress policy); for host endpoints "tortie-fh-" (from the host endpoint: traffic
// arriving on it), "tortie-th-" (to it: leaving through it), "tortie-fhfw-" / "tortie-thfw-" for
// forwarded traffic (applyOnForward); the host endpoint "*" (all interfaces) uses "any" without a dash.
func endpointChain(kind, iface string) string {
	if iface == "*" {
		return config.ChainPrefix + kind + "any"
	}
	return config.ChainPrefix + kind + "-" + iface
}

// dispatchSubchain is one branch of the dispatch tree: the endpoints whose interface starts with
// prefix+c.
func dispatchSubchain(base string, c byte) string { return fmt.Sprintf("%s-%c", base, c) }
