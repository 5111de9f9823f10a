// Package controllers is tortie-controllers: the cluster-wide controllers Calico's kube-controllers
// run, leader-elected with a Kubernetes Lease so that exactly one replica acts at a time.
//
//   - node (NodeController): when a Kubernetes Node is deleted, its tortie Node (etcd datastore), block
//     affinities, tunnel addresses and pod addresses are released at once;
//
//   - ipam (IPAMGC): allocations without a live owner (pod, workload endpoint, node) are released once
//     two checks a grace period apart agree and the pod is confirmed gone right before the release.
//
//   - namespace, serviceaccount, policy, workloadendpoint (Mirror; etcd datastore only): Kubernetes
//     namespaces and service accounts become profiles kns.* and ksa.*, NetworkPolicies knp.default.*
//     policies, and pods' labels their workload endpoints' labels, so that DATASTORE_TYPE=etcdv3 clusters
//     get Kubernetes policy enforced (the Kubernetes datastore synthesises these on the fly).
//
// Liveness is a heartbeat from the running controllers (or from the election loop while standing by);
// readiness is true once the manager runs. Metrics are on a private Prometheus registry.
package controllers
