//go:build linux

// Package ipsets writes tortie's IP sets with `ipset restore`: a [Manager] holds the sets tortie wants
// (names start with config.IPSetPrefix and have at most 31 characters) and what it believes the
// kernel holds, and writes only the sets that differ.
//
// A set whose members changed a lot is rebuilt under a temporary name and swapped in (`swap`), so a
// rule matching it never sees it half-filled; a few changed members (a label change) are added and
// deleted in place, each atomic; a new set is created and filled in the same script. Sets are
// deleted only after the iptables rules that used them are gone ([Manager.ApplyDeletions], called by
// the dataplane after its iptables transactions), as the kernel refuses to destroy a set in use.
// Sets without tortie's prefix are never read or written.
package ipsets
