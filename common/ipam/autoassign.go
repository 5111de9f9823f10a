package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// AutoAssignArgs is a request for addresses from the pools.
type AutoAssignArgs struct {
	// Num4 and Num6 are how many IPv4 and IPv6 addresses to allocate.
	Num4, Num6 int
	// HandleID owns the addresses (required): "<network>.<containerID>" for pods,
	// "<type>-tunnel-addr-<node>" for tunnel addresses.
	HandleID string
	// Attrs are stored with the allocations (AttributeNamespace, AttributePod, AttributeNode,
	// AttributeTimestamp, AttributeType, ...).
	Attrs map[string]string
	// Hostname is the node allocating (required); blocks are claimed for it.
	Hostname string
	// HostLabels are the node's labels for pools' nodeSelectors. nil means read them from the Node
	// resource named Hostname (only when some pool's nodeSelector is not all()).
	HostLabels map[string]string
	// IPv4Pools and IPv6Pools restrict allocation to these pools (names or CIDRs), in preference order;
	// empty means every enabled automatic pool that matches.
	IPv4Pools, IPv6Pools []string
	// IntendedUse is Workload (default) or Tunnel; pools must allow it.
	IntendedUse api.IPPoolAllowedUse
	// NamespaceLabels are the pod's namespace's labels for pools' namespaceSelectors; nil means
	// namespace selectors are not evaluated (tunnel addresses).
	NamespaceLabels map[string]string
	// MaxBlocksPerHost, when > 0, caps the host's blocks for this request below the configured cap.
	MaxBlocksPerHost int
	// HostReservedAttrIPv4s and HostReservedAttrIPv6s reserve addresses in blocks this request creates
	// (Windows: WindowsHostReserved()).
	HostReservedAttrIPv4s, HostReservedAttrIPv6s *HostReservedAttr
	// Prefetch, when it is this Client's Prefetch for Hostname, supplies the reads the call starts with
	// (see Client.Prefetch); nil means the call reads them itself.
	Prefetch *Prefetch
}

// AssignResult is what AutoAssign allocated. Each address carries its block's prefix length, as
// Calico returns it; the CNI plugin narrows it to a host route.
type AssignResult struct {
	IPv4, IPv6 []netip.Prefix
	// Msgs say why fewer addresses than requested were returned (Calico's informational messages).
	Msgs []string
}

// Addrs returns every allocated address without prefix lengths.
func (r AssignResult) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, p := range append(slices.Clone(r.IPv4), r.IPv6...) {
		out = append(out, p.Addr())
	}
	return out
}

// state is what one request reads once: configuration, pools, reservations, the host's affinities.
type state struct {
	cfg        config
	pools      poolSet
	resv       reservations
	affs       []*api.BlockAffinity // the host's, when read
	nodeLabels map[string]string
	// prefetched holds blocks read together with the rest (hinted blocks), by CIDR. Each is used at
	// most once: the allocator changes the object it works on.
	prefetched map[netip.Prefix]*api.IPAMBlock
}

// loadState reads the configuration, pools and reservations (and, with host, the host's affinities)
// concurrently, together with the blocks in prefetch.
func (c *Client) loadState(ctx context.Context, host string, prefetch ...netip.Prefix) (*state, error) {
	return c.loadStateFollow(ctx, host, nil, prefetch...)
}

// loadStateFollow is loadState that also reads, for each IP version in follow that prefetch has no
// block of, the host's first affine block of that version as soon as the affinities are known
// (while the other reads may still be under way): the block the allocator tries first unless pool
// preference says otherwise. Without a hint this saves the round trip that would read it next.
func (c *Client) loadStateFollow(ctx context.Context, host string, follow []int, prefetch ...netip.Prefix) (*state, error) {
	st := &state{prefetched: map[netip.Prefix]*api.IPAMBlock{}}
	var mu sync.Mutex
	// A prefetched block is a hint only: a failed read is retried where the block is needed.
	read := func(p netip.Prefix) {
		if b, err := c.getBlock(ctx, p.String()); err == nil {
			mu.Lock()
			st.prefetched[p] = b
			mu.Unlock()
		}
	}
	fns := []func() error{
		func() (err error) { st.cfg, err = c.getConfig(ctx); return },
		func() (err error) { st.pools, err = c.listPools(ctx); return },
		func() (err error) { st.resv, err = c.listReservations(ctx); return },
	}
	if host != "" {
		fns = append(fns, func() (err error) {
			if st.affs, err = c.hostAffinities(ctx, host); err != nil {
				return err
			}
			var next []func() error
			for _, ver := range follow {
				if slices.ContainsFunc(prefetch, func(p netip.Prefix) bool { return p.Addr().Is4() == (ver == 4) }) {
					continue
				}
				if p, ok := firstAffineBlock(st.affs, ver); ok {
					next = append(next, func() error { read(p); return nil })
				}
			}
			return parallel(next...)
		})
	}
	for _, p := range prefetch {
		fns = append(fns, func() error { read(p); return nil })
	}
	if err := parallel(fns...); err != nil {
		return nil, err
	}
	return st, nil
}

