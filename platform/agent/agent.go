package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/calc"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/health"
	"github.com/tortie-net/tortie/platform"
)

// Syncer is what the agent needs of common/datastore's syncer: it streams to the Callbacks it was
// built with until ctx ends (datastore.Syncer's Run).
type Syncer interface {
	Run(ctx context.Context) error
}

// SyncerFactory builds the syncer that streams kinds to cb, e.g.
//
//	func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
//		return datastore.NewSyncer(backend, cb, kinds)
//	}
type SyncerFactory func(cb datastore.Callbacks, kinds []datastore.ListOptions) Syncer

// Retry backoff after a failed Apply: it doubles from MinRetryBackoff up to MaxRetryBackoff; updates
// that arrive meanwhile are recorded and go with the retry.
const (
	MinRetryBackoff = 100 * time.Millisecond
	MaxRetryBackoff = 30 * time.Second
)

// Options configure an Agent.
type Options struct {
	// NodeName is this node's name (from start-up). Required.
	NodeName string
	// Dataplane is programmed by the loop. Required.
	Dataplane platform.Dataplane
	// Syncer builds the datastore stream. Required.
	Syncer SyncerFactory
	// Settings holds the layered settings, already primed with the FelixConfigurations read at start
	// (config.Loader.Prime). Required.
	Settings *config.Loader
	// Calculator is the calculation (nil: NewGraph, common/calc).
	Calculator Calculator
	// Logger receives the agent's logs (nil: discarded). LogLevel, when set, is the level of the handler
	// behind Logger; the agent sets it from LogSeverityScreen, live.
	Logger   *slog.Logger
	LogLevel *slog.LevelVar
	// HealthAddr overrides HealthHost:HealthPort (tests use 127.0.0.1:0); MetricsAddr likewise
	// overrides PrometheusMetricsHost:PrometheusMetricsPort.
	HealthAddr, MetricsAddr string
	// Health is the aggregator to report to (nil: a new one, served by the agent).
	Health *health.Aggregator
	// Registry receives the metrics (nil: a new private registry).
	Registry *prometheus.Registry
}

// Agent is the node agent's run loop. See the package documentation.
type Agent struct {
	o      Options
	log    *slog.Logger
	calc   Calculator
	m      *metrics
	health *health.Aggregator
	rep    *health.Reporter

	mu          sync.Mutex
	desired     *dpmodel.State // everything the calculation emitted
	changed     *dpmodel.Keys  // objects of desired that changed since the last Apply took them
	pendingN    int            // updates emitted since the last Apply took them
	status      datastore.Status
	everInSync  bool
	appliedOnce bool
	calcErrs    int
	// seenRev is the highest datastore revision the syncer delivered, appliedRev the highest whose
	// updates a successful Apply included (0: none, or revisions that are not numbers).
	seenRev, appliedRev int64
	applies             int64

	kick    chan struct{} // one slot: "something changed"
	started chan struct{}
	addrs   [2]string // health, metrics

	// Owned by the loop goroutine (read under mu, with desired). The objects handed to the dataplane,
	// by identity only: their values are desired's as of the last hand-off, and changed says which
	// may differ since, so no copy of what was sent is kept (dpmodel.DiffKeys).
	held *dpmodel.Keys
}

