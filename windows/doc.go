// Package windows is the root of tortie's Windows node support: the HNS shim (windows/hcn, with per-OS
// files), a stateful fake HNS that models HNS semantics, and the HNS dataplane, which compiles and is
// tested on Linux against the fake. Only windows/hcn and windows/service have OS-specific files.
package windows
