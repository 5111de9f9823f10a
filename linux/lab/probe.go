//go:build linux

package lab

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProbeOptions are `probe`'s flags.
type ProbeOptions struct {
	// Port is empty (every port each destination declares), a number, or a port name resolved against
	// each destination.
	Port string
	// Proto is TCP or UDP, for a numeric Port (default TCP).
	Proto string
	// Timeout bounds one probe (default 1 s).
	Timeout time.Duration
	// SourcePort, when not 0, is every probe's source port (SO_REUSEADDR, so probes in parallel share
	// it; a TCP probe closes with a reset, leaving no TIME_WAIT to block the next). 0: ephemeral ports.
	SourcePort uint16
	// Parallel bounds the probes in flight (default 512: a 9×9×4 matrix at once, so blocked probes cost
	// one timeout, not several).
	Parallel int
}

// Matrix is a probe's result: for each probe key ("TCP/80", or a port name), one row per source pod
// with one character per destination pod, in Pods order: '.' allowed, 'X' blocked, '-' not
// applicable (the destination does not serve it).
type Matrix struct {
	Pods    []string            `json:"pods"`
	Results map[string][]string `json:"results"`
	// AnsweredBy marks the pods whose cells are not decided purely by real packets: pods on Windows
	// nodes, AnsweredByFake (windowsprobe.go). Absent when every cell is.
	AnsweredBy map[string]string `json:"answeredBy,omitempty"`
}

// Text renders the matrices as text: a header per key, one line per source.
func (m *Matrix) Text() string {
	var b strings.Builder
	w := 0
	for _, p := range m.Pods {
		w = max(w, len(p))
	}
	for _, k := range m.Keys() {
		fmt.Fprintf(&b, "%s (rows from, columns to: %s)\n", k, strings.Join(m.Pods, " "))
		for i, row := range m.Results[k] {
			fmt.Fprintf(&b, "%-*s %s\n", w, m.Pods[i], row)
		}
	}
	b.WriteString(m.legend())
	return b.String()
}

// Keys lists the result keys: TCP ports, then UDP ports, by number; names last.
func (m *Matrix) Keys() []string {
	keys := make([]string, 0, len(m.Results))
	for k := range m.Results {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		pa, na, oka := splitKey(a)
		pb, nb, okb := splitKey(b)
		if oka != okb {
			if oka {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(na, nb), cmp.Compare(a, b))
	})
	return keys
}

func splitKey(k string) (string, int, bool) {
	proto, num, ok := strings.Cut(k, "/")
	n, err := strconv.Atoi(num)
	return proto, n, ok && err == nil
}

type target struct {
	port  uint16
	proto string
}

