package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// handleRef follows one IPAMHandle through the writes of one operation: after a write the stored
// object (with its revision) is kept, so the next adjustment is a single compare-and-swap instead of a
// read and a write.
type handleRef struct {
	id     string
	obj    *api.IPAMHandle // last known stored state; nil when unknown or absent
	absent bool            // believed not to exist (a guess: a Create that fails corrects it)
}

// adjustHandle adds delta to the handle's count for the block at cidr (drop: removes the block's entry
// whatever its count). A handle is created on its first increment and deleted when its last block
// entry goes; every write is a compare-and-swap retried on conflict.
func (c *Client) adjustHandle(ctx context.Context, h *handleRef, cidr string, delta int, drop bool) error {
	key := handleKey(h.id)
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				return fmt.Errorf("updating IPAM handle %q for block %s: %w", h.id, cidr, err)
			}
		}
		if h.obj == nil && !h.absent {
			obj, err := c.b.Get(ctx, key)
			switch {
			case errors.Is(err, datastore.ErrNotFound):
				h.absent = true
			case err != nil:
				return fmt.Errorf("reading IPAM handle %q: %w", h.id, err)
			default:
				ho, ok := obj.(*api.IPAMHandle)
				if !ok {
					return fmt.Errorf("reading IPAM handle %q: unexpected type %T", h.id, obj)
				}
				h.obj = ho
			}
		}
		if h.obj == nil {
			if delta <= 0 || drop {
				return nil // nothing recorded, nothing to take away
			}
			n := api.NewIPAMHandle()
			n.Name = key.Name
			n.Spec.HandleID = h.id
			n.Spec.Block = map[string]int{cidr: delta}
			created, err := c.b.Create(ctx, n)
			switch {
			case errors.Is(err, datastore.ErrAlreadyExists):
				h.absent = false
				continue
			case err != nil:
				return fmt.Errorf("creating IPAM handle %q: %w", h.id, err)
			}
			h.absent = false
			h.obj, err = typed[*api.IPAMHandle](created)
			return err
		}
		upd := h.obj.DeepCopy()
		if upd.Spec.HandleID != h.id {
			return fmt.Errorf("IPAM handle object %q holds handle %q, not %q (two handle IDs map to one name): %w",
				key.Name, upd.Spec.HandleID, h.id, ErrInvalidArgument)
		}
		if upd.Spec.Block == nil {
			upd.Spec.Block = map[string]int{}
		}
		if n := upd.Spec.Block[cidr] + delta; n > 0 && !drop {
			upd.Spec.Block[cidr] = n
		} else {
			delete(upd.Spec.Block, cidr)
		}
		upd.Spec.Deleted = false
		if len(upd.Spec.Block) == 0 {
			_, err := c.b.Delete(ctx, key, upd.ResourceVersion)
			switch {
			case err == nil, errors.Is(err, datastore.ErrNotFound):
				h.obj, h.absent = nil, true
				return nil
			case errors.Is(err, datastore.ErrConflict):
				h.obj = nil
				continue
			default:
				return fmt.Errorf("deleting IPAM handle %q: %w", h.id, err)
			}
		}
		stored, err := c.b.Update(ctx, upd)
		switch {
		case err == nil:
			h.obj, err = typed[*api.IPAMHandle](stored)
			return err
		case errors.Is(err, datastore.ErrConflict):
			h.obj = nil
		case errors.Is(err, datastore.ErrNotFound):
			h.obj, h.absent = nil, true
		default:
			return fmt.Errorf("updating IPAM handle %q for block %s: %w", h.id, cidr, err)
		}
	}
	return fmt.Errorf("updating IPAM handle %q for block %s: %w", h.id, cidr, ErrRetriesExhausted)
}

// getHandle reads a handle.
func (c *Client) getHandle(ctx context.Context, handleID string) (*api.IPAMHandle, error) {
	obj, err := c.b.Get(ctx, handleKey(handleID))
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, fmt.Errorf("IPAM handle %q: %w", handleID, errors.Join(ErrHandleNotFound, err))
	}
	if err != nil {
		return nil, fmt.Errorf("reading IPAM handle %q: %w", handleID, err)
	}
	h, ok := obj.(*api.IPAMHandle)
	if !ok {
		return nil, fmt.Errorf("reading IPAM handle %q: unexpected type %T", handleID, obj)
	}
	if h.Spec.HandleID != handleID {
		return nil, fmt.Errorf("IPAM handle object %q holds handle %q, not %q: %w", h.Name, h.Spec.HandleID, handleID, ErrHandleNotFound)
	}
	return h, nil
}

// IPsByHandle returns the addresses allocated to a handle, read from the blocks the handle records.
// Unknown handles give an error wrapping ErrHandleNotFound.
func (c *Client) IPsByHandle(ctx context.Context, handleID string) ([]netip.Addr, error) {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	h, err := c.getHandle(ctx, handleID)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, cidr := range sortedKeys(h.Spec.Block) {
		obj, err := c.getBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading block %s of IPAM handle %q: %w", cidr, handleID, err)
		}
		blk, err := decodeBlock(obj)
		if err != nil {
			return nil, fmt.Errorf("IPAM handle %q: %w", handleID, err)
		}
		for _, ord := range blk.ordinalsOf(handleID) {
			out = append(out, blk.addr(ord))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
