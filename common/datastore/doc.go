// Package datastore is the seam between tortie and where its resources live (the Kubernetes API, etcd,
// an embedded etcd, memory).
//
// Two halves:
//
//   - Backend (datastore.go) stores resources: Get, List (with the revision it was read at), Create,
//     compare-and-swap Update and Delete on the revision, Watch from a revision, Ping, Close. Revisions
//     are opaque strings. Implementations: kube, etcd, memory; all pass the conformance suite in dstest.
//   - Syncer (the interface and the stream's types in stream.go; ListWatchSyncer, the implementation
//     over a Backend, in syncer.go) turns any Backend into the stream a consumer (the agent, a relay,
//     a controller) receives through Callbacks: a snapshot while
//     ResyncInProgress, then InSync, then deltas; after any failure a relist that sends only what
//     really changed. Its output is a plain list of (type, key, object, revision) updates and statuses,
//     so a relay can serialise it and fan it out unchanged.
//
// The stream's rules, which the syncertest.Cache checks in every test that uses it:
//
//   - Status starts at WaitForDatastore, goes to ResyncInProgress when the first list succeeds and to
//     InSync once every kind has listed and its snapshot has been delivered. A failed watch takes it
//     back to ResyncInProgress until that kind has relisted. A status is sent only when it changes, and
//     only after every update that precedes it.
//   - UpdateNew is sent only for a key the receiver does not hold; UpdateModified and UpdateDeleted
//     only for one it does. A relist never deletes and re-adds a key; an object deleted and re-created
//     between two lists arrives as one UpdateModified.
//   - An update that changes nothing but metadata.resourceVersion (or generation, managedFields) is
//     not sent, during a resync or not; the receiver's copy may then carry an older resourceVersion.
//     Code that writes back must Get first.
//   - Updates come in batches (DefaultBatchWindow, DefaultMaxBatch); several changes to one key within
//     a batch arrive as one update. Callbacks are never called concurrently.
//
// See docs/datastores.md for the storage layouts and the operational defaults.
package datastore
