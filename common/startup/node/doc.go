// Package node is the node agent's one-shot startup, Calico's calico-node startup plus one run of its
// allocate-tunnel-addrs, with Calico's environment variables and behaviour so that Calico manifests keep
// working. Run decides the node name and addresses, registers the Node, creates the default IP pools and
// the cluster-wide default objects, reconciles the node's tunnel addresses, and writes the MTU and node
// name files the CNI plugin reads. docs/node-startup.md lists every variable and the order of steps.
//
// It is platform-neutral (Linux and Windows nodes): the host is seen through
// autodetect.InterfaceSource, the datastore through datastore.Backend, and the Kubernetes API (for
// kubeadm's pod subnet and the Node's InternalIP) through an optional kubernetes.Interface.
//
// Contracts:
//   - Idempotent: a second Run with the same environment and host writes nothing (Result.Changes is
//     empty). Files are rewritten only when their content differs, objects only when a field startup
//     owns differs.
//   - Safe with concurrent nodes: creating a default object another node created first is not an
//     error; every update is a compare-and-swap that is retried from a fresh read, and only sets the
//     fields startup owns, so other writers' fields survive.
//   - Errors name the variable, its value and the fix (for a bad CALICO_IPV4POOL_BLOCK_SIZE, an
//     address conflict, a missing Kubernetes Node, …).
//
// Every Calico variable has a TORTIE_ alias that wins when both are set (see Alias).
package node