// New checks the options and returns an Agent ready to Run.
func New(o Options) (*Agent, error) {
	switch {
	case o.NodeName == "":
		return nil, errors.New("agent: no node name")
	case o.Dataplane == nil:
		return nil, errors.New("agent: no dataplane")
	case o.Syncer == nil:
		return nil, errors.New("agent: no syncer")
	case o.Settings == nil:
		return nil, errors.New("agent: no settings")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{o: o, log: log, calc: o.Calculator, health: o.Health, desired: dpmodel.NewState(), changed: dpmodel.NewKeys(), held: dpmodel.NewKeys(),
		kick: make(chan struct{}, 1), started: make(chan struct{})}
	if a.health == nil {
		a.health = health.New(nil)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a.m = newMetrics(reg)
	if a.calc == nil {
		a.calc = NewGraph(o.NodeName, log.With("component", "calc"), func(ps []calc.Problem) {
			a.m.calcProblems.Set(float64(len(ps)))
		})
	}
	// Registered here, not in Run, so that nobody sees the agent ready before it ran.
	a.rep = a.health.Register("agent", o.Settings.Current().WatchdogTimeout, true)
	a.rep.SetReady(false, "waiting for the datastore")
	return a, nil
}

// Registry returns the registry holding the agent's metrics.
func (a *Agent) Registry() *prometheus.Registry { return a.m.reg }

// Health returns the aggregator the agent reports to.
func (a *Agent) Health() *health.Aggregator { return a.health }

// Started is closed once Run has bound its servers; then Addrs returns their addresses.
func (a *Agent) Started() <-chan struct{} { return a.started }

// Addrs returns the bound health and metrics server addresses ("" when not served).
func (a *Agent) Addrs() (healthAddr, metricsAddr string) { return a.addrs[0], a.addrs[1] }

// Run runs the loop until ctx ends (then it returns nil) or the syncer fails to start.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	set := a.o.Settings.Current()
	a.applyLogLevel(set)
	a.record(a.calc.OnConfig(set))

	var servers sync.WaitGroup
	defer servers.Wait()
	if err := a.serve(ctx, set, &servers); err != nil {
		return err
	}
	close(a.started)

	kinds := a.calc.Kinds()
	hasFC := false
	for _, k := range kinds {
		hasFC = hasFC || k.Kind == "FelixConfiguration"
	}
	if !hasFC {
		kinds = append(kinds, datastore.ListOptions{Kind: "FelixConfiguration"})
	}
	syncer := a.o.Syncer(callbacks{a}, kinds)
	// syncDone is closed (so it can be read twice: by the loop and here) once syncErr is set.
	var syncErr error
	syncDone := make(chan struct{})
	go func() {
		syncErr = syncer.Run(ctx)
		close(syncDone)
	}()
	defer func() {
		cancel()
		<-syncDone
		if syncErr != nil && !errors.Is(syncErr, context.Canceled) {
			a.log.Warn("syncer ended", "error", syncErr.Error())
		}
	}()

	a.log.Info("agent started", "node", a.o.NodeName, "dataplane", a.o.Dataplane.Capabilities().Name,
		"apply_min_interval", set.ApplyMinInterval, "resync_interval", set.ResyncInterval())
	return a.loop(ctx, syncDone, func() error { return syncErr })
}

// serve starts the health server (with /metrics) and, when enabled, the separate metrics server.
func (a *Agent) serve(ctx context.Context, set config.Agent, wg *sync.WaitGroup) error {
	metricsHandler := promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{Registry: a.m.reg})
	if addr := a.o.HealthAddr; addr != "" || set.HealthEnabled {
		if addr == "" {
			addr = net.JoinHostPort(set.HealthHost, strconv.Itoa(set.HealthPort))
		}
		bound, done, err := health.Serve(ctx, addr, a.health.Handler(),
			map[string]http.Handler{"/metrics": metricsHandler, "/status": http.HandlerFunc(a.serveStatus)})
		if err != nil {
			return fmt.Errorf("agent: %w (HealthHost/HealthPort)", err)
		}
		a.addrs[0] = bound
		wg.Go(func() {
			if err := <-done; err != nil {
				a.log.Error("health server stopped", "error", err.Error())
			}
		})
	}
	if addr := a.o.MetricsAddr; addr != "" || set.MetricsEnabled {
		if addr == "" {
			addr = net.JoinHostPort(set.MetricsHost, strconv.Itoa(set.MetricsPort))
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("agent: metrics server: listening on %s: %w (PrometheusMetricsHost/PrometheusMetricsPort)", addr, err)
		}
		a.addrs[1] = ln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server stopped", "error", err.Error())
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			_ = srv.Shutdown(sctx) //nolint:contextcheck // shutting down after ctx ended
		})
	}
	return nil
}

func (a *Agent) applyLogLevel(set config.Agent) {
	if a.o.LogLevel != nil {
		a.o.LogLevel.Set(set.LogLevel)
	}
}

