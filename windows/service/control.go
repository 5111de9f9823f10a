package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	kservice "github.com/kardianos/service"
)

// Configurer sets what kardianos' Install does not: the whole recovery-action list (kardianos sets one
// action), the flag that makes a non-zero exit a failure, and the Event Log source. It is also what the
// MSI runs (through `tortie-node service configure`) because wixl cannot write failure actions.
// Configure is idempotent and fails when the service is not installed.
type Configurer interface {
	Configure(name string, r Recovery) error
}

// Host is what the service code needs from the OS; Native() gives the real one, scmfake a fake.
type Host struct {
	// New is kardianos' service.New.
	New func(i kservice.Interface, c *kservice.Config) (kservice.Service, error)
	// Configurer sets the recovery actions and the Event Log source.
	Configurer Configurer
	// ProgramData is %ProgramData% (C:\ProgramData).
	ProgramData string
	// Interactive reports whether the process runs from a console or a HostProcess container rather
	// than under the service control manager.
	Interactive func() bool
	// Exit ends the process (os.Exit).
	Exit func(code int)
}

// Manager carries out `tortie-node service install|uninstall|start|stop|status|configure`.
type Manager struct {
	Host Host
	Opts Options
	// Out receives one line per step, for the operator.
	Out io.Writer
}

// idle is the Interface given to kardianos when the service is only controlled, not run.
type idle struct{}

func (idle) Start(kservice.Service) error { return nil }
func (idle) Stop(kservice.Service) error  { return nil }

func (m *Manager) service() (kservice.Service, error) {
	s, err := m.Host.New(idle{}, m.Opts.KardianosConfig(m.Host.ProgramData))
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", m.Opts.Name, err)
	}
	return s, nil
}

func (m *Manager) say(format string, args ...any) {
	if m.Out != nil {
		_, _ = fmt.Fprintf(m.Out, format+"\n", args...)
	}
}

// installed reports whether the service exists.
func installed(s kservice.Service) (bool, kservice.Status, error) {
	st, err := s.Status()
	if errors.Is(err, kservice.ErrNotInstalled) {
		return false, kservice.StatusUnknown, nil
	}
	if err != nil {
		return false, st, fmt.Errorf("querying service %s: %w", s, err)
	}
	return true, st, nil
}

// Install registers the service (auto start, the HNS dependency, `service run` with the file paths),
// sets the recovery actions and the Event Log source, applies env to the environment file and creates
// the log folder. On any failure after registering it removes the service again: nothing is half
// installed. Installing an installed service is an error that says what to do instead.
func (m *Manager) Install(env []EnvChange) error {
	if err := m.Opts.Validate(); err != nil {
		return err
	}
	s, err := m.service()
	if err != nil {
		return err
	}
	ok, _, err := installed(s)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("service %s is already installed; use 'tortie-node service configure --env K=V' to change its settings, or uninstall it first", m.Opts.Name)
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("installing service %s: %w", m.Opts.Name, err)
	}
	if err := m.configure(env); err != nil {
		if uerr := s.Uninstall(); uerr != nil {
			return fmt.Errorf("%w (and removing the half-installed service failed: %w)", err, uerr)
		}
		return fmt.Errorf("%w; the service was removed again", err)
	}
	m.say("installed service %s (start: %s, depends on: %v); recovery: %s", m.Opts.Name, m.Opts.StartType, Dependencies, m.Opts.Recovery)
	m.say("settings: %s; logs: %s", m.Opts.EnvFile, m.Opts.LogFile())
	return nil
}

// Configure (re)applies the recovery actions, the Event Log source, env and the log folder to an
// installed service: what the MSI runs after registering the service.
func (m *Manager) Configure(env []EnvChange) error {
	if err := m.Opts.Validate(); err != nil {
		return err
	}
	s, err := m.service()
	if err != nil {
		return err
	}
	ok, _, err := installed(s)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("service %s is not installed; run 'tortie-node service install' (or install the MSI) first", m.Opts.Name)
	}
	if err := m.configure(env); err != nil {
		return err
	}
	m.say("configured service %s; recovery: %s; settings: %s", m.Opts.Name, m.Opts.Recovery, m.Opts.EnvFile)
	return nil
}

func (m *Manager) configure(env []EnvChange) error {
	if err := m.Host.Configurer.Configure(m.Opts.Name, m.Opts.Recovery); err != nil {
		return fmt.Errorf("setting the recovery actions of service %s: %w", m.Opts.Name, err)
	}
	changed, err := UpdateEnvFile(m.Opts.EnvFile, env)
	if err != nil {
		return err
	}
	if changed {
		m.say("wrote %s", m.Opts.EnvFile)
	}
	if err := os.MkdirAll(m.Opts.LogDir, 0o755); err != nil {
		return fmt.Errorf("creating log folder %s: %w", m.Opts.LogDir, err)
	}
	return nil
}

// Uninstall stops the service when it runs and removes it. The environment file and the logs stay (an
// upgrade or reinstall keeps its settings) unless purge is set.
func (m *Manager) Uninstall(purge bool) error {
	s, err := m.service()
	if err != nil {
		return err
	}
	ok, st, err := installed(s)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("service %s is not installed", m.Opts.Name)
	}
	if st == kservice.StatusRunning {
		if err := s.Stop(); err != nil {
			return fmt.Errorf("stopping service %s before removing it: %w", m.Opts.Name, err)
		}
		m.say("stopped service %s", m.Opts.Name)
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("removing service %s: %w", m.Opts.Name, err)
	}
	m.say("removed service %s", m.Opts.Name)
	if purge {
		for _, p := range []string{m.Opts.EnvFile, m.Opts.LogDir} {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("removing %s: %w", p, err)
			}
			m.say("removed %s", p)
		}
	}
	return nil
}

