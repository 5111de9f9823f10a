package datastore

import (
	"context"
	"fmt"

	"github.com/tortie-net/tortie/common/api"
)

// Status is the state of a syncer's stream.
type Status int

const (
	// WaitForDatastore: the datastore has not answered yet.
	WaitForDatastore Status = iota
	// ResyncInProgress: a snapshot (or a resync after an error) is being delivered.
	ResyncInProgress
	// InSync: the receiver holds the complete current state; deltas follow.
	InSync
)

func (s Status) String() string {
	switch s {
	case WaitForDatastore:
		return "WaitForDatastore"
	case ResyncInProgress:
		return "ResyncInProgress"
	case InSync:
		return "InSync"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// UpdateType says what happened to a key, from the receiver's point of view.
type UpdateType int

const (
	UpdateNew UpdateType = iota + 1
	UpdateModified
	UpdateDeleted
)

func (t UpdateType) String() string {
	switch t {
	case UpdateNew:
		return "New"
	case UpdateModified:
		return "Modified"
	case UpdateDeleted:
		return "Deleted"
	}
	return fmt.Sprintf("UpdateType(%d)", int(t))
}

// Update is one element of a syncer's stream: a plain value (key, object, revision) so that a relay can
// serialise it. Value is nil for UpdateDeleted.
type Update struct {
	Type     UpdateType
	Key      Key
	Value    api.Resource
	Revision string
}

// Callbacks receive a syncer's stream: status changes and batches of updates. Calls are never
// concurrent, and come in order.
type Callbacks interface {
	OnStatusUpdated(Status)
	OnUpdates([]Update)
}

// Syncer delivers the stream to the Callbacks it was built with. The agent consumes this interface, so
// that it can be fed by a ListWatchSyncer over a Backend (NewSyncer) or, later, by a relay client
// that replays a relay's stream; both keep the stream's rules (see the package documentation).
type Syncer interface {
	// Run delivers the stream until ctx is done and then returns ctx's error. It returns early, with a
	// descriptive error, only for a configuration error or when it is already running; datastore
	// errors never end it (they cause a resync, reported as ResyncInProgress). Callbacks are called
	// from Run's goroutine only.
	Run(ctx context.Context) error
}

// SyncerFactory builds a Syncer that streams to cb; a consumer that owns its Callbacks (the agent)
// takes one instead of a Syncer.
type SyncerFactory func(cb Callbacks) Syncer

var _ Syncer = (*ListWatchSyncer)(nil)
