// Package dataplane is tortie's Windows dataplane: it implements platform.Dataplane on the Host
// Networking Service through windows/hcn, and is built and tested on every OS (against windows/hcnfake
// off Windows).
//
// # HNS objects
//
//   - The "tortie-external" network (Overlay, 192.168.255.0/30), created once and never deleted but by
//     Cleanup: creating the first HNS network creates the Hyper-V vSwitch, which re-binds the host NIC
//     and cuts the node off for seconds; with it in place the real network can be recreated without
//     that blip.
//   - The "tortie-vxlan" Overlay network: this node's IPAM block as its one Static subnet (gateway the
//     block's first address), VSID = FelixConfiguration vxlanVNI (≥ 4096, HNS's limit), a VxlanPort
//     policy when vxlanPort is not 4789 (HNS ≥ 10.3), HostRoute where HNS has it. HNS gives it a
//     distributed router MAC: with the block's first address it is this node's VTEP, handed to
//     Options.OnVTEP whenever it changes; the agent publishes it on the Node (spec.ipv4VXLANTunnelAddr,
//     spec.vxlanTunnelMACAddr) so that Linux nodes can reach this node's pods.
//   - One RemoteSubnetRoute network policy per remote block (and borrowed address) whose node has a
//     VTEP: the node's underlay address and VTEP MAC, the VNI.
//   - The "tortie-vxlan_ep" remote endpoint at the block's third address, with the host's provider
//     address: host → pod traffic.
//   - On each pod endpoint (created by the CNI; found by address): EncapOverhead (the MTU), OutBoundNAT
//     when the pod's pool has natOutgoing (exceptions: every pool and the service ranges), an SDNRoute
//     with NeedEncap per service range, and the ACLs. Other policies on the endpoint are kept as found
//     (the CNI's ProviderAddress, and its loopback DSR OutBoundNAT: the one with Destinations).
//     All of it is written in one ApplyEndpointPolicy Update call, only when it differs from what HNS
//     holds: re-applying ACLs resets the endpoint's connections.
//   - SetPolicy IP sets (HNS ≥ 13.0) for rules whose address match is exactly one selector; otherwise,
//     and on older HNS, members are listed in the ACLs, chunked to Options.ChunkSize.
//
// # Policy to ACLs
//
// HNS evaluates ACLs by priority, not in order, breaks ties its own way, and has no tiers, Pass, Log,
// negation or ICMP type matches. For each endpoint and direction the tiers, policies and profiles are
// flattened into one first-match decision list (a Pass in tier N is replaced by tier N+1's rules
// restricted to the Pass rule's match; a profile is a tier whose end passes on; the end is a deny),
// and the list becomes ACLs whose priorities rise only where the action changes. Negated nets,
// selectors and ports are exact (complements of CIDR and port lists); so are notProtocol without
// protocol and negated named ports (the excluded packets are sent on to the rule's successors before the
// rule). What cannot be expressed (ICMP type/code, ports with SCTP) is approximated towards deny — an
// Allow narrowed, a Deny widened, a Pass turned into a Deny — and each such rule is logged once and
// counted in Status().Gaps. Inbound traffic from the host's own addresses is allowed first, as on Linux
// (kubelet probes); outbound traffic to them is denied first under DefaultEndpointToHostAction Drop.
// Host endpoint policy cannot be enforced for the host's own traffic (no HNS object sees it). For pods'
// traffic through the host, host endpoints' applyOnForward tiers are flattened in front of the pod's
// as gates (an Allow there continues with the pod's stages); preDNAT or doNotTrack policy denies it.
package dataplane
