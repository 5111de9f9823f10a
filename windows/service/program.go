package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kservice "github.com/kardianos/service"
)

// DefaultStopTimeout is how long Stop waits for the body after cancelling it. It is below Windows'
// WaitToKillServiceTimeout (20 s by default), so the service reports its own outcome at shutdown rather
// than being killed.
const DefaultStopTimeout = 15 * time.Second

// Exit codes of the process when the body ends without being asked to stop. The SCM sees the process end
// while the service is running, counts a failure and applies the recovery actions.
const (
	ExitBodyFailed   = 1 // the body returned an error
	ExitBodyReturned = 3 // the body returned nil although it was not stopped (it should run until stopped)
)

// Program is the service's kardianos service.Interface (and Shutdowner): Start runs Body in a goroutine
// and returns at once, as the SCM requires; Stop and Shutdown cancel its context and wait up to
// StopTimeout for it to return. When Body ends on its own, Program logs why and calls Exit, so the
// process ends and the SCM's recovery actions restart it.
//
// A Program runs its body once at a time; Start after Stop runs it again (the fake SCM restarts that way;
// the real SCM starts a new process).
type Program struct {
	// Body is the service's work (startup, then the agent); it must return soon after ctx is cancelled.
	Body func(ctx context.Context) error
	// Log receives the lifecycle and the body's failure (nil: discarded).
	Log *slog.Logger
	// Exit ends the process (default os.Exit via the caller; required).
	Exit func(code int)
	// StopTimeout bounds Stop's wait (0: DefaultStopTimeout).
	StopTimeout time.Duration

	// failStart, when set, is what Start returns: `service run` found the settings broken and still
	// answers the SCM, so that the SCM records a failure (and applies the recovery actions) instead of
	// waiting for a process that never connects.
	failStart error

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	stopping bool
}

var _ interface {
	kservice.Interface
	kservice.Shutdowner
} = (*Program)(nil)

func (p *Program) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Start runs Body in a goroutine. It fails when the body is already running.
func (p *Program) Start(s kservice.Service) error {
	if p.failStart != nil {
		return p.failStart
	}
	if p.Body == nil || p.Exit == nil {
		return errors.New("service program: Body and Exit must be set")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("service %s: already running", s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done, p.err, p.stopping = cancel, make(chan struct{}), nil, false
	p.log().Info("service starting", "service", s.String(), "platform", s.Platform())
	go p.run(ctx, p.done)
	return nil
}

func (p *Program) run(ctx context.Context, done chan struct{}) {
	err := p.Body(ctx)
	p.mu.Lock()
	p.err = err
	stopping := p.stopping
	close(done)
	p.mu.Unlock()
	if stopping {
		return
	}
	code := ExitBodyFailed
	if err == nil {
		code = ExitBodyReturned
		err = errors.New("the service body returned although the service was not stopped")
	}
	p.log().Error("service failed; exiting so the service manager restarts it", "error", err.Error(), "exit_code", code)
	p.Exit(code)
}

// Stop cancels the body and waits for it; it returns the body's error, if any other than cancellation,
// or an error when the body does not return within StopTimeout. Stop when not running is a no-op.
func (p *Program) Stop(s kservice.Service) error { return p.stop(s, "stop") }

// Shutdown is Stop on system shutdown.
func (p *Program) Shutdown(s kservice.Service) error { return p.stop(s, "shutdown") }

func (p *Program) stop(s kservice.Service, why string) error {
	p.mu.Lock()
	if p.done == nil {
		p.mu.Unlock()
		return nil
	}
	p.stopping = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()

	p.log().Info("service stopping", "service", s.String(), "reason", why)
	cancel()
	timeout := p.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		err := fmt.Errorf("service %s: the agent did not stop within %s of the %s request", s, timeout, why)
		p.log().Error("service stop timed out", "error", err.Error())
		return err
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		p.log().Error("service stopped with an error", "error", err.Error())
		return fmt.Errorf("service %s: %w", s, err)
	}
	p.log().Info("service stopped", "service", s.String())
	return nil
}
