package platform

import (
	"context"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// Dataplane programs one node's host (kernel, HNS) from the desired state the calculation produces.
// Implementations: linux/dataplane (iptables, ipset, netlink), windows/dataplane (HNS), platform/fake.
//
// The agent (platform/agent) is the only caller, from one goroutine: methods are never called
// concurrently, and an implementation needs no locking for them.
//
// Contract, method by method:
//
//   - OnUpdate records one update of desired state. It does no I/O, never blocks, and cannot fail:
//     updates arrive in dpmodel's dependency order (see common/dpmodel), and a malformed one is a bug in
//     the calculation, which the implementation logs and skips. Several OnUpdate calls are usually
//     followed by one Apply.
//   - Apply programs the host so that it holds the desired state recorded so far. It is idempotent:
//     when nothing changed since the last successful Apply and no resync is queued it writes nothing.
//     It programs only the difference between desired state and what it believes the host holds, and
//     does so atomically where the OS allows (one iptables-restore per table; one HNS call per object).
//     On error the host may hold part of the change; the agent retries Apply with backoff, and the retry
//     must converge, as OnUpdate calls made in between are recorded too. Apply never removes state
//     because updates stopped arriving (a datastore outage is not a reason to flush).
//   - QueueResync marks the host's state as unknown: the next Apply re-reads the host and repairs any
//     drift (rules or routes edited or deleted by someone else) instead of trusting its cache. Cheap;
//     may be called at any time.
//   - Cleanup removes everything tortie owns on the host (named from common/config's owned
//     identifiers) and nothing else, whatever the recorded state; used by `tortie-node cleanup` and on
//     uninstall. Idempotent: a clean host stays clean and no error is returned for missing objects.
//   - Capabilities says what the dataplane can express, so that the calculation can adapt (or report
//     what it cannot enforce). It is constant for the life of the value.
//
// The first Apply after start must adopt what a previous instance left (it neither flushes working
// rules nor leaves stale ones): an implementation reads the host before its first write.
type Dataplane interface {
	OnUpdate(u dpmodel.Update)
	Apply(ctx context.Context) error
	QueueResync()
	Cleanup(ctx context.Context) error
	Capabilities() Capabilities
}

// Capabilities is what a dataplane can express. The zero value is the most limited dataplane.
type Capabilities struct {
	// Name identifies the dataplane in logs and metrics ("linux", "windows", "fake").
	Name string
	// IPSets: rules may refer to IP sets by ID. Without it the calculation must inline members.
	IPSets bool
	// NamedPorts: rules may match address+protocol+port sets (dpmodel.IPSetIPPort).
	NamedPorts bool
	// LogAction: the Log action is rendered (otherwise it is skipped, as it does not decide).
	LogAction bool
	// PassAction: the Pass action and a tier's default action Pass are supported.
	PassAction bool
	// NegatedMatches: the not* matches (notNets, notSelector, notPorts, notProtocol, notICMP).
	NegatedMatches bool
	// PortRanges: port ranges (HNS before version 13 takes single ports and comma lists only).
	PortRanges bool
	// ICMPTypeCode: ICMP type and code matches.
	ICMPTypeCode bool
	// HostEndpoints: host endpoint policy, including doNotTrack, preDNAT and applyOnForward.
	HostEndpoints bool
	// Encaps the dataplane can program for routes.
	VXLAN, IPIP bool
	// IPv6 routes and rules.
	IPv6 bool
}