// record adds calculation output to the desired state; called from the syncer's goroutine (and once
// before it starts).
func (a *Agent) record(us []dpmodel.Update) {
	if len(us) == 0 {
		return
	}
	a.mu.Lock()
	for _, u := range us {
		if err := a.desired.Apply(u); err != nil {
			// A bug in the calculation: the update is skipped (the dataplane would refuse it too).
			a.calcErrs++
			a.log.Error("calculation broke the dataplane contract; update skipped", "update", u.Kind(), "error", err.Error())
			continue
		}
		a.changed.Add(u)
	}
	a.pendingN += len(us)
	n := a.pendingN
	a.mu.Unlock()
	a.m.pending.Set(float64(n))
	a.poke()
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// callbacks receive the syncer's stream.
type callbacks struct{ a *Agent }

func (c callbacks) OnStatusUpdated(s datastore.Status) {
	a := c.a
	a.calc.OnStatus(s)
	a.m.setStatus(s)
	a.mu.Lock()
	prev := a.status
	a.status = s
	if s == datastore.InSync {
		a.everInSync = true
	}
	a.mu.Unlock()
	a.log.Info("datastore status", "status", s.String(), "previous", prev.String())
	a.updateReady()
	a.poke()
}

func (c callbacks) OnUpdates(us []datastore.Update) {
	a := c.a
	for _, u := range us {
		if !isFelixConfiguration(u) {
			continue
		}
		var spec *api.FelixConfigurationSpec
		if fc, ok := u.Value.(*api.FelixConfiguration); ok && u.Type != datastore.UpdateDeleted {
			spec = &fc.Spec
		}
		ch := a.o.Settings.SetFelixConfiguration(u.Key.Name, spec)
		a.m.configRejected.Add(float64(len(ch.Rejected)))
		a.m.restartNeeded.Set(float64(len(a.o.Settings.RestartNeeded())))
		if len(ch.Live) > 0 {
			set := a.o.Settings.Current()
			a.applyLogLevel(set)
			a.record(a.calc.OnConfig(set))
		}
	}
	a.record(a.calc.OnUpdates(us))
	// The revision advances after the updates are recorded, so an Apply never claims a revision
	// whose updates it did not carry. A batch that changes nothing still advances it: the poke makes
	// the loop apply (an empty Apply) and so report the revision as applied.
	if rev := maxRevision(us); rev > 0 {
		a.mu.Lock()
		advanced := rev > a.seenRev
		if advanced {
			a.seenRev = rev
		}
		a.mu.Unlock()
		if advanced {
			a.poke()
		}
	}
}

// maxRevision is the highest numeric revision in us (etcd's mod revisions, Kubernetes resource
// versions); 0 when none is a number.
func maxRevision(us []datastore.Update) int64 {
	var rev int64
	for _, u := range us {
		if r, err := strconv.ParseInt(u.Revision, 10, 64); err == nil && r > rev {
			rev = r
		}
	}
	return rev
}

// Status is what /status reports: where the agent stands against the datastore.
type Status struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Datastore is the syncer's status (wait-for-datastore, resync-in-progress, in-sync).
	Datastore string `json:"datastore"`
	// Ready is the readiness /readyz reports.
	Ready bool `json:"ready"`
	// SeenRevision is the highest datastore revision received; AppliedRevision the highest whose
	// updates the dataplane has applied successfully. Both are 0 until known. A client that wrote
	// revision R waits for AppliedRevision >= R (tortie-lab sync).
	SeenRevision    int64 `json:"seenRevision"`
	AppliedRevision int64 `json:"appliedRevision"`
	// Applies counts successful Applies.
	Applies int64 `json:"applies"`
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	ready := a.health.Ready().OK
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{Node: a.o.NodeName, Datastore: a.status.String(), Ready: ready,
		SeenRevision: a.seenRev, AppliedRevision: a.appliedRev, Applies: a.applies}
}

func (a *Agent) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.Status()) //nolint:errchkjson // the client went away
}

