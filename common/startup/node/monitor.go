package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// EnvAutodetectPollInterval is how often Monitor re-detects the node's addresses (a Go duration, e.g.
// "60s"); TORTIE_AUTODETECT_POLL_INTERVAL wins when both are set.
const EnvAutodetectPollInterval = "AUTODETECT_POLL_INTERVAL"

// DefaultAutodetectPollInterval is Calico's default AUTODETECT_POLL_INTERVAL.
const DefaultAutodetectPollInterval = 60 * time.Second

// errNodeGone stops a Node write when the Node disappeared: the monitor never creates the Node.
var errNodeGone = errors.New("the Node does not exist")

// Monitor keeps the Node's addresses current, as Calico's monitor-addresses does: it re-runs the
// node-address part of startup step 3 (IP, IP6, IP_AUTODETECTION_METHOD, IP6_AUTODETECTION_METHOD,
// DISABLE_NODE_IP_CHECK, with the same code as Run) right away and then every interval, and when the
// decided address differs from the stored Node's it updates the Node's IPv4Address / IPv6Address
// (compare-and-swap, retried from a fresh read; other fields are kept). A changed address is checked
// against other Nodes first, as in startup: on a conflict the new address is not written (and, as in
// startup and Calico, an autodetected address this node held before is cleared).
//
// interval > 0 is used as given; 0 means AUTODETECT_POLL_INTERVAL (TORTIE_AUTODETECT_POLL_INTERVAL
// wins), else DefaultAutodetectPollInterval.
//
// When nothing is autodetected — IP is an address or "none" and IP6 is not "autodetect", or
// CALICO_NETWORKING_BACKEND=none — it logs that and returns nil at once. Otherwise it returns nil when
// ctx ends, and an error only for bad configuration found at the start (the interval, IP / IP6 values,
// the methods, DISABLE_NODE_IP_CHECK, the node name). Problems during a check (the datastore, a
// missing Node, failed detection, an address conflict) are logged once — again only when they change
// — and retried at the next tick. Changes are logged at info level.
func Monitor(ctx context.Context, opts Options, interval time.Duration) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if interval <= 0 {
		if interval, err = pollInterval(o.Env); err != nil {
			return err
		}
	}
	log := o.Logger
	// The reused startup code logs every decision at info level; during monitoring that is debug
	// output, and the monitor logs what matters itself.
	s := &starter{o: o, log: slog.New(debugHandler{o.Logger.Handler()}), res: &Result{DatastoreType: o.DatastoreType},
		kdd: o.DatastoreType == DatastoreKubernetes}
	if err := s.decideNodeName(ctx); err != nil {
		return err
	}
	if backend, from := config.Lookup(o.Env, EnvNetworkingBackend); strings.EqualFold(backend, "none") {
		log.Info("not monitoring node addresses: the node has none in policy-only mode", "variable", from, "node", s.name)
		return nil
	}
	families, err := monitoredFamilies(ctx, o.Env)
	if err != nil {
		return err
	}
	if _, err := config.LookupBool(o.Env, EnvDisableNodeIPCheck, false); err != nil {
		return err
	}
	if len(families) == 0 {
		v4, from4 := config.Lookup(o.Env, autodetect.EnvIPv4)
		v6, from6 := config.Lookup(o.Env, autodetect.EnvIPv6)
		log.Info("not monitoring node addresses: none is autodetected", "node", s.name,
			"ipv4_variable", from4, "ipv4", v4, "ipv6_variable", from6, "ipv6", v6)
		return nil
	}
	log.Info("monitoring node addresses", "node", s.name, "interval", interval.String(), "families", families)

	m := &monitor{s: s, log: log.With("node", s.name)}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.check(ctx)
		select {
		case <-ctx.Done():
			log.Info("stopped monitoring node addresses", "node", s.name)
			return nil
		case <-t.C:
		}
	}
}

// pollInterval reads AUTODETECT_POLL_INTERVAL.
func pollInterval(env func(string) string) (time.Duration, error) {
	v, from := config.Lookup(env, EnvAutodetectPollInterval)
	if v == "" {
		return DefaultAutodetectPollInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration: use a Go duration such as 60s or 5m (unset means %s)",
			from, v, DefaultAutodetectPollInterval)
	}
	return d, nil
}

