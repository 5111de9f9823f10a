package ipam

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/selector"
)

// pool is a decoded IPPool.
type pool struct {
	obj       *api.IPPool
	name      string
	cidr      netip.Prefix // masked
	blockBits int          // prefix length of the pool's blocks
	nodeSel   *selector.Selector
	nsSel     *selector.Selector // nil when the pool has no namespaceSelector
	uses      []api.IPPoolAllowedUse
	manual    bool
	disabled  bool
}

// parsePool decodes a stored pool. CIDRs with host bits set ("10.0.0.1/24") are masked, as Calico does.
func parsePool(o *api.IPPool) (*pool, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(o.Spec.CIDR))
	if err != nil {
		return nil, fmt.Errorf("IPPool %q: spec.cidr %q: %w", o.Name, o.Spec.CIDR, err)
	}
	p = p.Masked()
	bs := o.Spec.BlockSize
	if bs == 0 {
		bs = api.DefaultIPv4BlockSize
		if p.Addr().Is6() {
			bs = api.DefaultIPv6BlockSize
		}
	}
	bits := p.Addr().BitLen()
	if bs < p.Bits() || bs > bits || bits-bs > maxBlockHostBits {
		return nil, fmt.Errorf("IPPool %q: blockSize %d does not fit CIDR %s", o.Name, bs, p)
	}
	ns, err := selector.Parse(o.Spec.NodeSelector)
	if err != nil {
		return nil, fmt.Errorf("IPPool %q: spec.nodeSelector: %w", o.Name, err)
	}
	pl := &pool{obj: o, name: o.Name, cidr: p, blockBits: bs, nodeSel: ns, disabled: o.Spec.Disabled}
	if strings.TrimSpace(o.Spec.NamespaceSelector) != "" {
		if pl.nsSel, err = selector.Parse(o.Spec.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("IPPool %q: spec.namespaceSelector: %w", o.Name, err)
		}
	}
	pl.uses = o.Spec.AllowedUses
	if len(pl.uses) == 0 {
		pl.uses = []api.IPPoolAllowedUse{api.IPPoolAllowedUseWorkload, api.IPPoolAllowedUseTunnel}
	}
	pl.manual = o.Spec.AssignmentMode != nil && *o.Spec.AssignmentMode == api.AssignmentModeManual
	return pl, nil
}

func (p *pool) version() int {
	if p.cidr.Addr().Is4() {
		return 4
	}
	return 6
}

func (p *pool) allows(use api.IPPoolAllowedUse) bool { return slices.Contains(p.uses, use) }

// String names the pool in messages: its CIDR (what Calico's messages show).
func (p *pool) String() string { return p.cidr.String() }

// blockFor returns the block-sized CIDR of the pool that holds a.
func (p *pool) blockFor(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, p.blockBits).Masked()
}

// matches reports whether id names the pool: its name, or a CIDR equal to its CIDR once masked.
func (p *pool) matches(id string) bool {
	id = strings.TrimSpace(id)
	if id == p.name {
		return true
	}
	if q, err := netip.ParsePrefix(id); err == nil {
		return q.Masked() == p.cidr
	}
	return false
}

// poolSet is every pool in the datastore, decoded, in name order.
type poolSet struct {
	pools   []*pool
	invalid []string // messages about pools that could not be decoded
}

func newPoolSet(objs []*api.IPPool) poolSet {
	var s poolSet
	for _, o := range objs {
		p, err := parsePool(o)
		if err != nil {
			s.invalid = append(s.invalid, err.Error())
			continue
		}
		s.pools = append(s.pools, p)
	}
	return s
}

// containing returns the pool that contains a (enabled pools first, then disabled ones).
func (s poolSet) containing(a netip.Addr) *pool {
	var disabled *pool
	for _, p := range s.pools {
		if p.cidr.Contains(a) {
			if !p.disabled {
				return p
			}
			if disabled == nil {
				disabled = p
			}
		}
	}
	return disabled
}

// containingPrefix returns the pool that contains all of c.
func (s poolSet) containingPrefix(c netip.Prefix) *pool {
	for _, p := range s.pools {
		if p.cidr.Bits() <= c.Bits() && p.cidr.Contains(c.Addr()) {
			return p
		}
	}
	return nil
}

