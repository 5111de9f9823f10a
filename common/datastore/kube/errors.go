package kube

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tortie-net/tortie/common/datastore"
)

// sentinelFor maps a Kubernetes API error to the datastore sentinel it means, or nil.
func sentinelFor(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return datastore.ErrNotFound
	case apierrors.IsAlreadyExists(err):
		return datastore.ErrAlreadyExists
	case apierrors.IsConflict(err):
		// 409 from an Update with a stale resourceVersion, or a Delete whose precondition failed.
		return datastore.ErrConflict
	case apierrors.IsGone(err), apierrors.IsResourceExpired(err):
		return datastore.ErrCompacted
	}
	return nil
}

// wrapErr describes a failed operation ("updating IPPool "x"") and wraps both the datastore sentinel
// the Kubernetes error stands for (so errors.Is(err, datastore.ErrConflict) works) and the original
// error (so apierrors helpers still work).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinelFor(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%s in the Kubernetes datastore: %w: %w", op, s, err)
	}
	return fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
}

// errorf returns an error about op that wraps sentinel, with a reason.
func errorf(op string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s in the Kubernetes datastore: %w: %s", op, sentinel, fmt.Sprintf(format, args...))
}
