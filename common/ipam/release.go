package ipam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// ReleaseOptions names one address to release, optionally guarded.
type ReleaseOptions struct {
	// Address to release (required).
	Address netip.Addr
	// Handle, when set, must own the address (else ErrHandleMismatch and the address is kept).
	Handle string
	// SequenceNumber, when set, must equal the sequence number recorded when the address was allocated
	// (GetAssignmentAttributes, Check). A different one means the address was released and handed out
	// again since it was observed: ErrBadSequenceNumber, and the new owner keeps it.
	SequenceNumber *uint64
}

// ReleaseIPs releases addresses. It returns the addresses that were not allocated (nothing to do;
// also addresses outside every pool). Guard failures (handle, sequence number) are returned as errors
// for those addresses while the others are still released.
//
// Order of writes per block: the block first (the addresses are free from that moment), then the
// handles' counts. A crash in between leaves handles counting addresses they no longer hold; releasing
// the handle or Check's repair clears them. An emptied block without affinity is deleted.
func (c *Client) ReleaseIPs(ctx context.Context, opts ...ReleaseOptions) ([]netip.Addr, error) {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	opts = slices.Clone(opts)
	for i := range opts {
		opts[i].Address = opts[i].Address.Unmap()
		if !opts[i].Address.IsValid() {
			return nil, fmt.Errorf("releasing addresses: entry %d has no valid address: %w", i, ErrInvalidArgument)
		}
	}
	var cfg config
	var pools poolSet
	if err := parallel(
		func() (err error) { cfg, err = c.getConfig(ctx); return },
		func() (err error) { pools, err = c.listPools(ctx); return },
	); err != nil {
		return nil, fmt.Errorf("releasing addresses: %w", err)
	}
	byBlock := map[netip.Prefix][]ReleaseOptions{}
	var unallocated []netip.Addr
	var blockCIDRs []netip.Prefix // lazily listed, for addresses whose pool is gone
	for _, o := range opts {
		cidr, ok := netip.Prefix{}, false
		if p := pools.containing(o.Address); p != nil {
			cidr, ok = p.blockFor(o.Address), true
		} else {
			if blockCIDRs == nil {
				blocks, err := c.listBlocks(ctx)
				if err != nil {
					return nil, fmt.Errorf("releasing %s: %w", o.Address, err)
				}
				blockCIDRs = []netip.Prefix{}
				for _, b := range blocks {
					if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
						blockCIDRs = append(blockCIDRs, p.Masked())
					}
				}
			}
			for _, b := range blockCIDRs {
				if b.Contains(o.Address) {
					cidr, ok = b, true
					break
				}
			}
		}
		if !ok {
			unallocated = append(unallocated, o.Address)
			continue
		}
		byBlock[cidr] = append(byBlock[cidr], o)
	}
	var errs []error
	cidrs := slices.Collect(maps.Keys(byBlock))
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	for _, cidr := range cidrs {
		un, counts, err := c.releaseFromBlock(ctx, cidr, cfg, func(b *block) (rel []int, un []netip.Addr, errs []error) {
			for _, o := range byBlock[cidr] {
				ord, _ := b.ordinal(o.Address)
				if !b.allocated(ord) {
					un = append(un, o.Address)
					continue
				}
				if o.Handle != "" && b.handleOf(ord) != o.Handle {
					errs = append(errs, fmt.Errorf("releasing %s with handle %q: it belongs to handle %q: %w", o.Address, o.Handle, b.handleOf(ord), ErrHandleMismatch))
					continue
				}
				if o.SequenceNumber != nil {
					if seq, ok := b.seqOf(ord); !ok || seq != *o.SequenceNumber {
						errs = append(errs, fmt.Errorf("releasing %s at sequence number %d (recorded: %s): %w", o.Address, *o.SequenceNumber, seqString(seq, ok), ErrBadSequenceNumber))
						continue
					}
				}
				rel = append(rel, ord)
			}
			return rel, un, errs
		})
		unallocated = append(unallocated, un...)
		if err != nil {
			errs = append(errs, err)
		}
		c.decrementHandles(ctx, cidr, counts)
	}
	return unallocated, errors.Join(errs...)
}

