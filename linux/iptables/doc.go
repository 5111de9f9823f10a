//go:build linux

// Package iptables writes tortie's iptables state: one [Table] per (table, IP family) holds the chains
// tortie owns (named with config.ChainPrefix) and the hook rules it keeps at the top of the kernel's
// built-in chains, and programs the difference between that desired state and the kernel's with one
// `iptables-restore --noflush` transaction per table.
//
// How it stays out of other software's way:
//
//   - Every rule tortie writes carries a comment "tortie:<hash>", where the hash chains the chain's
//     name, the previous rule's hash and the rule's text (Felix's scheme), so one iptables-save tells
//     which rules are tortie's, whether they are current and in the right place.
//   - Owned chains are rewritten whole when any rule differs (":chain" flushes it in --noflush mode);
//     unchanged chains are not touched, so the text written is proportional to what changed.
//   - In built-in chains only rules with tortie's comment are deleted or inserted; the rules of others
//     are never flushed, reordered or edited. tortie's hook rules are inserted at the top and moved back
//     there (deleted and re-inserted) when something was inserted above them.
//   - A transaction is all or nothing: on an error the kernel keeps the previous rules, the error names
//     the failing line, and the next Apply re-reads the kernel before writing.
//
// The backend (iptables-legacy or iptables-nft) is chosen by [DetectBackend] as Calico does: whichever
// holds Kubernetes' marker chains, else whichever holds more rules (legacy on a tie);
// FELIX_IPTABLESBACKEND forces one. The probes use github.com/coreos/go-iptables (version, chain
// listing) when the runner implements [InNamespace]; writes are always iptables-restore. The xtables
// lock is honoured with `-w`.
//
// Commands run through a [Runner]; [Exec] runs them, optionally inside a network namespace (tests).
package iptables
