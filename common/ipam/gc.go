package ipam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// Liveness says which addresses, handles and nodes are in use. Check compares IPAM's records with it.
// The zero value knows nothing; fill it with AddIP/AddHandle/AddNode or LivenessFromDatastore.
type Liveness struct {
	// IPs maps each in-use address to its owners ("workload endpoint ns/name", "node n1 VXLAN tunnel").
	IPs map[netip.Addr][]string
	// Handles are in use whatever their addresses.
	Handles map[string]bool
	// Nodes are the nodes that exist. nil means unknown: node checks are skipped.
	Nodes map[string]bool
}

// AddIP records that owner uses ip.
func (l *Liveness) AddIP(ip netip.Addr, owner string) {
	if l.IPs == nil {
		l.IPs = map[netip.Addr][]string{}
	}
	l.IPs[ip.Unmap()] = append(l.IPs[ip.Unmap()], owner)
}

// AddHandle records a live handle.
func (l *Liveness) AddHandle(handle string) {
	if l.Handles == nil {
		l.Handles = map[string]bool{}
	}
	l.Handles[handle] = true
}

// AddNode records an existing node.
func (l *Liveness) AddNode(node string) {
	if l.Nodes == nil {
		l.Nodes = map[string]bool{}
	}
	l.Nodes[node] = true
}

// LivenessFromDatastore builds Liveness from the datastore: every Node exists and uses its tunnel and
// WireGuard addresses; every WorkloadEndpoint uses its ipNetworks.
func LivenessFromDatastore(ctx context.Context, b datastore.Backend) (Liveness, error) {
	var l Liveness
	l.Nodes = map[string]bool{}
	nodes, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindNode})
	if err != nil {
		return l, fmt.Errorf("listing nodes for the IPAM check: %w", err)
	}
	for _, o := range nodes {
		n, ok := o.(*api.Node)
		if !ok {
			continue
		}
		l.AddNode(n.Name)
		add := func(s, what string) {
			if s == "" {
				return
			}
			if p, err := parsePrefixOrAddr(s); err == nil {
				l.AddIP(p.Addr(), fmt.Sprintf("node %s %s", n.Name, what))
			}
		}
		if n.Spec.BGP != nil {
			add(n.Spec.BGP.IPv4IPIPTunnelAddr, "IPIP tunnel")
		}
		add(n.Spec.IPv4VXLANTunnelAddr, "VXLAN tunnel")
		add(n.Spec.IPv6VXLANTunnelAddr, "IPv6 VXLAN tunnel")
		if w := n.Spec.Wireguard; w != nil {
			add(w.InterfaceIPv4Address, "WireGuard")
			add(w.InterfaceIPv6Address, "IPv6 WireGuard")
		}
	}
	weps, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindWorkloadEndpoint})
	if err != nil {
		return l, fmt.Errorf("listing workload endpoints for the IPAM check: %w", err)
	}
	for _, o := range weps {
		w, ok := o.(*api.WorkloadEndpoint)
		if !ok {
			continue
		}
		for _, s := range w.Spec.IPNetworks {
			if p, err := parsePrefixOrAddr(s); err == nil {
				l.AddIP(p.Addr(), fmt.Sprintf("workload endpoint %s/%s", w.Namespace, w.Name))
			}
		}
	}
	return l, nil
}

