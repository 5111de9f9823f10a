//go:build linux

package ipsets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/linux/iptables"
)

// Types of sets tortie uses.
const (
	HashNet    = "hash:net"
	HashIPPort = "hash:ip,port"
)

// MaxElem is the maximum size of a set (Felix's maxIpsetSize).
const MaxElem = 1048576

// Set is one IP set as the kernel holds it. Members are written as `ipset save` prints them: an
// address without /32 or /128 for a host, "addr,proto:port" for hash:ip,port.
type Set struct {
	Type    string
	Family  int // 4 or 6
	Members []string
}

func (s Set) familyName() string {
	if s.Family == 6 {
		return "inet6"
	}
	return "inet"
}

func (s Set) equal(o Set) bool {
	return s.Type == o.Type && s.Family == o.Family && slices.Equal(s.Members, o.Members)
}

// Manager programs tortie's IP sets. Not safe for concurrent use.
type Manager struct {
	run    iptables.Runner
	log    *slog.Logger
	want   map[string]Set
	kernel map[string]Set
	known  bool
	writes int
	// dirty names the sets Update changed since the last ApplyUpdates; all: SetAll was called (or
	// the kernel must be compared in full).
	dirty map[string]bool
	all   bool
	// nl runs small membership changes over netlink; nil writes everything with `ipset restore`.
	nl iptables.InNamespace
}

// New returns a Manager that runs ipset through r.
func New(r iptables.Runner, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{run: r, log: log, want: map[string]Set{}, dirty: map[string]bool{}, all: true}
	m.nl, _ = r.(iptables.InNamespace)
	return m
}

// UseNetlink turns the netlink path for small membership changes on (the default when the runner
// implements [iptables.InNamespace]) or off (every change through `ipset restore`; benchmarks compare both).
func (m *Manager) UseNetlink(on bool) {
	m.nl = nil
	if on {
		m.nl, _ = m.run.(iptables.InNamespace)
	}
}

// CheckName reports whether name may be one of tortie's sets.
func CheckName(name string) error {
	if !strings.HasPrefix(name, config.IPSetPrefix) {
		return fmt.Errorf("IP set %q is not tortie's (names start with %q)", name, config.IPSetPrefix)
	}
	if len(name) > config.MaxIPSetNameLen {
		return fmt.Errorf("IP set name %q is longer than %d characters", name, config.MaxIPSetNameLen)
	}
	return nil
}

// SetAll replaces the sets tortie wants. Members are sorted and de-duplicated here.
func (m *Manager) SetAll(sets map[string]Set) error {
	out, err := normalize(sets)
	if err != nil {
		return err
	}
	m.want, m.all = out, true
	return nil
}

// Update replaces some of the sets tortie wants and keeps the others: the next ApplyUpdates compares
// only these with the kernel (a label change costs the same whatever the number of sets). Members
// are sorted and de-duplicated here.
func (m *Manager) Update(sets map[string]Set) error {
	out, err := normalize(sets)
	if err != nil {
		return err
	}
	for name, s := range out {
		m.want[name] = s
		m.dirty[name] = true
	}
	return nil
}

// Delta adds and deletes members of one wanted set and keeps its other members (a label change:
// the cost does not grow with the number of sets, and only the set's own members are copied). Adding
// a present or deleting an absent member does nothing.
func (m *Manager) Delta(name string, add, del []string) error {
	s, ok := m.want[name]
	if !ok {
		return fmt.Errorf("IP set %q: a membership change for a set that is not wanted", name)
	}
	ms := slices.Clone(s.Members)
	for _, mem := range del {
		if i, found := slices.BinarySearch(ms, mem); found {
			ms = slices.Delete(ms, i, i+1)
		}
	}
	for _, mem := range add {
		if i, found := slices.BinarySearch(ms, mem); !found {
			ms = slices.Insert(ms, i, mem)
		}
	}
	s.Members = ms
	m.want[name] = s
	m.dirty[name] = true
	return nil
}