// firstAffineBlock is the lowest-addressed block of IP version ver that one of affs (a host's
// affinities) gives the host.
func firstAffineBlock(affs []*api.BlockAffinity, ver int) (netip.Prefix, bool) {
	var first netip.Prefix
	for _, a := range affs {
		if a.Spec.State == api.BlockAffinityPendingDeletion {
			continue
		}
		p, err := netip.ParsePrefix(a.Spec.CIDR)
		if err != nil || p.Addr().Is4() != (ver == 4) {
			continue
		}
		if p = p.Masked(); !first.IsValid() || p.Addr().Less(first.Addr()) {
			first = p
		}
	}
	return first, first.IsValid()
}

// AutoAssign allocates args.Num4 IPv4 and args.Num6 IPv6 addresses for args.Hostname. For each IP
// version it chooses the pools (see ParsePoolAnnotations for how the CNI picks requested pools), then:
//
//  1. allocates from blocks affine to the host, in pool order;
//  2. claims new blocks (while under the per-host block limit and autoAllocateBlocks is on);
//  3. unless strictAffinity is on, borrows from other blocks in the pools that have room, in an
//     order seeded by the host name.
//
// Getting fewer addresses than requested because the pools are full is not an error: the result's
// Msgs say why, and the caller compares counts. Errors: ErrNoQualifiedPool (no pool matches),
// ErrBlockLimit (returned together with the addresses that were allocated), datastore and validation
// errors. On any error the caller should release what was returned (ReleaseByHandle).
func (c *Client) AutoAssign(ctx context.Context, args AutoAssignArgs) (AssignResult, error) {
	var res AssignResult
	if args.HandleID == "" {
		return res, fmt.Errorf("auto-assigning addresses: a handle ID is required: %w", ErrInvalidArgument)
	}
	if args.Hostname == "" {
		return res, fmt.Errorf("auto-assigning addresses for handle %q: a hostname is required: %w", args.HandleID, ErrInvalidArgument)
	}
	if args.Num4 < 0 || args.Num6 < 0 {
		return res, fmt.Errorf("auto-assigning addresses for handle %q: negative count: %w", args.HandleID, ErrInvalidArgument)
	}
	if args.Num4 == 0 && args.Num6 == 0 {
		return res, nil
	}
	if args.IntendedUse == "" {
		args.IntendedUse = api.IPPoolAllowedUseWorkload
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	st, ok, err := args.Prefetch.state(ctx, c, args.Hostname, false)
	if !ok {
		// Read the blocks this Client last allocated from for the host together with everything
		// else: on a busy node they usually have room, which saves a round trip.
		var prefetch []netip.Prefix
		var follow []int
		for _, fam := range []struct{ ver, n int }{{4, args.Num4}, {6, args.Num6}} {
			if h, ok := c.hints.Load(hintKey{args.Hostname, fam.ver}); ok && fam.n > 0 {
				prefetch = append(prefetch, h.(netip.Prefix))
			} else if fam.n > 0 {
				follow = append(follow, fam.ver)
			}
		}
		st, err = c.loadStateFollow(ctx, args.Hostname, follow, prefetch...)
	}
	if err != nil {
		return res, fmt.Errorf("auto-assigning addresses for node %q: %w", args.Hostname, err)
	}
	st.nodeLabels = args.HostLabels
	req := &allocReq{
		handle:   &handleRef{id: args.HandleID, absent: true},
		attrs:    args.Attrs,
		host:     args.Hostname,
		resv:     st.resv,
		cooldown: st.cfg.cooldown,
	}
	for _, fam := range []struct {
		ver      int
		num      int
		pools    []string
		reserved *HostReservedAttr
		out      *[]netip.Prefix
	}{
		{4, args.Num4, args.IPv4Pools, args.HostReservedAttrIPv4s, &res.IPv4},
		{6, args.Num6, args.IPv6Pools, args.HostReservedAttrIPv6s, &res.IPv6},
	} {
		if fam.num == 0 {
			continue
		}
		q := poolQuery{version: fam.ver, requested: fam.pools, use: args.IntendedUse, nodeLabels: st.nodeLabels, namespaceLabels: args.NamespaceLabels}
		if q.nodeLabels == nil && st.pools.needsNodeLabels(q) {
			if st.nodeLabels, err = c.nodeLabels(ctx, args.Hostname); err != nil {
				return res, err
			}
			q.nodeLabels = st.nodeLabels
		}
		ips, msgs, err := c.autoAssignFamily(ctx, st, q, fam.num, req, args.MaxBlocksPerHost, fam.reserved)
		*fam.out = ips
		res.Msgs = append(res.Msgs, msgs...)
		if err != nil {
			return res, fmt.Errorf("auto-assigning %d IPv%d addresses for node %q (handle %q): %w", fam.num, fam.ver, args.Hostname, args.HandleID, err)
		}
	}
	return res, nil
}

// autoAssignFamily allocates num addresses of one IP version.
func (c *Client) autoAssignFamily(ctx context.Context, st *state, q poolQuery, num int, req *allocReq,
	maxBlocks int, reserved *HostReservedAttr) ([]netip.Prefix, []string, error) {
	pools, why, err := st.pools.determinePools(q)
	if err != nil {
		return nil, nil, err
	}
	if len(pools) == 0 {
		detail := "no enabled IPv" + fmt.Sprint(q.version) + " pool"
		if len(why) > 0 {
			detail = strings.Join(why, "; ")
		}
		return nil, nil, fmt.Errorf("%s: %w", detail, ErrNoQualifiedPool)
	}
	host := req.host
	var out []netip.Prefix
	var msgs []string
	add := func(p *pool, addrs []netip.Addr) {
		for _, a := range addrs {
			out = append(out, netip.PrefixFrom(a, p.blockBits))
		}
	}
	poolOf := func(cidr netip.Prefix) *pool {
		for _, p := range pools {
			if p.cidr.Contains(cidr.Addr()) && p.blockBits == cidr.Bits() {
				return p
			}
		}
		return nil
	}

	// 1. Blocks affine to the host, in pool preference order.
	type affBlock struct {
		aff  *api.BlockAffinity
		cidr netip.Prefix
		pool *pool
		rank int
	}
	var mine []affBlock
	owned := 0
	for _, a := range st.affs {
		cidr, err := netip.ParsePrefix(a.Spec.CIDR)
		if err != nil || cidr.Addr().Is4() != (q.version == 4) {
			continue
		}
		if a.Spec.State != api.BlockAffinityPendingDeletion {
			owned++
		}
		if p := poolOf(cidr.Masked()); p != nil && a.Spec.State != api.BlockAffinityPendingDeletion {
			mine = append(mine, affBlock{aff: a, cidr: cidr.Masked(), pool: p, rank: slices.Index(pools, p)})
		}
	}
	// Pool preference first, then the blocks already read with the rest (the hinted ones: the block
	// this Client or the caller's hint says the host last allocated from, likely to have room; no
	// read before the first write), then the block this Client last allocated from, then address
	// order.
	hk := hintKey{host, q.version}
	hint, _ := c.hints.Load(hk)
	slices.SortFunc(mine, func(x, y affBlock) int {
		if x.rank != y.rank {
			return x.rank - y.rank
		}
		if xp, yp := st.prefetched[x.cidr] != nil, st.prefetched[y.cidr] != nil; xp != yp {
			if xp {
				return -1
			}
			return 1
		}
		if xh, yh := x.cidr == hint, y.cidr == hint; xh != yh {
			if xh {
				return -1
			}
			return 1
		}
		return x.cidr.Addr().Compare(y.cidr.Addr())
	})
	affine := func(b *block) bool { return b.affineTo(host) }
	for _, m := range mine {
		if len(out) == num {
			break
		}
		start, err := c.ensureAffineBlock(ctx, m.aff, m.cidr, host, reserved, st.prefetched[m.cidr])
		delete(st.prefetched, m.cidr) // used at most once
		if err != nil {
			return out, msgs, err
		}
		if start == nil {
			owned--
			continue
		}
		addrs, err := c.assignFromBlock(ctx, m.cidr, start, num-len(out), req, affine)
		add(m.pool, addrs)
		if len(addrs) > 0 {
			c.hints.Store(hk, m.cidr)
		}
		if err != nil {
			return out, msgs, err
		}
	}

	// 2. Claim new blocks.
	limit := st.cfg.blockLimit(maxBlocks)
	if len(out) < num && st.cfg.autoAllocateBlocks {
		var taken map[netip.Prefix]bool
		for _, p := range pools {
			if len(out) == num {
				break
			}
			var w *blockWalker
			for len(out) < num {
				if owned >= limit {
					msgs = append(msgs, fmt.Sprintf("Need to allocate an IPAM block but could not - limit of %d blocks reached for this node", limit))
					return out, msgs, fmt.Errorf("node %q holds %d IPv%d blocks, the limit is %d: %w", host, owned, q.version, limit, ErrBlockLimit)
				}
				if taken == nil {
					if taken, err = c.existingBlocks(ctx); err != nil {
						return out, msgs, err
					}
				}
				if w == nil {
					w = p.walker(host, taken, st.resv)
				}
				cidr, ok := w.next()
				if !ok {
					break // no unclaimed block left in this pool
				}
				if st.resv.fullyReserves(cidr) {
					taken[cidr] = true
					continue
				}
				blkObj, err := c.claimBlock(ctx, cidr, host, reserved)
				if errors.Is(err, errClaimConflict) {
					taken[cidr] = true
					continue
				}
				if err != nil {
					return out, msgs, err
				}
				taken[cidr] = true
				owned++
				addrs, err := c.assignFromBlock(ctx, cidr, blkObj, num-len(out), req, affine)
				add(p, addrs)
				if len(addrs) > 0 {
					c.hints.Store(hk, cidr)
				}
				if err != nil {
					return out, msgs, err
				}
			}
		}
	}
	if len(out) == num {
		return out, msgs, nil
	}

	// 3. Borrow from other blocks.
	if st.cfg.strictAffinity {
		msgs = append(msgs, "No more free affine blocks and strict affinity enabled")
		return out, msgs, nil
	}
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return out, msgs, err
	}
	borrowable := func(b *block) bool { return !b.obj.Spec.StrictAffinity || b.affineTo(host) }
	for _, p := range pools {
		if len(out) == num {
			break
		}
		byCIDR := map[netip.Prefix]*api.IPAMBlock{}
		var cands []netip.Prefix
		for _, o := range blocks {
			b, err := decodeBlock(o)
			if err != nil || b.cidr.Bits() != p.blockBits || !p.cidr.Contains(b.cidr.Addr()) {
				continue
			}
			if b.affineTo(host) || o.Spec.Deleted || !borrowable(b) || b.freeCount(st.resv.skipFunc(b.cidr)) == 0 {
				continue
			}
			byCIDR[b.cidr] = o
			cands = append(cands, b.cidr)
		}
		p.orderBlocks(host, cands)
		for _, cidr := range cands {
			if len(out) == num {
				break
			}
			addrs, err := c.assignFromBlock(ctx, cidr, byCIDR[cidr], num-len(out), req, borrowable)
			add(p, addrs)
			if err != nil {
				return out, msgs, err
			}
		}
	}
	if len(out) < num {
		names := make([]string, len(pools))
		for i, p := range pools {
			names[i] = p.cidr.String()
		}
		msgs = append(msgs, fmt.Sprintf("No IPs available in pools: %v", names))
	}
	return out, msgs, nil
}

