//go:build !linux

package testenv

import (
	"os/exec"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// processAlive cannot tell portably; stale directories are then kept.
func processAlive(pid int) (alive, ok bool) { return false, false }
