// Package autodetect decides a node's identity at startup the way Calico's calico-node does, so that
// Calico manifests keep working: the node name (NODENAME, the stored nodename file, HOSTNAME, the OS
// hostname) and the node's IPv4 and IPv6 addresses (IP / IP6 and IP_AUTODETECTION_METHOD /
// IP6_AUTODETECTION_METHOD). Every Calico variable has a TORTIE_-prefixed alias that wins when both are
// set.
//
// It is platform-neutral: it runs on Linux and Windows nodes and only uses the standard library to look
// at the host (net.Interfaces, a UDP "connect" for can-reach). The two seams are InterfaceSource (the
// host's interfaces, with SystemInterfaces for the real host and StaticInterfaces for tests) and
// NodeAddressSource (the Kubernetes Node's InternalIPs, implemented by the caller with client-go).
//
// Autodetection methods (ParseMethod):
//
//	first-found                 default; skips docker*, cbr*, dummy*, podman*, virbr*, lxcbr*, veth*,
//	                            lo*, br-*, cali*, tunl*, flannel*, kube-ipvs*, cni*, vxlan.calico*,
//	                            vxlan-v6.calico*, wireguard.cali*, wg-v6.cali*, nodelocaldns*, and
//	                            tortie's vxlan.tortie* / vxlan-v6.tortie* (DefaultExclusions; Windows
//	                            has Calico's Windows list)
//	interface=REGEX[,REGEX…]    only interfaces whose name matches a regex; no default exclusions
//	skip-interface=REGEX[,…]    first-found with extra exclusions
//	cidr=CIDR[,CIDR…]           the first global-unicast address inside one of the CIDRs, any interface
//	can-reach=IP|HOST           the source address the OS picks towards IP|HOST (no packet is sent)
//	kubernetes-internal-ip      the Kubernetes Node's InternalIP of the family
//
// Mechanics shared by all of them, Calico's: interfaces are walked in reverse of the order the OS lists
// them; regex lists are OR-ed and unanchored (MatchString, so "eth" matches "veth0"); the first
// global-unicast address of the family on the first qualifying interface wins; the answer keeps the
// interface's prefix length (10.0.0.5/24). Interface up/down state is ignored, as in Calico.
//
// Decisions where Calico is loose or the brief left a choice:
//   - ParseMethod rejects what Calico would only trip over later: bad regexes or CIDRs, empty lists,
//     an empty can-reach destination, trailing text after kubernetes-internal-ip.
//   - IP=ADDR without a prefix length takes the length from the interface holding ADDR; if no interface
//     holds it the address is used as /32 (/128) with a Warning, as Calico does, because a node may
//     legitimately be reached by an address it does not hold (1:1 NAT, VIP). IP6=ADDR is completed the
//     same way (Calico does not complete IPv6).
//   - IP=none / IP6=none keep an address already stored on the Node (Calico's behaviour); they only stop
//     detection and configuration.
//   - When a TORTIE_ name and its Calico name are both set, the TORTIE_ one wins.
//
// Not here: writing the nodename file, conflict checks against other Nodes (DISABLE_NODE_IP_CHECK) and
// periodic re-detection (monitor-addresses); the startup command does those with the results.
package autodetect