// existingBlocks returns the CIDRs that have an IPAMBlock.
func (c *Client) existingBlocks(ctx context.Context) (map[netip.Prefix]bool, error) {
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Prefix]bool, len(blocks))
	for _, b := range blocks {
		if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
			m[p.Masked()] = true
		}
	}
	return m, nil
}

// ensureAffineBlock makes the block behind one of the host's affinities usable: it returns the block
// when the host owns it (confirming a pending affinity, or re-creating a block whose affinity exists
// but whose block does not), or nil when the affinity turns out stale (another owner: the affinity is
// deleted).
func (c *Client) ensureAffineBlock(ctx context.Context, aff *api.BlockAffinity, cidr netip.Prefix, host string,
	reserved *HostReservedAttr, known *api.IPAMBlock) (*api.IPAMBlock, error) {
	obj, err := known, error(nil)
	if obj == nil {
		obj, err = c.getBlock(ctx, cidr.String())
	}
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		b, err := c.claimBlock(ctx, cidr, host, reserved)
		if errors.Is(err, errClaimConflict) {
			return nil, nil
		}
		return b, err
	case err != nil:
		return nil, fmt.Errorf("reading block %s affine to node %q: %w", cidr, host, err)
	}
	b, err := decodeBlock(obj)
	if err != nil {
		c.log.Warn("skipping an invalid block", "block", cidr.String(), "error", err)
		return nil, nil
	}
	if !b.affineTo(host) || obj.Spec.Deleted {
		c.dropAffinity(ctx, aff)
		return nil, nil
	}
	if aff.Spec.State == api.BlockAffinityPending {
		if err := c.confirmAffinity(ctx, aff); err != nil {
			if errors.Is(err, errClaimConflict) {
				return nil, nil
			}
			return nil, fmt.Errorf("confirming the affinity of block %s for node %q: %w", cidr, host, err)
		}
	}
	return obj, nil
}