// Report is the result of Check. It is JSON-serialisable (tortiectl ipam check -o report.json) and
// is what ReleaseFromReport acts on.
type Report struct {
	CheckedAt time.Time     `json:"checkedAt"`
	Summary   ReportSummary `json:"summary"`
	// Leaked are allocations no live owner uses and whose handle has no live address either (all or
	// none per handle). Each carries its sequence number so a release cannot hit a reallocation.
	Leaked []Allocation `json:"leaked,omitempty"`
	// NotAllocated are addresses in use (inside a pool) that IPAM has not allocated.
	NotAllocated []InUseAddress `json:"notAllocated,omitempty"`
	// OutsidePools are addresses in use outside every pool (information only).
	OutsidePools []InUseAddress `json:"outsidePools,omitempty"`
	// MultipleOwners are addresses used by more than one owner.
	MultipleOwners []InUseAddress `json:"multipleOwners,omitempty"`
	// OrphanNodes are nodes that no longer exist but still have block affinities or affine blocks.
	OrphanNodes []NodeBlocks `json:"orphanNodes,omitempty"`
	// StaleAffinities are affinities left by an interrupted claim or release, or whose block belongs
	// to someone else.
	StaleAffinities []AffinityRef `json:"staleAffinities,omitempty"`
	// EmptyBlocks can be released: unaffine empty blocks, and a node's empty blocks beyond the one it
	// keeps per IP version.
	EmptyBlocks []BlockRef `json:"emptyBlocks,omitempty"`
	// HandleProblems are handles with no addresses, handles whose counts disagree with the blocks,
	// and handles that blocks refer to but that do not exist.
	HandleProblems []HandleProblem `json:"handleProblems,omitempty"`
	// InvalidBlocks are blocks that are damaged (they are not allocated from).
	InvalidBlocks []BlockProblem `json:"invalidBlocks,omitempty"`
}

// ReportSummary counts what Check looked at.
type ReportSummary struct {
	Pools       int `json:"pools"`
	Blocks      int `json:"blocks"`
	Affinities  int `json:"affinities"`
	Handles     int `json:"handles"`
	Allocations int `json:"allocations"`
	InUse       int `json:"inUse"`
	Leaked      int `json:"leaked"`
	// Recent counts allocations without a live owner that are younger than the grace period.
	Recent int `json:"recent"`
}

// InUseAddress is an address and who uses it.
type InUseAddress struct {
	IP     netip.Addr `json:"ip"`
	Owners []string   `json:"owners"`
}

// NodeBlocks lists a node's affinities and blocks.
type NodeBlocks struct {
	Node   string         `json:"node"`
	Blocks []netip.Prefix `json:"blocks"`
}

// AffinityRef names a BlockAffinity.
type AffinityRef struct {
	Name     string       `json:"name"`
	Node     string       `json:"node"`
	CIDR     netip.Prefix `json:"cidr"`
	State    string       `json:"state"`
	Revision string       `json:"revision"`
	Reason   string       `json:"reason"`
}

// BlockRef names a block.
type BlockRef struct {
	CIDR     netip.Prefix `json:"cidr"`
	Affinity string       `json:"affinity,omitempty"`
	Revision string       `json:"revision"`
}

// HandleProblem describes a handle whose record disagrees with the blocks.
type HandleProblem struct {
	HandleID string `json:"handleID"`
	// Problem is "no addresses", "counts differ" or "missing".
	Problem string `json:"problem"`
	// Recorded are the handle's counts per block; Actual what the blocks hold.
	Recorded map[string]int `json:"recorded,omitempty"`
	Actual   map[string]int `json:"actual,omitempty"`
	// Revision is the handle's revision when checked ("" when missing).
	Revision string `json:"revision,omitempty"`
}

// BlockProblem describes a damaged block.
type BlockProblem struct {
	Block    string   `json:"block"`
	Problems []string `json:"problems"`
}

// CheckOption configures Check.
type CheckOption func(*checkOpts)

type checkOpts struct {
	grace time.Duration
}

// WithLeakGracePeriod leaves out allocations (by their timestamp attribute), handles and pending
// affinities younger than d: a pod being created holds its addresses before its endpoint exists.
func WithLeakGracePeriod(d time.Duration) CheckOption { return func(o *checkOpts) { o.grace = d } }

const (
	problemNoAddresses = "no addresses"
	problemCounts      = "counts differ"
	problemMissing     = "missing"
)

