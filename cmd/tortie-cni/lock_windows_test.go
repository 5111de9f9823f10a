//go:build windows

package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileLock: the Windows IPAM lock excludes a second holder until released, and a waiter gives up
// when its context ends. (Runs under wine.)
func TestFileLock(t *testing.T) {
	dir, err := os.MkdirTemp("", "tortie-lock-") // not t.TempDir: wine cannot remove it (RemoveAll)
	if err != nil {
		t.Fatal(err)
	}
	l := fileLock{path: filepath.Join(dir, "sub", "ipam.lock")}
	unlock, err := l.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx); err == nil {
		t.Fatal("a second Lock succeeded while the first is held")
	}
	unlock()
	unlock2, err := l.Lock(t.Context())
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
