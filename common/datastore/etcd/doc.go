// Package etcd is the etcd v3 datastore.Backend (go.etcd.io/etcd/client/v3). It reads and writes
// Calico's etcd layout, so a datastore written by calicoctl and Calico reads unchanged:
//
//	/calico/resources/v3/projectcalico.org/<plural>/<name>              cluster-scoped kinds
//	/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>  namespaced kinds
//
// e.g. /calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool and
// /calico/resources/v3/projectcalico.org/workloadendpoints/kube-system/node1-k8s-coredns--abc-eth0.
// Config.Prefix, when set, goes before all of it (tests, several clusters in one etcd).
//
// The value is the object's JSON in the projectcalico.org/v3 form (apiVersion, kind, metadata, spec)
// without metadata.resourceVersion; the revision of an object is its key's ModRevision, as a decimal
// string, and the revision of a List is the header revision its pages were all read at.
//
// Writes are transactions: Create succeeds only if the key's CreateRevision is 0, a conditional Update
// or Delete only if its ModRevision equals the given revision (datastore.ErrConflict otherwise). Watch
// is an etcd watch on the prefix from revision+1 with previous values (so Deleted events carry the last
// state); the client resumes it across reconnects and etcd restarts by itself, and reports a revision
// lost to compaction as an Error event wrapping datastore.ErrCompacted, on which the syncer relists.
// A value that does not decode is left out of lists and reported by watches as a deletion of its key.
//
// Every request is bounded by Config.RequestTimeout; errors wrap the datastore sentinels and name the
// object ("getting IPPool \"x\" from etcd: resource does not exist"). New does not wait for etcd: an
// agent may start before its datastore. The embedded server for single-machine use lives in package
// embedded, so that binaries which only talk to etcd do not link the server.
package etcd
