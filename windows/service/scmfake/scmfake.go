// Package scmfake is a stateful fake of the Windows service control manager as kardianos' service.Service
// sees it, for tests on any OS. It keeps the installed services and their configuration, and models the
// process a real SCM starts: Start calls Launch (which runs the program's `service run` in a goroutine,
// as a new process would), waits until the program's Run has called its Interface.Start, and Stop asks
// the running program to stop and waits for its Run to return. When the program ends without being
// stopped (its Exit was called), the fake counts a failure and applies the recovery action the service
// was configured with — restart after the action's delay — as the SCM does. Timers are real time.After
// timers, so tests drive them with testing/synctest.
package scmfake

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	kservice "github.com/kardianos/service"

	"github.com/tortie-net/tortie/windows/service"
)

// SCM is the fake service control manager. Set Launch before starting services.
type SCM struct {
	// Launch runs the service's program with its configured arguments, as the SCM starts a process,
	// and returns when that "process" ends.
	Launch func(args []string)

	mu       sync.Mutex
	svcs     map[string]*entry
	eventLog []string
	closed   bool
}

// Close cancels the restarts still pending (a test's clean-up; the real SCM has no such thing).
func (m *SCM) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
}

type entry struct {
	cfg      kservice.Config
	recovery *service.Recovery
	state    kservice.Status
	proc     *process // the running program's instance, nil when none
	failures int
	starts   int
}

// process is one "process" running the program: its Run blocks until stop or exit.
type process struct {
	started chan error    // Run's Interface.Start result
	stop    chan struct{} // closed to ask Run to stop
	exited  chan struct{} // closed when Exit is called
	done    chan error    // Run's result
	ended   chan struct{} // closed when the process has ended and the SCM recorded it
	stopReq bool
}

// New returns an empty SCM.
func New() *SCM { return &SCM{svcs: map[string]*entry{}} }

// New is kardianos' service.New for this SCM.
func (m *SCM) New(i kservice.Interface, c *kservice.Config) (kservice.Service, error) {
	if c.Name == "" {
		return nil, kservice.ErrNameFieldRequired
	}
	return &Service{scm: m, i: i, cfg: *c}, nil
}

// Configure implements service.Configurer.
func (m *SCM) Configure(name string, r service.Recovery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.svcs[name]
	if e == nil {
		return fmt.Errorf("service %s does not exist", name)
	}
	r.Actions = slices.Clone(r.Actions)
	e.recovery = &r
	return nil
}

// Exit returns the Host.Exit for the process running service name: it marks that process as ended, as
// os.Exit would end it.
func (m *SCM) Exit(name string) func(int) {
	return func(code int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if e := m.svcs[name]; e != nil && e.proc != nil {
			select {
			case <-e.proc.exited:
			default:
				close(e.proc.exited)
			}
		}
		m.eventLog = append(m.eventLog, fmt.Sprintf("scm: %s exited with code %d", name, code))
	}
}

// Host returns a service.Host over this SCM for the service name, running non-interactively.
func (m *SCM) Host(name, programData string) service.Host {
	return service.Host{New: m.New, Configurer: m, ProgramData: programData,
		Interactive: func() bool { return false }, Exit: m.Exit(name)}
}

// Config returns the installed configuration of name and its recovery policy (nil before Configure).
func (m *SCM) Config(name string) (kservice.Config, *service.Recovery, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.svcs[name]
	if e == nil {
		return kservice.Config{}, nil, false
	}
	return e.cfg, e.recovery, true
}

// Starts returns how many times name's program was started (by Start or by a recovery restart).
func (m *SCM) Starts(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.svcs[name]; e != nil {
		return e.starts
	}
	return 0
}

// EventLog returns the messages written to the Event Log (and the SCM's own records), in order.
func (m *SCM) EventLog() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.eventLog)
}

// Service is the fake's kardianos service.Service.
type Service struct {
	scm *SCM
	i   kservice.Interface
	cfg kservice.Config
}

var _ kservice.Service = (*Service)(nil)

func (s *Service) String() string {
	if s.cfg.DisplayName != "" {
		return s.cfg.DisplayName
	}
	return s.cfg.Name
}

// Platform is what kardianos reports on Windows.
func (s *Service) Platform() string { return "windows-service" }

// Install registers the service; it fails when the name is taken, as CreateService does.
func (s *Service) Install() error {
	s.scm.mu.Lock()
	defer s.scm.mu.Unlock()
	if s.scm.svcs[s.cfg.Name] != nil {
		return fmt.Errorf("service %s already exists", s.cfg.Name)
	}
	cfg := s.cfg
	cfg.Arguments = slices.Clone(cfg.Arguments)
	s.scm.svcs[s.cfg.Name] = &entry{cfg: cfg, state: kservice.StatusStopped}
	return nil
}

// Uninstall removes the service; a running service must be stopped first (the real SCM only marks it
// for deletion; tortie's Manager always stops first).
func (s *Service) Uninstall() error {
	s.scm.mu.Lock()
	defer s.scm.mu.Unlock()
	e := s.scm.svcs[s.cfg.Name]
	if e == nil {
		return fmt.Errorf("service %s is not installed", s.cfg.Name)
	}
	if e.state == kservice.StatusRunning {
		return fmt.Errorf("service %s is running; it is marked for deletion", s.cfg.Name)
	}
	delete(s.scm.svcs, s.cfg.Name)
	return nil
}

// Status reports the state, or kservice.ErrNotInstalled.
func (s *Service) Status() (kservice.Status, error) {
	s.scm.mu.Lock()
	defer s.scm.mu.Unlock()
	e := s.scm.svcs[s.cfg.Name]
	if e == nil {
		return kservice.StatusUnknown, kservice.ErrNotInstalled
	}
	return e.state, nil
}

