// Package version holds the build's version, stamped by the Makefile with -ldflags.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is set at build time (-X github.com/tortie-net/tortie/common/version.Version=v1.2.3).
var Version = "dev"

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the version information of the running binary; the commit comes from the Go build info.
func Get() Info {
	info := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.GitCommit = s.Value
			}
		}
	}
	return info
}
