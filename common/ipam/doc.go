// Package ipam is tortie's IP address management: Calico's block allocator over a
// datastore.Backend, using nothing but the Backend's compare-and-swap writes. It is platform-neutral:
// the CNI plugin uses it on Linux and Windows, node startup for tunnel addresses, the garbage collector
// and tortiectl for checks and repairs. docs/ipam.md describes the behaviour for operators; this
// comment is the contract for callers.
//
// # Model
//
// An IPPool is cut into blocks of its blockSize (default /26 and /122). A block is one IPAMBlock object
// holding, per address ("ordinal"), the index of its attribute (handle and metadata) or null, the FIFO of
// free ordinals, and sequence numbers. A node owns a block through the block's affinity
// ("host:<node>"), recorded also as a BlockAffinity object (pending → confirmed → pendingDeletion). Every
// allocation belongs to a handle ("<network>.<containerID>" for pods); an IPAMHandle counts the handle's
// addresses per block, so that releasing a handle does not scan blocks.
//
// # Guarantees
//
//   - No address is handed out twice and no two nodes own one block, whatever the concurrency: each
//     allocation is a compare-and-swap of its block, and a block comes into existence only through
//     Create, which exactly one claimant wins.
//   - Every write is a compare-and-swap, retried on conflict (WithRetries, default 100) after a short
//     random pause that grows with the attempt (WithMaxBackoff). Every operation is bounded in time: by
//     the caller's context deadline, or by WithTimeout (default 90s) when there is none.
//   - A crash between any two writes leaves a state that the next operation or Check repairs; nothing
//     is ever allocated without its handle knowing it. The orders: allocation writes the handle, then
//     the block; release writes the block, then the handle; a claim creates the pending affinity, then
//     the block, then confirms the affinity; an affinity release marks it pendingDeletion, deletes or
//     disowns the block, then deletes the affinity.
//   - AutoAssign never hands out an address in an IPReservation (AssignIP may: asking for a reserved
//     address by name is what reservations are for).
//
// # Concurrency and state
//
// A Client holds no allocation state; any number of Clients in any number of processes may share a
// datastore. Its only memory is a per-host hint of the block it last allocated from (read first on the
// next request, which saves a round trip for long-lived Clients). Requests for one handle must not run
// concurrently (the CNI runtime serialises ADD and DEL per container).
//
// # Errors
//
// Errors say what was being done, to which object and for which node, and wrap the sentinels in
// errors.go (ErrNoQualifiedPool, ErrBlockLimit, ErrAlreadyAllocated, ErrBadSequenceNumber, ...) and
// the datastore's; test with errors.Is. AutoAssign returns what it allocated together with any error;
// the caller releases it by handle.
package ipam
