//go:build linux

// Package netlinkx is the small netlink interface tortie's Linux dataplanes
// use, [Handle] (links including veth and vxlan, addresses, routes with their
// protocol, permanent neighbours and vxlan FDB entries; sysctls are not
// netlink and live elsewhere), with two implementations:
//
//   - [Kernel] ([Open]) over github.com/vishvananda/netlink, bound to one
//     network namespace;
//   - [World] / [Fake], a stateful fake that models the kernel's semantics
//     (see [World]), so that dataplane logic can be unit-tested without root.
//
// TestFakeConformance runs one table of operations against the kernel in
// throwaway namespaces and against the fake and requires the same errors and
// the same state after every step: a semantic the fake gets wrong fails there,
// not in a dataplane test that trusted it.
//
// Also here is [Dump], a bounded retry for netlink dump requests. The
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
// [Dump] is safe for concurrent use; a [Kernel] handle, like netlink.Handle,
// must not be shared between goroutines without external locking. A [World]
// is safe for concurrent use.
package netlinkx