// AssignIPArgs is a request for one specific address.
type AssignIPArgs struct {
	// IP is the address (required).
	IP netip.Addr
	// HandleID owns it (required).
	HandleID string
	// Attrs are stored with the allocation.
	Attrs map[string]string
	// Hostname is the node asking. If the address's block does not exist yet it is claimed for this
	// node; with no Hostname an unaffine block is created.
	Hostname string
	// IntendedUse is Workload (default) or Tunnel; the address's pool must allow it.
	IntendedUse api.IPPoolAllowedUse
	// Prefetch, when it is this Client's, supplies the configuration, pools and reservations the call
	// starts with (see Client.Prefetch); nil means the call reads them itself.
	Prefetch *Prefetch
}

// AssignIP allocates one specific address. It is honoured even when the address's block is affine to
// another node (the address is allocated there; routing follows the block's owner plus the
// workload's own route). The address must be in an enabled pool that allows the intended use; it may
// be in an IPReservation (reservations only keep addresses from AutoAssign). It returns the address
// with its block's prefix length. Errors: ErrNotInPool, ErrPoolDisabled, ErrUseNotAllowed,
// ErrAlreadyAllocated, ErrBlockLimit.
func (c *Client) AssignIP(ctx context.Context, args AssignIPArgs) (netip.Prefix, error) {
	ip := args.IP.Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}, fmt.Errorf("assigning an address: no valid address given: %w", ErrInvalidArgument)
	}
	wrap := func(err error) error {
		return fmt.Errorf("assigning %s (handle %q, node %q): %w", ip, args.HandleID, args.Hostname, err)
	}
	if args.HandleID == "" {
		return netip.Prefix{}, wrap(fmt.Errorf("a handle ID is required: %w", ErrInvalidArgument))
	}
	if args.IntendedUse == "" {
		args.IntendedUse = api.IPPoolAllowedUseWorkload
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	st, ok, err := args.Prefetch.state(ctx, c, "", true)
	if !ok {
		st, err = c.loadState(ctx, "")
	}
	if err != nil {
		return netip.Prefix{}, wrap(err)
	}
	p := st.pools.containing(ip)
	switch {
	case p == nil:
		return netip.Prefix{}, wrap(ErrNotInPool)
	case p.disabled:
		return netip.Prefix{}, wrap(fmt.Errorf("pool %s: %w", p.cidr, ErrPoolDisabled))
	case !p.allows(args.IntendedUse):
		return netip.Prefix{}, wrap(fmt.Errorf("pool %s allows %v, not %s: %w", p.cidr, p.uses, args.IntendedUse, ErrUseNotAllowed))
	}
	// IPReservations keep addresses from automatic assignment only: reserving a range and handing its
	// addresses out by name (the ipAddrs annotation) is their main use, as in Calico.
	cidr := p.blockFor(ip)
	cidrs := cidr.String()
	h := &handleRef{id: args.HandleID, absent: true}
	held := false
	undo := func() {
		if held {
			if err := c.adjustHandle(context.WithoutCancel(ctx), h, cidrs, -1, false); err != nil {
				c.log.Warn("could not undo an IPAM handle increment; Check will report the handle", "handle", h.id, "block", cidrs, "error", err)
			}
		}
	}
	for attempt := 0; attempt < c.retries; attempt++ {
		if attempt > 0 {
			if err := c.backoff(ctx, attempt); err != nil {
				undo()
				return netip.Prefix{}, wrap(err)
			}
		}
		obj, err := c.getBlock(ctx, cidrs)
		if errors.Is(err, datastore.ErrNotFound) {
			obj, err = c.createBlockFor(ctx, st, cidr, args.Hostname)
			if errors.Is(err, errClaimConflict) || errors.Is(err, datastore.ErrAlreadyExists) {
				continue
			}
		}
		if err != nil {
			undo()
			return netip.Prefix{}, wrap(err)
		}
		blk, err := decodeBlock(obj)
		if err != nil {
			undo()
			return netip.Prefix{}, wrap(err)
		}
		if obj.Spec.Deleted {
			continue
		}
		blk.sweep(st.cfg.cooldown, c.now())
		ord, _ := blk.ordinal(ip)
		if blk.attr(ord) != nil {
			undo()
			what := "assigned"
			if blk.cooling(ord) {
				what = "released and cooling down (IPAMConfig ipCooldownSeconds)"
			}
			return netip.Prefix{}, wrap(fmt.Errorf("address %s in block %s: %w", what, cidr, ErrAlreadyAllocated))
		}
		if !held {
			if err := c.adjustHandle(ctx, h, cidrs, 1, false); err != nil {
				return netip.Prefix{}, wrap(err)
			}
			held = true
		}
		blk.assign([]int{ord}, args.HandleID, args.Attrs)
		blk.compact()
		blk.bump()
		_, err = c.b.Update(ctx, blk.obj)
		switch {
		case err == nil:
			return netip.PrefixFrom(ip, p.blockBits), nil
		case errors.Is(err, datastore.ErrConflict), errors.Is(err, datastore.ErrNotFound):
		default:
			undo()
			return netip.Prefix{}, wrap(fmt.Errorf("writing block %s: %w", cidr, err))
		}
	}
	undo()
	return netip.Prefix{}, wrap(ErrRetriesExhausted)
}

