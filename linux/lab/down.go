//go:build linux

package lab

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Down removes the lab in dir and whatever a crashed lab left: every process in a lab namespace or
// naming the state directory, every tlab* network namespace and root-namespace link, the root
// namespace's tortie-lab iptables rules, and the state directory. It succeeds when there is nothing
// to remove, and reports what it could not remove.
func Down(dir string, out io.Writer) error {
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	return down(dir, out)
}

func down(dir string, out io.Writer) error {
	var errs []error
	names, err := labNetNS()
	if err != nil {
		errs = append(errs, fmt.Errorf("listing network namespaces: %w", err))
	}
	// Processes first: a namespace with a process in it outlives its unmount.
	if s, err := loadState(dir); err == nil {
		for _, p := range s.Pods {
			p.Server.kill()
		}
		for _, n := range s.Nodes {
			n.Agent.kill()
		}
		s.APIServer.kill()
		s.Etcd.kill()
	}
	if pids := labProcesses(dir, names); len(pids) > 0 {
		printf(out, "stopping %d processes\n", len(pids))
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		waitGone(pids)
	}
	links, err := labLinks()
	if err != nil {
		errs = append(errs, fmt.Errorf("listing links: %w", err))
	}
	for _, l := range links {
		link, err := netlink.LinkByName(l)
		if err != nil {
			continue // a veth goes with its peer
		}
		if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("deleting link %s: %w", l, err))
		}
	}
	if len(links) > 0 {
		printf(out, "deleted links %s\n", strings.Join(links, " "))
	}
	for _, n := range names {
		if err := deleteNetNS(n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(names) > 0 {
		printf(out, "deleted network namespaces %s\n", strings.Join(names, " "))
	}
	if n, err := deleteRules(); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		printf(out, "deleted %d iptables rule(s) commented %q\n", n, RuleComment)
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing the state directory: %w", err))
	}
	if left := leftovers(dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still present after down: %s", strings.Join(left, ", ")))
	}
	if pids := labProcesses(dir, nil); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes still running after down: %v", pids))
	}
	return errors.Join(errs...)
}

// deleteRules removes the root namespace's iptables rules commented tortie-lab (FORWARD, filter).
func deleteRules() (int, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return 0, nil
	}
	out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return 0, fmt.Errorf("listing iptables FORWARD rules: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A FORWARD ") || !strings.Contains(line, RuleComment) {
			continue
		}
		args := append([]string{"-w", "-D"}, strings.Fields(strings.TrimPrefix(line, "-A "))...)
		for i, a := range args {
			args[i] = strings.Trim(a, `"`)
		}
		if err := run("iptables", args...); err != nil {
			return n, fmt.Errorf("deleting iptables rule %q: %w", line, err)
		}
		n++
	}
	return n, nil
}
