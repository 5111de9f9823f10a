//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/tortie-net/tortie/linux/lab"
)

// TestNATOutgoing: the lab's pool has natOutgoing (Calico's default for the default pool), so a pod's
// connection to an address outside every pool — the underlay bridge's address in the root namespace,
// which has no route back to pods — leaves masqueraded to its node's address, while a connection
// between pods on different nodes keeps the pod's own source address.
func TestNATOutgoing(t *testing.T) {
	l := newLab(t, "--nodes", "2", "--encap", "vxlan")
	if dp := l.dataplane(); dp != "linux" {
		t.Skipf("needs the Linux dataplane; tortie-node runs --dataplane %s", dp)
	}
	l.must("", "ns", "add", "x")
	l.must("", "pod", "add", "x/a", "--node", "1")
	l.must("", "pod", "add", "x/b", "--node", "2")
	l.must("", "sync")

	var s lab.State
	if err := json.Unmarshal(l.state(), &s); err != nil {
		t.Fatal(err)
	}
	a, b := s.Pods["x/a"], s.Pods["x/b"]
	node1 := s.Nodes[0].IP.Addr()
	outside := s.Underlay.Addr().Next() // the bridge's address, in the root namespace

	// Outside: a listener in the root namespace reports the source address it sees.
	seen := listenOnce(t, nil, netip.AddrPortFrom(outside, 0))
	if got := dialFrom(t, a.NetNS, seen.addr); got != "ok" {
		t.Fatalf("x/a → %s: %s", seen.addr, got)
	}
	if src := <-seen.src; src != node1 {
		t.Errorf("x/a → outside %s arrived from %s, want its node's address %s (masquerade)", outside, src, node1)
	}

	// Pod to pod across nodes: no NAT.
	podNS := nsHandle(t, b.NetNS)
	seenB := listenOnce(t, podNS, netip.AddrPortFrom(b.IP, 0))
	if got := dialFrom(t, a.NetNS, seenB.addr); got != "ok" {
		t.Fatalf("x/a → x/b %s: %s", seenB.addr, got)
	}
	if src := <-seenB.src; src != a.IP {
		t.Errorf("x/a → x/b arrived from %s, want x/a's own address %s (pod-to-pod is never NATed)", src, a.IP)
	}
}

type listener struct {
	addr netip.AddrPort
	src  chan netip.Addr
}

// listenOnce listens on addr (port 0: any) in netns (nil: this one), accepts one connection, records its
// source address and answers "ok".
func listenOnce(t *testing.T, netns ns.NetNS, addr netip.AddrPort) listener {
	t.Helper()
	var ln net.Listener
	listen := func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	}
	var err error
	if netns == nil {
		err = listen(nil)
	} else {
		err = netns.Do(listen)
	}
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	out := listener{addr: ln.Addr().(*net.TCPAddr).AddrPort(), src: make(chan netip.Addr, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(out.src)
			return
		}
		defer c.Close()
		out.src <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		_, _ = c.Write([]byte("ok\n"))
	}()
	return out
}

func nsHandle(t *testing.T, name string) ns.NetNS {
	t.Helper()
	h, err := ns.GetNS(filepath.Join("/run/netns", name))
	if err != nil {
		t.Fatalf("opening network namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// dialFrom connects from the named network namespace to addr and returns the first line it reads, or
// the error.
func dialFrom(t *testing.T, netnsName string, addr netip.AddrPort) string {
	t.Helper()
	var line string
	err := nsHandle(t, netnsName).Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(line)
}
