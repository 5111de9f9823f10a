// Package config holds tortie's agent configuration and, in this file, every identifier tortie owns on a
// host. Anything tortie creates is named from here, so that `tortie-node cleanup` removes exactly this
// and nothing an operator or another component made.
package config

const (
	// RouteProtocol tags every route tortie programs ("proto 116" in `ip route`). Routes are reconciled
	// by protocol: whatever carries it and is not desired is removed; anything else is left alone.
	// Not 3 (boot: what a plain `ip route add` and Calico's workload routes use, so it would claim
	// routes we did not make) and not 80 (Calico's Felix/BIRD, so a migration from Calico cannot
	// confuse the two). 116 is unused by the kernel, iproute2 and FRR.
	RouteProtocol = 116

	// DefaultInterfacePrefix is the host-side pod veth prefix. It is Calico's ("cali") on purpose:
	// FELIX_INTERFACEPREFIX, autodetection exclusions and existing host firewall rules written for
	// Calico keep working.
	DefaultInterfacePrefix = "cali"

	// VXLANDevice is the VXLAN tunnel device tortie creates for IPv4 ("vxlan.calico" in Calico); ours
	// differs so that both can be told apart during a migration.
	VXLANDevice = "vxlan.tortie"
	// VXLANDeviceV6 is the IPv6 VXLAN tunnel device.
	VXLANDeviceV6 = "vxlan-v6.tortie"

	// ChainPrefix starts every iptables chain tortie owns ("cali-" in Calico); chains are found and
	// removed by this prefix.
	ChainPrefix = "tortie-"
	// IPSetPrefix starts every ipset tortie owns (ipset names are limited to 31 characters).
	IPSetPrefix = "tortie-"
	// MaxChainNameLen and MaxIPSetNameLen are the kernel's limits (XT_EXTENSION_MAXNAMELEN - 1 and
	// IPSET_MAXNAMELEN - 1); longer names are hashed to fit.
	MaxChainNameLen = 28
	MaxIPSetNameLen = 31

	// RuleCommentPrefix starts the comment of every iptables rule tortie writes ("tortie:<hash>"). Hook
	// rules in the kernel's built-in chains, which tortie shares with other software, are recognised by
	// it: a rule without it is never edited, moved or deleted.
	RuleCommentPrefix = "tortie:"

	// Packet mark bits tortie uses on Linux while a packet crosses its chains (Calico's layout under
	// its default mask 0xffff0000, so the low 16 bits stay free for kube-proxy, Docker and Istio). Every
	// tortie chain clears them before use, so they carry no meaning outside one traversal.
	//
	// MarkAccept: a policy or profile allowed the packet in the direction being evaluated.
	MarkAccept = 0x10000
	// MarkPass: a Pass rule ended the tier being evaluated.
	MarkPass = 0x20000
	// MarkMask covers every bit above: the bits tortie clears.
	MarkMask = MarkAccept | MarkPass

	// HNSNetworkPrefix and HNSEndpointPrefix start the names of HNS objects tortie creates on Windows.
	HNSNetworkPrefix  = "tortie-"
	HNSEndpointPrefix = "tortie-"
	// HNSOverlayNetwork is the HNS Overlay (VXLAN) network that holds this node's pods.
	HNSOverlayNetwork = HNSNetworkPrefix + "vxlan"
	// HNSExternalNetwork is a throwaway Overlay network created once, before the real one, so that HNS
	// creates the Hyper-V vSwitch (and the host's connectivity blip) once; later re-creations of
	// HNSOverlayNetwork then do not cut the node off ("External" in Calico).
	HNSExternalNetwork = HNSNetworkPrefix + "external"
	// HNSHostEndpoint is the remote endpoint at the block's third address that carries host → pod
	// traffic in the overlay ("<network>_ep" in Calico).
	HNSHostEndpoint = HNSEndpointPrefix + "vxlan_ep"

	// CalicoStateDir is where Calico's node agent leaves the node name and MTU for the CNI plugin. tortie
	// reads and writes the same files so that a Calico CNI config keeps working.
	CalicoStateDir = "/var/lib/calico"
	// NodenameFile holds the node's name, written at start-up and read by the CNI plugin.
	NodenameFile = CalicoStateDir + "/nodename"
	// MTUFile holds the pod MTU the CNI plugin uses when its config sets none.
	MTUFile = CalicoStateDir + "/mtu"
	// IPAMLockFile serialises IPAM on a host across concurrent CNI invocations (Calico's path).
	IPAMLockFile = "/var/run/calico/ipam.lock"
	// StateDir holds tortie's own state (embedded etcd data by default).
	StateDir = "/var/lib/tortie"
)
