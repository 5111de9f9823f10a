package node

// Environment variables read by startup, with Calico's names, read under common/config's one alias
// rule: TORTIE_<base> (the CALICO_ or FELIX_ prefix replaced, or TORTIE_ put in front of a bare name)
// wins over the Calico name, and a bare name is also accepted as CALICO_<name> (CALICO_AS), which
// loses to both. The node name and address variables (NODENAME, IP, IP6, IP_AUTODETECTION_METHOD, …)
// are read by package autodetect, the MTU overrides (FELIX_IPINIPMTU, …) by package mtu, with the
// same rule.
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