// Check compares IPAM's records (blocks, affinities, handles) with live and reports leaks and
// inconsistencies. It changes nothing. Allocations whose timestamp attribute does not parse count as
// old.
func (c *Client) Check(ctx context.Context, live Liveness, opts ...CheckOption) (Report, error) {
	var o checkOpts
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	var pools poolSet
	var blockObjs []*api.IPAMBlock
	var affs []*api.BlockAffinity
	var handles []*api.IPAMHandle
	if err := parallel(
		func() (err error) { pools, err = c.listPools(ctx); return },
		func() (err error) { blockObjs, err = c.listBlocks(ctx); return },
		func() (err error) { affs, err = c.listAffinities(ctx); return },
		func() (err error) { handles, err = c.listHandles(ctx); return },
	); err != nil {
		return Report{}, fmt.Errorf("checking IPAM: %w", err)
	}
	now := c.now()
	young := func(t time.Time) bool { return o.grace > 0 && !t.IsZero() && now.Sub(t) < o.grace }
	r := Report{CheckedAt: now}
	r.Summary.Pools, r.Summary.Blocks, r.Summary.Affinities, r.Summary.Handles = len(pools.pools), len(blockObjs), len(affs), len(handles)

	type nodeBlock struct {
		b   *block
		rev string
	}
	blocks := map[netip.Prefix]*block{}
	byNode := map[string][]nodeBlock{}
	allocated := map[netip.Addr]bool{}
	actual := map[string]map[string]int{} // handle → block → count
	byHandle := map[string][]Allocation{}
	var noHandle []Allocation
	for _, obj := range blockObjs {
		b, err := decodeBlock(obj)
		if err != nil {
			r.InvalidBlocks = append(r.InvalidBlocks, BlockProblem{Block: obj.Spec.CIDR, Problems: []string{err.Error()}})
			continue
		}
		if probs := b.check(); len(probs) > 0 {
			r.InvalidBlocks = append(r.InvalidBlocks, BlockProblem{Block: b.cidr.String(), Problems: probs})
		}
		blocks[b.cidr] = b
		if h, ok := affinityHost(b.obj.Spec.Affinity); ok {
			byNode[h] = append(byNode[h], nodeBlock{b, obj.ResourceVersion})
		} else if b.empty() && !obj.Spec.Deleted && now.Sub(blockAge(obj)) >= c.emptyBlockMinAge {
			r.EmptyBlocks = append(r.EmptyBlocks, BlockRef{CIDR: b.cidr, Revision: obj.ResourceVersion})
		}
		for ord := range b.size {
			if !b.allocated(ord) {
				continue
			}
			a := b.allocation(ord)
			r.Summary.Allocations++
			allocated[a.IP] = true
			if a.Handle == "" {
				noHandle = append(noHandle, a)
				continue
			}
			if actual[a.Handle] == nil {
				actual[a.Handle] = map[string]int{}
			}
			actual[a.Handle][b.cidr.String()]++
			byHandle[a.Handle] = append(byHandle[a.Handle], a)
		}
	}

	// Leaks: all or none per handle.
	isYoung := func(a Allocation) bool {
		t, ok := ParseTimestamp(a.Attrs[AttributeTimestamp])
		return ok && young(t)
	}
	for _, h := range sortedKeys(byHandle) {
		allocs := byHandle[h]
		liveHandle := live.Handles[h] || h == WindowsReservedHandle
		for _, a := range allocs {
			if len(live.IPs[a.IP]) > 0 {
				liveHandle = true
			}
		}
		if liveHandle {
			r.Summary.InUse += len(allocs)
			continue
		}
		if slices.ContainsFunc(allocs, isYoung) {
			r.Summary.Recent += len(allocs)
			continue
		}
		r.Leaked = append(r.Leaked, allocs...)
	}
	for _, a := range noHandle {
		switch {
		case len(live.IPs[a.IP]) > 0:
			r.Summary.InUse++
		case isYoung(a):
			r.Summary.Recent++
		default:
			r.Leaked = append(r.Leaked, a)
		}
	}
	r.Summary.Leaked = len(r.Leaked)

	// Addresses in use.
	ips := slices.Collect(maps.Keys(live.IPs))
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range ips {
		owners := live.IPs[ip]
		if len(owners) > 1 {
			r.MultipleOwners = append(r.MultipleOwners, InUseAddress{IP: ip, Owners: owners})
		}
		if allocated[ip] {
			continue
		}
		if pools.containing(ip) == nil {
			r.OutsidePools = append(r.OutsidePools, InUseAddress{IP: ip, Owners: owners})
		} else {
			r.NotAllocated = append(r.NotAllocated, InUseAddress{IP: ip, Owners: owners})
		}
	}

	// Handles.
	seen := map[string]bool{}
	for _, h := range handles {
		id := h.Spec.HandleID
		seen[id] = true
		if young(h.CreationTimestamp.Time) {
			continue
		}
		recorded := map[string]int{}
		for k, v := range h.Spec.Block {
			if v != 0 {
				recorded[normCIDR(k)] = v
			}
		}
		act := actual[id]
		switch {
		case len(act) == 0:
			r.HandleProblems = append(r.HandleProblems, HandleProblem{HandleID: id, Problem: problemNoAddresses, Recorded: recorded, Revision: h.ResourceVersion})
		case !maps.Equal(recorded, act):
			r.HandleProblems = append(r.HandleProblems, HandleProblem{HandleID: id, Problem: problemCounts, Recorded: recorded, Actual: maps.Clone(act), Revision: h.ResourceVersion})
		}
	}
	for _, id := range sortedKeys(actual) {
		if !seen[id] && id != WindowsReservedHandle {
			r.HandleProblems = append(r.HandleProblems, HandleProblem{HandleID: id, Problem: problemMissing, Actual: maps.Clone(actual[id])})
		}
	}

	// Affinities and nodes.
	orphans := map[string]map[netip.Prefix]bool{}
	orphan := func(node string, p netip.Prefix) {
		if orphans[node] == nil {
			orphans[node] = map[netip.Prefix]bool{}
		}
		orphans[node][p] = true
	}
	nodeGone := func(n string) bool { return live.Nodes != nil && !live.Nodes[n] }
	for _, a := range affs {
		if a.Spec.Type != "" && a.Spec.Type != api.AffinityTypeHost {
			continue
		}
		p, err := netip.ParsePrefix(a.Spec.CIDR)
		if err != nil {
			continue
		}
		p = p.Masked()
		ref := AffinityRef{Name: a.Name, Node: a.Spec.Node, CIDR: p, State: a.Spec.State, Revision: a.ResourceVersion}
		if nodeGone(a.Spec.Node) {
			orphan(a.Spec.Node, p)
			continue
		}
		b := blocks[p]
		owned := b != nil && b.affineTo(a.Spec.Node)
		switch {
		case young(a.CreationTimestamp.Time):
		case a.Spec.State == api.BlockAffinityPending && !owned:
			ref.Reason = "claim interrupted: pending without a block owned by the node"
			r.StaleAffinities = append(r.StaleAffinities, ref)
		case a.Spec.State == api.BlockAffinityPending:
			ref.Reason = "claim interrupted: the node owns the block but the affinity is still pending"
			r.StaleAffinities = append(r.StaleAffinities, ref)
		case a.Spec.State == api.BlockAffinityPendingDeletion:
			ref.Reason = "release interrupted: pendingDeletion"
			r.StaleAffinities = append(r.StaleAffinities, ref)
		case b != nil && !owned:
			ref.Reason = "the block belongs to " + affinityString(b.obj.Spec.Affinity)
			r.StaleAffinities = append(r.StaleAffinities, ref)
		}
	}
	for node, nbs := range byNode {
		if nodeGone(node) {
			for _, nb := range nbs {
				orphan(node, nb.b.cidr)
			}
			continue
		}
		// Keep one block per IP version; release the node's other empty blocks.
		for _, is4 := range []bool{true, false} {
			var fam []nodeBlock
			for _, nb := range nbs {
				if nb.b.cidr.Addr().Is4() == is4 {
					fam = append(fam, nb)
				}
			}
			slices.SortFunc(fam, func(x, y nodeBlock) int { return x.b.cidr.Addr().Compare(y.b.cidr.Addr()) })
			kept := slices.ContainsFunc(fam, func(nb nodeBlock) bool { return !nb.b.empty() })
			for _, nb := range fam {
				if !nb.b.empty() {
					continue
				}
				if !kept {
					kept = true
					continue
				}
				if now.Sub(blockAge(nb.b.obj)) >= c.emptyBlockMinAge {
					r.EmptyBlocks = append(r.EmptyBlocks, BlockRef{CIDR: nb.b.cidr, Affinity: hostAffinity(node), Revision: nb.rev})
				}
			}
		}
	}
	for _, node := range sortedKeys(orphans) {
		nb := NodeBlocks{Node: node, Blocks: slices.Collect(maps.Keys(orphans[node]))}
		slices.SortFunc(nb.Blocks, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		r.OrphanNodes = append(r.OrphanNodes, nb)
	}
	slices.SortFunc(r.EmptyBlocks, func(a, b BlockRef) int { return a.CIDR.Addr().Compare(b.CIDR.Addr()) })
	slices.SortFunc(r.Leaked, func(a, b Allocation) int { return a.IP.Compare(b.IP) })
	return r, nil
}

// Clean reports whether the report found nothing to repair or release.
func (r Report) Clean() bool {
	return len(r.Leaked) == 0 && len(r.OrphanNodes) == 0 && len(r.StaleAffinities) == 0 &&
		len(r.EmptyBlocks) == 0 && len(r.HandleProblems) == 0 && len(r.InvalidBlocks) == 0
}

// Persisting returns the part of r that an earlier report also found (same allocation with the same
// sequence number, same object at the same revision): a garbage collector releases only what two
// checks a grace period apart agree on.
func (r Report) Persisting(earlier Report) Report {
	out := r
	type allocKey struct {
		ip     netip.Addr
		handle string
		seq    uint64
		hasSeq bool
	}
	key := func(a Allocation) allocKey {
		k := allocKey{ip: a.IP, handle: a.Handle}
		if a.SequenceNumber != nil {
			k.seq, k.hasSeq = *a.SequenceNumber, true
		}
		return k
	}
	prev := map[allocKey]bool{}
	for _, a := range earlier.Leaked {
		prev[key(a)] = true
	}
	out.Leaked = slices.DeleteFunc(slices.Clone(r.Leaked), func(a Allocation) bool { return !prev[key(a)] })
	out.Summary.Leaked = len(out.Leaked)
	prevAff := map[string]bool{}
	for _, a := range earlier.StaleAffinities {
		prevAff[a.Name+"@"+a.Revision] = true
	}
	out.StaleAffinities = slices.DeleteFunc(slices.Clone(r.StaleAffinities), func(a AffinityRef) bool { return !prevAff[a.Name+"@"+a.Revision] })
	prevBlk := map[string]bool{}
	for _, b := range earlier.EmptyBlocks {
		prevBlk[b.CIDR.String()+"@"+b.Revision] = true
	}
	out.EmptyBlocks = slices.DeleteFunc(slices.Clone(r.EmptyBlocks), func(b BlockRef) bool { return !prevBlk[b.CIDR.String()+"@"+b.Revision] })
	prevH := map[string]bool{}
	for _, h := range earlier.HandleProblems {
		prevH[h.HandleID+"@"+h.Problem+"@"+h.Revision] = true
	}
	out.HandleProblems = slices.DeleteFunc(slices.Clone(r.HandleProblems), func(h HandleProblem) bool { return !prevH[h.HandleID+"@"+h.Problem+"@"+h.Revision] })
	prevN := map[string]bool{}
	for _, n := range earlier.OrphanNodes {
		prevN[n.Node] = true
	}
	out.OrphanNodes = slices.DeleteFunc(slices.Clone(r.OrphanNodes), func(n NodeBlocks) bool { return !prevN[n.Node] })
	return out
}

// ReleaseSummary says what ReleaseFromReport did.
type ReleaseSummary struct {
	// Released addresses; Skipped ones changed since the check (reallocated, other handle) or were
	// already free.
	Released, Skipped  int
	HandlesRepaired    int
	AffinitiesReleased int
	BlocksReleased     int
}

// ReleaseFromReport repairs what r found, re-checking each item against the datastore so that nothing
// that changed since the check is touched, in this order: handles are recounted from their blocks and
// rewritten (or deleted when empty) at the revision the check saw; leaked addresses are released with
// their handle and sequence number as guards; orphan nodes' affinities are released (their blocks
// keep live allocations but lose their affinity); stale affinities and empty blocks are released at
// the revision the check saw.
func (c *Client) ReleaseFromReport(ctx context.Context, r Report) (ReleaseSummary, error) {
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	var sum ReleaseSummary
	var errs []error

	// 1. Handles first: recounted from the blocks at the revision the check saw. (Releasing the leaked
	// addresses first would change the handles' revisions and leave their stale counts behind.)
	for _, hp := range r.HandleProblems {
		done, err := c.repairHandle(ctx, hp)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			sum.HandlesRepaired++
		}
	}

	// 2. Leaked addresses; releasing them takes them off their (now exact) handles.
	if len(r.Leaked) > 0 {
		opts := make([]ReleaseOptions, 0, len(r.Leaked))
		for _, a := range r.Leaked {
			opts = append(opts, ReleaseOptions{Address: a.IP, Handle: a.Handle, SequenceNumber: a.SequenceNumber})
		}
		un, err := c.ReleaseIPs(ctx, opts...)
		var guard int
		for _, e := range unwrapAll(err) {
			if errors.Is(e, ErrBadSequenceNumber) || errors.Is(e, ErrHandleMismatch) {
				guard++
			} else {
				errs = append(errs, e)
			}
		}
		sum.Skipped += len(un) + guard
		sum.Released += len(opts) - len(un) - guard
	}

	// 3. Orphan nodes, stale affinities, empty blocks.
	for _, n := range r.OrphanNodes {
		for _, p := range n.Blocks {
			if err := c.releaseBlockAffinity(ctx, p, n.Node, false); err != nil && !errors.Is(err, ErrNotAffine) {
				errs = append(errs, err)
			} else if err == nil {
				sum.AffinitiesReleased++
			}
		}
	}
	for _, a := range r.StaleAffinities {
		done, err := c.repairAffinity(ctx, a)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			sum.AffinitiesReleased++
		}
	}
	for _, b := range r.EmptyBlocks {
		done, err := c.releaseEmptyBlock(ctx, b)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			sum.BlocksReleased++
		}
	}
	return sum, errors.Join(errs...)
}

