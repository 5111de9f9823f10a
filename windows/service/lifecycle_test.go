package service_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	kservice "github.com/kardianos/service"

	"github.com/tortie-net/tortie/windows/service"
	"github.com/tortie-net/tortie/windows/service/scmfake"
)

// node is one Windows node: a fake SCM, a ProgramData folder, and the service body whose runs it records.
type node struct {
	t       *testing.T
	scm     *scmfake.SCM
	mgr     *service.Manager
	out     bytes.Buffer
	body    func(ctx context.Context, getenv func(string) string, log *slog.Logger) error
	mu      sync.Mutex
	runs    []string // the NODENAME each run saw, and how it ended
	running chan struct{}
}

func newNode(t *testing.T) *node {
	t.Helper()
	pd := filepath.Join(t.TempDir(), "ProgramData")
	n := &node{t: t, scm: scmfake.New(), running: make(chan struct{}, 10)}
	opts := service.DefaultOptions(pd)
	n.mgr = &service.Manager{Host: n.scm.Host(service.Name, pd), Opts: opts, Out: &n.out}
	// The body by default runs until stopped, as the agent does.
	n.body = func(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
		log.Info("agent running", "nodename", getenv("NODENAME"))
		n.running <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	// What the SCM starts: `tortie-node service run` in a new process, with its own Manager.
	n.scm.Launch = func(args []string) {
		if diff := cmp.Diff([]string{"service", "run"}, args); diff != "" {
			t.Errorf("service arguments (-want +got):\n%s", diff)
		}
		m := &service.Manager{Host: n.mgr.Host, Opts: n.mgr.Opts}
		err := m.Run(func(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
			err := n.body(ctx, getenv, log)
			n.mu.Lock()
			n.runs = append(n.runs, getenv("NODENAME")+": "+errString(err))
			n.mu.Unlock()
			return err
		}, service.RunOptions{Getenv: func(string) string { return "" }})
		if err != nil {
			n.mu.Lock()
			n.runs = append(n.runs, "run: "+err.Error())
			n.mu.Unlock()
		}
	}
	return n
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func (n *node) state() service.State {
	n.t.Helper()
	st, err := n.mgr.Status()
	if err != nil {
		n.t.Fatal(err)
	}
	return st
}

func (n *node) logFile() string {
	b, err := os.ReadFile(n.mgr.Opts.LogFile())
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

func TestServiceLifecycle(t *testing.T) {
	n := newNode(t)
	if got := n.state(); got != service.StateNotInstalled {
		t.Fatalf("state before install = %s", got)
	}
	if err := n.mgr.Start(); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("Start before install: %v", err)
	}

	if err := n.mgr.Install([]service.EnvChange{{Key: "NODENAME", Value: "win-1"}, {Key: "DATASTORE_TYPE", Value: "kubernetes"}}); err != nil {
		t.Fatal(err)
	}
	cfg, rec, ok := n.scm.Config(service.Name)
	if !ok {
		t.Fatal("service not registered")
	}
	if cfg.Option["StartType"] != "automatic" || cfg.Option["OnFailure"] != "restart" || cfg.Option["OnFailureDelayDuration"] != "5s" || cfg.Option["OnFailureResetPeriod"] != 86400 {
		t.Errorf("kardianos options = %v", cfg.Option)
	}
	if diff := cmp.Diff([]string{"hns"}, cfg.Dependencies); diff != "" {
		t.Errorf("dependencies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&service.DefaultRecovery, rec); diff != "" {
		t.Errorf("recovery (-want +got):\n%s", diff)
	}
	if got := n.state(); got != service.StateStopped {
		t.Fatalf("state after install = %s", got)
	}
	if _, err := os.Stat(n.mgr.Opts.LogDir); err != nil {
		t.Errorf("log folder not created: %v", err)
	}

	// Installing again fails and changes nothing.
	err := n.mgr.Install([]service.EnvChange{{Key: "NODENAME", Value: "other"}})
	if err == nil || !strings.Contains(err.Error(), "already installed") {
		t.Fatalf("second Install: %v", err)
	}
	if ef, _ := service.ReadEnvFile(n.mgr.Opts.EnvFile); mustGet(ef, "NODENAME") != "win-1" {
		t.Error("a failed install changed the environment file")
	}

	if err := n.mgr.Start(); err != nil {
		t.Fatal(err)
	}
	<-n.running
	if got := n.state(); got != service.StateRunning {
		t.Fatalf("state after start = %s", got)
	}
	if err := n.mgr.Start(); err != nil {
		t.Fatalf("Start of a running service should be a no-op: %v", err)
	}
	if err := n.mgr.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := n.state(); got != service.StateStopped {
		t.Fatalf("state after stop = %s", got)
	}
	if err := n.mgr.Stop(); err != nil {
		t.Fatalf("Stop of a stopped service should be a no-op: %v", err)
	}
	// The body saw the environment file's settings, its context was cancelled, and the log file has
	// the lifecycle.
	if diff := cmp.Diff([]string{"win-1: context canceled"}, n.runs); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	for _, want := range []string{"msg=\"tortie-node service\"", "msg=\"service starting\"", "msg=\"agent running\" nodename=win-1", "msg=\"service stopped\""} {
		if !strings.Contains(n.logFile(), want) {
			t.Errorf("log file lacks %q:\n%s", want, n.logFile())
		}
	}
	if starts := n.scm.Starts(service.Name); starts != 1 {
		t.Errorf("starts = %d, want 1", starts)
	}

	// Uninstall stops a running service first, keeps settings and logs without purge.
	if err := n.mgr.Start(); err != nil {
		t.Fatal(err)
	}
	<-n.running
	if err := n.mgr.Uninstall(false); err != nil {
		t.Fatal(err)
	}
	if got := n.state(); got != service.StateNotInstalled {
		t.Fatalf("state after uninstall = %s", got)
	}
	if _, err := os.Stat(n.mgr.Opts.EnvFile); err != nil {
		t.Errorf("uninstall without purge removed the settings: %v", err)
	}
	if err := n.mgr.Uninstall(false); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("second Uninstall: %v", err)
	}

	// Reinstall keeps the old settings; purge removes them with the logs.
	if err := n.mgr.Install(nil); err != nil {
		t.Fatal(err)
	}
	if ef, _ := service.ReadEnvFile(n.mgr.Opts.EnvFile); mustGet(ef, "NODENAME") != "win-1" {
		t.Error("reinstall lost the settings")
	}
	if err := n.mgr.Uninstall(true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{n.mgr.Opts.EnvFile, n.mgr.Opts.LogDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("purge left %s (stat: %v)", p, err)
		}
	}
}

func mustGet(ef *service.EnvFile, k string) string {
	v, _ := ef.Get(k)
	return v
}

// A body that fails makes the process exit; the SCM restarts it after each recovery delay, backing off,
// and errors reach the Event Log.
func TestServiceRestartsAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		var mu sync.Mutex
		fails := 3
		n.body = func(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
			mu.Lock()
			failNow := fails > 0
			fails--
			mu.Unlock()
			if failNow {
				return errors.New("datastore unreachable")
			}
			n.running <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		if err := n.mgr.Install([]service.EnvChange{{Key: "NODENAME", Value: "win-1"}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := n.mgr.Start(); err != nil {
			t.Fatal(err)
		}
		<-n.running
		// 5 s, 15 s, then 60 s: the recovery actions in order.
		if got, want := time.Since(start), 80*time.Second; got != want {
			t.Errorf("running again after %s, want %s (5s + 15s + 60s)", got, want)
		}
		if starts := n.scm.Starts(service.Name); starts != 4 {
			t.Errorf("starts = %d, want 4", starts)
		}
		if err := n.mgr.Stop(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ev := strings.Join(n.scm.EventLog(), "\n")
		for _, want := range []string{
			`tortie-node error: level=ERROR msg="service failed; exiting so the service manager restarts it" error="datastore unreachable" exit_code=1`,
			"scm: tortie-node terminated unexpectedly (failure 1); restarting in 5s",
			"scm: tortie-node terminated unexpectedly (failure 2); restarting in 15s",
			"scm: tortie-node terminated unexpectedly (failure 3); restarting in 1m0s",
		} {
			if !strings.Contains(ev, want) {
				t.Errorf("event log lacks %q:\n%s", want, ev)
			}
		}
		if strings.Count(ev, "terminated unexpectedly") != 3 {
			t.Errorf("a clean stop was counted as a failure:\n%s", ev)
		}
	})
}

// A broken environment file stops the service from starting, says why in the Event Log, and the SCM's
// recovery keeps retrying (so fixing the file is enough).
func TestServiceBadEnvFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		if err := n.mgr.Install(nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.mgr.Opts.EnvFile, []byte("NODENAME win-1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := n.mgr.Start()
		if err == nil {
			t.Fatal("Start with a broken environment file succeeded")
		}
		want := n.mgr.Opts.EnvFile + `:1: "NODENAME win-1" is not a setting`
		if !strings.Contains(strings.Join(n.scm.EventLog(), "\n"), want) {
			t.Errorf("event log lacks %q:\n%s", want, n.scm.EventLog())
		}
		if err := os.WriteFile(n.mgr.Opts.EnvFile, []byte("NODENAME=win-1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		<-n.running
		if got := n.state(); got != service.StateRunning {
			t.Errorf("state after the file was fixed = %s", got)
		}
		if err := n.mgr.Stop(); err != nil {
			t.Fatal(err)
		}
	})
}

type failingConfigurer struct{}

func (failingConfigurer) Configure(string, service.Recovery) error {
	return errors.New("access denied")
}

// A failure after registering the service removes it again: nothing is half installed.
func TestInstallRollsBack(t *testing.T) {
	n := newNode(t)
	n.mgr.Host.Configurer = failingConfigurer{}
	err := n.mgr.Install([]service.EnvChange{{Key: "NODENAME", Value: "win-1"}})
	if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "the service was removed again") {
		t.Fatalf("Install = %v", err)
	}
	if got := n.state(); got != service.StateNotInstalled {
		t.Errorf("state = %s, want not-installed", got)
	}
	if _, err := os.Stat(n.mgr.Opts.EnvFile); !os.IsNotExist(err) {
		t.Errorf("a failed install wrote the environment file (stat: %v)", err)
	}
}

func TestConfigure(t *testing.T) {
	n := newNode(t)
	if err := n.mgr.Configure(nil); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("Configure before install: %v", err)
	}
	// The MSI's path: ServiceInstall registers the service, then `service configure` sets the rest.
	s, err := n.scm.New(nil, n.mgr.Opts.KardianosConfig(n.mgr.Host.ProgramData))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(); err != nil {
		t.Fatal(err)
	}
	if err := n.mgr.Configure([]service.EnvChange{{Key: "DATASTORE_TYPE", Value: "kubernetes"}, {Key: "KUBECONFIG"}}); err != nil {
		t.Fatal(err)
	}
	if _, rec, _ := n.scm.Config(service.Name); rec == nil || len(rec.Actions) != 3 {
		t.Errorf("recovery after configure = %+v", rec)
	}
	ef, err := service.ReadEnvFile(n.mgr.Opts.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"DATASTORE_TYPE"}, ef.Keys()); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

func TestRunOutsideTheSCM(t *testing.T) {
	n := newNode(t)
	if err := n.mgr.Install(nil); err != nil {
		t.Fatal(err)
	}
	err := n.mgr.Run(n.body, service.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "not started by the service control manager") {
		t.Fatalf("Run outside the SCM: %v", err)
	}
}

var _ kservice.Interface = (*service.Program)(nil)