// poolQuery is what determinePools filters by.
type poolQuery struct {
	version         int
	requested       []string // pool names or CIDRs; empty means every automatic pool
	use             api.IPPoolAllowedUse
	nodeLabels      map[string]string
	namespaceLabels map[string]string // nil: namespace selectors are not evaluated
}

// needsNodeLabels reports whether choosing among the pools depends on the node's labels.
func (s poolSet) needsNodeLabels(q poolQuery) bool {
	if len(q.requested) > 0 {
		return false
	}
	for _, p := range s.pools {
		if p.version() == q.version && !p.disabled && p.nodeSel.String() != "all()" {
			return true
		}
	}
	return false
}

// determinePools chooses the pools to allocate from, in preference order. Explicitly requested pools
// are used in the order given, whatever their node and namespace selectors and assignment mode say;
// requesting a pool that does not exist or is disabled is an error. A requested pool whose allowedUses
// exclude the use is dropped (leaving perhaps no pool: ErrNoQualifiedPool from the caller). Without a
// request every enabled, automatic pool of the version whose selectors match and whose allowedUses
// include the use qualifies. The second result explains exclusions, for messages.
func (s poolSet) determinePools(q poolQuery) ([]*pool, []string, error) {
	var out []*pool
	var why []string
	if len(q.requested) > 0 {
		for _, id := range q.requested {
			var found *pool
			for _, p := range s.pools {
				if p.matches(id) {
					found = p
					break
				}
			}
			switch {
			case found == nil:
				return nil, nil, fmt.Errorf("requested IP pool %q: %w", id, ErrPoolNotFound)
			case found.version() != q.version:
				return nil, nil, fmt.Errorf("requested IP pool %q (%s) is not an IPv%d pool: %w", id, found.cidr, q.version, ErrInvalidArgument)
			case found.disabled:
				return nil, nil, fmt.Errorf("requested IP pool %q (%s): %w", id, found.cidr, ErrPoolDisabled)
			case !found.allows(q.use):
				why = append(why, fmt.Sprintf("pool %s does not allow use %s", found.cidr, q.use))
			case !slices.Contains(out, found):
				out = append(out, found)
			}
		}
		return out, why, nil
	}
	for _, p := range s.pools {
		switch {
		case p.version() != q.version:
		case p.disabled:
		case p.manual:
			why = append(why, fmt.Sprintf("pool %s has assignmentMode Manual", p.cidr))
		case !p.allows(q.use):
			why = append(why, fmt.Sprintf("pool %s does not allow use %s", p.cidr, q.use))
		case !p.nodeSel.Evaluate(q.nodeLabels):
			why = append(why, fmt.Sprintf("pool %s nodeSelector does not match the node", p.cidr))
		case p.nsSel != nil && q.namespaceLabels != nil && !p.nsSel.Evaluate(q.namespaceLabels):
			why = append(why, fmt.Sprintf("pool %s namespaceSelector does not match the namespace", p.cidr))
		default:
			out = append(out, p)
		}
	}
	return out, why, nil
}

// --- Block enumeration. Pools can be huge (an IPv6 /64 holds 2^58 blocks of /122), so block indices
// are big integers and nothing ever walks every block of a pool.

func addrToBig(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

func bigToAddr(x *big.Int, is4 bool) (netip.Addr, bool) {
	n := 16
	if is4 {
		n = 4
	}
	if x.Sign() < 0 || x.BitLen() > n*8 {
		return netip.Addr{}, false
	}
	buf := make([]byte, n)
	x.FillBytes(buf)
	a, ok := netip.AddrFromSlice(buf)
	return a, ok
}

// numBlocks is how many blocks the pool holds.
func (p *pool) numBlocks() *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.blockBits-p.cidr.Bits()))
}

