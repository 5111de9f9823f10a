package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// allocReq is what every block allocation of one request shares.
type allocReq struct {
	handle   *handleRef
	attrs    map[string]string
	host     string
	resv     reservations
	cooldown time.Duration
}

// assignFromBlock allocates up to num free addresses in the block at cidr, to req's handle. start, when
// not nil, is a recent copy of the block used for the first attempt (saving a read); eligible is checked
// against the block's current state before every attempt (affinity may change under us). It returns no
// addresses and no error when the block is gone, full, or not eligible.
//
// Order of writes: the handle is incremented first, then the block is written. A crash in between
// leaves a handle that counts an address its block does not hold — harmless: releasing the handle
// finds nothing there, and Check reports the handle for repair. The other order could leave an
// allocation its handle does not know, which only a full block scan finds.
func (c *Client) assignFromBlock(ctx context.Context, cidr netip.Prefix, start *api.IPAMBlock, num int, req *allocReq,
	eligible func(*block) bool) ([]netip.Addr, error) {
	cidrs := cidr.String()
	held := 0 // handle increments made for this block that no block write has used yet
	undo := func() {
		if held > 0 {
			if err := c.adjustHandle(context.WithoutCancel(ctx), req.handle, cidrs, -held, false); err != nil {
				c.log.Warn("could not undo an IPAM handle increment; Check will report the handle", "handle", req.handle.id, "block", cidrs, "error", err)
			}
			held = 0
		}
	}
	obj := start
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				undo()
				return nil, fmt.Errorf("allocating in block %s: %w", cidrs, err)
			}
		}
		if obj == nil {
			var err error
			obj, err = c.getBlock(ctx, cidrs)
			if errors.Is(err, datastore.ErrNotFound) {
				undo()
				return nil, nil
			}
			if err != nil {
				undo()
				return nil, fmt.Errorf("reading block %s: %w", cidrs, err)
			}
		}
		if certainlyFull(obj) {
			undo()
			return nil, nil
		}
		blk, err := decodeBlock(obj)
		if err != nil {
			undo()
			return nil, err
		}
		if blk.obj.Spec.Deleted || (eligible != nil && !eligible(blk)) {
			undo()
			return nil, nil
		}
		now := c.now()
		blk.sweep(req.cooldown, now)
		ords := blk.free(num, req.resv.skipFunc(blk.cidr))
		if len(ords) == 0 {
			undo()
			return nil, nil
		}
		if held < len(ords) {
			if err := c.adjustHandle(ctx, req.handle, cidrs, len(ords)-held, false); err != nil {
				undo()
				return nil, err
			}
			held = len(ords)
		}
		blk.assign(ords, req.handle.id, req.attrs)
		blk.compact()
		blk.bump()
		_, err = c.b.Update(ctx, blk.obj)
		switch {
		case err == nil:
			if held > len(ords) {
				held -= len(ords)
				undo()
			}
			out := make([]netip.Addr, len(ords))
			for i, o := range ords {
				out[i] = blk.addr(o)
			}
			return out, nil
		case errors.Is(err, datastore.ErrConflict), errors.Is(err, datastore.ErrNotFound):
			obj = nil
		default:
			undo()
			return nil, fmt.Errorf("writing block %s: %w", cidrs, err)
		}
	}
	undo()
	return nil, fmt.Errorf("allocating in block %s: %w", cidrs, ErrRetriesExhausted)
}

// claimBlock makes host the owner of the block at cidr and returns the block. The steps, each a single
// atomic write:
//
//  1. create the BlockAffinity <host>-<cidr> in state pending (or pick up our own from a claim that
//     was interrupted);
//  2. create the IPAMBlock with affinity host:<host>. Create fails if the block exists, so exactly one
//     claimant wins; a loser deletes its pending affinity and gets errClaimConflict;
//  3. set the affinity to confirmed.
//
// A crash after 1 leaves a pending affinity without a block: the host's next allocation resumes the
// claim, and Check reports it. A crash after 2 leaves a block owned by the host with a pending
// affinity: the next allocation confirms it. Readers treat pending affinities as not (yet) owning.
func (c *Client) claimBlock(ctx context.Context, cidr netip.Prefix, host string, reserved *HostReservedAttr) (*api.IPAMBlock, error) {
	cidrs := cidr.String()
	wrap := func(err error) error { return fmt.Errorf("claiming block %s for node %q: %w", cidrs, host, err) }
	aff, err := c.pendingAffinity(ctx, cidr, host)
	if err != nil {
		return nil, wrap(err)
	}
	nb, err := newBlock(cidr, ptr(hostAffinity(host)), c.now())
	if err != nil {
		return nil, wrap(err)
	}
	nb.reserveHostOrdinals(reserved)
	var blockObj *api.IPAMBlock
	created, err := c.b.Create(ctx, nb.obj)
	switch {
	case err == nil:
		if blockObj, err = typed[*api.IPAMBlock](created); err != nil {
			return nil, wrap(err)
		}
	case errors.Is(err, datastore.ErrAlreadyExists):
		existing, gerr := c.getBlock(ctx, cidrs)
		if gerr != nil && !errors.Is(gerr, datastore.ErrNotFound) {
			return nil, wrap(gerr)
		}
		if gerr == nil {
			if b, derr := decodeBlock(existing); derr == nil && b.affineTo(host) && !existing.Spec.Deleted {
				blockObj = existing // our own earlier, interrupted claim
				break
			}
		}
		c.dropAffinity(ctx, aff)
		return nil, wrap(errClaimConflict)
	default:
		c.dropAffinity(ctx, aff)
		return nil, wrap(err)
	}
	if err := c.confirmAffinity(ctx, aff); err != nil {
		return nil, wrap(err)
	}
	return blockObj, nil
}

