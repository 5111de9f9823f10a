//go:build linux

package cni

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/tortie-net/tortie/common/config"
)

// DefaultHostVethPrefix is the host-side veth prefix when none is configured.
// It is Calico's, so a node migrated from Calico keeps its interface names and
// the dataplane's "owned interface" pattern matches both.
const DefaultHostVethPrefix = config.DefaultInterfacePrefix

// hostVethHashLen is how many hex digits of the hash Calico uses.
const hostVethHashLen = 11

// maxIfNameLen is IFNAMSIZ-1: the kernel rejects longer interface names.
const maxIfNameLen = 15

// HostVethName returns the host-side veth name for a pod: prefix (default
// "cali" when empty) followed by the first 11 hex digits of
// SHA-1("<namespace>.<pod>"), exactly as Calico names them. With a prefix
// longer than 4 characters the hash is shortened so the name stays within the
// kernel's 15 characters (Calico would produce an invalid name). The name is a
// pure function of its inputs, so ADD and DEL agree without storing anything.
//
// Shorter hashes collide sooner, and a prefix of 15 characters or more leaves
// no hash at all (it is cut to 15, so every pod collides); configuration
// validation should keep prefixes short.
func HostVethName(prefix, namespace, pod string) string {
	if prefix == "" {
		prefix = DefaultHostVethPrefix
	}
	if len(prefix) >= maxIfNameLen {
		return prefix[:maxIfNameLen]
	}
	sum := sha1.Sum([]byte(namespace + "." + pod))
	return prefix + hex.EncodeToString(sum[:])[:min(hostVethHashLen, maxIfNameLen-len(prefix))]
}