func normalize(sets map[string]Set) (map[string]Set, error) {
	out := make(map[string]Set, len(sets))
	for name, s := range sets {
		if err := CheckName(name); err != nil {
			return nil, err
		}
		if s.Type != HashNet && s.Type != HashIPPort {
			return nil, fmt.Errorf("IP set %q: type %q is not %s or %s", name, s.Type, HashNet, HashIPPort)
		}
		ms := slices.Clone(s.Members)
		slices.Sort(ms)
		s.Members = slices.Compact(ms)
		out[name] = s
	}
	return out, nil
}

// QueueResync makes the next ApplyUpdates re-read the kernel.
func (m *Manager) QueueResync() { m.known = false }

// Writes counts the ipset restore runs and netlink batches so far.
func (m *Manager) Writes() int { return m.writes }

// Read returns tortie's sets as the kernel holds them (members sorted).
func (m *Manager) Read(ctx context.Context) (map[string]Set, error) {
	out, err := m.run.Run(ctx, "ipset", []string{"save"}, nil)
	if err != nil {
		return nil, fmt.Errorf("listing IP sets: %w", err)
	}
	sets := map[string]Set{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[1], config.IPSetPrefix) {
			continue
		}
		switch f[0] {
		case "create":
			s := Set{Type: f[2], Family: 4}
			if i := slices.Index(f, "family"); i > 0 && i+1 < len(f) && f[i+1] == "inet6" {
				s.Family = 6
			}
			sets[f[1]] = s
		case "add":
			s := sets[f[1]]
			s.Members = append(s.Members, f[2])
			sets[f[1]] = s
		}
	}
	for name, s := range sets {
		slices.Sort(s.Members)
		sets[name] = s
	}
	return sets, sc.Err()
}

func (m *Manager) load(ctx context.Context) error {
	if m.known {
		return nil
	}
	k, err := m.Read(ctx)
	if err != nil {
		return err
	}
	m.kernel, m.known, m.all = k, true, true
	return nil
}

// maxDelta is the number of changed members up to which a set is edited in place rather than
// rebuilt and swapped.
const maxDelta = 64

// memberDiff returns the members of want not in have, and of have not in want (both sorted).
func memberDiff(have, want []string) (add, del []string) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want) || (i < len(have) && have[i] < want[j]):
			del = append(del, have[i])
			i++
		case i == len(have) || want[j] < have[i]:
			add = append(add, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return add, del
}

// tempName is the name a set is rebuilt under before the swap.
func tempName(i int) string { return fmt.Sprintf("%stmp-%d", config.IPSetPrefix, i) }

// ApplyUpdates creates the sets that are missing and rebuilds those whose members or type differ, in
// one `ipset restore`. Sets no longer wanted stay until ApplyDeletions.
func (m *Manager) ApplyUpdates(ctx context.Context) error {
	if err := m.applyUpdates(ctx); err != nil {
		return err
	}
	clear(m.dirty)
	m.all = false
	return nil
}

