// Package kube is the Kubernetes datastore: a datastore.Backend over the Kubernetes API (client-go's
// dynamic client), compatible with what Calico stores in "KDD" mode. docs/datastores.md has the
// tables; this comment says why it is built the way it is.
//
// # Custom resources
//
// Every kind except Node, WorkloadEndpoint and Profile is a crd.projectcalico.org/v1 custom resource
// of the same kind name and the registry's plural (ippools.crd.projectcalico.org, …), cluster-scoped or
// namespaced as the kind registry says. EnsureCRDs installs the definitions from
// installer/kubernetes/crds. The spec (and status) is the projectcalico.org/v3 spec, copied through
// JSON unchanged.
//
// Metadata: labels and annotations are stored directly on the custom resource — the simplest choice,
// which also lets kubectl select by label, and the same layout current Calico releases write. uid and
// creationTimestamp are the custom resource's own (the API server assigns them). Owner references are
// not put on the custom resource, where Kubernetes' garbage collector would act on them; like Calico,
// they go into the projectcalico.org/metadata annotation. Reading a Calico-written custom resource
// decodes that annotation: its labels and annotations are merged under the custom resource's own
// (older Calico releases kept them only there), owner references are restored, and the annotation
// itself is never shown. generation and managedFields are dropped: they are Kubernetes bookkeeping.
//
// Revisions are resourceVersions. Update with a resourceVersion is a compare-and-swap done by the API
// server (409 Conflict → datastore.ErrConflict); without one it reads the current resourceVersion and
// retries on conflict, since custom resources cannot be updated unconditionally. Kubernetes has no
// compare-and-delete, but DELETE takes preconditions: Delete reads the object and deletes it with its
// resourceVersion and UID as preconditions, so the object returned is exactly the one deleted.
//
// # Synthesised kinds
//
// Node is the Kubernetes Node of the same name. Get, List and Watch read core Nodes; labels are the
// Node's labels; the tortie fields (BGP addresses and AS number, tunnel addresses and MACs, WireGuard
// addresses and keys, interfaces) live in projectcalico.org/* annotations (api.NodeAnnotation*), and
// orchRefs, addresses and podCIDRs come from the Node itself. Update merge-patches only those
// annotations (with the resourceVersion as precondition when given); it never changes the Node's labels
// or spec. Create and Delete fail with datastore.ErrUnsupported: the kubelet owns a Node's life.
//
// WorkloadEndpoint is a scheduled, non-host-network pod, named <node>-k8s-<pod>-eth0
// (api.WorkloadEndpointName). Its addresses are, first found: status.podIPs, status.podIP, then the
// CNI's cni.projectcalico.org/podIPs and podIP annotations — Calico's order: the kubelet's view wins
// once it has one, and the annotations cover the moments between CNI ADD and the kubelet's status
// update. A finished pod (Succeeded/Failed) has none, and neither has a pod whose podIP annotation the
// CNI has cleared (on DEL the addresses go back to IPAM even though the status may still list them;
// Calico applies this rule only to terminating pods). Create and Update write the podIP, podIPs and
// containerID annotations with a JSON merge patch of the pod's status subresource, as Calico's CNI does
// (so the CNI needs only "patch pods/status"), with the resourceVersion as precondition when given.
// Delete sets them to "": the pod has lost its addresses, and stays listed, without addresses, until it
// is deleted. Creating an endpoint for a pod that does not exist fails with an error wrapping both
// datastore.ErrNotFound and datastore.ErrUnsupported.
//
// Profile is read-only: kns.<ns> for each Namespace (labels as pcns.<key>, plus
// pcns.projectcalico.org/name, rules allowing everything), ksa.<ns>.<sa> for each ServiceAccount (labels
// as pcsa.<key>, plus pcsa.projectcalico.org/name, no rules), and the fixed
// projectcalico-default-allow profile.
//
// NetworkPolicy merges the networkpolicies.crd.projectcalico.org custom resources with Kubernetes
// networking.k8s.io/v1 NetworkPolicies, which appear as knp.default.<name> in the default tier
// (api.ConvertK8sNetworkPolicy) and are read-only.
//
// # Watches and revisions
//
// A kind read from several Kubernetes resources (NetworkPolicy: custom resources and Kubernetes
// policies; Profile: Namespaces and ServiceAccounts) is watched by multiplexing one Kubernetes watch
// per resource. Its List revision and event revisions are composite, "crd:<rv>;knp:<rv>", so that a
// Watch resumes each resource where it was (two separate lists have no common resourceVersion). Watch
// also accepts a plain resourceVersion for every resource. Single-resource kinds use plain
// resourceVersions.
//
// A Watch from "" starts at the current resourceVersion (read with a one-item list), because a
// Kubernetes watch without one would first replay every object. When the API server ends a watch
// normally (its request timeout) it is resumed from the last resourceVersion seen, bookmarks included;
// when resuming fails, or the API server reports an error, the tortie watch ends with an Error event
// (410 Gone/Expired → datastore.ErrCompacted) and the syncer relists. A pod that becomes an endpoint
// (is scheduled) is reported as Modified, since only the pod's state is known; the syncer tracks keys
// itself. An object that cannot be converted is left out of lists, logged, and reported by watches as
// the deletion of its key (as the etcd backend does), so no consumer keeps acting on stale data.
//
// Every call except the watch streams is bounded by Config.RequestTimeout. Errors say what and where
// ("updating IPPool "x" in the Kubernetes datastore: …") and wrap both the datastore sentinel and the
// Kubernetes API error.
package kube
