package windowsinstaller

import (
	"strings"
	"testing"
)

func TestMSIVersion(t *testing.T) {
	tests := []struct {
		describe string
		commits  int
		want     string
		wantErr  string
	}{
		{describe: "v1.2.3", want: "1.2.3000"},
		{describe: "1.2.3", want: "1.2.3000"},
		{describe: "v1.2.3-14-g5fb7191", want: "1.2.3014"},
		{describe: "v1.2.3-14-g5fb7191-dirty", want: "1.2.3014"},
		{describe: "v0.1.0-dirty", want: "0.1.0"},
		{describe: "v255.255.65-999-gabcdef0", want: "255.255.65999"},
		{describe: "5fb7191", commits: 213, want: "0.0.213"},
		{describe: "5fb7191-dirty", commits: 213, want: "0.0.213"},
		{describe: "dev", commits: 0, want: "0.0.0"},
		{describe: "v256.0.0", wantErr: "major version 256 is above the MSI limit"},
		{describe: "v1.256.0", wantErr: "minor version 256"},
		{describe: "v1.2.66", wantErr: "patch version 66"},
		{describe: "v1.2.3-1000-gabcdef0", wantErr: "1000 commits after the tag"},
		{describe: "5fb7191", commits: 65536, wantErr: "does not fit an MSI build number"},
		{describe: "v1.2.0-rc.1", wantErr: "pre-release tags cannot be mapped"},
		{describe: "", wantErr: "set MSI_VERSION"},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			got, err := MSIVersion(tt.describe, tt.commits)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("MSIVersion(%q) = %q, %v; want error containing %q", tt.describe, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("MSIVersion(%q, %d) = %q, %v; want %q", tt.describe, tt.commits, got, err, tt.want)
			}
		})
	}
	// Later commits give larger versions, so each build upgrades the one before.
	order := []string{"v1.2.3", "v1.2.3-1-gabc1234", "v1.2.3-999-gabc1234", "v1.2.4", "v1.3.0"}
	prev := ""
	for _, d := range order {
		v, err := MSIVersion(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" && !versionLess(prev, v) {
			t.Errorf("%s (from %s) does not sort after %s", v, d, prev)
		}
		prev = v
	}
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range pa {
		x, y := atoi(pa[i]), atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}
