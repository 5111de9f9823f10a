// Package cni is the platform-neutral half of tortie's CNI plugin and IPAM plugin: the network
// configuration (Calico's keys, ParseNetConf), CNI_ARGS, pod annotations, errors with CNI codes, and
// the plugin logic (Plugin: Add, Del, Check, GC, Status and the IPAM plugin's commands) over small
// seams that each platform fills:
//
//   - PodNetwork: the pod's interface (linux/cni's veth pairs; windows/cni's HNS endpoints), optionally
//     with GC (PodNetworkGC), a readiness check for STATUS (PodNetworkStatus), the answer to a
//     repeated ADD (PodNetworkExisting) and containers that join another's network and own nothing
//     (PodNetworkJoin: Docker's application containers on Windows);
//   - Locker: the host-wide IPAM lock (flock on Linux);
//   - IPAM: common/ipam's Client, in-process;
//   - Delegate: another IPAM plugin executed from CNI_PATH;
//   - PodSource: pods and namespaces from the Kubernetes API (KubePods), or none.
//
// Contracts: Add is all-or-nothing (any failure after allocating releases the addresses and removes
// the interface; a panic becomes error 999 after the same rollback); Del is idempotent; every command
// is bounded (DefaultTimeout) and every error a *types.Error whose code the runtime can act on (11 to
// retry). A Plugin serves one command and is not safe for concurrent use; separate invocations on one
// host are serialised around IPAM by the Locker. docs/cni.md describes the behaviour for operators.
package cni
