package ipam

import (
	"context"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
)

// UtilizationArgs chooses the pools to report; empty means all.
type UtilizationArgs struct {
	Pools []string // names or CIDRs
}

// PoolUtilization is how much of one pool is used. Counts are big integers (an IPv6 pool can hold
// 2^64 addresses and more); Available = Capacity - InUse - Reserved.
type PoolUtilization struct {
	Name      string             `json:"name"`
	CIDR      netip.Prefix       `json:"cidr"`
	Disabled  bool               `json:"disabled,omitempty"`
	Capacity  *big.Int           `json:"capacity"`
	InUse     *big.Int           `json:"inUse"`
	Reserved  *big.Int           `json:"reserved"`
	Available *big.Int           `json:"available"`
	Blocks    []BlockUtilization `json:"blocks,omitempty"`
}

// BlockUtilization is how much of one block is used. InUse includes addresses cooling down after a
// release; Reserved counts free addresses that an IPReservation keeps from use.
type BlockUtilization struct {
	CIDR      netip.Prefix `json:"cidr"`
	Affinity  string       `json:"affinity,omitempty"`
	Capacity  int          `json:"capacity"`
	InUse     int          `json:"inUse"`
	Reserved  int          `json:"reserved"`
	Available int          `json:"available"`
}

// GetUtilization reports capacity, use, reservations and free addresses per pool and per block.
func (c *Client) GetUtilization(ctx context.Context, args UtilizationArgs) ([]PoolUtilization, error) {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	var pools poolSet
	var resv reservations
	var blocks []*blockOrErr
	if err := parallel(
		func() (err error) { pools, err = c.listPools(ctx); return },
		func() (err error) { resv, err = c.listReservations(ctx); return },
		func() error {
			objs, err := c.listBlocks(ctx)
			for _, o := range objs {
				b, derr := decodeBlock(o)
				blocks = append(blocks, &blockOrErr{b: b, err: derr})
			}
			return err
		},
	); err != nil {
		return nil, fmt.Errorf("computing IPAM utilization: %w", err)
	}
	var out []PoolUtilization
	for _, p := range pools.pools {
		if len(args.Pools) > 0 && !slices.ContainsFunc(args.Pools, p.matches) {
			continue
		}
		u := PoolUtilization{Name: p.name, CIDR: p.cidr, Disabled: p.disabled, Capacity: prefixSize(p.cidr), InUse: new(big.Int)}
		reserved := resv.countIn(p.cidr)
		for _, be := range blocks {
			if be.err != nil || !p.cidr.Contains(be.b.cidr.Addr()) || be.b.cidr.Bits() < p.cidr.Bits() {
				continue
			}
			b := be.b
			skip := resv.skipFunc(b.cidr)
			bu := BlockUtilization{CIDR: b.cidr, Capacity: b.size}
			if b.obj.Spec.Affinity != nil {
				bu.Affinity = *b.obj.Spec.Affinity
			}
			for ord := range b.size {
				used := b.attr(ord) != nil
				isResv := skip != nil && skip(b.addr(ord))
				switch {
				case used:
					bu.InUse++
					if isResv {
						reserved.Sub(reserved, big.NewInt(1)) // counted as in use, not as reserved
					}
				case isResv:
					bu.Reserved++
				}
			}
			bu.Available = bu.Capacity - bu.InUse - bu.Reserved
			u.InUse.Add(u.InUse, big.NewInt(int64(bu.InUse)))
			u.Blocks = append(u.Blocks, bu)
		}
		if reserved.Sign() < 0 {
			reserved.SetInt64(0)
		}
		u.Reserved = reserved
		u.Available = new(big.Int).Sub(u.Capacity, u.InUse)
		u.Available.Sub(u.Available, u.Reserved)
		if u.Available.Sign() < 0 {
			u.Available.SetInt64(0)
		}
		out = append(out, u)
	}
	return out, nil
}

type blockOrErr struct {
	b   *block
	err error
}
