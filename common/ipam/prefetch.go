package ipam

import (
	"context"
	"net/netip"
)

// Prefetch is IPAM's first round of reads, started ahead of an AutoAssign or AssignIP call by
// Client.Prefetch.
type Prefetch struct {
	c    *Client
	host string
	done chan struct{}
	st   *state
	err  error
}

// Prefetch starts, in the background, the reads that AutoAssign and AssignIP for host begin with —
// IPAMConfig, the IP pools, the IP reservations and host's block affinities — together with the
// blocks given, and returns at once. blocks are a hint: the blocks the caller expects host to
// allocate from (the CNI plugin remembers the blocks of the node's last allocation, since each of its
// invocations is a new process and a Client's own memory of them is lost); a block that turns out
// full, not host's or missing costs nothing but its read. The blocks this Client last allocated from
// for host are added. For an IP version without a hinted block, host's lowest-addressed affine block
// is read as soon as the affinities are known.
//
// Passing the result in AutoAssignArgs.Prefetch or AssignIPArgs.Prefetch makes the call use these
// reads instead of making them: a caller can overlap IPAM's reads with its own (the CNI plugin reads
// ClusterInformation and the pod in the same round trip), and an AutoAssign from a hinted block
// needs no read of its own before its writes. Prefetch writes nothing.
//
// A call that uses a Prefetch works from what was read then, as if it had read it itself at that
// moment; every write is still a compare-and-swap on what was read, so a concurrent change costs a
// retry, never correctness. Callers that serialise a host's allocations (the CNI plugin's host lock)
// take the lock before calling Prefetch, so that what it reads is not outdated by another allocation
// of theirs. A Prefetch may serve several calls made one after another (an AssignIP per address);
// each prefetched block is used at most once. ctx bounds the reads.
func (c *Client) Prefetch(ctx context.Context, host string, blocks ...netip.Prefix) *Prefetch {
	pf := &Prefetch{c: c, host: host, done: make(chan struct{})}
	var want []netip.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		if p.IsValid() && !seen[p.Masked()] {
			seen[p.Masked()] = true
			want = append(want, p.Masked())
		}
	}
	for _, b := range blocks {
		add(b)
	}
	if host != "" {
		for _, ver := range []int{4, 6} {
			if h, ok := c.hints.Load(hintKey{host, ver}); ok {
				add(h.(netip.Prefix))
			}
		}
	}
	go func() {
		defer close(pf.done)
		ctx, cancel := c.opCtx(ctx)
		defer cancel()
		pf.st, pf.err = c.loadStateFollow(ctx, host, []int{4, 6}, want...)
	}()
	return pf
}

// state waits for the prefetched reads. ok is false when pf cannot serve the call (nil, another
// Client, or another host when host matters): the call reads for itself.
func (pf *Prefetch) state(ctx context.Context, c *Client, host string, anyHost bool) (st *state, ok bool, err error) {
	if pf == nil || pf.c != c || (!anyHost && pf.host != host) {
		return nil, false, nil
	}
	select {
	case <-pf.done:
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
	return pf.st, true, pf.err
}