// createBlockFor creates the missing block at cidr for AssignIP: claimed for host (within its block
// limit), or without affinity when there is no host.
func (c *Client) createBlockFor(ctx context.Context, st *state, cidr netip.Prefix, host string) (*api.IPAMBlock, error) {
	if host == "" {
		nb, err := newBlock(cidr, nil, c.now())
		if err != nil {
			return nil, err
		}
		created, err := c.b.Create(ctx, nb.obj)
		if err != nil {
			return nil, fmt.Errorf("creating block %s: %w", cidr, err)
		}
		return typed[*api.IPAMBlock](created)
	}
	affs, err := c.hostAffinities(ctx, host)
	if err != nil {
		return nil, err
	}
	owned := 0
	for _, a := range affs {
		if p, err := netip.ParsePrefix(a.Spec.CIDR); err == nil && p.Addr().Is4() == cidr.Addr().Is4() && a.Spec.State != api.BlockAffinityPendingDeletion {
			owned++
		}
	}
	if limit := st.cfg.blockLimit(0); owned >= limit {
		return nil, fmt.Errorf("block %s does not exist and node %q already holds %d blocks (limit %d): %w", cidr, host, owned, limit, ErrBlockLimit)
	}
	return c.claimBlock(ctx, cidr, host, nil)
}

