// Package dpeval is the reference interpreter of common/dpmodel: it decides what a node's desired
// dataplane state does with one packet, the way every dataplane must render it. The conformance suite
// (platform/dptest/policy) runs the calculation's output through it, and `tortiectl policy trace` uses
// it to explain a verdict.
//
// Semantics, per direction (egress at the source endpoint, ingress at the destination endpoint):
//
//   - Tiers are evaluated in order. A tier with no policy for the direction is skipped. In a tier,
//     policies are evaluated in order and each policy's rules in order: the first rule that matches with
//     Allow or Deny decides; Pass ends the tier (evaluation continues with the next tier); Log records
//     and continues. A tier in which no rule decided or passed applies its default action (Deny, or Pass
//     to continue).
//   - When no tier decided, the endpoint's profiles are evaluated in order the same way; Pass in a
//     profile continues with the next profile. No profile deciding means Deny.
//   - A rule matches when every condition it sets matches (see dpmodel.Rule); IP set conditions read the
//     state's IP sets.
//
// A packet between two endpoints is allowed when the egress side of its source and the ingress side of
// its destination both allow it; a side that is not a local endpoint of the evaluated state allows.
package dpeval
