// Package open chooses and connects the datastore a command-line tool talks to, the way calicoctl does:
// from DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG and friends (read under common/config's one alias rule:
// TORTIE_X over X over CALICO_X), or from a calicoctl-style CalicoAPIConfig file; kubeconfig paths are
// resolved and loaded by common/config/kubeconfig. New builds a backend without contacting it (the CNI
// plugin, with short timeouts and a preconnect, from its own config's fields); Open also pings it.
// Every tortie binary selects its datastore here.
//
// Resolve is pure (it reads only the getenv function and the config file it is given) so that the choice can
// be tested without a datastore; FromEnv resolves, connects and pings, and turns a failure into an error that
// names what was tried and which variables to set.
//
// The rules, in order:
//
//  1. A config file (-c/--config) fills the settings it names; variables fill the rest.
//  2. DATASTORE_TYPE (kubernetes or etcdv3) wins when set, in the file or the environment.
//  3. Otherwise the caller's default type, if any (kubectl plugin mode: kubernetes).
//  4. Otherwise etcdv3 when etcd endpoints are set; kubernetes when a kubeconfig is set (KUBECONFIG or
//     --kubeconfig) or when running in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT).
//  5. Otherwise etcdv3 at http://127.0.0.1:2379, calicoctl's default and where tortie-lab's embedded etcd
//     listens.
package open
