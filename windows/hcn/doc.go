// Package hcn is tortie's seam to the Host Networking Service (HNS) of Windows, through the v2 HCN API of
// github.com/Microsoft/hcsshim/hcn.
//
// The types here mirror the subset of hcn that tortie uses, with the same JSON field names, so that
// every request body the dataplane builds is what HNS receives, and so that all Windows logic compiles
// and is tested on any OS. API is the small interface the dataplane and the CNI call; it is implemented
// by:
//
//   - New on Windows (hcn_windows.go): the real HNS, by converting these types to hcsshim's through
//     their common JSON form;
//   - New elsewhere (hcn_other.go): every call fails with ErrUnsupported;
//   - windows/hcnfake: a stateful fake that models HNS semantics, for tests on Linux.
//
// Feature gates (FeaturesFor) follow hcsshim's version thresholds, so the fake and the real service
// agree on what a given HNS version supports.
package hcn
