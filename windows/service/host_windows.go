//go:build windows

package service

import (
	"errors"
	"fmt"
	"os"
	"strings"

	kservice "github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// Native is the real Windows host: kardianos over the service control manager.
func Native() Host {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return Host{New: kservice.New, Configurer: scmConfigurer{}, ProgramData: pd, Interactive: kservice.Interactive, Exit: os.Exit}
}

type scmConfigurer struct{}

// Configure sets the recovery actions (restart after each delay), the failure-actions-on-non-crash flag,
// and registers the Event Log source (EventCreate.exe's messages, as kardianos does).
func (scmConfigurer) Configure(name string, r Recovery) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect() //nolint:errcheck // nothing to do about it
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("opening service %s: %w", name, err)
	}
	defer s.Close() //nolint:errcheck // nothing to do about it
	actions := make([]mgr.RecoveryAction, len(r.Actions))
	for i, a := range r.Actions {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: a.Delay}
	}
	if err := s.SetRecoveryActions(actions, uint32(r.ResetPeriod.Seconds())); err != nil {
		return fmt.Errorf("setting recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(r.OnNonCrashFailures); err != nil {
		return fmt.Errorf("setting failure actions on non-crash failures: %w", err)
	}
	err = eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info)
	if err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) && !strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("registering the Event Log source %s: %w", name, err)
	}
	return nil
}
