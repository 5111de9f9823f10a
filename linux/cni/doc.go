//go:build linux

// Package cni is the Linux half of the tortie CNI plugin: [PodNetwork]
// implements common/cni's PodNetwork seam and plumbs a pod's
// network interface. The platform-neutral half (netconf parsing, IPAM, the
// CNI result) lives in common/cni; cmd/tortie-cni glues the two together.
//
// The wiring is Calico's, so a node can move between Calico and tortie
// without touching running pods:
//
//   - A veth pair per pod. The host end is named by [HostVethName]
//     ("cali" + 11 hex digits of SHA-1("<namespace>.<pod>")), has the fixed
//     MAC ee:ee:ee:ee:ee:ee and no IP address. The container end is moved into
//     the pod's network namespace and named by the request's ContainerIfName (eth0).
//     Both ends get the request's MTU.
//   - The pod gets its addresses as /32 and /128 and two routes,
//     "169.254.1.1/32 dev eth0 scope link" and "default via 169.254.1.1 dev
//     eth0", plus for IPv6 "default via fe80::ecee:eeff:feee:eeee dev eth0".
//     169.254.1.1 exists nowhere: the host end answers ARP for every address
//     (proxy_arp=1), so the pod's whole IPv4 world is one hop away. The IPv6
//     gateway is the host end's own EUI-64 link-local address, which follows
//     from the fixed MAC; Setup pins addr_gen_mode=0 (EUI-64) on the host end
//     so a node-wide stable_privacy setting cannot move it. DAD is off in the
//     pod (and its addresses carry IFA_F_NODAD) so they are usable at once.
//   - On the host end: route_localnet=1, neigh proxy_delay=0, proxy_arp=1,
//     forwarding=1; for IPv6 disable_ipv6=0, accept_dad=0, addr_gen_mode=0,
//     proxy_ndp=1, forwarding=1, accept_ra=0. IPv4 and IPv6 settings are only
//     written when the pod has an address of that family.
//   - One host route per pod address, "<ip>/32 dev caliXXX scope link" (and
//     /128), tagged with [RouteProtocol] so the dataplane can tell them apart
//     from routes it does not own.
//
// # Namespaces and threads
//
// The host side is the network namespace of the calling OS thread; the pod
// side is the namespace bind-mounted at the request's NetNS. A caller that has
// switched its thread into another namespace (ns.NetNS.Do, tests) must keep
// the thread locked (runtime.LockOSThread) for the duration of the call, as
// ns.Do does. The functions never change the namespace of the calling thread;
// they talk to the pod namespace through a netlink socket opened inside it (a
// linux/netlinkx Handle: every netlink call goes through that interface) and
// write its sysctls from a separate, locked, throwaway thread.
//
// # Contracts
//
// [PodNetwork.Setup] is all-or-nothing: when it returns an error, the veth pair (both
// ends) and any host route it added are gone again, so a failed CNI ADD never
// leaves an interface behind. It first deletes a stale host veth of the same
// name (the pod's previous sandbox: Calico semantics, the newest ADD wins) and
// refuses to replace a host interface that is not a veth or a host route to a
// pod address that points at another interface.
//
// [PodNetwork.Teardown] is idempotent: it succeeds when the namespace is gone, when the
// interfaces are gone, when called twice, and after a Setup that crashed half
// way. It deletes the container end (the kernel takes the host end with it)
// and a host veth of the given name only when that veth belongs to this
// sandbox or to none — never a newer sandbox's veth, which has the same name.
//
// [PodNetwork.Check] reports, in one error, everything that differs from what Setup
// would have built.
//
// Before returning, Setup waits until the kernel has activated both ends
// (operstate up). The kernel applies carrier changes asynchronously and
// drops what a device sends before that; without the wait about a quarter of
// new pods lost their first packets and stalled for a second. The wait
// usually takes well under a millisecond and gives up silently after two
// seconds.
//
// Concurrent calls for different pods are safe. Calls for the same pod must be
// serialised by the caller (the container runtime does this per sandbox).
// Every call is bounded: apart from that capped wait there are no waits or
// polls, and each netlink request times out after at most [NetlinkTimeout]
// (less when ctx has a nearer deadline). ctx is checked between steps and
// during the wait; Setup's rollback runs even after ctx is done.
package cni
