// Package dptest is the conformance suite every platform.Dataplane passes (platform/fake, the Linux
// dataplane in network namespaces, the Windows dataplane over the fake HNS). A dataplane's test calls
//
//	dptest.Run(t, func(t *testing.T) dptest.Instance { ... })
//
// and the factory builds a fresh dataplane over a fresh host (a fake, a throwaway network namespace)
// together with the means to read its host back. The generic checks:
//
//   - States: sequences of random, contract-respecting states (dpmodel.Diff between consecutive ones,
//     as Tailscale's TestRouterStates replays router configs) end with the host holding exactly the
//     last state;
//   - Idempotent: a second Apply, and an Apply after the same updates are sent again, write nothing;
//   - Resync: drift the factory injects behind the dataplane's back is repaired by QueueResync + Apply;
//   - Retry: an Apply that failed part-way, retried with later updates recorded in between, converges;
//   - Cleanup: leaves an empty host, and is idempotent.
//
// Policy truth tables (which packets each state allows) are a separate suite, platform/dptest/policy,
// which every dataplane also runs with its own verdict (real packets on Linux, the fake HNS's ACL
// evaluator on Windows).
package dptest
