package ipam

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps at most a few of these together with what was
// being done and to which object; test with errors.Is.
var (
	// ErrNoQualifiedPool means no enabled pool matches the request: IP version, node and namespace
	// selectors, allowed uses and assignment mode (or the explicitly requested pools exclude it).
	ErrNoQualifiedPool = errors.New("no IP pool qualifies for the request")
	// ErrBlockLimit means the node needs another block but already holds the maximum
	// (IPAMConfig maxBlocksPerHost, or DefaultMaxBlocksPerHost when that is 0). AutoAssign returns the
	// addresses it did allocate together with this error; the caller must release them (by handle).
	ErrBlockLimit = errors.New("cannot allocate a new IPAM block: the per-host block limit is reached")
	// ErrPoolNotFound means an explicitly requested pool (by name or CIDR) does not exist.
	ErrPoolNotFound = errors.New("IP pool does not exist")
	// ErrPoolDisabled means an explicitly requested pool, or the pool of a requested address, is disabled.
	ErrPoolDisabled = errors.New("IP pool is disabled")
	// ErrNotInPool means an address or CIDR is not inside any configured pool.
	ErrNotInPool = errors.New("the provided IP address is not in a configured pool")
	// ErrUseNotAllowed means the pool's allowedUses do not include the intended use.
	ErrUseNotAllowed = errors.New("the IP pool's allowedUses do not include the intended use")
	// ErrAlreadyAllocated means AssignIP asked for an address that is already assigned (or still cooling
	// down after a release).
	ErrAlreadyAllocated = errors.New("address already assigned in block")
	// ErrBadSequenceNumber means a release named a sequence number that differs from the one recorded
	// when the address was allocated: the address was released and handed out again since (ABA).
	ErrBadSequenceNumber = errors.New("sequence number does not match the allocation (the address was reallocated)")
	// ErrHandleMismatch means a release named a handle that does not own the address.
	ErrHandleMismatch = errors.New("the address is owned by a different handle")
	// ErrHandleNotFound means no IPAMHandle exists for the handle ID. It also matches
	// datastore.ErrNotFound when the datastore said so.
	ErrHandleNotFound = errors.New("IPAM handle does not exist")
	// ErrNotAllocated means the address is not allocated.
	ErrNotAllocated = errors.New("address is not allocated")
	// ErrBlockNotEmpty means an affinity release that required an empty block found allocations.
	ErrBlockNotEmpty = errors.New("block is not empty")
	// ErrNotAffine means a block is not affine to the host named in the request.
	ErrNotAffine = errors.New("block is not affine to the host")
	// ErrCIDRTooSmall means a CIDR given to ClaimAffinity or ReleaseAffinity is smaller than one block.
	ErrCIDRTooSmall = errors.New("the requested CIDR is smaller than the minimum (one block of its pool)")
	// ErrRetriesExhausted means a compare-and-swap kept conflicting with other writers.
	ErrRetriesExhausted = errors.New("gave up after too many concurrent-update conflicts")
	// ErrInvalidBlock means a stored IPAMBlock is structurally invalid (wrong sizes, indices out of range).
	ErrInvalidBlock = errors.New("IPAM block is invalid")
	// ErrInvalidArgument means the request itself is malformed (missing handle, bad address, ...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidAnnotation means a cni.projectcalico.org/* pod or namespace annotation cannot be used;
	// the error is an *AnnotationError naming the annotation.
	ErrInvalidAnnotation = errors.New("invalid IPAM annotation")
)

// errClaimConflict means another host created the block first; the caller tries another block.
var errClaimConflict = errors.New("another host claimed the block first")

// AnnotationError says which annotation (and on what) could not be used and why.
type AnnotationError struct {
	// Annotation is the full annotation key, e.g. "cni.projectcalico.org/ipv4pools".
	Annotation string
	// Source is "pod" or "namespace".
	Source string
	// Value is the annotation's value as given.
	Value string
	// Reason says what is wrong and how to fix it.
	Reason string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("%s annotation %s=%q: %s", e.Source, e.Annotation, e.Value, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidAnnotation) match.
func (e *AnnotationError) Unwrap() error { return ErrInvalidAnnotation }
