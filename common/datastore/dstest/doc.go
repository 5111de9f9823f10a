// Package dstest is the conformance suite every datastore.Backend passes, and the helpers its tests
// and the syncer's share.
//
//	func TestConformance(t *testing.T) {
//		dstest.Run(t, func(t *testing.T) datastore.Backend { return newIsolatedBackend(t) })
//	}
//
// Run covers CRUD on a cluster-scoped and two namespaced kinds, the sentinel errors and that they name
// the object, List order and namespace filtering, increasing revisions, that inputs are never modified
// and outputs never alias stored state, Watch from a List revision (exactly the later changes, in
// order, deletions with their key), Watch scope and Stop, compare-and-swap increments from 8 goroutines
// that lose nothing, and the Syncer over the backend: snapshot then deltas with the exact status
// sequence, and after forced watch restarts and an outage (Faulty) no spurious events and exactly the
// changes made meanwhile.
//
// Faulty wraps any Backend to inject those failures the same way for every backend; StartSyncer,
// WaitFor, WantMatchesList and WantNoProblems are the building blocks for backend-specific syncer
// tests.
package dstest