// blockAt returns the i-th block of the pool (0 ≤ i < numBlocks).
func (p *pool) blockAt(i *big.Int) (netip.Prefix, bool) {
	if i.Sign() < 0 || i.Cmp(p.numBlocks()) >= 0 {
		return netip.Prefix{}, false
	}
	off := new(big.Int).Lsh(i, uint(p.cidr.Addr().BitLen()-p.blockBits))
	a, ok := bigToAddr(off.Add(off, addrToBig(p.cidr.Addr())), p.cidr.Addr().Is4())
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, p.blockBits), true
}

// blockIndex returns the index of the block holding a (which must be in the pool).
func (p *pool) blockIndex(a netip.Addr) *big.Int {
	d := new(big.Int).Sub(addrToBig(a), addrToBig(p.cidr.Addr()))
	return d.Rsh(d, uint(p.cidr.Addr().BitLen()-p.blockBits))
}

// hostStart returns the host's starting block index in the pool: a pseudo-random index seeded by a hash
// of the host name, so that different hosts start their search in different places (fewer claim races)
// and one host always searches in the same order.
func (p *pool) hostStart(host string) *big.Int {
	h := fnv.New64a()
	h.Write([]byte(host))
	seed := h.Sum64()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := p.numBlocks()
	words := (n.BitLen() + 64 + 63) / 64
	buf := make([]byte, 0, words*8)
	for range words {
		v := r.Uint64()
		for s := 56; s >= 0; s -= 8 {
			buf = append(buf, byte(v>>s))
		}
	}
	x := new(big.Int).SetBytes(buf)
	return x.Mod(x, n)
}

// rotatedDistance is (i - start) mod n: where block i comes in the host's search order.
func rotatedDistance(i, start, n *big.Int) *big.Int {
	d := new(big.Int).Sub(i, start)
	return d.Mod(d, n)
}

// orderBlocks sorts the pool's blocks in cidrs into the host's search order.
func (p *pool) orderBlocks(host string, cidrs []netip.Prefix) {
	start, n := p.hostStart(host), p.numBlocks()
	keys := make(map[netip.Prefix]*big.Int, len(cidrs))
	for _, c := range cidrs {
		keys[c] = rotatedDistance(p.blockIndex(c.Addr()), start, n)
	}
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return keys[a].Cmp(keys[b]) })
}

// blockWalker yields the pool's blocks that have no IPAMBlock yet, in the host's search order
// (starting at hostStart and wrapping around), skipping blocks entirely covered by a reservation.
// It advances past taken blocks one at a time and past reservations in one jump, so it costs
// O(taken + reservations) whatever the pool's size.
type blockWalker struct {
	p        *pool
	n        *big.Int
	idx      *big.Int
	advanced *big.Int
	taken    map[netip.Prefix]bool
	resv     reservations
}

func (p *pool) walker(host string, taken map[netip.Prefix]bool, resv reservations) *blockWalker {
	return &blockWalker{p: p, n: p.numBlocks(), idx: p.hostStart(host), advanced: new(big.Int), taken: taken, resv: resv.within(p.cidr)}
}

// next returns the next candidate block, or false when every block has been considered.
func (w *blockWalker) next() (netip.Prefix, bool) {
	one := big.NewInt(1)
	for w.advanced.Cmp(w.n) < 0 {
		c, ok := w.p.blockAt(w.idx)
		if !ok {
			return netip.Prefix{}, false
		}
		step := one
		if r, covered := w.resv.covering(c); covered {
			if r.Bits() <= w.p.cidr.Bits() {
				return netip.Prefix{}, false // the whole pool is reserved
			}
			last := lastAddr(r)
			step = new(big.Int).Sub(w.p.blockIndex(last), w.idx)
			step.Add(step, one)
		} else if !w.taken[c] {
			w.advance(one)
			return c, true
		}
		w.advance(step)
	}
	return netip.Prefix{}, false
}

func (w *blockWalker) advance(step *big.Int) {
	w.advanced.Add(w.advanced, step)
	w.idx.Add(w.idx, step)
	w.idx.Mod(w.idx, w.n)
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	x := addrToBig(p.Addr())
	span := new(big.Int).Sub(prefixSize(p), big.NewInt(1))
	a, _ := bigToAddr(x.Add(x, span), p.Addr().Is4())
	return a
}