// unwrapAll flattens a joined error.
func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
		return out
	}
	return []error{err}
}

// repairHandle rewrites a handle's counts from its blocks, if the handle is still at the revision the
// check saw (or still missing).
func (c *Client) repairHandle(ctx context.Context, hp HandleProblem) (bool, error) {
	wrap := func(err error) error { return fmt.Errorf("repairing IPAM handle %q: %w", hp.HandleID, err) }
	key := handleKey(hp.HandleID)
	obj, err := c.b.Get(ctx, key)
	var cur *api.IPAMHandle
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		if hp.Problem != problemMissing {
			return false, nil // someone deleted it
		}
	case err != nil:
		return false, wrap(err)
	default:
		cur, _ = obj.(*api.IPAMHandle)
		if cur == nil || hp.Problem == problemMissing || cur.ResourceVersion != hp.Revision {
			return false, nil // changed since the check
		}
	}
	cidrs := map[string]bool{}
	for k := range hp.Recorded {
		cidrs[k] = true
	}
	for k := range hp.Actual {
		cidrs[k] = true
	}
	if cur != nil {
		for k := range cur.Spec.Block {
			cidrs[normCIDR(k)] = true
		}
	}
	counts := map[string]int{}
	for _, k := range sortedKeys(cidrs) {
		bo, err := c.getBlock(ctx, k)
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, wrap(err)
		}
		b, err := decodeBlock(bo)
		if err != nil {
			return false, wrap(err)
		}
		if n := len(b.ordinalsOf(hp.HandleID)); n > 0 {
			counts[b.cidr.String()] = n
		}
	}
	switch {
	case cur == nil && len(counts) == 0:
		return false, nil
	case cur == nil:
		n := api.NewIPAMHandle()
		n.Name = key.Name
		n.Spec.HandleID = hp.HandleID
		n.Spec.Block = counts
		if _, err := c.b.Create(ctx, n); errors.Is(err, datastore.ErrAlreadyExists) {
			return false, nil
		} else if err != nil {
			return false, wrap(err)
		}
		return true, nil
	case len(counts) == 0:
		if _, err := c.b.Delete(ctx, key, cur.ResourceVersion); errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, wrap(err)
		}
		return true, nil
	default:
		upd := cur.DeepCopy()
		upd.Spec.Block = counts
		if _, err := c.b.Update(ctx, upd); errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, wrap(err)
		}
		return true, nil
	}
}