// EnsureBlockArgs asks for a block affine to a host, without allocating from it.
type EnsureBlockArgs struct {
	Hostname             string
	HostLabels           map[string]string // nil: read from the Node when needed
	IPv4, IPv6           bool              // which families
	IPv4Pools, IPv6Pools []string
	IntendedUse          api.IPPoolAllowedUse
	// HostReservedAttrIPv4s and HostReservedAttrIPv6s reserve addresses in a block this call creates.
	HostReservedAttrIPv4s, HostReservedAttrIPv6s *HostReservedAttr
}

// EnsureBlockResult holds the host's blocks; a family not asked for is the zero Prefix.
type EnsureBlockResult struct {
	IPv4, IPv6 netip.Prefix
}

// EnsureBlock returns a block affine to the host in each requested family, claiming one if the host has
// none in the chosen pools (Windows needs its block's subnet before the first pod). Errors:
// ErrNoQualifiedPool, ErrBlockLimit, and "no free block" (wrapping ErrNoQualifiedPool) when every
// block of the pools is taken.
func (c *Client) EnsureBlock(ctx context.Context, args EnsureBlockArgs) (EnsureBlockResult, error) {
	var res EnsureBlockResult
	if args.Hostname == "" {
		return res, fmt.Errorf("ensuring a block: a hostname is required: %w", ErrInvalidArgument)
	}
	if args.IntendedUse == "" {
		args.IntendedUse = api.IPPoolAllowedUseWorkload
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	st, err := c.loadState(ctx, args.Hostname)
	if err != nil {
		return res, fmt.Errorf("ensuring a block for node %q: %w", args.Hostname, err)
	}
	labels := args.HostLabels
	for _, fam := range []struct {
		want     bool
		ver      int
		pools    []string
		reserved *HostReservedAttr
		out      *netip.Prefix
	}{
		{args.IPv4, 4, args.IPv4Pools, args.HostReservedAttrIPv4s, &res.IPv4},
		{args.IPv6, 6, args.IPv6Pools, args.HostReservedAttrIPv6s, &res.IPv6},
	} {
		if !fam.want {
			continue
		}
		q := poolQuery{version: fam.ver, requested: fam.pools, use: args.IntendedUse, nodeLabels: labels}
		if q.nodeLabels == nil && st.pools.needsNodeLabels(q) {
			if labels, err = c.nodeLabels(ctx, args.Hostname); err != nil {
				return res, err
			}
			q.nodeLabels = labels
		}
		p, err := c.ensureFamilyBlock(ctx, st, q, args.Hostname, fam.reserved)
		if err != nil {
			return res, fmt.Errorf("ensuring an IPv%d block for node %q: %w", fam.ver, args.Hostname, err)
		}
		*fam.out = p
	}
	return res, nil
}

func (c *Client) ensureFamilyBlock(ctx context.Context, st *state, q poolQuery, host string, reserved *HostReservedAttr) (netip.Prefix, error) {
	pools, why, err := st.pools.determinePools(q)
	if err != nil {
		return netip.Prefix{}, err
	}
	if len(pools) == 0 {
		return netip.Prefix{}, fmt.Errorf("%s: %w", strings.Join(why, "; "), ErrNoQualifiedPool)
	}
	owned := 0
	for _, a := range st.affs {
		if cidr, err := netip.ParsePrefix(a.Spec.CIDR); err == nil && cidr.Addr().Is4() == (q.version == 4) &&
			a.Spec.State != api.BlockAffinityPendingDeletion {
			owned++
		}
	}
	for _, p := range pools {
		for _, a := range st.affs {
			cidr, err := netip.ParsePrefix(a.Spec.CIDR)
			if err != nil || a.Spec.State == api.BlockAffinityPendingDeletion {
				continue
			}
			if !p.cidr.Contains(cidr.Addr()) || cidr.Bits() != p.blockBits {
				continue
			}
			if b, err := c.ensureAffineBlock(ctx, a, cidr.Masked(), host, reserved, nil); err != nil {
				return netip.Prefix{}, err
			} else if b != nil {
				return cidr.Masked(), nil
			}
		}
	}
	if !st.cfg.autoAllocateBlocks {
		return netip.Prefix{}, fmt.Errorf("node %q has no block and autoAllocateBlocks is off: %w", host, ErrNoQualifiedPool)
	}
	if limit := st.cfg.blockLimit(0); owned >= limit {
		return netip.Prefix{}, fmt.Errorf("node %q holds %d blocks (limit %d): %w", host, owned, limit, ErrBlockLimit)
	}
	taken, err := c.existingBlocks(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, p := range pools {
		w := p.walker(host, taken, st.resv)
		for {
			cidr, ok := w.next()
			if !ok {
				break
			}
			if _, err := c.claimBlock(ctx, cidr, host, reserved); errors.Is(err, errClaimConflict) {
				taken[cidr] = true
				continue
			} else if err != nil {
				return netip.Prefix{}, err
			}
			return cidr, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every block of the pools is taken: %w", ErrNoQualifiedPool)
}
