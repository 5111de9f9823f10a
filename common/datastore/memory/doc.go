// Package memory is an in-memory datastore.Backend: for tests, local development and dry runs.
//
// It behaves like etcd where the seam lets one see it: one revision counter for all writes (a decimal
// string, starting at 1), a List revision from which a Watch continues without a gap, and a history of
// the last DefaultHistory changes (WithHistory) so a watch can start in the past. A watch that needs a
// change no longer kept, because the history rolled over or Compact discarded it, ends with an Error
// event wrapping datastore.ErrCompacted, as etcd's does. Compact is the hook tests use to force a
// syncer's resync.
//
// Objects are deep-copied on the way in and out; a slow watcher never blocks writers (each watch reads
// the history at its own pace). All methods are safe for concurrent use.
package memory
