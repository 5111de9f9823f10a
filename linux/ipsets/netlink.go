//go:build linux

package ipsets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/linux/iptables"
)

// memberEdit is one member added to or deleted from a set.
type memberEdit struct {
	set   string
	del   bool
	entry *netlink.IPSetEntry
	text  string
}

// entryOf parses a member as `ipset save` prints it (see [Set]) into a netlink entry for a set of
// type typ.
func entryOf(typ, member string) (*netlink.IPSetEntry, error) {
	addr, rest, _ := strings.Cut(member, ",")
	e := &netlink.IPSetEntry{Replace: true} // no NLM_F_EXCL: add of a present and del of an absent member succeed, as `ipset -exist`
	switch typ {
	case HashNet:
		if rest != "" {
			return nil, fmt.Errorf("member %q of a %s set has a port", member, typ)
		}
		var p netip.Prefix
		var err error
		if strings.Contains(addr, "/") {
			p, err = netip.ParsePrefix(addr)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(addr)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", member, err)
		}
		e.IP, e.CIDR = net.IP(p.Addr().AsSlice()), uint8(p.Bits())
	case HashIPPort:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", member, err)
		}
		protoName, portText, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("member %q of a %s set has no proto:port", member, typ)
		}
		var proto uint8
		switch protoName {
		case "tcp":
			proto = 6
		case "udp":
			proto = 17
		case "sctp":
			proto = 132
		default:
			return nil, fmt.Errorf("member %q: protocol %q is not tcp, udp or sctp", member, protoName)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("member %q: port: %w", member, err)
		}
		p16 := uint16(port)
		e.IP, e.Protocol, e.Port = net.IP(a.AsSlice()), &proto, &p16
	default:
		return nil, fmt.Errorf("set type %q", typ)
	}
	return e, nil
}

// editsOf returns the netlink edits of one set's small change, or an error when a member cannot be
// expressed (the caller then writes the change with `ipset restore`).
func editsOf(name, typ string, add, del []string) ([]memberEdit, error) {
	out := make([]memberEdit, 0, len(add)+len(del))
	for _, ms := range []struct {
		del     bool
		members []string
	}{{false, add}, {true, del}} {
		for _, mem := range ms.members {
			e, err := entryOf(typ, mem)
			if err != nil {
				return nil, err
			}
			out = append(out, memberEdit{set: name, del: ms.del, entry: e, text: mem})
		}
	}
	return out, nil
}

// runEdits applies edits over one netlink socket in the runner's namespace. It returns the names of
// the sets whose edits all succeeded and an error naming each set that failed (its kernel content is
// then unknown).
func runEdits(in iptables.InNamespace, edits []memberEdit) (ok map[string]bool, err error) {
	ok = map[string]bool{}
	failed := map[string]bool{}
	var errs []error
	runErr := in.InNamespace(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("opening a netlink socket: %w", err)
		}
		defer h.Close()
		for _, e := range edits {
			if failed[e.set] {
				continue
			}
			op, verb := h.IpsetAdd, "adding"
			if e.del {
				op, verb = h.IpsetDel, "deleting"
			}
			if err := op(e.set, e.entry); err != nil {
				failed[e.set] = true
				errs = append(errs, fmt.Errorf("IP set %s: %s member %s over netlink: %w", e.set, verb, e.text, err))
			}
		}
		return nil
	})
	if runErr != nil {
		return nil, runErr
	}
	for _, e := range edits {
		if !failed[e.set] {
			ok[e.set] = true
		}
	}
	return ok, errors.Join(errs...)
}
