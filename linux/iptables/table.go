//go:build linux

package iptables

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tortie-net/tortie/common/config"
)

// builtinChains are the kernel's chains per table: the only foreign chains tortie writes into (its
// hook rules).
var builtinChains = map[string][]string{
	"raw":    {"PREROUTING", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

// Tables lists the tables tortie may write, in the order a dataplane applies them.
var Tables = []string{"raw", "mangle", "nat", "filter"}

// lockWait is how many seconds a command waits for the xtables lock (`-w`).
const lockWait = 10

// IsOwned reports whether a chain is tortie's.
func IsOwned(chain string) bool { return strings.HasPrefix(chain, config.ChainPrefix) }

// Table is one iptables table of one family: the chains tortie wants there and its hook rules, and what
// it believes the kernel holds. Not safe for concurrent use.
type Table struct {
	name    string
	family  int
	backend Backend
	run     Runner
	log     *slog.Logger

	// desired: owned chain -> rule bodies ("-p tcp -j ACCEPT"); hooks: built-in chain -> bodies.
	desired map[string][]string
	hooks   map[string][]string

	// known is false until the kernel has been read (and after a failed write or QueueResync).
	known bool
	// kernel: owned chain -> rule hashes in the kernel ("" for a rule without tortie's comment).
	kernel map[string][]string
	// kernelHooks: built-in chain -> tortie's rules found there.
	kernelHooks map[string]hookState

	writes int
}

// hookState is tortie's rules in one built-in chain.
type hookState struct {
	hashes []string // in order
	atTop  bool     // they are the chain's first rules
	lines  []string // their iptables-save lines ("-A INPUT ..."), for deletion
}

// NewTable returns a Table for table name ("raw", "mangle", "nat", "filter") and family (4 or 6).
func NewTable(name string, family int, b Backend, r Runner, log *slog.Logger) *Table {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Table{name: name, family: family, backend: b, run: r, log: log.With("table", name, "family", family),
		desired: map[string][]string{}, hooks: map[string][]string{}}
}

// Name returns the table's name and Family its IP family.
func (t *Table) Name() string { return t.name }
func (t *Table) Family() int  { return t.family }

// SetChains replaces the owned chains tortie wants in the table (name -> rule bodies). Chains absent
// from m are removed from the kernel by the next Apply. Every name must carry config.ChainPrefix.
func (t *Table) SetChains(m map[string][]string) error {
	for name := range m {
		if !IsOwned(name) {
			return fmt.Errorf("%s table: chain %q is not tortie's (names start with %q)", t.name, name, config.ChainPrefix)
		}
		if len(name) > config.MaxChainNameLen {
			return fmt.Errorf("%s table: chain name %q is longer than %d characters", t.name, name, config.MaxChainNameLen)
		}
	}
	t.desired = m
	return nil
}

// SetHooks sets the rules tortie keeps at the top of a built-in chain (nil: none).
func (t *Table) SetHooks(builtin string, rules []string) error {
	if !slices.Contains(builtinChains[t.name], builtin) {
		return fmt.Errorf("%s table has no built-in chain %q", t.name, builtin)
	}
	if len(rules) == 0 {
		delete(t.hooks, builtin)
		return nil
	}
	t.hooks[builtin] = rules
	return nil
}

// Chains returns the desired chains (read-only; for tests and rendering checks).
func (t *Table) Chains() map[string][]string { return t.desired }

// QueueResync makes the next Apply re-read the kernel instead of trusting what was last written.
func (t *Table) QueueResync() { t.known = false }

// Writes counts the iptables-restore runs made so far.
func (t *Table) Writes() int { return t.writes }

// ruleHash chains the chain name, the previous rule's hash and the rule's text, so a hash also says
// where the rule sits.
func ruleHash(chain, prev, body string) string {
	h := sha256.New224()
	h.Write([]byte(chain))
	h.Write([]byte{0})
	h.Write([]byte(prev))
	h.Write([]byte{0})
	h.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))[:16]
}

// RuleHashes returns the hashes the rules of a chain carry in their comments, in order (tests compare
// them with what iptables-save shows).
func RuleHashes(chain string, rules []string) []string { return hashes(chain, rules) }

func hashes(chain string, rules []string) []string {
	out := make([]string, len(rules))
	prev := ""
	for i, r := range rules {
		prev = ruleHash(chain, prev, r)
		out[i] = prev
	}
	return out
}

func ruleLine(op, chain, hash, body string) string {
	return fmt.Sprintf("%s %s -m comment --comment \"%s%s\" %s", op, chain, config.RuleCommentPrefix, hash, body)
}

var commentRe = regexp.MustCompile(`--comment "?` + regexp.QuoteMeta(config.RuleCommentPrefix) + `([A-Za-z0-9_-]+)"?`)

