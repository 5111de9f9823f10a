//go:build linux

package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/tortie-net/tortie/common/datastore/embedded"
)

// ParsePort reads NAME=PORT/PROTO (serve-80-tcp=80/TCP); PROTO is TCP or UDP, any case.
func ParsePort(s string) (Port, error) {
	name, rest, ok := strings.Cut(s, "=")
	num, proto, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || name == "" {
		return Port{}, fmt.Errorf("--port %q: want NAME=PORT/PROTO, e.g. serve-80-tcp=80/TCP", s)
	}
	if errs := validPortName(name); errs != "" {
		return Port{}, fmt.Errorf("--port %q: port name %q %s", s, name, errs)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return Port{}, fmt.Errorf("--port %q: port %q is not a number from 1 to 65535", s, num)
	}
	p := strings.ToUpper(proto)
	if p != "TCP" && p != "UDP" {
		return Port{}, fmt.Errorf("--port %q: protocol %q: the lab serves TCP or UDP", s, proto)
	}
	return Port{Name: name, Port: uint16(n), Protocol: p}, nil
}

// validPortName checks a Kubernetes container port name (IANA_SVC_NAME: 1-15 lower-case letters,
// digits and dashes, at least one letter, no leading, trailing or double dash).
func validPortName(n string) string {
	if len(n) > 15 {
		return "is longer than 15 characters"
	}
	letter := false
	for _, c := range n {
		switch {
		case c >= 'a' && c <= 'z':
			letter = true
		case c >= '0' && c <= '9', c == '-':
		default:
			return "may hold only lower-case letters, digits and '-'"
		}
	}
	if !letter || strings.HasPrefix(n, "-") || strings.HasSuffix(n, "-") || strings.Contains(n, "--") {
		return "needs a letter and no leading, trailing or double '-'"
	}
	return ""
}

// DefaultPorts are the ports a pod serves when `pod add` names none (the policy model's ports).
var DefaultPorts = []Port{
	{Name: "serve-80-tcp", Port: 80, Protocol: "TCP"},
	{Name: "serve-80-udp", Port: 80, Protocol: "UDP"},
	{Name: "serve-81-tcp", Port: 81, Protocol: "TCP"},
	{Name: "serve-81-udp", Port: 81, Protocol: "UDP"},
}

// ServePod is the body of the hidden `tortie-lab serve-pod`: it listens on every port in the current
// network namespace, writes "ok\n" to ready once all listen (then closes it), and serves until ctx
// ends. A TCP connection is greeted with the pod's id and a newline, then every line is echoed (a
// long-lived connection can check it still works); a UDP datagram is answered with the id and a
// newline followed by the datagram.
func ServePod(ctx context.Context, id string, ports []Port, ready io.WriteCloser, log *slog.Logger) error {
	var closers []io.Closer
	var wg sync.WaitGroup
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
		wg.Wait()
	}()
	greeting := []byte(id + "\n")
	for _, p := range ports {
		addr := net.JoinHostPort("", strconv.Itoa(int(p.Port)))
		var lc net.ListenConfig
		switch p.Protocol {
		case "TCP":
			l, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("pod %s: listening on %d/TCP: %w", id, p.Port, err)
			}
			closers = append(closers, l)
			wg.Go(func() { serveTCP(l, greeting, log) })
		case "UDP":
			c, err := lc.ListenPacket(ctx, "udp", addr)
			if err != nil {
				return fmt.Errorf("pod %s: listening on %d/UDP: %w", id, p.Port, err)
			}
			closers = append(closers, c)
			wg.Go(func() { serveUDP(c, greeting) })
		default:
			return fmt.Errorf("pod %s: port %s: protocol %q is not TCP or UDP", id, p.Name, p.Protocol)
		}
	}
	if ready != nil {
		if _, err := ready.Write([]byte("ok\n")); err != nil {
			return fmt.Errorf("pod %s: reporting ready: %w", id, err)
		}
		_ = ready.Close()
	}
	log.Info("serving", "pod", id, "ports", fmt.Sprint(ports))
	<-ctx.Done()
	return nil
}

func serveTCP(l net.Listener, greeting []byte, log *slog.Logger) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("accept", "error", err.Error())
			}
			return
		}
		go func() {
			defer c.Close() //nolint:errcheck // the peer decides
			if _, err := c.Write(greeting); err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadBytes('\n')
				if len(line) > 0 {
					if _, werr := c.Write(line); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func serveUDP(c net.PacketConn, greeting []byte) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteTo(append(append([]byte(nil), greeting...), buf[:n]...), from)
	}
}

// ServeEtcd is the body of the hidden `tortie-lab serve-etcd`: an embedded etcd with its data in
// dataDir, clients on clientURL, until ctx ends or the server fails.
func ServeEtcd(ctx context.Context, dataDir, clientURL, peerURL string, ready io.WriteCloser, log *slog.Logger) error {
	em, err := embedded.StartEmbedded(ctx, embedded.EmbeddedConfig{DataDir: dataDir, ClientURL: clientURL, PeerURL: peerURL,
		Name: "tortie-lab", Logger: log, UnsafeNoFsync: true})
	if err != nil {
		return err
	}
	defer em.Close() //nolint:errcheck // stopping
	if ready != nil {
		if _, err := ready.Write([]byte("ok\n")); err != nil {
			return fmt.Errorf("embedded etcd: reporting ready: %w", err)
		}
		_ = ready.Close()
	}
	log.Info("embedded etcd serving", "endpoints", strings.Join(em.Endpoints(), ","), "data_dir", dataDir)
	select {
	case <-ctx.Done():
		return nil
	case err := <-em.Err():
		return fmt.Errorf("embedded etcd: %w", err)
	}
}
