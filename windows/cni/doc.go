// Package cni is the Windows half of tortie's CNI plugin: a pod's network is an HNS endpoint in the
// node's overlay network (common/config.HNSOverlayNetwork, created by tortie-node's Windows dataplane),
// behind the same common/cni.PodNetwork seam that linux/cni fills with veth pairs. It is plain Go,
// built on every OS and tested on Linux against windows/hcnfake.
//
// One PodNetwork serves one invocation, for one container (the sandbox), whose ID it is built with:
//
//   - ADD (Setup) creates the endpoint "<sandbox ID>_<network>" with the pod's address (inside the
//     network's subnet, the node's IPAM block), the block's gateway, a MAC derived from the address
//     (vxlan_mac_prefix, default 0E-2A, then the four address bytes; or the pod's hwAddr annotation),
//     the resolver configuration, and the policies a pod needs before the agent's first pass: the
//     network's ProviderAddress, OutBoundNAT (when the pod's pool has natOutgoing; exceptions: every
//     pool and service range) and an SDNRoute per service range — the ones windows/dataplane renders
//     (PodNATPolicies) — and, unless windows_disable_default_deny_all_policy, an inbound deny-all ACL
//     that the agent's rendered policy replaces. It then attaches the endpoint: to the HNS namespace
//     named by CNI_NETNS (containerd's flow: the netns is the sandbox's HostComputeNamespace GUID), or
//     to the infra container CNI_CONTAINERID by hot attach (the Docker flow: CNI_NETNS "none" or
//     empty). A failure removes what it created: no endpoint is left behind. With
//     windows_loopback_DSR, and where HNS supports DSR, the endpoint also gets OutBoundNAT with the
//     pod's address as its Destination (loopback DSR).
//   - An application container of a Docker pod (CNI_NETNS "container:<infra ID>", cnicore.PodNetworkJoin)
//     owns nothing: its ADD hot-attaches the infra container's endpoint to it (none: code 3, nothing
//     created), its DEL hot-detaches it; the infra container's DEL deletes the endpoint.
//   - DEL (Teardown) detaches and deletes that endpoint; a missing endpoint, network or HNS object is
//     success, and a second DEL is too.
//   - CHECK compares the endpoint with the ADD result; GC deletes this network's pod endpoints whose
//     sandbox is not among the runtime's valid attachments; STATUS says whether the overlay network
//     exists.
//
// The network itself is never created here: it needs the node's block, VNI and VTEP MAC, which the
// agent owns. An ADD before it exists fails with code 11 (try again later).
package cni
