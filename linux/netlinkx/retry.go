//go:build linux

package netlinkx

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// MaxDumpAttempts bounds [Dump]. An interrupted dump means the table changed
// mid-read; five back-to-back changes during a dump of a handful of entries is
// already a node in trouble, and the caller's own retry (the CNI runtime, the
// dataplane's resync) is the better place to wait.
const MaxDumpAttempts = 5

// Dump calls f until it returns an error other than
// netlink.ErrDumpInterrupted (or none), at most MaxDumpAttempts times, and
// returns that result. If every attempt was interrupted it returns the zero T
// and an error wrapping netlink.ErrDumpInterrupted: a partial dump is never
// passed on as if it were complete.
func Dump[T any](f func() (T, error)) (T, error) {
	var err error
	for range MaxDumpAttempts {
		var v T
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	var zero T
	return zero, fmt.Errorf("netlink dump still inconsistent after %d attempts (table changing under us): %w",
		MaxDumpAttempts, err)
}

// LinkList is h.LinkList through [Dump].
func LinkList(h *netlink.Handle) ([]netlink.Link, error) {
	return Dump(h.LinkList)
}

// AddrList is h.AddrList(link, family) through [Dump].
func AddrList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Addr, error) {
	return Dump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
}

// RouteListFiltered is h.RouteListFiltered(family, filter, mask) through [Dump].
func RouteListFiltered(h *netlink.Handle, family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	return Dump(func() ([]netlink.Route, error) { return h.RouteListFiltered(family, filter, mask) })
}
