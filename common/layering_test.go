package common_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// These may never appear as a direct import of a package under common/ or platform/.
var forbiddenDirect = []string{
	"golang.org/x/sys/unix",
	"golang.org/x/sys/windows",
}

// These may never appear anywhere in the dependency graph of common/ or platform/ (third-party
// libraries may use x/sys internally; that is fine, but the OS integration libraries are not).
var forbiddenAnywhere = []string{
	"github.com/vishvananda/netlink",
	"github.com/vishvananda/netns",
	"github.com/coreos/go-iptables",
	"github.com/Microsoft/hcsshim",
	"github.com/tortie-net/tortie/linux",
	"github.com/tortie-net/tortie/windows",
	"github.com/tortie-net/tortie/cmd",
}

func TestPlatformNeutralLayering(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "go", "list", "-deps=false",
				"-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}",
				"github.com/tortie-net/tortie/common/...", "github.com/tortie-net/tortie/platform/...")
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, stderr.String())
			}
			checked := 0
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				parts := strings.SplitN(sc.Text(), "|", 3)
				if len(parts) != 3 {
					continue
				}
				pkg, imports, deps := parts[0], strings.Fields(parts[1]), strings.Fields(parts[2])
				checked++
				for _, imp := range imports {
					for _, bad := range forbiddenDirect {
						if imp == bad {
							t.Errorf("%s imports %s directly; move the OS-specific code under linux/ or windows/", pkg, imp)
						}
					}
				}
				for _, dep := range deps {
					for _, bad := range forbiddenAnywhere {
						if dep == bad || strings.HasPrefix(dep, bad+"/") {
							t.Errorf("%s depends on %s; common/ and platform/ must stay platform-neutral", pkg, dep)
						}
					}
				}
			}
			if checked == 0 {
				t.Fatal("go list returned no packages: the check would pass vacuously")
			}
		})
	}
}
