package cni

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/tortie-net/tortie/common/ipam"
)

// Prefetcher is implemented by an IPAM that can start its first reads ahead of an allocation
// (*ipam.Client): ADD then reads ClusterInformation, the pod and IPAM's state in one round trip.
type Prefetcher interface {
	Prefetch(ctx context.Context, host string, blocks ...netip.Prefix) *ipam.Prefetch
}

var _ Prefetcher = (*ipam.Client)(nil)

// BlockHints remembers which IPAM blocks a node's last allocation on a network came from. Every
// invocation of the plugin is a new process, so IPAM's own memory of it is lost; with the hint, ADD
// reads the block it will allocate from in the same round trip as IPAM's other reads instead of
// after them. A hint is only a hint: a wrong or missing one costs that round trip back, nothing
// else. It is read and written under the host's IPAM lock.
type BlockHints interface {
	Load(network, node string) []netip.Prefix
	Store(network, node string, blocks []netip.Prefix) error
}

// HintsFileName is the file FileBlockHints keeps next to the IPAM lock file.
const HintsFileName = "tortie-ipam-hints.json"

// FileBlockHints keeps block hints in a small JSON file (by default next to the IPAM lock file, on
// the tmpfs /var/run, so a reboot clears it): per network, the node and its blocks.
type FileBlockHints struct{ Path string }

type hintEntry struct {
	Node   string         `json:"node"`
	Blocks []netip.Prefix `json:"blocks"`
}

func (f FileBlockHints) read() map[string]hintEntry {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil
	}
	var m map[string]hintEntry
	if json.Unmarshal(data, &m) != nil {
		return nil // a torn or foreign file: no hints; the next Store replaces it
	}
	return m
}

// Load returns the blocks stored for network on node (none when the file is missing or unreadable).
func (f FileBlockHints) Load(network, node string) []netip.Prefix {
	e, ok := f.read()[network]
	if !ok || e.Node != node {
		return nil
	}
	return e.Blocks
}

// Store records blocks for network on node, unless they are what is stored already. The file is
// replaced atomically (written aside, then renamed).
func (f FileBlockHints) Store(network, node string, blocks []netip.Prefix) error {
	m := f.read()
	if e, ok := m[network]; ok && e.Node == node && slices.Equal(e.Blocks, blocks) {
		return nil
	}
	if m == nil {
		m = map[string]hintEntry{}
	}
	m[network] = hintEntry{Node: node, Blocks: blocks}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), f.Path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}

// blocksOf returns the blocks addresses came from (AutoAssign returns them with the block's prefix
// length).
func blocksOf(res ipam.AssignResult) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range append(slices.Clone(res.IPv4), res.IPv6...) {
		if b := p.Masked(); !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// ipamSession is an in-process allocation begun early: the host's IPAM lock is held and IPAM's first
// reads are under way, so that they share a round trip with the readiness check and the pod read.
// Nothing is written until the allocation runs, after the readiness check has answered.
type ipamSession struct {
	unlock   func() // releases the lock; may be called more than once
	prefetch *ipam.Prefetch
	hinted   []netip.Prefix // the blocks the hint named
}

// beginIPAM takes the host's IPAM lock and starts IPAM's reads for node when IPAM runs in-process
// (and can prefetch). It returns nil otherwise: the allocation then locks and reads when it runs.
//
// The lock is taken before the reads so that what they return is not outdated by another ADD on this
// host (two ADDs racing would otherwise both see the node without a free block and both claim one).
// It is held one round trip longer than before — the readiness check's and the pod's, which IPAM's
// reads now share — and released as soon as the addresses are allocated.
func (p *Plugin) beginIPAM(ctx context.Context, node string) (*ipamSession, error) {
	if !p.Conf.IPAM.InProcess() {
		return nil, nil
	}
	pf, ok := p.IPAM.(Prefetcher)
	if !ok {
		return nil, nil
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	s := &ipamSession{unlock: func() { once.Do(unlock) }}
	if p.Hints != nil {
		s.hinted = p.Hints.Load(p.Conf.Name, node)
	}
	s.prefetch = pf.Prefetch(ctx, node, s.hinted...)
	return s, nil
}

// remember stores the blocks an allocation came from as the next ADD's hint.
func (p *Plugin) remember(s *ipamSession, node string, res ipam.AssignResult) {
	if s == nil || p.Hints == nil {
		return
	}
	blocks := blocksOf(res)
	if len(blocks) == 0 || slices.Equal(blocks, s.hinted) {
		return
	}
	if err := p.Hints.Store(p.Conf.Name, node, blocks); err != nil {
		p.Log.Debug("could not store the IPAM block hint (the next ADD reads its block one round trip later)", "error", err)
	}
}
