//go:build linux

// Package ipsets writes tortie's IP sets with `ipset restore` and netlink: a [Manager] holds the sets
// tortie wants (names start with config.IPSetPrefix and have at most 31 characters) and what it
// believes the kernel holds, and writes only the sets that differ.
//
// A set whose members changed a lot is rebuilt under a temporary name and swapped in (`swap`), so a
// rule matching it never sees it half-filled; a new set is created and filled in the same script. A
// few changed members (a label change) are added and deleted in place, each atomic: over netlink when
// the runner implements iptables.InNamespace (no process is started), in the `ipset restore` script
// otherwise or when a netlink edit fails. [Manager.Update] and [Manager.Delta] change some sets and
// make the next ApplyUpdates compare only those, so a label change costs the same whatever the number
// of sets. Sets are deleted only after the iptables rules that used them are gone
// ([Manager.ApplyDeletions], called by the dataplane after its iptables transactions), as the kernel
// refuses to destroy a set in use. Sets without tortie's prefix are never read or written.
package ipsets
