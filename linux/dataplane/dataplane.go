//go:build linux

package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/ipsets"
	"github.com/tortie-net/tortie/linux/iptables"
	"github.com/tortie-net/tortie/platform"
)

// Manager is a part of the Linux dataplane that programs something else than policy (routes, tunnels:
// linux/routing). The Dataplane forwards every update to each manager and calls Apply, QueueResync and
// Cleanup on each after its own work, with platform.Dataplane's contract for each method.
type Manager interface {
	OnUpdate(u dpmodel.Update)
	Apply(ctx context.Context) error
	QueueResync()
	Cleanup(ctx context.Context) error
}

// Options configure a Dataplane.
type Options struct {
	// Runner runs iptables, ipset and conntrack (default: iptables.Exec{} on the host).
	Runner iptables.Runner
	// Backend is FELIX_IPTABLESBACKEND: "", "Auto", "Legacy" or "NFT".
	Backend string
	// Log receives debug lines; errors are returned, not logged.
	Log *slog.Logger
	// Extra managers composed into this dataplane (routing).
	Extra []Manager
	// Conntrack, when set, deletes the conntrack entries of flows the new policy denies after each Apply
	// that changed policy (see conntrack.go).
	Conntrack bool
	// IPSetRestoreOnly writes every IP set change with `ipset restore`, small membership changes
	// included (by default those go over netlink); benchmarks compare the two.
	IPSetRestoreOnly bool
}

// Dataplane is the Linux platform.Dataplane: policy and NAT outgoing with iptables and ipset, plus
// the extra managers. Not safe for concurrent use (the agent calls it from one goroutine).
type Dataplane struct {
	opts    Options
	log     *slog.Logger
	state   *dpmodel.State
	backend iptables.Backend
	tables  map[tableKey]*iptables.Table
	sets    *ipsets.Manager

	dirty  bool // desired state changed (or a write failed) since the last successful Apply
	resync bool
	// setsOnly: every change since the last successful Apply was IP set membership, so no rule
	// changed and only the sets need rendering and writing (a label change's fast path).
	setsOnly bool
	// changedSets are the IDs of the selector sets replaced (IPSetUpdate) since the last successful
	// Apply, and setDeltas the IPSetDeltas of the others, in order (meaningful while setsOnly).
	changedSets map[string]bool
	setDeltas   []dpmodel.IPSetDelta
	// lastSets is the last full rendering's IP sets (including the rules' CIDR-list sets).
	lastSets map[string]ipsets.Set

	// applied is the state the kernel was last programmed from (for conntrack deletions).
	applied *dpmodel.State
}

var _ platform.Dataplane = (*Dataplane)(nil)

// New returns a Linux dataplane. It touches nothing until the first Apply, which detects the iptables
// backend, reads what the kernel holds and programs only the difference (a restarted agent adopts its
// predecessor's rules: established flows are not interrupted).
func New(opts Options) *Dataplane {
	if opts.Runner == nil {
		opts.Runner = iptables.Exec{}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sets := ipsets.New(opts.Runner, log)
	if opts.IPSetRestoreOnly {
		sets.UseNetlink(false)
	}
	return &Dataplane{opts: opts, log: log, state: dpmodel.NewState(), tables: map[tableKey]*iptables.Table{},
		sets: sets, dirty: true, resync: true, changedSets: map[string]bool{}}
}

// OnUpdate records one update and forwards it to the extra managers.
func (d *Dataplane) OnUpdate(u dpmodel.Update) {
	membership, setID := false, ""
	var delta *dpmodel.IPSetDelta
	switch u := u.(type) {
	case dpmodel.IPSetDelta:
		membership, delta = true, &u
	case dpmodel.IPSetUpdate:
		old, ok := d.state.IPSets[u.ID]
		membership, setID = ok && old.Type == u.Type, u.ID
	}
	if err := d.state.Apply(u); err != nil {
		d.log.Error("dataplane update skipped", "kind", u.Kind(), "error", err)
	} else {
		d.setsOnly = membership && (d.setsOnly || !d.dirty)
		d.dirty = true
		switch {
		case !d.setsOnly:
		case delta != nil && deltaRenderable(*delta):
			d.setDeltas = append(d.setDeltas, *delta)
		case delta != nil:
			d.changedSets[delta.ID] = true
		default:
			d.changedSets[setID] = true
		}
	}
	for _, m := range d.opts.Extra {
		m.OnUpdate(u)
	}
}

// QueueResync makes the next Apply re-read iptables and IP sets (and the extra managers' state).
func (d *Dataplane) QueueResync() {
	d.resync = true
	for _, m := range d.opts.Extra {
		m.QueueResync()
	}
}

// Backend returns the iptables backend in use ("" before the first Apply).
func (d *Dataplane) Backend() iptables.Backend { return d.backend }

func (d *Dataplane) ensureBackend(ctx context.Context) error {
	if d.backend != "" {
		return nil
	}
	b, err := iptables.DetectBackend(ctx, d.opts.Runner, d.opts.Backend)
	if err != nil {
		return err
	}
	d.backend = b
	d.log.Info("iptables backend chosen", "backend", string(b))
	return nil
}

func (d *Dataplane) table(k tableKey) *iptables.Table {
	t, ok := d.tables[k]
	if !ok {
		t = iptables.NewTable(k.Name, k.Family, d.backend, d.opts.Runner, d.log)
		d.tables[k] = t
	}
	return t
}

// Apply programs IP sets, then the iptables tables (one transaction each), then deletes IP sets no
// longer used, then runs the extra managers. It writes nothing when nothing changed and no resync is
// queued. On error the next Apply renders and compares again.
func (d *Dataplane) Apply(ctx context.Context) error {
	errs := []error{d.applyPolicy(ctx)}
	for _, m := range d.opts.Extra {
		errs = append(errs, m.Apply(ctx))
	}
	return errors.Join(errs...)
}

func (d *Dataplane) applyPolicy(ctx context.Context) error {
	if !d.dirty && !d.resync {
		return nil
	}
	if err := d.ensureBackend(ctx); err != nil {
		return err
	}
	if d.resync {
		d.sets.QueueResync()
		for _, t := range d.tables {
			t.QueueResync()
		}
	}
	if d.setsOnly && !d.resync && d.lastSets != nil {
		changed := renderSets(d.state, d.lastSets, d.changedSets)
		if err := d.sets.Update(changed); err != nil {
			return err
		}
		maps.Copy(d.lastSets, changed)
		for _, dl := range d.setDeltas {
			if d.changedSets[dl.ID] {
				continue // rendered whole above
			}
			for name, ad := range renderDelta(dl, d.lastSets) {
				if err := d.sets.Delta(name, ad[0], ad[1]); err != nil {
					return err
				}
			}
		}
		if err := d.sets.ApplyUpdates(ctx); err != nil {
			return err
		}
		return d.finishApply(ctx)
	}
	h := render(d.state)
	for k := range h.Tables {
		d.table(k)
	}
	for k, t := range d.tables {
		ts := h.Tables[k]
		if ts == nil {
			ts = &tableState{}
		}
		if err := t.SetChains(ts.Chains); err != nil {
			return err
		}
		for _, b := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
			if err := t.SetHooks(b, ts.Hooks[b]); err != nil && ts.Hooks[b] != nil {
				return err
			}
		}
	}
	if err := d.sets.SetAll(h.Sets); err != nil {
		return err
	}
	d.lastSets = h.Sets
	d.dirty, d.resync = true, false
	if err := d.sets.ApplyUpdates(ctx); err != nil {
		return err
	}
	for _, k := range d.tableOrder() {
		if err := d.tables[k].Apply(ctx); err != nil {
			return err
		}
	}
	if err := d.sets.ApplyDeletions(ctx); err != nil {
		return err
	}
	return d.finishApply(ctx)
}

