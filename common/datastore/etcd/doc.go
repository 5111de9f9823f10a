// Package etcd is the etcd v3 datastore.Backend (go.etcd.io/etcd/client/v3). It reads and writes
// Calico's etcd layout, so a datastore written by calicoctl and Calico reads unchanged:
//
//	/calico/resources/v3/projectcalico.org/<plural>/<name>              cluster-scoped kinds
//	/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>  namespaced kinds
//
// e.g. /calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool and
// /calico/resources/v3/projectcalico.org/workloadendpoints/kube-system/node1-k8s-coredns--abc-eth0.
//
// The IPAM kinds are stored where and how Calico's IPAM keeps them, so that calico-ipam, calicoctl ipam
// and tortie share one set of allocations (ipam.go; docs/compatibility.md):
//
//	/calico/ipam/v2/assignment/ipv4/block/10.48.166.128-26   IPAMBlock      (libcalico-go model.AllocationBlock)
//	/calico/ipam/v2/host/<node>/ipv4/block/10.48.166.128-26  BlockAffinity  (model.BlockAffinity: state, deleted)
//	/calico/ipam/v2/handle/<handle ID>                       IPAMHandle     (model.IPAMHandle: block, deleted)
//	/calico/ipam/v2/config                                   IPAMConfig     (model.IPAMConfig)
//
// Their keys hold contents, not names: the object names are derived from the contents as Calico names
// the same objects in the Kubernetes datastore (package api), and a name is turned back into its key, or
// into the few keys it may be when it has several readings. Their values carry no metadata.
//
// Config.Prefix, when set, goes before all of it (tests, several clusters in one etcd).
//
// The value of a v3 resource is the object's JSON in the projectcalico.org/v3 form (apiVersion, kind, metadata, spec)
// without metadata.resourceVersion; the revision of an object is its key's ModRevision, as a decimal
// string, and the revision of a List is the header revision its pages were all read at.
//
// Writes are transactions: Create succeeds only if the key's CreateRevision is 0, a conditional Update
// or Delete only if its ModRevision equals the given revision (datastore.ErrConflict otherwise). An
// Update reads the stored v3 value first and keeps the fields tortie's type cannot hold (a newer
// Calico's) in the value it writes, within the same compare-and-swap (unknown.go). Watch
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
