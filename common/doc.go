// Package common is the root of tortie's platform-neutral core: the resource model (api), the selector
// language, datastores and their syncer, IPAM, the calculation graph and the CLI. Nothing below common/
// may import operating-system specific packages (x/sys/unix, x/sys/windows, netlink, go-iptables,
// hcsshim) or tortie's linux/ and windows/ trees; layering_test.go enforces it, so that the same core
// builds and is tested for Linux and Windows nodes alike.
package common