// Start starts the installed service; starting a running service changes nothing.
func (m *Manager) Start() error {
	s, err := m.service()
	if err != nil {
		return err
	}
	ok, st, err := installed(s)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return fmt.Errorf("service %s is not installed; run 'tortie-node service install' first", m.Opts.Name)
	case st == kservice.StatusRunning:
		m.say("service %s is already running", m.Opts.Name)
		return nil
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("starting service %s: %w (see the Event Log and %s)", m.Opts.Name, err, m.Opts.LogFile())
	}
	m.say("started service %s", m.Opts.Name)
	return nil
}

// Stop stops the service; stopping a stopped service changes nothing.
func (m *Manager) Stop() error {
	s, err := m.service()
	if err != nil {
		return err
	}
	ok, st, err := installed(s)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return fmt.Errorf("service %s is not installed", m.Opts.Name)
	case st != kservice.StatusRunning:
		m.say("service %s is not running", m.Opts.Name)
		return nil
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("stopping service %s: %w", m.Opts.Name, err)
	}
	m.say("stopped service %s", m.Opts.Name)
	return nil
}

// State is the service's state as `service status` prints it.
type State string

// The states.
const (
	StateNotInstalled State = "not-installed"
	StateRunning      State = "running"
	StateStopped      State = "stopped"
	StateUnknown      State = "unknown"
)

// Status returns the service's state.
func (m *Manager) Status() (State, error) {
	s, err := m.service()
	if err != nil {
		return StateUnknown, err
	}
	ok, st, err := installed(s)
	switch {
	case err != nil:
		return StateUnknown, err
	case !ok:
		return StateNotInstalled, nil
	case st == kservice.StatusRunning:
		return StateRunning, nil
	case st == kservice.StatusStopped:
		return StateStopped, nil
	}
	return StateUnknown, nil
}

// Body is the service's work, given the settings (the environment file over the process environment)
// and the service's logger.
type Body func(ctx context.Context, getenv func(string) string, log *slog.Logger) error

// RunOptions are what `service run` needs besides the Options.
type RunOptions struct {
	// Getenv is the process environment (os.Getenv).
	Getenv func(string) string
	// Level decides the log level from the settings (nil: info); an error stops the service before it
	// starts, with the error in the Event Log.
	Level func(getenv func(string) string) (slog.Leveler, error)
	// Stderr receives the log too when running interactively (a console or a HostProcess container).
	Stderr io.Writer
}

// Run is `tortie-node service run`, what the SCM starts: it reads the environment file, opens the
// rotating log file, and runs body under kardianos until the SCM (or Ctrl-C, interactively) stops it.
// Errors before the body starts go to the Event Log as well as being returned.
func (m *Manager) Run(body Body, ro RunOptions) error {
	prog := &Program{Exit: m.Host.Exit}
	s, err := m.Host.New(prog, m.Opts.KardianosConfig(m.Host.ProgramData))
	if err != nil {
		return fmt.Errorf("service %s: %w", m.Opts.Name, err)
	}
	el, elErr := s.Logger(nil) // the Event Log under the SCM, the console interactively
	fail := func(err error) error {
		if elErr == nil {
			_ = el.Error(err.Error()) //nolint:errcheck // the error is returned as well
		}
		prog.failStart = err
		_ = s.Run() //nolint:errcheck // reports err to the SCM as a failed start; err is returned below
		return err
	}
	if err := m.Opts.Validate(); err != nil {
		return fail(err)
	}
	ef, err := ReadEnvFile(m.Opts.EnvFile)
	if err != nil {
		return fail(fmt.Errorf("service %s: %w; fix the file and start the service again", m.Opts.Name, err))
	}
	lf, err := OpenRotatingFile(m.Opts.LogFile(), m.Opts.LogMaxBytes, m.Opts.LogBackups)
	if err != nil {
		return fail(err)
	}
	defer lf.Close() //nolint:errcheck // the process ends next
	var w io.Writer = lf
	var evl EventLogger
	if elErr == nil {
		evl = el
	}
	interactive := m.Host.Interactive != nil && m.Host.Interactive()
	if interactive && ro.Stderr != nil {
		w = io.MultiWriter(lf, ro.Stderr)
		evl = nil // the console logger would print every error twice
	}
	getenv := ef.Getenv(ro.Getenv)
	var level slog.Leveler = slog.LevelInfo
	if ro.Level != nil {
		if level, err = ro.Level(getenv); err != nil {
			lf.Close() //nolint:errcheck,gosec // already failing
			return fail(fmt.Errorf("service %s: %w (settings: %s)", m.Opts.Name, err, m.Opts.EnvFile))
		}
	}
	log := NewLogger(w, evl, level)
	prog.Log = log
	prog.Body = func(ctx context.Context) error { return body(ctx, getenv, log) }
	log.Info("tortie-node service", "env_file", m.Opts.EnvFile, "settings", len(ef.Keys()), "log_file", m.Opts.LogFile(), "interactive", interactive)
	if err := s.Run(); err != nil {
		log.Error("service run ended with an error", "error", err.Error())
		return fmt.Errorf("service %s: %w", m.Opts.Name, err)
	}
	return nil
}
