//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	cnicore "github.com/tortie-net/tortie/common/cni"
)

// IPAMLock is Calico's host-wide IPAM lock ([cnicore.Locker]): flock(2) on a
// file, so that a crashed holder releases it with its process and the kernel
// needs no clean-up. Path is created (with its directory) on first use; a
// Calico plugin on the same host takes the same lock when both use Calico's
// path (common/config.IPAMLockFile).
type IPAMLock struct{ Path string }

var _ cnicore.Locker = IPAMLock{}

// Lock waits, polling with backoff from 0.5 ms to 20 ms, until the lock is
// held or ctx is done. flock has no timeout of its own; polling keeps the
// wait bounded by ctx without a thread blocked in the kernel.
func (l IPAMLock) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", l.Path, err)
	}
	f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", l.Path, err)
	}
	fd := int(f.Fd())
	delay := 500 * time.Microsecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(fd, unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", l.Path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("lock %s still held by another process: %w", l.Path, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}