// read loads the kernel's view of the table with iptables-save.
func (t *Table) read(ctx context.Context) error {
	out, err := t.run.Run(ctx, Command(t.backend, t.family, "save"), []string{"-t", t.name}, nil)
	if err != nil {
		return fmt.Errorf("reading the %s table (IPv%d): %w", t.name, t.family, err)
	}
	kernel := map[string][]string{}
	hooks := map[string]hookState{}
	index := map[string]int{} // built-in chain -> rules seen
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if IsOwned(name) {
				kernel[name] = []string{}
			}
		case strings.HasPrefix(line, "-A "):
			chain, _, _ := strings.Cut(line[3:], " ")
			hash := ""
			if m := commentRe.FindStringSubmatch(line); m != nil {
				hash = m[1]
			}
			if IsOwned(chain) {
				kernel[chain] = append(kernel[chain], hash)
				continue
			}
			if !slices.Contains(builtinChains[t.name], chain) {
				continue
			}
			i := index[chain]
			index[chain]++
			if hash == "" {
				continue
			}
			h := hooks[chain]
			if len(h.hashes) == 0 {
				h.atTop = true
			}
			if i != len(h.hashes) {
				h.atTop = false
			}
			h.hashes = append(h.hashes, hash)
			h.lines = append(h.lines, line)
			hooks[chain] = h
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the %s table (IPv%d): %w", t.name, t.family, err)
	}
	t.kernel, t.kernelHooks, t.known = kernel, hooks, true
	return nil
}

// Apply writes the difference between the desired chains and hooks and the kernel in one
// iptables-restore transaction. It writes nothing when they agree.
func (t *Table) Apply(ctx context.Context) error {
	if !t.known {
		if err := t.read(ctx); err != nil {
			return err
		}
	}
	var changed, removed []string
	want := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(t.desired)) {
		hs := hashes(name, t.desired[name])
		want[name] = hs
		if have, ok := t.kernel[name]; !ok || !slices.Equal(have, hs) {
			changed = append(changed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.kernel)) {
		if _, ok := t.desired[name]; !ok {
			removed = append(removed, name)
		}
	}
	var hooksChanged []string
	wantHooks := map[string][]string{}
	for _, b := range builtinChains[t.name] {
		hs := hashes(b, t.hooks[b])
		wantHooks[b] = hs
		have := t.kernelHooks[b]
		if !slices.Equal(have.hashes, hs) || (len(hs) > 0 && !have.atTop) {
			hooksChanged = append(hooksChanged, b)
		}
	}
	if len(changed)+len(removed)+len(hooksChanged) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", t.name)
	for _, c := range hooksChanged {
		for _, l := range t.kernelHooks[c].lines {
			b.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
		}
	}
	for _, c := range slices.Concat(changed, removed) {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range changed {
		for i, r := range t.desired[c] {
			b.WriteString(ruleLine("-A", c, want[c][i], r) + "\n")
		}
	}
	for _, c := range hooksChanged {
		for i, r := range t.hooks[c] {
			fmt.Fprintf(&b, "-I %s %d -m comment --comment \"%s%s\" %s\n", c, i+1, config.RuleCommentPrefix, wantHooks[c][i], r)
		}
	}
	for _, c := range removed {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	if err := t.restore(ctx, b.String()); err != nil {
		return err
	}
	for _, c := range changed {
		t.kernel[c] = want[c]
	}
	for _, c := range removed {
		delete(t.kernel, c)
	}
	for _, c := range hooksChanged {
		hs := wantHooks[c]
		lines := make([]string, len(hs))
		for i, r := range t.hooks[c] {
			lines[i] = ruleLine("-A", c, hs[i], r)
		}
		t.kernelHooks[c] = hookState{hashes: hs, atTop: true, lines: lines}
	}
	t.log.Debug("iptables table written", "chains_written", len(changed), "chains_removed", len(removed), "hooks_written", len(hooksChanged))
	return nil
}

var failedLineRe = regexp.MustCompile(`line (\d+) failed|Error occurred at line: (\d+)`)

// restore runs one iptables-restore transaction. On error the kernel is re-read before the next write
// and the error quotes the failing line.
func (t *Table) restore(ctx context.Context, text string) error {
	t.writes++
	_, err := t.run.Run(ctx, Command(t.backend, t.family, "restore"), []string{"--noflush", "-w", strconv.Itoa(lockWait)}, []byte(text))
	if err == nil {
		return nil
	}
	t.known = false
	if m := failedLineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1] + m[2])
		lines := strings.Split(text, "\n")
		if n >= 1 && n <= len(lines) {
			return fmt.Errorf("writing the %s table (IPv%d): line %d %q was refused, nothing was applied: %w", t.name, t.family, n, lines[n-1], err)
		}
	}
	return fmt.Errorf("writing the %s table (IPv%d), nothing was applied: %w", t.name, t.family, err)
}

// Cleanup removes tortie's hook rules and chains from the table, whatever is desired, in one
// transaction; it writes nothing when the kernel holds none. The desired state is kept: a later Apply
// programs it again.
func (t *Table) Cleanup(ctx context.Context) error {
	if err := t.read(ctx); err != nil {
		return err
	}
	var b strings.Builder
	n := 0
	fmt.Fprintf(&b, "*%s\n", t.name)
	for _, c := range builtinChains[t.name] {
		for _, l := range t.kernelHooks[c].lines {
			b.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
			n++
		}
	}
	owned := slices.Sorted(maps.Keys(t.kernel))
	for _, c := range owned {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		n++
	}
	for _, c := range owned {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	if n == 0 {
		return nil
	}
	if err := t.restore(ctx, b.String()); err != nil {
		return err
	}
	t.known = false
	return nil
}

// CleanupAll removes tortie's rules and chains from every table of both families of backend b (used
// by `tortie-node cleanup`, for the backend in use and the other one, where an older run may have
// written). Errors are joined; a table that cannot be read is reported and the others still cleaned.
func CleanupAll(ctx context.Context, b Backend, r Runner, families []int, log *slog.Logger) error {
	var errs []error
	for _, fam := range families {
		for _, name := range Tables {
			if err := NewTable(name, fam, b, r, log).Cleanup(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
