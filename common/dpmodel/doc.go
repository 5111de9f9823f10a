// Package dpmodel is the platform-neutral desired state of one node's dataplane and the messages that
// change it. It is what crosses the seam between the calculation (common/calc) and a dataplane
// (platform.Dataplane): the calculation emits Updates, a dataplane records them and programs the host.
// Nothing here knows about iptables, netlink or HNS.
//
// # What the state holds
//
//   - IP sets, by ID, with members: addresses and CIDRs (selector sets, network sets) or
//     address+protocol+port (named-port sets). A set is emitted only while some active rule refers to it.
//   - Policies and profiles, by ID, each carried once however many endpoints use it: ordered inbound and
//     outbound Rules whose selectors and named ports have already been resolved to IP set IDs.
//   - Local endpoints (this node's workloads and host endpoints) with their ordered tiers, the policy IDs
//     per direction in each tier, the tier's default action, and their profiles.
//   - Routes (local workload, local block blackhole, remote block via its node, borrowed /32, remote
//     tunnel address), VTEPs (per remote node: tunnel address, MAC, underlay address), the nodes' host
//     addresses, IP pools (CIDR, encapsulation, natOutgoing), and the node's dataplane configuration.
//
// # The ordering contract
//
// A producer (the calculation) emits updates in dependency order, and a dataplane may rely on it:
//
//  1. An IP set exists (IPSetUpdate) before any rule that refers to it is sent, and is removed
//     (IPSetRemove) only after no policy or profile that is still present refers to it.
//  2. A policy or profile exists (PolicyUpdate, ProfileUpdate) before an endpoint that lists it is sent,
//     and is removed only after no endpoint still present lists it.
//  3. A VTEP is sent before the routes that go through it and removed after them.
//
// So adds flow IP sets → policies/profiles → endpoints, and removals the other way round. State.Apply
// enforces the contract and returns an error (changing nothing) on an update that breaks it; the fake
// dataplane and the calculation's tests use it to prove the contract is kept.
//
// # Deltas
//
// Every message is idempotent: an Update carries the whole new value of its object (IPSetDelta is the
// one exception: a membership change for large sets, valid only for a set that exists). A Remove of an
// object that does not exist is not an error. Messages are plain values: they can be logged, compared with
// go-cmp, and serialised.
package dpmodel