// finishApply records a successful Apply and deletes the conntrack entries of newly denied flows.
func (d *Dataplane) finishApply(ctx context.Context) error {
	d.dirty, d.setsOnly = false, false
	clear(d.changedSets)
	d.setDeltas = d.setDeltas[:0]
	if !d.opts.Conntrack {
		return nil
	}
	prev := d.applied
	d.applied = d.state.Clone()
	if prev != nil {
		if err := d.deleteDeniedFlows(ctx, prev, d.applied); err != nil {
			return err
		}
	}
	return nil
}

// tableOrder lists the tables in write order: raw, mangle, nat, filter; IPv4 before IPv6.
func (d *Dataplane) tableOrder() []tableKey {
	var out []tableKey
	for _, fam := range []int{4, 6} {
		for _, n := range iptables.Tables {
			k := tableKey{n, fam}
			if _, ok := d.tables[k]; ok {
				out = append(out, k)
			}
		}
	}
	return out
}

// Writes counts the iptables-restore and ipset restore runs so far (tests).
func (d *Dataplane) Writes() int {
	n := d.sets.Writes()
	for _, t := range d.tables {
		n += t.Writes()
	}
	return n
}

// Cleanup removes tortie's hook rules, chains and IP sets from both iptables backends and both
// families, then runs the extra managers' Cleanup. Errors are joined; one failing part does not stop
// the others. The recorded desired state is kept: a later Apply programs it again.
func (d *Dataplane) Cleanup(ctx context.Context) error {
	var errs []error
	backends := []iptables.Backend{iptables.Legacy, iptables.NFT}
	if err := d.ensureBackend(ctx); err == nil {
		// The backend in use first; the other may hold rules of an earlier run.
		backends = slices.DeleteFunc(backends, func(b iptables.Backend) bool { return b == d.backend })
		backends = append([]iptables.Backend{d.backend}, backends...)
	}
	for _, b := range backends {
		if err := iptables.CleanupAll(ctx, b, d.opts.Runner, []int{4, 6}, d.log); err != nil {
			errs = append(errs, fmt.Errorf("removing tortie's iptables rules (%s): %w", b, err))
		}
	}
	if err := d.sets.Cleanup(ctx); err != nil {
		errs = append(errs, fmt.Errorf("removing tortie's IP sets: %w", err))
	}
	for _, t := range d.tables {
		t.QueueResync()
	}
	d.resync, d.applied = true, nil
	for _, m := range d.opts.Extra {
		if err := m.Cleanup(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Capabilities: everything policy needs. VXLAN and IPIP routes are linux/routing's (an extra manager),
// so they are not claimed here.
func (d *Dataplane) Capabilities() platform.Capabilities {
	return platform.Capabilities{Name: "linux", IPSets: true, NamedPorts: true, LogAction: true, PassAction: true,
		NegatedMatches: true, PortRanges: true, ICMPTypeCode: true, HostEndpoints: true, IPv6: true}
}