func (m *Manager) applyUpdates(ctx context.Context) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	var changed []string
	var edits []memberEdit
	names := slices.Sorted(maps.Keys(m.dirty))
	if m.all {
		names = slices.Sorted(maps.Keys(m.want))
	}
	for _, name := range names {
		s, wanted := m.want[name]
		if !wanted {
			continue // ApplyDeletions' business
		}
		have, ok := m.kernel[name]
		if ok && have.equal(s) {
			continue
		}
		if m.nl != nil && ok && have.Type == s.Type && have.Family == s.Family {
			if add, del := memberDiff(have.Members, s.Members); len(add)+len(del) <= maxDelta {
				if e, err := editsOf(name, s.Type, add, del); err == nil {
					edits = append(edits, e...)
					continue
				}
			}
		}
		changed = append(changed, name)
	}
	if len(edits) > 0 {
		m.writes++
		ok, err := runEdits(m.nl, edits)
		for name := range ok {
			m.kernel[name] = m.want[name]
		}
		if err != nil {
			// The failed sets' content is unknown: the kernel is read again and they are written
			// with ipset restore below, which reports what the kernel refuses with the failing line.
			m.log.Debug("IP set members over netlink failed; writing them with ipset restore", "error", err)
			m.known = false
			if err := m.load(ctx); err != nil {
				return err
			}
			for _, e := range edits {
				if !ok[e.set] && !slices.Contains(changed, e.set) {
					changed = append(changed, e.set)
				}
			}
			slices.Sort(changed)
		}
	}
	var b strings.Builder
	var done []string
	tmp := 0
	for _, name := range changed {
		s := m.want[name]
		have, ok := m.kernel[name]
		if ok && have.equal(s) {
			continue
		}
		target := name
		if ok && have.Type == s.Type && have.Family == s.Family {
			if add, del := memberDiff(have.Members, s.Members); len(add)+len(del) <= maxDelta {
				// A few members changed (a label change): each add and del is atomic, and the set
				// is never missing a member that stays.
				for _, mem := range add {
					fmt.Fprintf(&b, "add %s %s\n", name, mem)
				}
				for _, mem := range del {
					fmt.Fprintf(&b, "del %s %s\n", name, mem)
				}
				done = append(done, name)
				continue
			}
			target = tempName(tmp)
			tmp++
			if _, stale := m.kernel[target]; stale {
				fmt.Fprintf(&b, "destroy %s\n", target)
				delete(m.kernel, target)
			}
		} else if ok {
			// Type or family changed (a set left by an older version): the kernel cannot swap sets of
			// different types, so it is destroyed first; this fails while a rule still uses it.
			fmt.Fprintf(&b, "destroy %s\n", name)
		}
		fmt.Fprintf(&b, "create %s %s family %s maxelem %d\n", target, s.Type, s.familyName(), MaxElem)
		for _, mem := range s.Members {
			fmt.Fprintf(&b, "add %s %s\n", target, mem)
		}
		if target != name {
			fmt.Fprintf(&b, "swap %s %s\ndestroy %s\n", target, name, target)
		}
		done = append(done, name)
	}
	if len(done) == 0 {
		return nil
	}
	if err := m.restore(ctx, b.String()); err != nil {
		return err
	}
	for _, name := range done {
		m.kernel[name] = m.want[name]
	}
	m.log.Debug("IP sets written", "sets", len(done))
	return nil
}

// ApplyDeletions destroys tortie's sets that are no longer wanted. Call it after the rules that used
// them were removed.
func (m *Manager) ApplyDeletions(ctx context.Context) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	var gone []string
	for _, name := range slices.Sorted(maps.Keys(m.kernel)) {
		if _, ok := m.want[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	var b strings.Builder
	for _, name := range gone {
		fmt.Fprintf(&b, "destroy %s\n", name)
	}
	if err := m.restore(ctx, b.String()); err != nil {
		return err
	}
	for _, name := range gone {
		delete(m.kernel, name)
	}
	return nil
}

func (m *Manager) restore(ctx context.Context, script string) error {
	m.writes++
	if _, err := m.run.Run(ctx, "ipset", []string{"restore"}, []byte(script)); err != nil {
		m.known = false
		return fmt.Errorf("ipset restore: %w", errors.Join(err, quoteLine(err, script)))
	}
	return nil
}

// quoteLine finds "line N" in ipset's error and returns that line of the script as an error.
func quoteLine(err error, script string) error {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return nil
	}
	var n int
	if _, e := fmt.Sscanf(msg[i:], "line %d", &n); e != nil {
		return nil
	}
	lines := strings.Split(script, "\n")
	if n < 1 || n > len(lines) {
		return nil
	}
	return fmt.Errorf("failing line %d: %q", n, lines[n-1])
}

// Cleanup destroys every set with tortie's prefix, whatever is wanted (the desired sets are kept for a
// later Apply). Rules using them must be gone first.
func (m *Manager) Cleanup(ctx context.Context) error {
	k, err := m.Read(ctx)
	if err != nil {
		return err
	}
	m.known = false
	if len(k) == 0 {
		return nil
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(k)) {
		fmt.Fprintf(&b, "destroy %s\n", name)
	}
	return m.restore(ctx, b.String())
}
