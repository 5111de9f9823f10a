//go:build linux

// Package netlinkx holds the small pieces tortie layers over
// github.com/vishvananda/netlink.
//
// Today that is only [Dump], a bounded retry for netlink dump requests. The
// kernel sets NLM_F_DUMP_INTR on a multi-part dump (link, address, route
// lists) when the table changed while it was being read; netlink >= v1.2.1
// reports that as [netlink.ErrDumpInterrupted] alongside results that may be
// incomplete. Code that decides "X is missing" from a dump must not trust such
// a result, so it retries, and gives up with an error after a few attempts
// rather than looping forever on a busy node.
//
// Requests that are not dumps (LinkByName, LinkAdd, RouteAdd, ...) never
// return ErrDumpInterrupted and need no wrapper.
//
// Everything here is safe for concurrent use; the netlink handle passed in
// must not be shared between goroutines without external locking, as usual
// for netlink.Handle.
package netlinkx
