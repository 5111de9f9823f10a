//go:build linux

package testenv

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

// sysProcAttr makes the kernel SIGKILL the child when the test binary dies,
// however it dies (-timeout panic, SIGKILL, crash), so services never leak.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// startCmd starts cmd on a locked OS thread: Pdeathsig fires when the
// *thread* that forked the child exits, and the Go runtime only ever ends a
// thread whose goroutine exits while locked to it, which this one does not.
func startCmd(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) (alive, ok bool) {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil, err == nil || os.IsNotExist(err)
}