// monitoredFamilies returns the families whose address can be autodetected (IPv4: IP unset or
// "autodetect"; IPv6: IP6=autodetect), after checking the IP / IP6 values and the methods so that a
// typo fails at once rather than at every tick.
func monitoredFamilies(ctx context.Context, env func(string) string) ([]int, error) {
	var out []int
	for _, f := range []struct {
		family           int
		ipVar, methodVar string
	}{{4, autodetect.EnvIPv4, autodetect.EnvIPv4Method}, {6, autodetect.EnvIPv6, autodetect.EnvIPv6Method}} {
		v, _ := config.Lookup(env, f.ipVar)
		switch {
		case strings.EqualFold(v, autodetect.ValueAutodetect) || (v == "" && f.family == 4):
			mv, from := config.Lookup(env, f.methodVar)
			if from == "" {
				from = f.methodVar
			}
			if _, err := autodetect.ParseMethodVar(from, mv); err != nil {
				return nil, err
			}
			out = append(out, f.family)
		case v == "" || strings.EqualFold(v, autodetect.ValueNone):
		default:
			// An explicit address: ResolveNodeIP only parses it (no host, no stored address needed).
			if _, err := autodetect.ResolveNodeIP(ctx, env, netip.Prefix{}, f.family, autodetect.StaticInterfaces{}, nil); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// monitor holds the state between checks.
type monitor struct {
	s   *starter
	log *slog.Logger
	// problem is the last problem logged (empty after a clean check), warnings the last check's warnings:
	// each is logged once, not at every tick.
	problem  string
	warnings []string
}

// check runs one address check.
func (m *monitor) check(ctx context.Context) {
	s := m.s
	s.res = &Result{DatastoreType: s.o.DatastoreType}
	old, err := m.update(ctx)
	if ctx.Err() != nil {
		return
	}
	for _, w := range s.res.Warnings {
		if !slices.Contains(m.warnings, w) {
			m.log.Warn("node address warning", "warning", w)
		}
	}
	m.warnings = s.res.Warnings
	if err != nil {
		if msg := err.Error(); msg != m.problem {
			m.problem = msg
			m.log.Error("node address check failed; retrying every interval", "error", msg)
		}
		return
	}
	if m.problem != "" {
		m.log.Info("node address check succeeded again")
		m.problem = ""
	}
	if len(s.res.Changes) > 0 {
		var now api.NodeBGPSpec
		if n, err := s.getNode(ctx); err == nil && n.Spec.BGP != nil {
			now = *n.Spec.BGP
		}
		m.log.Info("node address changed", "old_ipv4", old.IPv4Address, "ipv4", now.IPv4Address,
			"old_ipv6", old.IPv6Address, "ipv6", now.IPv6Address,
			"ipv4_interface", s.res.IPv4.Interface, "ipv6_interface", s.res.IPv6.Interface, "changes", s.res.Changes)
	}
}

// update decides the addresses with startup's code and writes them when they changed. It returns the
// addresses stored before.
func (m *monitor) update(ctx context.Context) (api.NodeBGPSpec, error) {
	s := m.s
	var stored api.NodeBGPSpec
	cur, err := s.getNode(ctx)
	if errors.Is(err, datastore.ErrNotFound) {
		return stored, fmt.Errorf("node %q: %w yet; tortie-node startup registers it", s.name, errNodeGone)
	}
	if err != nil {
		return stored, err
	}
	if cur.Spec.BGP != nil {
		stored = *cur.Spec.BGP
	}
	want4, want6, err := s.decideAddresses(ctx, cur, stored)
	if err != nil || (want4 == nil && want6 == nil) {
		return stored, err
	}
	_, err = s.mutateNode(ctx, func(n *api.Node) error {
		if n.ResourceVersion == "" {
			return fmt.Errorf("node %q: %w any more", s.name, errNodeGone)
		}
		if n.Spec.BGP == nil {
			n.Spec.BGP = &api.NodeBGPSpec{}
		}
		if want4 != nil {
			n.Spec.BGP.IPv4Address = *want4
		}
		if want6 != nil {
			n.Spec.BGP.IPv6Address = *want6
		}
		return nil
	})
	return stored, err
}

// debugHandler logs every record at debug level.
type debugHandler struct{ h slog.Handler }

func (d debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugHandler) WithAttrs(as []slog.Attr) slog.Handler { return debugHandler{d.h.WithAttrs(as)} }
func (d debugHandler) WithGroup(g string) slog.Handler       { return debugHandler{d.h.WithGroup(g)} }
