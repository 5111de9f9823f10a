package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// maxClaimBlocks bounds how many blocks one ClaimAffinity call may walk.
const maxClaimBlocks = 1 << 16

// ClaimAffinity claims every block of cidr for host. cidr must lie in one pool and be at least one of
// its blocks. Blocks the host already owns count as claimed; blocks owned by anyone else (or existing
// without affinity) are returned as failed.
func (c *Client) ClaimAffinity(ctx context.Context, cidr netip.Prefix, host string) (claimed, failed []netip.Prefix, err error) {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	wrap := func(err error) error { return fmt.Errorf("claiming %s for node %q: %w", cidr, host, err) }
	if host == "" || !cidr.IsValid() {
		return nil, nil, wrap(ErrInvalidArgument)
	}
	cidr = cidr.Masked()
	pools, err := c.listPools(ctx)
	if err != nil {
		return nil, nil, wrap(err)
	}
	_, blocks, err := blocksOf(pools, cidr)
	if err != nil {
		return nil, nil, wrap(err)
	}
	for _, b := range blocks {
		_, err := c.claimBlock(ctx, b, host, nil)
		switch {
		case err == nil:
			claimed = append(claimed, b)
		case errors.Is(err, errClaimConflict):
			failed = append(failed, b)
		default:
			return claimed, failed, wrap(err)
		}
	}
	return claimed, failed, nil
}

// blocksOf returns the pool holding cidr and cidr's blocks.
func blocksOf(pools poolSet, cidr netip.Prefix) (*pool, []netip.Prefix, error) {
	p := pools.containingPrefix(cidr)
	if p == nil {
		return nil, nil, fmt.Errorf("%s: %w", cidr, ErrNotInPool)
	}
	if cidr.Bits() > p.blockBits {
		return nil, nil, fmt.Errorf("the requested CIDR (%s) is smaller than the minimum (/%d, the block size of pool %s): %w",
			cidr, p.blockBits, p.cidr, ErrCIDRTooSmall)
	}
	n := p.blockBits - cidr.Bits()
	if n > 16 {
		return nil, nil, fmt.Errorf("%s holds more than %d blocks: %w", cidr, maxClaimBlocks, ErrInvalidArgument)
	}
	sub := &pool{cidr: cidr, blockBits: p.blockBits}
	out := make([]netip.Prefix, 0, 1<<n)
	for i := range 1 << n {
		b, ok := sub.blockAt(big.NewInt(int64(i)))
		if !ok {
			break
		}
		out = append(out, b)
	}
	return p, out, nil
}

