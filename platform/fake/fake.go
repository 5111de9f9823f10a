package fake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform"
)

// ErrInjected is returned by an Apply that FailNextApplies made fail.
var ErrInjected = errors.New("fault injected by the fake dataplane")

// Dataplane is the fake. The zero value is not usable; call New. Unlike a real dataplane it is safe for
// concurrent use, so that a test can read it (Host, Render, Writes) while the agent drives it.
type Dataplane struct {
	log *slog.Logger

	mu       sync.Mutex
	desired  *dpmodel.State // recorded by OnUpdate
	host     *dpmodel.State // the simulated host
	believed *dpmodel.State // what Apply thinks the host holds
	resync   bool           // re-read the host on the next Apply
	recErrs  []error        // contract violations since the last Apply
	allErrs  []error        // every contract violation, for tests
	failNext int

	updates, applies, failed, writes, resyncs, cleanups int
	writesByKind                                        map[string]int
	applied                                             chan struct{} // closed and replaced after each successful Apply
}

// Option configures a Dataplane.
type Option func(*Dataplane)

// WithLogger sets where contract violations are logged (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return func(d *Dataplane) {
		if l != nil {
			d.log = l
		}
	}
}

// New returns a fake dataplane over an empty host.
func New(opts ...Option) *Dataplane {
	d := &Dataplane{
		log:     slog.New(slog.DiscardHandler),
		desired: dpmodel.NewState(), host: dpmodel.NewState(), believed: dpmodel.NewState(),
		// The first Apply reads the host, as a real dataplane adopts what a predecessor left.
		resync:       true,
		writesByKind: map[string]int{},
		applied:      make(chan struct{}),
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

var _ platform.Dataplane = (*Dataplane)(nil)

// Capabilities implements platform.Dataplane: the fake can express everything.
func (d *Dataplane) Capabilities() platform.Capabilities {
	return platform.Capabilities{Name: "fake", IPSets: true, NamedPorts: true, LogAction: true, PassAction: true,
		NegatedMatches: true, PortRanges: true, ICMPTypeCode: true, HostEndpoints: true, VXLAN: true, IPIP: true, IPv6: true}
}

// OnUpdate implements platform.Dataplane. An update that breaks dpmodel's ordering contract or is
// malformed is logged, skipped, and makes the next Apply fail, so that tests catch the producer's bug.
func (d *Dataplane) OnUpdate(u dpmodel.Update) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.updates++
	if err := d.desired.Apply(u); err != nil {
		kind := "nil"
		if u != nil {
			kind = u.Kind()
		}
		err = fmt.Errorf("recording %s: %w", kind, err)
		d.log.Error("dataplane update refused", "error", err.Error())
		d.recErrs = append(d.recErrs, err)
		d.allErrs = append(d.allErrs, err)
	}
}

// Apply implements platform.Dataplane.
func (d *Dataplane) Apply(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake dataplane apply: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applies++
	if len(d.recErrs) > 0 {
		err := fmt.Errorf("fake dataplane: the producer broke the dpmodel contract: %w", errors.Join(d.recErrs...))
		d.recErrs = nil
		d.failed++
		return err
	}
	if d.resync {
		d.believed = d.host.Clone()
		d.resync = false
	}
	diff := dpmodel.Diff(d.believed, d.desired)
	if d.failNext > 0 {
		d.failNext--
		d.failed++
		// Half of the writes land before the failure, as when one of several tables fails to restore.
		// The belief is now unknown either way: the retry re-reads the host.
		d.resync = true
		if err := d.write(diff[:len(diff)/2]); err != nil {
			return errors.Join(err, ErrInjected)
		}
		return fmt.Errorf("fake dataplane apply after %d of %d writes: %w", len(diff)/2, len(diff), ErrInjected)
	}
	if err := d.write(diff); err != nil {
		d.failed++
		d.resync = true
		return err
	}
	d.believed = d.desired.Clone()
	close(d.applied)
	d.applied = make(chan struct{})
	return nil
}

// write programs updates on the simulated host. An update the host refuses (because drift removed
// something the belief still holds) fails the Apply, as a kernel or HNS call would.
func (d *Dataplane) write(us []dpmodel.Update) error {
	for _, u := range us {
		if err := d.host.Apply(u); err != nil {
			return fmt.Errorf("fake dataplane: programming %s on the host: %w", u.Kind(), err)
		}
		d.writes++
		d.writesByKind[u.Kind()]++
	}
	return nil
}

// QueueResync implements platform.Dataplane.
func (d *Dataplane) QueueResync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resync = true
	d.resyncs++
}

// Cleanup implements platform.Dataplane: the host is emptied, the recorded desired state is kept (a
// later Apply would program it again).
func (d *Dataplane) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake dataplane cleanup: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cleanups++
	rm := dpmodel.Diff(d.host, dpmodel.NewState())
	if err := d.write(rm); err != nil {
		return err
	}
	// The configuration is not an object on the host; forget it so the host reads as empty.
	d.host.Config = nil
	d.believed = dpmodel.NewState()
	return nil
}

// FailNextApplies makes the next n Applies fail part-way with ErrInjected.
func (d *Dataplane) FailNextApplies(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNext = n
}

// Drift changes the simulated host behind the dataplane's back (someone deleted a route or a rule). The
// updates must respect the contract against the host's state; the dataplane's belief is unchanged.
func (d *Dataplane) Drift(us ...dpmodel.Update) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.host.ApplyAll(us); err != nil {
		return fmt.Errorf("fake dataplane: drifting the host: %w", err)
	}
	return nil
}

// Host returns a copy of what the simulated host holds.
func (d *Dataplane) Host() *dpmodel.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.host.Clone()
}

// Desired returns a copy of the desired state recorded so far.
func (d *Dataplane) Desired() *dpmodel.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desired.Clone()
}

// Render renders the simulated host as stable text (see Render).
func (d *Dataplane) Render() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Render(d.host)
}

// Errors returns every contract violation recorded so far.
func (d *Dataplane) Errors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.allErrs...)
}

// Stats are the fake's counters.
type Stats struct {
	// Updates counts OnUpdate calls, Applies Apply calls, Failed those that returned an error.
	Updates, Applies, Failed int
	// Writes counts objects written to (or removed from) the host; WritesByKind by update kind.
	Writes       int
	WritesByKind map[string]int
	// Resyncs counts QueueResync calls, Cleanups Cleanup calls.
	Resyncs, Cleanups int
}

// Stats returns the counters.
func (d *Dataplane) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	byKind := make(map[string]int, len(d.writesByKind))
	for k, v := range d.writesByKind {
		byKind[k] = v
	}
	return Stats{Updates: d.updates, Applies: d.applies, Failed: d.failed, Writes: d.writes, WritesByKind: byKind,
		Resyncs: d.resyncs, Cleanups: d.cleanups}
}

// Writes returns the number of host writes so far.
func (d *Dataplane) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// Applied returns a channel closed at the next successful Apply.
func (d *Dataplane) Applied() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applied
}
