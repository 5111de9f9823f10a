// Package calc is the calculation graph: it turns the datastore syncer's stream (snapshot, then deltas)
// into one node's desired dataplane state as common/dpmodel updates, incrementally.
//
// Stages (docs/calc.md draws the graph):
//
//   - Entities: workload endpoints, host endpoints, NetworkSets and GlobalNetworkSets. Each carries the
//     labels selectors see: its own labels, Calico's computed ones (projectcalico.org/namespace,
//     /orchestrator, /serviceaccount) and, below them, the labelsToApply of the profiles it lists (the
//     namespace's pcns.* and the service account's pcsa.* labels; the first profile wins). A profile's
//     label change re-flattens the entities listing it.
//   - Two selector indexes over two populations: policy selectors against this node's endpoints, and
//     IP-set selectors against every entity of the cluster. A selector is filed under its most selective
//     label restriction (selector.LabelRestrictions), so an entity update evaluates only the selectors
//     filed under its labels, the unrestricted ones and those that matched it.
//   - Active rules: a policy is compiled when it selects a local endpoint (or is marked
//     AssumeNeededOnEveryNode), a profile when a local endpoint lists it. Compiling resolves selectors,
//     namespace selectors, service accounts and named ports to IP set IDs (the selector's unique ID;
//     "n:"+hash for named ports) and references them; IP sets are reference-counted and exist only while
//     referenced. A policy that cannot be compiled becomes Invalid with a Deny rule per direction, so the
//     endpoints it selects fail closed; a missing profile becomes Deny rules too. Both are reported
//     (Problems, Config.OnProblems, a log line).
//   - Policy resolver: per local endpoint, tiers ordered by (tier exists, order with nil last, name), in
//     each the selecting policies ordered by (order with nil last, name, namespace, kind), split into
//     ingress and egress by the policy's types; host endpoints also get their doNotTrack, preDNAT and
//     applyOnForward lists. Staged policies and kinds the calculation does not use are ignored.
//   - Routes: from IP pools, nodes and IPAM blocks (and workload addresses, for borrowed ones): local
//     blocks as blackholes, remote blocks via their node, borrowed /32s, local workloads, remote tunnel
//     addresses, VTEPs; encapsulation per pool, with CrossSubnet decided from this node's subnet.
//   - Event sequencer: changes only mark objects dirty; Flush reads their current value and emits at
//     most one update per object, in dpmodel's dependency order, remembering what was sent so that only
//     objects the dataplane holds are removed.
//
// A Calculator is used from one goroutine: OnStatus, then OnUpdates (Apply each update, then Flush) per
// batch. The output of a batch depends only on the current resources, never on the order in which they
// arrived (the tests compare every incremental state with one calculated from scratch).
package calc
