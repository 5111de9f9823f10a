package datastore

import (
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