// Start launches the program and waits until it has started (its Interface.Start returned).
func (s *Service) Start() error { return s.scm.start(s.cfg.Name) }

func (m *SCM) start(name string) error {
	m.mu.Lock()
	e := m.svcs[name]
	switch {
	case e == nil:
		m.mu.Unlock()
		return fmt.Errorf("service %s does not exist", name)
	case e.proc != nil:
		m.mu.Unlock()
		return fmt.Errorf("an instance of service %s is already running", name)
	case m.Launch == nil:
		m.mu.Unlock()
		return errors.New("scmfake: Launch is not set")
	}
	p := &process{started: make(chan error, 1), stop: make(chan struct{}), exited: make(chan struct{}), done: make(chan error, 1),
		ended: make(chan struct{})}
	e.proc = p
	// START_PENDING, which kardianos' Status reports as running, until the process ends.
	e.state = kservice.StatusRunning
	e.starts++
	args := slices.Clone(e.cfg.Arguments)
	launch := m.Launch
	m.mu.Unlock()

	ended := make(chan struct{})
	go func() {
		launch(args)
		close(ended)
		m.processEnded(name, p)
	}()
	select {
	case err := <-p.started:
		if err != nil {
			<-ended
			return fmt.Errorf("service %s did not start: %w", name, err)
		}
		return nil
	case <-ended:
		return fmt.Errorf("service %s ended before reporting that it started", name)
	}
}

// processEnded records the end of p and applies the recovery policy when nobody asked it to stop.
func (m *SCM) processEnded(name string, p *process) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(p.ended)
	e := m.svcs[name]
	if e == nil || e.proc != p {
		return
	}
	e.proc = nil
	e.state = kservice.StatusStopped
	if p.stopReq {
		return
	}
	e.failures++
	if e.recovery == nil || len(e.recovery.Actions) == 0 {
		m.eventLog = append(m.eventLog, fmt.Sprintf("scm: %s terminated unexpectedly; no recovery action", name))
		return
	}
	a := e.recovery.Actions[min(e.failures, len(e.recovery.Actions))-1]
	m.eventLog = append(m.eventLog, fmt.Sprintf("scm: %s terminated unexpectedly (failure %d); restarting in %s", name, e.failures, a.Delay))
	go func() {
		<-time.After(a.Delay)
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return
		}
		if err := m.start(name); err != nil {
			m.mu.Lock()
			m.eventLog = append(m.eventLog, fmt.Sprintf("scm: restarting %s: %v", name, err))
			m.mu.Unlock()
		}
	}()
}

// Stop asks the running program to stop and waits until its process has ended (kardianos waits for
// SERVICE_STOPPED the same way); it returns the program's Stop error.
func (s *Service) Stop() error {
	s.scm.mu.Lock()
	e := s.scm.svcs[s.cfg.Name]
	if e == nil {
		s.scm.mu.Unlock()
		return fmt.Errorf("service %s does not exist", s.cfg.Name)
	}
	p := e.proc
	if p == nil {
		s.scm.mu.Unlock()
		return fmt.Errorf("service %s has not been started", s.cfg.Name)
	}
	p.stopReq = true
	close(p.stop)
	s.scm.mu.Unlock()
	err := <-p.done
	<-p.ended
	return err
}

// Restart stops and starts the service.
func (s *Service) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Run is the program side: it runs Interface.Start, reports the service running, waits for a stop
// request (then runs Interface.Stop) or for the process's Exit, and returns. Outside a Start of this
// SCM it fails, as svc.Run fails outside the service control manager.
func (s *Service) Run() error {
	s.scm.mu.Lock()
	e := s.scm.svcs[s.cfg.Name]
	if e == nil || e.proc == nil {
		s.scm.mu.Unlock()
		return fmt.Errorf("service %s: not started by the service control manager", s.cfg.Name)
	}
	p := e.proc
	s.scm.mu.Unlock()

	if err := s.i.Start(s); err != nil {
		p.started <- err
		p.done <- err
		return err
	}
	p.started <- nil
	select {
	case <-p.stop:
		err := s.i.Stop(s)
		p.done <- err
		return err
	case <-p.exited:
		p.done <- nil
		return nil
	}
}

// Logger returns the Event Log writer (the service runs non-interactively).
func (s *Service) Logger(errs chan<- error) (kservice.Logger, error) { return s.SystemLogger(errs) }

// SystemLogger returns a logger that appends to the SCM's Event Log record with a level prefix.
func (s *Service) SystemLogger(chan<- error) (kservice.Logger, error) {
	return eventLogger{scm: s.scm, source: s.cfg.Name}, nil
}

type eventLogger struct {
	scm    *SCM
	source string
}

func (l eventLogger) add(level, msg string) error {
	l.scm.mu.Lock()
	defer l.scm.mu.Unlock()
	l.scm.eventLog = append(l.scm.eventLog, l.source+" "+level+": "+msg)
	return nil
}

func (l eventLogger) Error(v ...any) error   { return l.add("error", fmt.Sprint(v...)) }
func (l eventLogger) Warning(v ...any) error { return l.add("warning", fmt.Sprint(v...)) }
func (l eventLogger) Info(v ...any) error    { return l.add("info", fmt.Sprint(v...)) }
func (l eventLogger) Errorf(f string, a ...any) error {
	return l.add("error", fmt.Sprintf(f, a...))
}
func (l eventLogger) Warningf(f string, a ...any) error {
	return l.add("warning", fmt.Sprintf(f, a...))
}
func (l eventLogger) Infof(f string, a ...any) error { return l.add("info", fmt.Sprintf(f, a...)) }
