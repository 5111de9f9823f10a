//go:build linux

// Package e2e is tortie's end-to-end suite: it builds tortie-lab, tortie-node and tortie-cni, and
// drives real labs through tortie-lab's command line (the contract docs/lab.md documents) as root.
// The lab's own behaviour (up, pods through the real CNI plugin, probes, bad input refused leaving the
// lab as it was, down after a crash leaving nothing) is tested against whatever dataplane tortie-node
// has; the policy conformance cases across three nodes need the Linux dataplane and skip, saying so,
// while tortie-node runs only the fake one.
package e2e