// updateReady reports readiness: in sync with the datastore and applied at least once.
func (a *Agent) updateReady() {
	a.mu.Lock()
	status, applied := a.status, a.appliedOnce
	a.mu.Unlock()
	switch {
	case status != datastore.InSync:
		a.rep.SetReady(false, "datastore: "+status.String())
	case !applied:
		a.rep.SetReady(false, "dataplane not applied yet")
	default:
		a.rep.SetReady(true, "in sync and applied")
	}
}

// loop owns the dataplane: it takes what the calculation emitted and applies it, rate-limited,
// retried with backoff, resynced periodically.
func (a *Agent) loop(ctx context.Context, syncDone <-chan struct{}, syncErr func() error) error {
	dp := a.o.Dataplane
	set := a.o.Settings.Current()
	beatEvery := min(max(set.WatchdogTimeout/4, time.Second), 10*time.Second)
	heartbeat := time.NewTicker(beatEvery)
	defer heartbeat.Stop()
	resyncEvery := set.ResyncInterval()
	var resync *time.Ticker
	var resyncC <-chan time.Time
	setResync := func(d time.Duration) {
		if resync != nil {
			resync.Stop()
			resync, resyncC = nil, nil
		}
		if d > 0 {
			resync = time.NewTicker(d)
			resyncC = resync.C
		}
	}
	setResync(resyncEvery)
	defer setResync(0)
	timer := time.NewTimer(time.Hour)
	timer.Stop()

	var (
		dirty     bool
		lastApply time.Time
		retryAt   time.Time
		backoff   time.Duration
	)
	for {
		a.rep.Beat()
		set = a.o.Settings.Current()
		if d := set.ResyncInterval(); d != resyncEvery {
			resyncEvery = d
			setResync(d)
			a.log.Info("resync interval changed", "resync_interval", d)
		}
		a.mu.Lock()
		canApply := a.everInSync
		a.mu.Unlock()
		if dirty && canApply {
			now := time.Now()
			at := lastApply.Add(set.ApplyMinInterval)
			if retryAt.After(at) {
				at = retryAt
			}
			if !now.Before(at) {
				lastApply = now
				if err := a.apply(ctx, dp); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					backoff = min(max(backoff*2, MinRetryBackoff), MaxRetryBackoff)
					retryAt = time.Now().Add(backoff)
					a.log.Warn("dataplane apply failed; retrying", "error", err.Error(), "retry_in", backoff)
				} else {
					dirty, backoff, retryAt = false, 0, time.Time{}
				}
				continue
			}
			timer.Reset(at.Sub(now))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-syncDone:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("agent: the syncer stopped: %w", syncErr())
		case <-a.kick:
			dirty = true
		case <-timer.C:
		case <-resyncC:
			dp.QueueResync()
			a.m.resyncs.Inc()
			dirty = true
		case <-heartbeat.C:
		}
		timer.Stop()
	}
}

// apply hands the dataplane what changed since the last call and applies it.
func (a *Agent) apply(ctx context.Context, dp platform.Dataplane) error {
	a.mu.Lock()
	diff := dpmodel.DiffKeys(a.held, a.changed, a.desired)
	a.changed.Clear()
	a.pendingN = 0
	rev := a.seenRev
	a.mu.Unlock()
	a.m.pending.Set(0)
	for _, u := range diff {
		dp.OnUpdate(u)
	}
	a.m.applies.Inc()
	start := time.Now()
	err := dp.Apply(ctx)
	a.m.applyDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		a.m.applyErrors.Inc()
		return err
	}
	a.mu.Lock()
	first := !a.appliedOnce
	a.appliedOnce = true
	a.appliedRev = max(a.appliedRev, rev)
	a.applies++
	a.mu.Unlock()
	if first {
		a.log.Info("dataplane applied for the first time", "updates", len(diff), "took", time.Since(start))
		a.updateReady()
		// Decoding the initial snapshot leaves a heap peak that the runtime would return to the OS only
		// slowly; return it now, once (docs/performance.md: agent memory).
		debug.FreeOSMemory()
	} else {
		a.log.Debug("dataplane applied", "updates", len(diff), "took", time.Since(start))
	}
	return nil
}
