//go:build linux

package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces are bind-mounted (as `ip netns add` does).
const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// createNetNS creates the named network namespace with lo up. The thread that creates it is locked and
// then discarded, so no other goroutine ever runs in the new namespace by accident.
func createNetNS(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("creating network namespace %s: %w", name, err)
			return
		}
		_ = h.Close()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	nsh, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer nsh.Close() //nolint:errcheck // read-only handle
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network namespace %s: netlink: %w", name, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("network namespace %s: lo up: %w", name, err)
	}
	return nil
}

// deleteNetNS unmounts and removes the named namespace; a missing one is no error.
func deleteNetNS(name string) error {
	p := netnsPath(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting network namespace %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing network namespace %s: %w", name, err)
	}
	return nil
}

// labNetNS lists the network namespaces whose names start with the lab prefix.
func labNetNS() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), NamePrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// inNetNS runs f on a locked OS thread inside the named namespace; processes f starts run there too.
func inNetNS(name string, f func() error) error {
	n, err := ns.GetNS(netnsPath(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer n.Close() //nolint:errcheck // read-only handle
	return n.Do(func(ns.NetNS) error { return f() })
}

// nsInode is the inode identifying a network namespace file (/run/netns/X or /proc/PID/ns/net).
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// run runs a command and returns its combined output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// startDetached starts a process in its own session (it survives the lab command), in the named
// network namespace ("" = this one), with stdout and stderr appended to logPath. extra, if not nil,
// is passed as fd 3. The child is reaped by a goroutine while this process lives.
func startDetached(netnsName, logPath string, env []string, extra *os.File, bin string, args ...string) (Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Proc{}, fmt.Errorf("log file for %s: %w", filepath.Base(bin), err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own copy
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	start := cmd.Start
	if netnsName != "" {
		start = func() error { return inNetNS(netnsName, cmd.Start) }
	}
	if err := start(); err != nil {
		return Proc{}, fmt.Errorf("starting %s: %w", filepath.Base(bin), err)
	}
	go func() { _ = cmd.Wait() }()
	st, err := procStartTime(cmd.Process.Pid)
	if err != nil {
		return Proc{}, fmt.Errorf("starting %s: %w", filepath.Base(bin), err)
	}
	return Proc{PID: cmd.Process.Pid, StartTime: st}, nil
}

// procStat returns /proc/PID/stat's state letter and start time.
func procStat(pid int) (state byte, start uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces; the fields follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

func procStartTime(pid int) (uint64, error) {
	_, st, err := procStat(pid)
	return st, err
}

// Alive reports whether the process still runs (not a zombie, not a reused pid).
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, st, err := procStat(p.PID)
	return err == nil && st == p.StartTime && state != 'Z' && state != 'X'
}

// kill sends SIGKILL to the process if it is still the one started, and waits until it is gone.
func (p Proc) kill() {
	if !p.Alive() {
		return
	}
	_ = unix.Kill(p.PID, unix.SIGKILL)
	waitGone([]int{p.PID})
}

// waitGone waits (up to 10 s) until the processes are gone or zombies.
func waitGone(pids []int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		left := slices.DeleteFunc(slices.Clone(pids), func(pid int) bool {
			state, _, err := procStat(pid)
			return err != nil || state == 'Z' || state == 'X'
		})
		if len(left) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// labProcesses lists the processes Down must end: those inside one of the lab's network namespaces,
// and those whose command line names the state directory (the datastore, agents whose namespace is
// already gone). It never lists this process or its ancestors.
func labProcesses(dir string, nsNames []string) []int {
	inodes := map[uint64]bool{}
	for _, n := range nsNames {
		if ino, err := nsInode(netnsPath(n)); err == nil {
			inodes[ino] = true
		}
	}
	spare := map[int]bool{}
	for pid := os.Getpid(); pid > 1; {
		spare[pid] = true
		ppid, err := parentPID(pid)
		if err != nil {
			break
		}
		pid = ppid
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(filepath.Clean(dir) + "/")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || spare[pid] {
			continue
		}
		if ino, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && inodes[ino] {
			out = append(out, pid)
			continue
		}
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, needle) {
			out = append(out, pid)
		}
	}
	return out
}

func parentPID(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("bad stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("bad stat")
	}
	return strconv.Atoi(f[1])
}

// forceKill sends SIGKILL without checking the start time (for processes found in a lab namespace).
func (p Proc) forceKill() {
	_ = unix.Kill(p.PID, unix.SIGKILL)
	waitGone([]int{p.PID})
}
