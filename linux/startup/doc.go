//go:build linux

// Package startup is the Linux side of node startup. The decisions themselves are platform-neutral and
// live in common/startup/autodetect (node name and node IP autodetection, Calico's IP /
// IP_AUTODETECTION_METHOD semantics) and common/startup/mtu (host, tunnel and pod MTU, the MTU file);
// on Linux they read the host through the standard library (net.Interfaces, a UDP connect), which sees
// the network namespace of the calling OS thread.
//
// This package proves that against the real kernel: its tests build a throwaway network namespace with
// uplink-like veths, a docker bridge, a cali workload veth, tortie's VXLAN device and a link without
// carrier, give them IPv4 and IPv6 addresses, routes and MTUs, and run every autodetection method and
// the MTU detection inside it. They need root (CAP_NET_ADMIN) and skip otherwise.
package startup