// ReleaseAffinity gives up host's affinity for every block in cidr. With requireEmpty, blocks that
// still hold addresses are kept (ErrBlockNotEmpty); without, they stay allocated but lose their affinity
// (any node may then borrow from them; they are deleted once empty).
func (c *Client) ReleaseAffinity(ctx context.Context, cidr netip.Prefix, host string, requireEmpty bool) error {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	wrap := func(err error) error {
		return fmt.Errorf("releasing the affinity of %s for node %q: %w", cidr, host, err)
	}
	if host == "" || !cidr.IsValid() {
		return wrap(ErrInvalidArgument)
	}
	cidr = cidr.Masked()
	pools, err := c.listPools(ctx)
	if err != nil {
		return wrap(err)
	}
	if _, _, err := blocksOf(pools, cidr); err != nil && !errors.Is(err, ErrInvalidArgument) {
		return wrap(err)
	}
	targets, err := c.hostBlocks(ctx, host, func(p netip.Prefix) bool { return cidr.Contains(p.Addr()) && p.Bits() >= cidr.Bits() })
	if err != nil {
		return wrap(err)
	}
	var errs []error
	for _, b := range targets {
		if err := c.releaseBlockAffinity(ctx, b, host, requireEmpty); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReleaseHostAffinities gives up every block affinity of host (the node was deleted). See
// ReleaseAffinity for requireEmpty.
func (c *Client) ReleaseHostAffinities(ctx context.Context, host string, requireEmpty bool) error {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	if host == "" {
		return fmt.Errorf("releasing the affinities of a node: no node name: %w", ErrInvalidArgument)
	}
	targets, err := c.hostBlocks(ctx, host, nil)
	if err != nil {
		return fmt.Errorf("releasing the affinities of node %q: %w", host, err)
	}
	var errs []error
	for _, b := range targets {
		if err := c.releaseBlockAffinity(ctx, b, host, requireEmpty); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hostBlocks returns the CIDRs host has an affinity object for or that have blocks affine to host.
func (c *Client) hostBlocks(ctx context.Context, host string, keep func(netip.Prefix) bool) ([]netip.Prefix, error) {
	var affs []*api.BlockAffinity
	var blocks []*api.IPAMBlock
	if err := parallel(
		func() (err error) { affs, err = c.hostAffinities(ctx, host); return },
		func() (err error) { blocks, err = c.listBlocks(ctx); return },
	); err != nil {
		return nil, err
	}
	set := map[netip.Prefix]bool{}
	for _, a := range affs {
		if p, err := netip.ParsePrefix(a.Spec.CIDR); err == nil {
			set[p.Masked()] = true
		}
	}
	for _, b := range blocks {
		if h, ok := affinityHost(b.Spec.Affinity); ok && h == host {
			if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
				set[p.Masked()] = true
			}
		}
	}
	var out []netip.Prefix
	for p := range set {
		if keep == nil || keep(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

// releaseBlockAffinity takes the block at cidr away from host:
//
//  1. the host's affinity goes to pendingDeletion (so the host stops allocating there);
//  2. an empty block is deleted with a compare-and-delete (a concurrent allocation makes it fail and
//     the release starts over); a non-empty one loses its affinity (unless requireEmpty: the affinity
//     goes back to confirmed and ErrBlockNotEmpty is returned);
//  3. the affinity is deleted.
//
// A crash after 1 or 2 leaves a pendingDeletion affinity, which the host ignores, Check reports and a
// later claim of the block cleans up.
func (c *Client) releaseBlockAffinity(ctx context.Context, cidr netip.Prefix, host string, requireEmpty bool) error {
	cidrs := cidr.String()
	wrap := func(err error) error {
		return fmt.Errorf("releasing block %s from node %q: %w", cidrs, host, err)
	}
	akey := affinityKey(host, cidrs)
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				return wrap(err)
			}
		}
		var aff *api.BlockAffinity
		obj, err := c.b.Get(ctx, akey)
		switch {
		case err == nil:
			aff, _ = obj.(*api.BlockAffinity)
		case !errors.Is(err, datastore.ErrNotFound):
			return wrap(err)
		}
		blkObj, err := c.getBlock(ctx, cidrs)
		if errors.Is(err, datastore.ErrNotFound) {
			if aff != nil {
				if _, err := c.b.Delete(ctx, akey, aff.ResourceVersion); errors.Is(err, datastore.ErrConflict) {
					continue
				} else if err != nil && !errors.Is(err, datastore.ErrNotFound) {
					return wrap(err)
				}
			}
			return nil
		}
		if err != nil {
			return wrap(err)
		}
		blk, err := decodeBlock(blkObj)
		if err != nil {
			return wrap(err)
		}
		if !blk.affineTo(host) {
			if aff == nil {
				return wrap(ErrNotAffine)
			}
			// A stale affinity (the block belongs to someone else or nobody): just drop it.
			if _, err := c.b.Delete(ctx, akey, aff.ResourceVersion); errors.Is(err, datastore.ErrConflict) {
				continue
			} else if err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return wrap(err)
			}
			return nil
		}
		if requireEmpty && !blk.empty() {
			if aff != nil && aff.Spec.State == api.BlockAffinityPendingDeletion {
				// Undo the pendingDeletion mark: the block is still in use and stays this node's.
				if _, err := c.setAffinityState(ctx, aff, api.BlockAffinityConfirmed); err != nil {
					return wrap(fmt.Errorf("%d addresses in use: %w (and restoring the affinity failed: %w)", blk.inUse(), ErrBlockNotEmpty, err))
				}
			}
			return wrap(fmt.Errorf("%d addresses in use: %w", blk.inUse(), ErrBlockNotEmpty))
		}
		// 1.
		if aff != nil && aff.Spec.State != api.BlockAffinityPendingDeletion {
			upd, err := c.setAffinityState(ctx, aff, api.BlockAffinityPendingDeletion)
			if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
				continue
			}
			if err != nil {
				return wrap(err)
			}
			aff = upd
		}
		// 2.
		if blk.empty() {
			_, err = c.b.Delete(ctx, blockKey(cidrs), blkObj.ResourceVersion)
		} else {
			blk.obj.Spec.Affinity = nil
			blk.obj.Spec.AffinityClaimTime = nil
			blk.bump()
			_, err = c.b.Update(ctx, blk.obj)
		}
		switch {
		case errors.Is(err, datastore.ErrConflict):
			continue // the block changed (an allocation?): look again
		case err != nil && !errors.Is(err, datastore.ErrNotFound):
			return wrap(err)
		}
		// 3.
		if aff != nil {
			if _, err := c.b.Delete(ctx, akey, aff.ResourceVersion); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				if errors.Is(err, datastore.ErrConflict) {
					continue
				}
				return wrap(err)
			}
		}
		return nil
	}
	return wrap(ErrRetriesExhausted)
}

// setAffinityState writes an affinity's state with a compare-and-swap at the revision given.
func (c *Client) setAffinityState(ctx context.Context, aff *api.BlockAffinity, state string) (*api.BlockAffinity, error) {
	upd := aff.DeepCopy()
	upd.Spec.State = state
	stored, err := c.b.Update(ctx, upd)
	if err != nil {
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			c.log.Warn("could not update a block affinity", "affinity", aff.Name, "state", state, "error", err)
		}
		return nil, err
	}
	return typed[*api.BlockAffinity](stored)
}