// repairAffinity cleans up an affinity left by an interrupted claim or release, if it is still at the
// revision the check saw.
func (c *Client) repairAffinity(ctx context.Context, a AffinityRef) (bool, error) {
	key := datastore.Key{Kind: api.KindBlockAffinity, Name: a.Name}
	obj, err := c.b.Get(ctx, key)
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("repairing block affinity %q: %w", a.Name, err)
	}
	if obj.GetResourceVersion() != a.Revision {
		return false, nil
	}
	cur, _ := obj.(*api.BlockAffinity)
	if cur == nil {
		return false, nil
	}
	if cur.Spec.State == api.BlockAffinityPendingDeletion {
		// Finish the release (the block loses its affinity or, when empty, goes).
		if err := c.releaseBlockAffinity(ctx, a.CIDR, a.Node, false); err != nil && !errors.Is(err, ErrNotAffine) {
			return false, err
		}
		return true, nil
	}
	// Pending without a block of ours, or confirmed for a block that belongs to someone else.
	bo, err := c.getBlock(ctx, a.CIDR.String())
	if err == nil {
		if b, derr := decodeBlock(bo); derr == nil && b.affineTo(a.Node) {
			if cur.Spec.State != api.BlockAffinityPending {
				return false, nil
			}
			// The block was created: finish the claim.
			if err := c.confirmAffinity(ctx, cur); err != nil {
				return false, fmt.Errorf("confirming block affinity %q: %w", a.Name, err)
			}
			return true, nil
		}
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return false, fmt.Errorf("repairing block affinity %q: %w", a.Name, err)
	}
	if _, err := c.b.Delete(ctx, key, a.Revision); errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("deleting block affinity %q: %w", a.Name, err)
	}
	return true, nil
}

