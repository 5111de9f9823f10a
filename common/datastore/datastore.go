package datastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tortie-net/tortie/common/api"
)

// Key names one stored resource.
type Key struct {
	Kind      string // registered kind, e.g. "IPPool"
	Namespace string // empty for cluster-scoped kinds
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return fmt.Sprintf("%s %q", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s %q in namespace %q", k.Kind, k.Name, k.Namespace)
}

// KeyOf returns the key of obj.
func KeyOf(obj api.Resource) (Key, error) {
	info, err := api.KindOf(obj)
	if err != nil {
		return Key{}, err
	}
	return Key{Kind: info.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}, nil
}

// ListOptions selects what List and Watch return.
type ListOptions struct {
	Kind      string // required
	Namespace string // empty means all namespaces (and is the only value for cluster-scoped kinds)
}

// Sentinel errors. Backends wrap them with the key involved; test with errors.Is.
var (
	ErrNotFound      = errors.New("resource does not exist")
	ErrAlreadyExists = errors.New("resource already exists")
	// ErrConflict means the revision given for a compare-and-swap no longer matches the stored one.
	ErrConflict = errors.New("update conflict: the resource was modified concurrently")
	// ErrUnsupported means the backend cannot perform the operation on that kind (e.g. creating a
	// WorkloadEndpoint for a pod that does not exist in the Kubernetes datastore).
	ErrUnsupported = errors.New("operation not supported by this datastore")
	// ErrCompacted is returned by a watch whose start revision the datastore no longer holds.
	ErrCompacted = errors.New("watch revision has been compacted")
)

// Backend stores tortie resources. Implementations: kube (Kubernetes API + CRDs), etcd (etcd v3, also
// embedded) and memory. All pass the conformance suite in datastore/dstest.
//
// Revisions are opaque strings (etcd mod revision, Kubernetes resourceVersion). A returned object always
// carries its current revision in metadata.resourceVersion; the object passed in is never modified.
// All methods are safe for concurrent use.
type Backend interface {
	// Get returns the stored object, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key Key) (api.Resource, error)
	// List returns the objects of one kind (sorted by namespace, then name) and the datastore revision
	// the list was read at, from which Watch can continue without a gap.
	List(ctx context.Context, opts ListOptions) ([]api.Resource, string, error)
	// Create stores a new object; it fails with ErrAlreadyExists if the key is taken. The object's
	// resourceVersion must be empty. Create sets creationTimestamp and uid when they are empty.
	Create(ctx context.Context, obj api.Resource) (api.Resource, error)
	// Update replaces an existing object. When obj's resourceVersion is set it is a compare-and-swap:
	// ErrConflict if the stored revision differs. An empty resourceVersion updates unconditionally.
	// ErrNotFound if the key does not exist. The stored creationTimestamp and uid are kept when obj
	// leaves them empty.
	Update(ctx context.Context, obj api.Resource) (api.Resource, error)
	// Delete removes the object. When revision is non-empty it is a compare-and-delete (ErrConflict on
	// mismatch). It returns the deleted object. Deleting a missing key is ErrNotFound.
	Delete(ctx context.Context, key Key, revision string) (api.Resource, error)
	// Watch streams changes to one kind after revision (exclusive; "" means from now). The channel is
	// closed when ctx is done, after Stop, or after an error event (ErrCompacted when the revision is gone).
	Watch(ctx context.Context, opts ListOptions, revision string) (Watcher, error)
	// Ping checks that the datastore answers; used for CNI STATUS and readiness.
	Ping(ctx context.Context) error
	// Close releases connections. The Backend must not be used afterwards.
	Close() error
}

// EventType is the kind of change a watch reports.
type EventType int

const (
	Added EventType = iota + 1
	Modified
	Deleted
	// Error ends a watch; Err says why.
	Error
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "Added"
	case Modified:
		return "Modified"
	case Deleted:
		return "Deleted"
	case Error:
		return "Error"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// WatchEvent is one change. For Deleted, Object is the last known state (it may be nil when the backend
// only knows the key) and Key is always set.
type WatchEvent struct {
	Type     EventType
	Key      Key
	Object   api.Resource
	Revision string
	Err      error
}

// Watcher is a running watch.
type Watcher interface {
	// Events delivers events in revision order. It is closed when the watch ends.
	Events() <-chan WatchEvent
	// Stop ends the watch; it is idempotent.
	Stop()
}
