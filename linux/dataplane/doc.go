//go:build linux

// Package dataplane is the Linux platform.Dataplane: network policy and NAT outgoing with iptables
// and ipset, composed with the managers that program routes and tunnels (Options.Extra; linux/routing).
//
// OnUpdate records the calculation's desired state (common/dpmodel). Apply renders the whole state to
// text — the chains of the raw, mangle, nat and filter tables of each family, their hook rules, and the
// IP sets (render.go) — and hands it to linux/iptables and linux/ipsets, which write only what differs
// from the kernel: changed chains in one `iptables-restore --noflush` per table, changed sets rebuilt
// and swapped. IP sets are created before the rules that use them and destroyed after. The first Apply
// (and any after QueueResync) reads the kernel first, so a restarted agent adopts its predecessor's
// rules without a window in which they are missing, and drift (a deleted rule, chain or set member) is
// repaired.
//
// Policy is enforced as Felix does (docs/dataplane-linux.md has the chain layout and mark bits):
// traffic from and to workload interfaces is dispatched on the interface name (a tree above 32
// endpoints) to per-endpoint chains; those accept established flows first (conntrack fast path), drop
// invalid ones, then walk the endpoint's tiers — one jump per policy to a chain shared by every endpoint
// using it, a Pass mark ending the tier, the tier's default action — then its profiles, and drop what
// nothing allowed. An unknown interface with the workload prefix is dropped; workload sources are
// checked with a strict reverse-path match. Host endpoints have the same chains for the host's own
// traffic (after failsafe ports), and for forwarded (applyOnForward), untracked (raw, doNotTrack) and
// pre-DNAT (mangle) policy. With Options.Conntrack, the conntrack entries of flows a policy change
// denies are deleted, so established connections do not outlive the policy that allowed them.
package dataplane