func seqString(seq uint64, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprint(seq)
}

// releaseFromBlock frees the ordinals pick chooses in the block at cidr (pick runs on every attempt,
// against the block's current state) and writes the block with a compare-and-swap. It returns the
// addresses pick found unallocated and how many addresses each handle lost. Guard errors from pick are
// returned joined; datastore errors too.
func (c *Client) releaseFromBlock(ctx context.Context, cidr netip.Prefix, cfg config,
	pick func(*block) ([]int, []netip.Addr, []error)) ([]netip.Addr, map[string]int, error) {
	cidrs := cidr.String()
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				return nil, nil, fmt.Errorf("releasing from block %s: %w", cidrs, err)
			}
		}
		obj, err := c.getBlock(ctx, cidrs)
		if errors.Is(err, datastore.ErrNotFound) {
			// No block: nothing in it is allocated. pick on an empty block reports every address.
			nb, nerr := newBlock(cidr, nil, c.now())
			if nerr != nil {
				return nil, nil, nerr
			}
			_, un, errs := pick(nb)
			return un, nil, errors.Join(errs...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading block %s: %w", cidrs, err)
		}
		blk, err := decodeBlock(obj)
		if err != nil {
			return nil, nil, err
		}
		now := c.now()
		rel, un, errs := pick(blk)
		if len(rel) == 0 {
			return un, nil, errors.Join(errs...)
		}
		blk.sweep(cfg.cooldown, now)
		counts := map[string]int{}
		for _, ord := range rel {
			if h := blk.release(ord, cfg.cooldown, now); h != "" {
				counts[h]++
			}
		}
		blk.compact()
		blk.bump()
		stored, err := c.b.Update(ctx, blk.obj)
		switch {
		case err == nil:
		case errors.Is(err, datastore.ErrConflict), errors.Is(err, datastore.ErrNotFound):
			continue
		default:
			return nil, nil, fmt.Errorf("writing block %s: %w", cidrs, err)
		}
		if blk.empty() && blk.obj.Spec.Affinity == nil {
			// Nobody owns it and nothing is in it: delete it, unless someone wrote it since.
			if _, err := c.b.Delete(ctx, blockKey(cidrs), stored.GetResourceVersion()); err != nil &&
				!errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
				c.log.Warn("could not delete an empty unaffine block", "block", cidrs, "error", err)
			}
		}
		return un, counts, errors.Join(errs...)
	}
	return nil, nil, fmt.Errorf("releasing from block %s: %w", cidrs, ErrRetriesExhausted)
}

// decrementHandles takes released addresses off their handles' counts. Failures are logged, not
// returned: the addresses are free either way, and an over-counting handle is repaired by releasing it
// or by Check.
func (c *Client) decrementHandles(ctx context.Context, cidr netip.Prefix, counts map[string]int) {
	for _, h := range sortedKeys(counts) {
		if err := c.adjustHandle(context.WithoutCancel(ctx), &handleRef{id: h}, cidr.String(), -counts[h], false); err != nil {
			c.log.Warn("could not update an IPAM handle after a release; Check will report it", "handle", h, "block", cidr.String(), "error", err)
		}
	}
}

