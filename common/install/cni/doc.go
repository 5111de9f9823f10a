// Package cni installs tortie's CNI plugin on a node, as the install-cni init container of the
// tortie-node DaemonSet does (`tortie-node install-cni`; Calico's install-cni does the same job).
//
// One Install copies the plugin binary into each CNI bin directory under the names tortie and
// tortie-ipam (and, on request, Calico's names calico and calico-ipam), writes the CNI kubeconfig
// holding a service-account token, and writes the network configuration list (10-tortie.conflist by
// default) last, because a runtime treats a node's CNI as ready as soon as a configuration appears.
//
// Every file is written atomically (a temporary file in the same directory, synced, then renamed over
// the target) and only when its content or mode differs, so a second Install with the same inputs writes
// nothing and a runtime never reads half a file. Files holding credentials are mode 0600.
//
// Watch repeats Install until its context ends: it renews the token before it expires (when less than
// a third of its lifetime is left) and repairs files that were removed or changed on the host.
//
// The package is platform-neutral; paths are the caller's (the DaemonSet mounts the host's
// /opt/cni/bin and /etc/cni/net.d under /host).
package cni
