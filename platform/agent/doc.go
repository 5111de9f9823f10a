// Package agent is the node agent's run loop: it feeds the datastore syncer's stream to the calculation
// and the calculation's output to a platform.Dataplane.
//
//	syncer (own goroutine) ──callbacks──▶ FelixConfiguration → config.Loader (live settings)
//	                                      everything         → Calculator → desired dpmodel.State
//	                                                                      │ one-slot kick
//	loop (own goroutine, owns the Dataplane) ◀────────────────────────────┘
//	  DiffKeys(held, changed, desired) → Dataplane.OnUpdate… → Dataplane.Apply
//
// Batching and coalescing: the calculation's updates are applied to a desired state as they come, and
// the identity of each object they touch is recorded (changed). The loop hands the dataplane
// dpmodel.DiffKeys: the current value of each changed object, or its removal when the dataplane holds
// it (held: identities only, no second copy of the state). So an object changed ten times between two
// Applies is sent once, an object added and removed is not sent at all, and the ordering contract holds
// by construction. (An object changed and changed back is sent again; Apply is idempotent.)
//
// Rate limit: Applies are at least DataplaneApplyMinInterval apart (default 100 ms, Felix's leaky
// bucket refill). Nothing is applied before the syncer's first InSync (the dataplane would otherwise
// adopt and prune against a partial view). After a failed Apply the loop retries with backoff
// (MinRetryBackoff doubling to MaxRetryBackoff); updates arriving meanwhile are recorded and go with
// the retry. Every shortest enabled refresh interval (RouteRefreshInterval, IptablesRefreshInterval,
// IpsetsRefreshInterval) the loop calls QueueResync and applies, repairing drift.
//
// Datastore outages: the syncer keeps what the receiver holds and, after an outage, sends only real
// differences; the agent never removes anything because the datastore is unreachable — the dataplane
// keeps its last state, readiness turns false (not in sync) and liveness stays true.
//
// Health (common/health): component "agent", live while the loop beats (DataplaneWatchdogTimeout),
// ready when the syncer is InSync and an Apply has succeeded. Served on HealthHost:HealthPort (default
// localhost:9099) as /livez, /readyz and /metrics, and /status (JSON: ready, syncer status, and the
// highest datastore revision the dataplane has applied, which tortie-lab sync waits on);
// PrometheusMetricsEnabled also serves /metrics on
// PrometheusMetricsHost:PrometheusMetricsPort. Metrics are on a private registry, prefixed tortie_.
//
// The calculation is behind Calculator; PassThrough stands in until common/calc lands. docs/agent.md
// documents the settings, the loop, health and metrics.
package agent