// Probe sends a probe from every pod to every pod, in parallel, and returns the matrices.
func (l *Lab) Probe(ctx context.Context, o ProbeOptions) (*Matrix, error) {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 512
	}
	proto := strings.ToUpper(cmp.Or(o.Proto, "TCP"))
	if proto != "TCP" && proto != "UDP" {
		return nil, fmt.Errorf("--proto=%q: the lab probes TCP or UDP", o.Proto)
	}
	pods := l.s.sortedPods()
	m := &Matrix{Results: map[string][]string{}}
	for _, p := range pods {
		m.Pods = append(m.Pods, p.ID())
	}
	// For each key, what each destination serves under it (nil: not applicable).
	plan := map[string][]*target{}
	add := func(key string, di int, t target) {
		if plan[key] == nil {
			plan[key] = make([]*target, len(pods))
		}
		plan[key][di] = &t
	}
	num, numErr := strconv.ParseUint(o.Port, 10, 16)
	switch {
	case o.Port == "":
		for di, d := range pods {
			for _, pt := range d.Ports {
				add(fmt.Sprintf("%s/%d", pt.Protocol, pt.Port), di, target{pt.Port, pt.Protocol})
			}
		}
	case numErr == nil && num > 0:
		key := fmt.Sprintf("%s/%d", proto, num)
		plan[key] = make([]*target, len(pods))
		for di, d := range pods {
			for _, pt := range d.Ports {
				if pt.Port == uint16(num) && pt.Protocol == proto {
					add(key, di, target{pt.Port, pt.Protocol})
				}
			}
		}
	default:
		if e := validPortName(o.Port); e != "" {
			return nil, fmt.Errorf("--port=%q: not a port number (1-65535) and not a port name: a name %s", o.Port, e)
		}
		plan[o.Port] = make([]*target, len(pods))
		for di, d := range pods {
			for _, pt := range d.Ports {
				if pt.Name == o.Port {
					add(o.Port, di, target{pt.Port, pt.Protocol})
				}
			}
		}
	}
	grid := map[string][][]byte{}
	for key, dsts := range plan {
		rows := make([][]byte, len(pods))
		for si := range pods {
			rows[si] = make([]byte, len(pods))
			for di := range pods {
				rows[si][di] = '-'
				if dsts[di] != nil {
					rows[si][di] = '?'
				}
			}
		}
		grid[key] = rows
	}
	wp, err := l.newWinProber(ctx) // windowsprobe.go: cells with a pod on a Windows node
	if err != nil {
		return nil, err
	}
	defer wp.close()
	m.AnsweredBy = wp.answeredBy(pods)
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for key, dsts := range plan {
		for si, s := range pods {
			for di, d := range pods {
				t := dsts[di]
				if t == nil {
					continue
				}
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					var ok bool
					if wp.handles(s, d) {
						ok = wp.probe(ctx, s, d, *t, o.Timeout) == nil
					} else {
						ok = probeOne(ctx, s.NetNS, d.IP, d.ID(), *t, o.Timeout, o.SourcePort) == nil
					}
					mu.Lock()
					grid[key][si][di] = map[bool]byte{true: '.', false: 'X'}[ok]
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	for key, rows := range grid {
		for _, r := range rows {
			m.Results[key] = append(m.Results[key], string(r))
		}
	}
	return m, ctx.Err()
}

// probeOne connects from inside the source pod's namespace; it succeeds only when the destination's
// server answers with the destination's id (so a packet that reached the wrong pod counts as blocked).
//
// A refusal (a TCP reset, an ICMP port unreachable for UDP) is final: the destination's server listens
// on every port it declares, so a refusal is policy rejecting the packet (Felix's
// IptablesFilterDenyAction: Reject), never an open port; it costs no timeout.
func probeOne(ctx context.Context, srcNS string, dst netip.Addr, dstID string, t target, timeout time.Duration, srcPort uint16) error {
	want := dstID + "\n"
	addr := netip.AddrPortFrom(dst, t.port).String()
	return inNetNS(srcNS, func() error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		deadline, _ := ctx.Deadline()
		d := probeDialer(t.proto, srcPort)
		switch t.proto {
		case "TCP":
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			if srcPort != 0 {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			defer c.Close() //nolint:errcheck // probe
			_ = c.SetDeadline(deadline)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return err
			}
			if line != want {
				return fmt.Errorf("%s answered %q, want %q", addr, line, want)
			}
			return nil
		default:
			c, err := d.DialContext(ctx, "udp", addr)
			if err != nil {
				return err
			}
			defer c.Close() //nolint:errcheck // probe
			buf := make([]byte, 512)
			for {
				if _, err := c.Write([]byte("probe")); err != nil && ctx.Err() != nil {
					return err
				}
				// Resend every 200 ms: the first datagram may race neighbour resolution.
				_ = c.SetReadDeadline(earliest(deadline, time.Now().Add(200*time.Millisecond)))
				n, err := c.Read(buf)
				if err == nil && strings.HasPrefix(string(buf[:n]), want) {
					return nil
				}
				if ctx.Err() != nil {
					return fmt.Errorf("no answer from %s within %s", addr, timeout)
				}
				if err == nil {
					return fmt.Errorf("%s answered %q, want %q", addr, buf[:n], want)
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					return fmt.Errorf("%s refused: %w", addr, err)
				}
				if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
					// Another ICMP error (host unreachable while neighbours resolve): wait out the
					// interval, as a dropped packet would.
					time.Sleep(time.Until(earliest(deadline, time.Now().Add(200*time.Millisecond))))
				}
			}
		}
	})
}

// WriteJSON and the text form are what `probe` prints.
func (m *Matrix) WriteJSON(w io.Writer) error {
	keys := m.Keys()
	var b strings.Builder
	b.WriteString("{\"pods\":[")
	for i, p := range m.Pods {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(p))
	}
	b.WriteString("],\"results\":{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k) + ":[")
		for j, r := range m.Results[k] {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(r))
		}
		b.WriteByte(']')
	}
	b.WriteString("}")
	b.WriteString(m.answeredByJSON())
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// probeDialer binds to srcPort (0: any) with SO_REUSEADDR, so that probes from one pod to several
// destinations in parallel can share a fixed source port (their 4-tuples differ).
func probeDialer(proto string, srcPort uint16) *net.Dialer {
	if srcPort == 0 {
		return &net.Dialer{}
	}
	var local net.Addr = &net.TCPAddr{Port: int(srcPort)}
	if proto == "UDP" {
		local = &net.UDPAddr{Port: int(srcPort)}
	}
	return &net.Dialer{LocalAddr: local, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
}