// ReleaseByHandle releases every address of a handle and deletes the handle. A handle that does not
// exist gives an error wrapping ErrHandleNotFound (and datastore.ErrNotFound): nothing to release.
func (c *Client) ReleaseByHandle(ctx context.Context, handleID string) error {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	h, err := c.getHandle(ctx, handleID)
	if err != nil {
		return fmt.Errorf("releasing handle %q: %w", handleID, err)
	}
	cfg, err := c.getConfig(ctx)
	if err != nil {
		return fmt.Errorf("releasing handle %q: %w", handleID, err)
	}
	ref := &handleRef{id: handleID, obj: h}
	var errs []error
	for _, cidrs := range sortedKeys(h.Spec.Block) {
		cidr, err := netip.ParsePrefix(cidrs)
		if err != nil {
			errs = append(errs, fmt.Errorf("releasing handle %q: block %q: %w: %w", handleID, cidrs, err, ErrInvalidArgument))
			continue
		}
		_, counts, err := c.releaseFromBlock(ctx, cidr.Masked(), cfg, func(b *block) ([]int, []netip.Addr, []error) {
			return b.ordinalsOf(handleID), nil, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("releasing handle %q: %w", handleID, err))
			continue
		}
		delete(counts, handleID)
		c.decrementHandles(ctx, cidr.Masked(), counts) // (none: only this handle's ordinals were picked)
		if err := c.adjustHandle(ctx, ref, cidrs, 0, true); err != nil {
			errs = append(errs, fmt.Errorf("releasing handle %q: %w", handleID, err))
		}
	}
	return errors.Join(errs...)
}

// Allocation describes one allocated address.
type Allocation struct {
	IP     netip.Addr   `json:"ip"`
	Block  netip.Prefix `json:"block"`
	Handle string       `json:"handle,omitempty"`
	// Attrs are the allocation's attributes (pod, namespace, node, timestamp, type, ...).
	Attrs map[string]string `json:"attrs,omitempty"`
	// SequenceNumber is the block's sequence number when the address was allocated; pass it in
	// ReleaseOptions to release exactly this allocation. nil for blocks that did not record it.
	SequenceNumber *uint64 `json:"sequenceNumber,omitempty"`
	// Affinity is the block's affinity ("host:<node>"), empty when it has none.
	Affinity string `json:"affinity,omitempty"`
}

// GetAssignmentAttributes returns the allocation of ip, or an error wrapping ErrNotAllocated.
func (c *Client) GetAssignmentAttributes(ctx context.Context, ip netip.Addr) (Allocation, error) {
	ip = ip.Unmap()
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	pools, err := c.listPools(ctx)
	if err != nil {
		return Allocation{}, fmt.Errorf("reading the allocation of %s: %w", ip, err)
	}
	var obj *api.IPAMBlock
	if p := pools.containing(ip); p != nil {
		b, err := c.getBlock(ctx, p.blockFor(ip).String())
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return Allocation{}, fmt.Errorf("reading the allocation of %s: %w", ip, err)
		}
		obj = b
	} else {
		blocks, err := c.listBlocks(ctx)
		if err != nil {
			return Allocation{}, fmt.Errorf("reading the allocation of %s: %w", ip, err)
		}
		for _, b := range blocks {
			if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil && p.Contains(ip) {
				obj = b
				break
			}
		}
	}
	if obj == nil {
		return Allocation{}, fmt.Errorf("%s: no block holds it: %w", ip, ErrNotAllocated)
	}
	blk, err := decodeBlock(obj)
	if err != nil {
		return Allocation{}, fmt.Errorf("reading the allocation of %s: %w", ip, err)
	}
	ord, _ := blk.ordinal(ip)
	if !blk.allocated(ord) {
		return Allocation{}, fmt.Errorf("%s in block %s: %w", ip, blk.cidr, ErrNotAllocated)
	}
	return blk.allocation(ord), nil
}

// allocation describes an allocated ordinal.
func (b *block) allocation(ord int) Allocation {
	a := Allocation{IP: b.addr(ord), Block: b.cidr, Handle: b.handleOf(ord)}
	if at := b.attr(ord); at != nil && len(at.Secondary) > 0 {
		a.Attrs = maps.Clone(at.Secondary)
	}
	if seq, ok := b.seqOf(ord); ok {
		a.SequenceNumber = &seq
	}
	if b.obj.Spec.Affinity != nil {
		a.Affinity = *b.obj.Spec.Affinity
	}
	return a
}
