//go:build linux

package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one command with stdin and returns its standard output. An error includes the command's
// standard error. Implementations must be safe for concurrent use.
type Runner interface {
	Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error)
}

// InNamespace is implemented by runners that can run a Go function in the network namespace their
// commands run in ([Exec]): probes with go-iptables and IP set edits over netlink run there.
type InNamespace interface {
	InNamespace(f func() error) error
}

// Exec runs commands with os/exec. Do, when set, wraps each run (tests pass a network namespace's Do,
// so the command starts inside that namespace: a child inherits its parent thread's namespaces).
type Exec struct {
	Do func(func() error) error
}

// InNamespace runs f where e's commands run: inside Do when it is set, else directly (the caller's
// network namespace). Netlink sockets opened by f belong to that namespace.
func (e Exec) InNamespace(f func() error) error {
	if e.Do != nil {
		return e.Do(f)
	}
	return f()
}

// Run implements Runner.
func (e Exec) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	var out, errb bytes.Buffer
	run := func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	}
	var err error
	if e.Do != nil {
		err = e.Do(run)
	} else {
		err = run()
	}
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			return out.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}
