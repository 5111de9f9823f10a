//go:build linux

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/linux/cnitest"
)

// TestWindowsFakeHNSBuild: tortie-node as released (no tortie_fakehns tag) does not contain the fake
// HNS, on Windows or Linux, and uses the Windows dataplane on Windows; the tortie_fakehns build that
// tortie-lab's Windows nodes run does contain it (so the tag really selects hns_fakehns_linux.go).
func TestWindowsFakeHNSBuild(t *testing.T) {
	for _, tc := range []struct {
		goos, tags string
		wantFake   bool
	}{
		{goos: "windows"},
		{goos: "linux"},
		{goos: "linux", tags: "tortie_fakehns", wantFake: true},
	} {
		args := []string{"list", "-deps"}
		if tc.tags != "" {
			args = append(args, "-tags", tc.tags)
		}
		cmd := exec.CommandContext(t.Context(), "go", append(args, "./cmd/tortie-node")...)
		cmd.Dir = cnitest.ModuleRoot(t)
		cmd.Env = append(os.Environ(), "GOOS="+tc.goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list (GOOS=%s tags=%q): %v\n%s", tc.goos, tc.tags, err, out)
		}
		if got := strings.Contains(string(out), "tortie/windows/hcnfake\n"); got != tc.wantFake {
			t.Errorf("GOOS=%s tags=%q: cmd/tortie-node depends on windows/hcnfake: %t, want %t", tc.goos, tc.tags, got, tc.wantFake)
		}
		if !strings.Contains(string(out), "tortie/windows/dataplane\n") {
			t.Errorf("GOOS=%s tags=%q: cmd/tortie-node does not contain windows/dataplane", tc.goos, tc.tags)
		}
	}
}
