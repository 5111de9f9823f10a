//go:build linux

// Package routing is the routing half of the Linux dataplane: it turns the routes, VTEPs, hosts, pools
// and configuration that common/calc emits (dpmodel) into kernel state through linux/netlinkx:
//
//   - routes in the main table, every one tagged with config.RouteProtocol (116): a /32 (/128) per
//     local pod to its veth, a blackhole per local affine block, remote blocks, borrowed /32s and remote
//     tunnel addresses via the next hop the calculation chose (none, VXLAN, IPIP);
//   - the VXLAN devices (config.VXLANDevice for IPv4, config.VXLANDeviceV6 for IPv6) with Calico's VNI
//     (4096) and port (4789), so Windows nodes (HNS, VNI ≥ 4096) interoperate, this node's VTEP MAC and
//     tunnel address, and one permanent neighbour and FDB entry per remote VTEP;
//   - tunl0 (the ipip module's fallback device) with this node's IPIP tunnel address;
//   - the device MTUs and the pod MTU file (/var/lib/calico/mtu), from common/startup/mtu, the same
//     computation start-up uses, for the encapsulations in use now. The manager owns the file while the
//     agent runs (start-up only writes its initial value before the agent exists; see
//     docs/dataplane-linux.md, "MTU").
//
// A [Manager] is the reconciler: OnUpdate records desired state without I/O, Apply reads the kernel and
// writes only the difference, QueueResync makes the next Apply re-read and repair even when nothing
// changed, Cleanup removes what tortie owns. Ownership is by protocol (routes) and by name (devices):
// a route of any other protocol is never changed or removed, even when it holds a destination tortie
// wants (that is reported as an error for the route); start-up adopts what a predecessor left.
//
// Errors are per object: a route, device or entry the kernel refuses is reported (errors.Join, each
// naming the route and the reason) and retried by the next Apply; the others are still programmed.
package routing
