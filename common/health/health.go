// Package health is the liveness and readiness of a tortie process (agent, controllers), served on
// localhost as /livez and /readyz and probed by `tortie-node health --live|--ready`, so that nothing is
// exposed on the node's address (Calico's probes work the same way).
//
// Components register under a name and report:
//   - liveness as a heartbeat: a component that has not reported within its timeout is not live (a
//     stuck loop fails the liveness probe, and the kubelet or the Windows service manager restarts it);
//   - readiness as a flag the component sets (the agent: datastore in sync and the dataplane applied once).
//
// A process is live when every component reporting liveness is; ready when every component reporting
// readiness is. All methods are safe for concurrent use.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Aggregator collects the components' reports.
type Aggregator struct {
	mu    sync.Mutex
	now   func() time.Time
	comps map[string]*component
}

type component struct {
	liveTimeout time.Duration // 0: does not report liveness
	reportReady bool
	lastBeat    time.Time
	ready       bool
	detail      string
}

// New returns an empty Aggregator; now nil means time.Now.
func New(now func() time.Time) *Aggregator {
	if now == nil {
		now = time.Now
	}
	return &Aggregator{now: now, comps: map[string]*component{}}
}

// Register declares a component. liveTimeout > 0 makes it report liveness by heartbeat (the first one is
// implied by registering); reportsReady makes its readiness count, false until it says otherwise.
// Registering a name again replaces it.
func (a *Aggregator) Register(name string, liveTimeout time.Duration, reportsReady bool) *Reporter {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.comps[name] = &component{liveTimeout: liveTimeout, reportReady: reportsReady, lastBeat: a.now()}
	return &Reporter{a: a, name: name}
}

// Reporter is one component's handle.
type Reporter struct {
	a    *Aggregator
	name string
}

// Beat records that the component is alive now.
func (r *Reporter) Beat() {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	if c := r.a.comps[r.name]; c != nil {
		c.lastBeat = r.a.now()
	}
}

// SetReady records readiness, with a short human-readable reason shown by the verbose endpoints.
func (r *Reporter) SetReady(ready bool, detail string) {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	if c := r.a.comps[r.name]; c != nil {
		c.ready, c.detail = ready, detail
	}
}

// Check is one component's state in a Report.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report is the answer of a probe.
type Report struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Live reports liveness.
func (a *Aggregator) Live() Report { return a.report(true) }

// Ready reports readiness.
func (a *Aggregator) Ready() Report { return a.report(false) }

func (a *Aggregator) report(live bool) Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	rep := Report{OK: true, Checks: []Check{}}
	for name, c := range a.comps {
		var ck Check
		switch {
		case live && c.liveTimeout > 0:
			age := now.Sub(c.lastBeat)
			ck = Check{Name: name, OK: age <= c.liveTimeout}
			if !ck.OK {
				ck.Detail = fmt.Sprintf("no heartbeat for %s (timeout %s)", age.Round(time.Second), c.liveTimeout)
			}
		case !live && c.reportReady:
			ck = Check{Name: name, OK: c.ready, Detail: c.detail}
		default:
			continue
		}
		rep.OK = rep.OK && ck.OK
		rep.Checks = append(rep.Checks, ck)
	}
	sort.Slice(rep.Checks, func(i, j int) bool { return rep.Checks[i].Name < rep.Checks[j].Name })
	return rep
}

// Handler serves /livez and /readyz: 200 when OK, 503 otherwise, with the report as JSON.
func (a *Aggregator) Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(f func() Report) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			rep := f()
			w.Header().Set("Content-Type", "application/json")
			if !rep.OK {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(rep) //nolint:errchkjson // nothing to do when the prober hung up
		}
	}
	mux.Handle("/livez", serve(a.Live))
	mux.Handle("/readyz", serve(a.Ready))
	return mux
}

// Serve listens on addr (host:port; use 127.0.0.1) and serves the handler, plus extra paths (e.g.
// "/metrics"), until ctx is done. It returns once the listener is bound, with the bound address (addr may
// use port 0) and a channel that carries the server's final error.
func Serve(ctx context.Context, addr string, h http.Handler, extra map[string]http.Handler) (string, <-chan error, error) {
	mux := http.NewServeMux()
	mux.Handle("/livez", h)
	mux.Handle("/readyz", h)
	for p, eh := range extra {
		mux.Handle(p, eh)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("health server: listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if err == http.ErrServerClosed {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) //nolint:contextcheck // shutting down after ctx ended
	}()
	return ln.Addr().String(), done, nil
}

// Probe asks a health server: path is "/livez" or "/readyz". It returns the report and nil when the
// server answered 200, the report and an error saying what failed otherwise.
func Probe(ctx context.Context, addr, path string) (Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return Report{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Report{}, fmt.Errorf("health server at %s: %w", addr, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Report{}, fmt.Errorf("reading %s%s: %w", addr, path, err)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return Report{}, fmt.Errorf("health server at %s answered %s with %q: %w", addr, resp.Status, body, err)
	}
	if resp.StatusCode != http.StatusOK || !rep.OK {
		var failing []string
		for _, c := range rep.Checks {
			if !c.OK {
				failing = append(failing, fmt.Sprintf("%s (%s)", c.Name, c.Detail))
			}
		}
		return rep, fmt.Errorf("%s: %s: failing: %v", path, resp.Status, failing)
	}
	return rep, nil
}
