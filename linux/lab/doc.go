//go:build linux

// Package lab runs tortie-lab: a cluster of real tortie agents on one Linux machine. Each node is a
// network namespace on an underlay bridge in the root namespace, running `tortie-node run` as a
// detached process; the datastore is an etcd (embedded in a detached `tortie-lab serve-etcd`, or
// Debian's etcd) listening on the bridge; pods are network namespaces set up by the real tortie-cni
// through libcni inside their node's namespace, each running a detached `tortie-lab serve-pod` that
// answers TCP and UDP on the pod's declared ports.
//
// Every command is a separate process: what the lab made lives in a state directory (DefaultDir, or
// TORTIE_LAB_DIR) as state.json, with the processes' logs, the node files the agents write, the CNI
// configuration and cache, and the datastore's data. Commands serialise on an flock next to it.
//
// Names: the bridge is tlab0, every network namespace and every root-namespace link the lab creates
// starts with "tlab", and the one root-namespace iptables rule carries the comment "tortie-lab". Down
// removes by those names and by the state directory's path in processes' command lines, not only by
// what state.json records, so it also clears what a crashed lab left.
//
// Bad input is refused before anything changes; a step that fails part-way is rolled back (a pod
// whose CNI ADD worked but whose server did not start is deleted again), so the lab stays as it was.
package lab
