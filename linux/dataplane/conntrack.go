//go:build linux

package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
)

// flow is one conntrack entry's original direction.
type flow struct {
	proto              uint8
	src, dst           netip.Addr
	sport, dport       uint16
	icmpType, icmpCode uint8
	line               string
}

// policyChanged reports whether anything that decides verdicts differs between two states.
func policyChanged(a, b *dpmodel.State) bool {
	return !reflect.DeepEqual(a.Policies, b.Policies) || !reflect.DeepEqual(a.Profiles, b.Profiles) ||
		!reflect.DeepEqual(a.Workloads, b.Workloads) || !reflect.DeepEqual(a.HostEndpoints, b.HostEndpoints) ||
		!reflect.DeepEqual(a.IPSets, b.IPSets)
}

// deleteDeniedFlows removes the conntrack entries of flows that next denies and prev allowed, at a
// local workload: without it an established connection a new policy forbids would live on through
// the conntrack fast path (RELATED,ESTABLISHED accepted before policy). Verdicts come from dpeval, the
// reference interpreter of the same desired state the rules were rendered from. A flow whose next
// packet then arrives is new to conntrack and meets the new policy.
func (d *Dataplane) deleteDeniedFlows(ctx context.Context, prev, next *dpmodel.State) error {
	if !policyChanged(prev, next) {
		return nil
	}
	var errs []error
	for _, fam := range []string{"ipv4", "ipv6"} {
		out, err := d.opts.Runner.Run(ctx, "conntrack", []string{"-L", "-f", fam}, nil)
		if err != nil {
			return fmt.Errorf("listing conntrack entries: %w", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			f, ok := parseFlow(sc.Text())
			if !ok || !deniedNow(prev, next, f) {
				continue
			}
			args := []string{"-D", "-s", f.src.String(), "-d", f.dst.String(), "-p", strconv.Itoa(int(f.proto))}
			switch f.proto {
			case 6, 17, 132:
				args = append(args, "--sport", strconv.Itoa(int(f.sport)), "--dport", strconv.Itoa(int(f.dport)))
			}
			if _, err := d.opts.Runner.Run(ctx, "conntrack", args, nil); err != nil && !strings.Contains(err.Error(), "0 flow entries") {
				errs = append(errs, fmt.Errorf("deleting the conntrack entry %q: %w", f.line, err))
				continue
			}
			d.log.Debug("conntrack entry of a newly denied flow deleted", "flow", f.line)
		}
	}
	return errors.Join(errs...)
}

func deniedNow(prev, next *dpmodel.State, f flow) bool {
	p := dpeval.Packet{Src: f.src, Dst: f.dst, Protocol: f.proto, SrcPort: f.sport, DstPort: f.dport, ICMPType: f.icmpType, ICMPCode: f.icmpCode}
	allowed := func(s *dpmodel.State) bool {
		eg, _ := dpeval.Side(s, dpeval.Egress, p)
		in, _ := dpeval.Side(s, dpeval.Ingress, p)
		return eg.Verdict == dpmodel.Allow && in.Verdict == dpmodel.Allow
	}
	return !allowed(next) && allowed(prev)
}

// parseFlow reads `conntrack -L` output: "tcp 6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=…".
// Only the first (original direction) tuple is read.
func parseFlow(line string) (flow, bool) {
	f := flow{line: line}
	fields := strings.Fields(line)
	if len(fields) < 3 {
		return f, false
	}
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		return f, false
	}
	f.proto = uint8(n)
	seen := map[string]bool{}
	for _, kv := range fields[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "src":
			f.src, err = netip.ParseAddr(v)
		case "dst":
			f.dst, err = netip.ParseAddr(v)
		case "sport", "dport", "type", "code":
			var x int
			x, err = strconv.Atoi(v)
			switch k {
			case "sport":
				f.sport = uint16(x)
			case "dport":
				f.dport = uint16(x)
			case "type":
				f.icmpType = uint8(x)
			case "code":
				f.icmpCode = uint8(x)
			}
		}
		if err != nil {
			return f, false
		}
	}
	return f, f.src.IsValid() && f.dst.IsValid()
}
