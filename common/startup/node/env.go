package node

import (
	"fmt"
	"strings"
)

// Environment variables read by startup, with Calico's names. Each has a TORTIE_ alias that wins when
// both are set: the CALICO_ or FELIX_ prefix is replaced by TORTIE_ (CALICO_IPV4POOL_CIDR →
// TORTIE_IPV4POOL_CIDR, FELIX_IPV6SUPPORT → TORTIE_IPV6SUPPORT), other names get TORTIE_ in front
// (AS → TORTIE_AS). The node name and address variables (NODENAME, IP, IP6, IP_AUTODETECTION_METHOD,
// …) are read by package autodetect with the same rule; the MTU overrides (FELIX_IPINIPMTU, …) by
// package mtu.
const (
	EnvAS                 = "AS"
	EnvDisableNodeIPCheck = "DISABLE_NODE_IP_CHECK"
	EnvK8sNodeRef         = "CALICO_K8S_NODE_REF"
	EnvNetworkingBackend  = "CALICO_NETWORKING_BACKEND"
	EnvClusterType        = "CLUSTER_TYPE"
	EnvNoDefaultPools     = "NO_DEFAULT_POOLS"
	EnvIPv6Support        = "FELIX_IPV6SUPPORT"

	EnvIPv4PoolCIDR             = "CALICO_IPV4POOL_CIDR"
	EnvIPv4PoolBlockSize        = "CALICO_IPV4POOL_BLOCK_SIZE"
	EnvIPv4PoolIPIP             = "CALICO_IPV4POOL_IPIP"
	EnvIPv4PoolVXLAN            = "CALICO_IPV4POOL_VXLAN"
	EnvIPv4PoolNATOutgoing      = "CALICO_IPV4POOL_NAT_OUTGOING"
	EnvIPv4PoolNodeSelector     = "CALICO_IPV4POOL_NODE_SELECTOR"
	EnvIPv4PoolDisableBGPExport = "CALICO_IPV4POOL_DISABLE_BGP_EXPORT"

	EnvIPv6PoolCIDR             = "CALICO_IPV6POOL_CIDR"
	EnvIPv6PoolBlockSize        = "CALICO_IPV6POOL_BLOCK_SIZE"
	EnvIPv6PoolVXLAN            = "CALICO_IPV6POOL_VXLAN"
	EnvIPv6PoolNATOutgoing      = "CALICO_IPV6POOL_NAT_OUTGOING"
	EnvIPv6PoolNodeSelector     = "CALICO_IPV6POOL_NODE_SELECTOR"
	EnvIPv6PoolDisableBGPExport = "CALICO_IPV6POOL_DISABLE_BGP_EXPORT"

	// Felix settings startup reads to decide which encapsulations (and so which MTU) the node uses.
	EnvIPIPEnabled                    = "FELIX_IPINIPENABLED"
	EnvVXLANEnabled                   = "FELIX_VXLANENABLED"
	EnvWireguardEnabled               = "FELIX_WIREGUARDENABLED"
	EnvWireguardEnabledV6             = "FELIX_WIREGUARDENABLEDV6"
	EnvWireguardHostEncryptionEnabled = "FELIX_WIREGUARDHOSTENCRYPTIONENABLED"
)

// Alias returns the TORTIE_ name of a Calico variable.
func Alias(name string) string {
	for _, p := range []string{"CALICO_", "FELIX_", "TORTIE_"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return "TORTIE_" + rest
		}
	}
	return "TORTIE_" + name
}

// lookup reads a Calico variable and its TORTIE_ alias (the alias wins) and returns the trimmed value and
// the name it came from; ("", "") when neither is set.
func lookup(env func(string) string, name string) (value, from string) {
	if v := strings.TrimSpace(env(Alias(name))); v != "" {
		return v, Alias(name)
	}
	if v := strings.TrimSpace(env(name)); v != "" {
		return v, name
	}
	return "", ""
}

// lookupBool reads a boolean variable. Accepted spellings (any case): true, t, yes, y, 1 and false, f,
// no, n, 0. Unset gives def. Anything else is an error naming the variable, so that a typo does not
// silently flip a setting.
func lookupBool(env func(string) string, name string, def bool) (bool, error) {
	v, from := lookup(env, name)
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "t", "yes", "y", "1":
		return true, nil
	case "false", "f", "no", "n", "0":
		return false, nil
	}
	return def, fmt.Errorf("%s=%q is not a boolean: use true or false (unset means %t)", from, v, def)
}
