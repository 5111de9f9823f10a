//go:build !windows

package main

import (
	"strings"
	"testing"
)

func TestServiceOffWindows(t *testing.T) {
	// Without the fake, the real host answers; off Windows it says so.
	code, _, stderr := runMain(t, nil, "service", "status")
	if code != exitError || !strings.Contains(stderr, "Windows service commands run on Windows only") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
