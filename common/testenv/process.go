package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout bounds how long Stop waits after SIGTERM before killing.
const stopTimeout = 15 * time.Second

// Process is a service run as a child process of the test binary. It can be
// stopped and started again any number of times with the same arguments, so
// the same data directory and ports. Its methods are safe for concurrent use.
type Process struct {
	name      string   // for messages: "etcd", "kube-apiserver"
	path      string   // binary
	args      []string // fixed for the life of the Process
	logPath   string   // stdout and stderr of every run, appended
	endpoints []string
	// ready returns nil once the service answers. It is polled until it
	// does, the process exits, or readyTimeout passes.
	ready        func(ctx context.Context) error
	readyTimeout time.Duration

	mu  sync.Mutex
	run *run // the current or last run; nil before the first Start
}

// run is one execution of a Process.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result, valid once done is closed
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Endpoints returns the URLs clients use to reach the service. They stay the
// same across Stop and Start.
func (p *Process) Endpoints() []string { return append([]string(nil), p.endpoints...) }

// LogPath returns the file that collects the process's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// Running reports whether the process has been started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() bool {
	return p.run != nil && !p.run.exited()
}

// Start starts the process if it is not running and waits until it is ready.
// It is a no-op for a running process.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return nil
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	_, _ = fmt.Fprintf(logf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := startCmd(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s (%s): %w", p.name, p.path, err)
	}
	logf.Close() // the child holds its own copy
	r := &run{cmd: cmd, done: make(chan struct{})}
	p.run = r
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()

	if err := p.waitReady(r); err != nil {
		return errors.Join(err, p.stopLocked(false))
	}
	return nil
}

// WaitReady waits until the running process answers its readiness check
// (bounded like Start), e.g. after a dependency it needs was restarted.
func (p *Process) WaitReady() error {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	if r == nil || r.exited() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.waitReady(r)
}

// waitReady polls p.ready until it succeeds, the process exits, or the
// timeout passes. It reads only fields fixed at construction, so callers may
// hold p.mu or not.
func (p *Process) waitReady(r *run) error {
	timeout := p.readyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		// Poll only after a pause, and trust a success only while the
		// process still runs: a process that failed to bind its port
		// must not pass for ready because another one answers there.
		select {
		case <-r.done:
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
			attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
			last = p.ready(attempt)
			cancelAttempt()
			if last == nil && !r.exited() {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("%s exited before becoming ready (%w); log %s:\n%s",
				p.name, r.err, p.logPath, p.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; log %s:\n%s",
				p.name, timeout, last, p.logPath, p.LogTail(40))
		default:
		}
	}
}

// Stop stops the process gracefully (SIGTERM, then SIGKILL after 15 s; on
// Windows it kills at once) and waits for it to exit. It is a no-op for a
// process that is not running.
func (p *Process) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked(true)
}

// Kill kills the process without warning, as a crash would, and waits for
// it to exit. It is a no-op for a process that is not running.
func (p *Process) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked(false)
}

func (p *Process) stopLocked(graceful bool) error {
	r := p.run
	if r == nil || r.exited() {
		return nil
	}
	// Signal fails on Windows, which has no SIGTERM: kill instead.
	if !graceful || r.cmd.Process.Signal(syscall.SIGTERM) != nil {
		_ = r.cmd.Process.Kill()
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, r.cmd.Process.Pid)
	}
}

// LogTail returns about the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	const maxBytes = 16 << 10
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// lookBinary finds a service binary: the path in env if set (it must
// exist), otherwise name on PATH. ok is false with a reason when absent.
func lookBinary(env, name string) (path, reason string, ok bool) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("%s=%s: %v", env, p, err), false
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Sprintf("%s=%s: %v", env, p, err), false
		}
		return abs, "", true
	}
	if name == "" {
		return "", fmt.Sprintf("%s is not set", env), false
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Sprintf("%s not found (set %s or install it: ci/deps.sh)", name, env), false
	}
	return p, "", true
}
