// Package install holds what puts tortie onto a cluster: cni installs the CNI plugin and its
// configuration on a node (`tortie-node install-cni`); render turns the settings operators already
// have (Helm values, Calico manifest variables, a Tigera Installation document) into tortie's manifest
// (`tortiectl install render`), from the same chart templates that Helm renders.
package install
