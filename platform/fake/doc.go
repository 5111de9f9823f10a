// Package fake is an in-memory platform.Dataplane: it records the updates it is given into a
// dpmodel.State (so a contract violation by the producer fails the next Apply), "programs" a simulated
// host that is itself a dpmodel.State, and renders that host as stable sorted text for golden tests.
//
// It models what the agent relies on from a real dataplane:
//
//   - Apply writes only the difference between the desired state and what it believes the host holds,
//     so a second Apply with nothing new writes nothing (Writes counts every host write);
//   - its belief can be wrong: Drift changes the host behind its back, and only QueueResync (re-read the
//     host on the next Apply) repairs that, as iptables or netlink drift is repaired;
//   - Apply can fail part-way (FailNextApplies): half of the pending writes land, an error is returned,
//     and the retry converges because OnUpdate calls in between are recorded too;
//   - Cleanup removes everything from the host whatever the recorded state.
//
// The agent tests, the benchmark and `tortie-node run --dataplane fake` use it; it passes the same
// conformance suite (platform/dptest) as the real dataplanes.
package fake