// releaseEmptyBlock releases a block the check found empty, if it is still at the revision seen.
func (c *Client) releaseEmptyBlock(ctx context.Context, br BlockRef) (bool, error) {
	bo, err := c.getBlock(ctx, br.CIDR.String())
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("releasing empty block %s: %w", br.CIDR, err)
	}
	if bo.ResourceVersion != br.Revision {
		return false, nil
	}
	if host, ok := affinityHost(bo.Spec.Affinity); ok {
		err := c.releaseBlockAffinity(ctx, br.CIDR, host, true)
		if errors.Is(err, ErrBlockNotEmpty) || errors.Is(err, ErrNotAffine) {
			return false, nil
		}
		return err == nil, err
	}
	if _, err := c.b.Delete(ctx, blockKey(br.CIDR.String()), br.Revision); errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("deleting empty block %s: %w", br.CIDR, err)
	}
	return true, nil
}

// blockAge returns when a block was claimed (or created).
func blockAge(b *api.IPAMBlock) time.Time {
	if b.Spec.AffinityClaimTime != nil {
		return b.Spec.AffinityClaimTime.Time
	}
	return b.CreationTimestamp.Time
}

func affinityString(a *string) string {
	if a == nil {
		return "nobody"
	}
	return *a
}

func normCIDR(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String()
	}
	return s
}

// TimestampLayout is how Calico's CNI plugin writes AttributeTimestamp: Go's time.Time.String() of a UTC
// time, "2006-01-02 15:04:05.999999999 +0000 UTC".
const TimestampLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// Timestamp formats t for AttributeTimestamp as Calico does (TimestampLayout, in UTC).
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// ParseTimestamp reads an AttributeTimestamp value: Go's time.Time.String() form that Calico's CNI plugin
// and tortie write, or RFC 3339 (what tortie wrote before).
func ParseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if i := strings.Index(s, " m="); i >= 0 { // monotonic clock reading
		s = s[:i]
	}
	for _, layout := range []string{TimestampLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
