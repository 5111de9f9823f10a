// Package platform is the seam between tortie's platform-neutral core (common/) and the per-OS
// dataplanes (linux/, windows/). It will hold the Dataplane interface that a dataplane implements
// (OnUpdate records desired state, Apply programs it idempotently, QueueResync repairs drift, Cleanup
// removes everything tortie owns), the agent run loop that feeds it from the syncer and the
// calculation graph, a fake dataplane and the conformance suite every dataplane passes.
// See docs/architecture.md. Like common/, nothing here may import OS-specific packages.
package platform
