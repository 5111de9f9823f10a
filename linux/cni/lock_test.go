//go:build linux

package cni

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestIPAMLock: flock excludes a second holder (flock locks belong to the open file, so two
// opens in one process conflict as two processes would), a waiter gives up with its context, and
// the lock is free again once released.
func TestIPAMLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ipam.lock")
	l := IPAMLock{Path: path}
	unlock, err := l.Lock(t.Context())
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		u, err := l.Lock(ctx)
		if err == nil {
			u()
		}
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("second Lock while held = %v, want it to give up with context.Canceled", err)
	}

	unlock()
	unlock2, err := l.Lock(t.Context())
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}
