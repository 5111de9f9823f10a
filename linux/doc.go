//go:build linux

// Package linux is the root of tortie's Linux-only code: the CNI interface plumbing (linux/cni), node
// start-up checks that need the kernel (linux/startup) and, later, the iptables/ipset/netlink dataplane.
// Every file under linux/ carries a linux build constraint.
package linux
