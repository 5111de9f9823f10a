// Package syncertest has Cache, a datastore.Callbacks for tests: it applies the syncer's stream to a
// map that can be compared with a fresh List (Diff), keeps the history of statuses, updates and batch
// sizes (Mark, UpdatesSince), and records every breach of the stream's rules (Problems): a New for a
// key already held, a Modified or Deleted for one not held, a Modified that changes nothing, a delete
// and re-add within one resync, a repeated status, an empty batch.
package syncertest
