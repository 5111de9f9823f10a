package windowsinstaller

import (
	"fmt"
	"regexp"
	"strconv"
)

// describeRE matches `git describe --tags --always --dirty` for a release tag: vMAJOR.MINOR.PATCH, then
// -N-gHASH when N commits follow the tag, then -dirty.
var describeRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-(\d+)-g[0-9a-f]+)?(-dirty)?$`)

// untaggedRE matches describe output without a tag: an abbreviated hash (or "dev"), maybe -dirty.
var untaggedRE = regexp.MustCompile(`^(?:[0-9a-f]{4,40}|dev)(-dirty)?$`)

// MSIVersion maps `git describe` onto an MSI ProductVersion, which must be MAJOR.MINOR.BUILD with
// MAJOR and MINOR at most 255 and BUILD at most 65535 (Windows Installer ignores a fourth field, so
// two builds differing only there would not upgrade each other):
//
//	vX.Y.Z            → X.Y.(Z*1000)
//	vX.Y.Z-N-gHASH    → X.Y.(Z*1000+N)   N commits after the tag, N ≤ 999, Z ≤ 65
//	HASH (no tag)     → 0.0.C            C = commits (git rev-list --count HEAD), C ≤ 65535
//
// so every later commit installs as an upgrade of an earlier one. -dirty is ignored (a dirty build has
// its commit's version). Pre-release tags (v1.2.0-rc.1) are refused: they would share their release's
// version.
func MSIVersion(describe string, commits int) (string, error) {
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		major, minor, patch := atoi(m[1]), atoi(m[2]), atoi(m[3])
		n := 0
		if m[4] != "" {
			n = atoi(m[4])
		}
		switch {
		case major > 255:
			return "", fmt.Errorf("version %s: major version %d is above the MSI limit of 255", describe, major)
		case minor > 255:
			return "", fmt.Errorf("version %s: minor version %d is above the MSI limit of 255", describe, minor)
		case patch > 65:
			return "", fmt.Errorf("version %s: patch version %d is above 65 (BUILD = patch*1000 + commits must stay ≤ 65535)", describe, patch)
		case n > 999:
			return "", fmt.Errorf("version %s: %d commits after the tag; tag a release (at most 999 commits fit the MSI version)", describe, n)
		}
		return fmt.Sprintf("%d.%d.%d", major, minor, patch*1000+n), nil
	}
	if untaggedRE.MatchString(describe) {
		if commits < 0 || commits > 65535 {
			return "", fmt.Errorf("version %s: %d commits does not fit an MSI build number (0-65535); tag a release", describe, commits)
		}
		return fmt.Sprintf("0.0.%d", commits), nil
	}
	return "", fmt.Errorf("version %q: not vMAJOR.MINOR.PATCH[-N-gHASH][-dirty] or a commit hash; pre-release tags cannot be mapped to an MSI version — set MSI_VERSION=X.Y.Z", describe)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30 // too many digits: reported by the range checks
	}
	return n
}