// pendingAffinity creates host's pending affinity for cidr, or returns the existing one when it is
// pending or confirmed. A pendingDeletion affinity whose block is gone is finished off and replaced;
// one whose block still exists is being released by someone else (errClaimConflict).
func (c *Client) pendingAffinity(ctx context.Context, cidr netip.Prefix, host string) (*api.BlockAffinity, error) {
	cidrs := cidr.String()
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		a := api.NewBlockAffinity()
		a.Name = api.BlockAffinityName(host, cidrs)
		a.Spec = api.BlockAffinitySpec{State: api.BlockAffinityPending, Node: host, Type: api.AffinityTypeHost, CIDR: cidrs, Deleted: "false"}
		created, err := c.b.Create(ctx, a)
		if err == nil {
			return typed[*api.BlockAffinity](created)
		}
		if !errors.Is(err, datastore.ErrAlreadyExists) {
			return nil, fmt.Errorf("creating block affinity %q: %w", a.Name, err)
		}
		obj, err := c.b.Get(ctx, affinityKey(host, cidrs))
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading block affinity %q: %w", a.Name, err)
		}
		existing, ok := obj.(*api.BlockAffinity)
		if !ok {
			return nil, fmt.Errorf("reading block affinity %q: unexpected type %T", a.Name, obj)
		}
		if existing.Spec.State != api.BlockAffinityPendingDeletion && existing.Spec.Deleted != "true" {
			return existing, nil
		}
		if _, err := c.getBlock(ctx, cidrs); !errors.Is(err, datastore.ErrNotFound) {
			if err != nil {
				return nil, fmt.Errorf("reading block %s: %w", cidrs, err)
			}
			return nil, errClaimConflict
		}
		// The release that marked it finished deleting the block but not the affinity.
		if _, err := c.b.Delete(ctx, affinityKey(host, cidrs), existing.ResourceVersion); err != nil &&
			!errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
			return nil, fmt.Errorf("deleting stale block affinity %q: %w", a.Name, err)
		}
	}
	return nil, ErrRetriesExhausted
}

// confirmAffinity moves an affinity to confirmed.
func (c *Client) confirmAffinity(ctx context.Context, aff *api.BlockAffinity) error {
	cur := aff
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		if cur == nil {
			obj, err := c.b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name})
			if err != nil {
				return fmt.Errorf("reading block affinity %q: %w", aff.Name, err)
			}
			var ok bool
			if cur, ok = obj.(*api.BlockAffinity); !ok {
				return fmt.Errorf("reading block affinity %q: unexpected type %T", aff.Name, obj)
			}
		}
		if cur.Spec.State == api.BlockAffinityConfirmed {
			return nil
		}
		if cur.Spec.State == api.BlockAffinityPendingDeletion {
			return fmt.Errorf("block affinity %q is being deleted: %w", aff.Name, errClaimConflict)
		}
		upd := cur.DeepCopy()
		upd.Spec.State = api.BlockAffinityConfirmed
		upd.Spec.Deleted = "false"
		_, err := c.b.Update(ctx, upd)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, datastore.ErrConflict):
			cur = nil
		default:
			return fmt.Errorf("confirming block affinity %q: %w", aff.Name, err)
		}
	}
	return fmt.Errorf("confirming block affinity %q: %w", aff.Name, ErrRetriesExhausted)
}

// dropAffinity deletes an affinity we created (or found stale) at the revision we know; a concurrent
// change wins, and Check reports whatever is left.
func (c *Client) dropAffinity(ctx context.Context, aff *api.BlockAffinity) {
	if aff == nil {
		return
	}
	_, err := c.b.Delete(context.WithoutCancel(ctx), datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name}, aff.ResourceVersion)
	if err != nil && !errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
		c.log.Warn("could not delete a block affinity; Check will report it", "affinity", aff.Name, "error", err)
	}
}

func ptr[T any](v T) *T { return &v }
