// Package controllers is tortie-controllers: the cluster-wide controllers Calico's kube-controllers
// run, leader-elected with a Kubernetes Lease so that exactly one replica acts at a time.
//
//   - node (NodeController): when a Kubernetes Node is deleted, its tortie Node (etcd datastore), block
//     affinities, tunnel addresses and pod addresses are released at once;
//   - ipam (IPAMGC): allocations without a live owner (pod, workload endpoint, node) are released once
//     two checks a grace period apart agree and the pod is confirmed gone right before the release.
//
// The etcd-mode mirroring controllers (namespace, serviceaccount, workloadendpoint, policy) are named
// and accepted in ENABLED_CONTROLLERS but not implemented yet: the Manager logs a warning for each.
//
// Liveness is a heartbeat from the running controllers (or from the election loop while standing by);
// readiness is true once the manager runs. Metrics are on a private Prometheus registry.
package controllers
