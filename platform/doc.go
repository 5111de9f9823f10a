// Package platform is the seam between tortie's platform-neutral core (common/) and the per-OS
// dataplanes (linux/, windows/). It holds the Dataplane interface that a dataplane implements
// (OnUpdate records desired state, Apply programs it idempotently, QueueResync repairs drift, Cleanup
// removes everything tortie owns) and its Capabilities; platform/agent is the run loop that feeds it
// from the syncer and the calculation, platform/fake an in-memory dataplane, and platform/dptest the
// conformance suite every dataplane passes.
// See docs/architecture.md. Like common/, nothing here may import OS-specific packages.
package platform
