package windowsinstaller

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/cni"

	"github.com/tortie-net/tortie/windows/service"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// needTools makes sure the named commands exist: it installs the Debian packages through ci/deps.sh
// when it can (root and apt-get), fails under CI=true when it cannot, and otherwise skips saying why.
func needTools(t *testing.T, packages []string, commands ...string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the MSI is built and inspected on Linux (wixl, msitools)")
	}
	missing := func() []string {
		var m []string
		for _, c := range commands {
			if _, err := exec.LookPath(c); err != nil {
				m = append(m, c)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		return
	}
	_, aptErr := exec.LookPath("apt-get")
	if os.Getuid() == 0 && aptErr == nil {
		cmd := exec.CommandContext(t.Context(), "bash", append([]string{"../../ci/deps.sh"}, packages...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("installing %v: %v\n%s", packages, err, out)
		}
		if m := missing(); len(m) > 0 {
			t.Fatalf("%v still missing after installing %v", m, packages)
		}
		return
	}
	msg := "needs " + strings.Join(missing(), ", ") + " (Debian packages " + strings.Join(packages, " ") +
		"); run ci/deps.sh " + strings.Join(packages, " ") + " as root"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildMSI runs build-msi.sh, as `make msi` does, on placeholder programs (the tables do not depend on
// the programs' content, only on their names and sizes) and returns the MSI's path.
func buildMSI(t *testing.T, extraEnv ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, exe := range []string{"tortie-node", "tortiectl", "tortie-cni"} {
		if err := os.WriteFile(filepath.Join(bin, exe+".exe"), []byte("placeholder for "+exe+".exe\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return buildMSIFrom(t, bin, extraEnv...)
}

func buildMSIFrom(t *testing.T, bin string, extraEnv ...string) string {
	t.Helper()
	needTools(t, []string{"wixl", "msitools"}, "wixl", "msiinfo")
	out := filepath.Join(t.TempDir(), "tortie.msi")
	cmd := exec.CommandContext(t.Context(), "bash", "build-msi.sh", "-o", out, bin)
	cmd.Env = append(os.Environ(), append([]string{"MSI_VERSION=1.2.3014", "GIT_DESCRIBE=v1.2.3-14-g5fb7191"}, extraEnv...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build-msi.sh: %v\n%s", err, b)
	}
	t.Logf("%s", b)
	return out
}

var productCodeRE = regexp.MustCompile(`(ProductCode\t)\{[0-9A-F-]{36}\}`)

// exportTable returns msiinfo's export of one table with the per-build parts normalised: the
// ProductCode (new for every build) and the version.
func exportTable(t *testing.T, msi, table string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "msiinfo", "export", msi, table).Output()
	if err != nil {
		t.Fatalf("msiinfo export %s: %v", table, err)
	}
	s := strings.ReplaceAll(string(out), "\r\n", "\n")
	s = productCodeRE.ReplaceAllString(s, "${1}{PRODUCT-CODE}")
	s = strings.ReplaceAll(s, "1.2.3014", "VERSION")
	if table == "File" {
		// Sizes follow the placeholders and the module's text; the golden file is about the rows.
		lines := strings.Split(s, "\n")
		for i := 3; i < len(lines); i++ {
			if cols := strings.Split(lines[i], "\t"); len(cols) > 3 {
				cols[3] = "SIZE"
				lines[i] = strings.Join(cols, "\t")
			}
		}
		s = strings.Join(lines, "\n")
	}
	return s
}

func TestMSITables(t *testing.T) {
	msi := buildMSI(t)
	for _, table := range []string{"ServiceInstall", "ServiceControl", "File", "Component", "Property", "Upgrade",
		"CustomAction", "InstallExecuteSequence", "Directory", "Registry"} {
		t.Run(table, func(t *testing.T) {
			got := exportTable(t, msi, table)
			golden := filepath.Join("testdata", "msi", table+".idt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./installer/windows -run TestMSITables -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("msiinfo export %s differs from %s (-want +got):\n%s", table, golden, diff)
			}
		})
	}
}

// rows parses an exported table into maps keyed by column name (the first line names the columns; the
// second and third are types and the table name).
func rows(t *testing.T, idt string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(idt, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("not an exported table:\n%s", idt)
	}
	cols := strings.Split(lines[0], "\t")
	var out []map[string]string
	for _, l := range lines[3:] {
		r := map[string]string{}
		for i, v := range strings.Split(l, "\t") {
			if i < len(cols) {
				r[cols[i]] = v
			}
		}
		out = append(out, r)
	}
	return out
}

// The MSI registers the service exactly as `tortie-node service install` would: same name, display
// name, description, arguments (so `service run` finds the same files) and dependency.
func TestMSIMatchesTheService(t *testing.T) {
	msi := buildMSI(t)
	si := rows(t, exportTable(t, msi, "ServiceInstall"))
	if len(si) != 1 {
		t.Fatalf("ServiceInstall rows: %v", si)
	}
	pd := `C:\ProgramData`
	opts := service.DefaultOptions(pd)
	want := map[string]string{
		"Name":         service.Name,
		"DisplayName":  service.DisplayName,
		"Description":  service.Description,
		"Arguments":    strings.Join(opts.Arguments(pd), " "),
		"Dependencies": strings.Join(service.Dependencies, "[~]") + "[~][~]",
		"StartName":    "LocalSystem",
		"StartType":    "2",  // SERVICE_AUTO_START
		"ServiceType":  "16", // SERVICE_WIN32_OWN_PROCESS
	}
	for k, v := range want {
		if si[0][k] != v {
			t.Errorf("ServiceInstall %s = %q, want %q (as the Go service code has it)", k, si[0][k], v)
		}
	}
	sc := rows(t, exportTable(t, msi, "ServiceControl"))
	// 1 start on install | 2 stop on install | 32 stop on uninstall | 128 delete on uninstall.
	if len(sc) != 1 || sc[0]["Name"] != service.Name || sc[0]["Event"] != "163" || sc[0]["Wait"] != "1" {
		t.Errorf("ServiceControl = %v", sc)
	}
	// The custom action runs the configure command this binary has, with the properties.
	ca := rows(t, exportTable(t, msi, "CustomAction"))
	if len(ca) != 1 || !strings.HasPrefix(ca[0]["Target"], "service configure --env ") || ca[0]["Type"] != "3090" {
		t.Errorf("CustomAction = %v (want a deferred, no-impersonate exe from an installed file: type 3090)", ca)
	}
	for _, p := range []string{"DATASTORE_TYPE", "KUBECONFIG", "NODENAME"} {
		if !strings.Contains(ca[0]["Target"], `"`+p+"=["+p+`]"`) {
			t.Errorf("the configure action does not pass %s: %s", p, ca[0]["Target"])
		}
	}
}

// The CNI configuration the MSI installs is one tortie's CNI plugin accepts.
func TestMSICNIConfig(t *testing.T) {
	data, err := os.ReadFile("10-tortie.conflist")
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("10-tortie.conflist: %v", err)
	}
	if len(list.Plugins) != 1 {
		t.Fatalf("plugins: %d", len(list.Plugins))
	}
	// libcni gives each plugin the list's name and cniVersion.
	var plugin map[string]any
	if err := json.Unmarshal(list.Plugins[0].Bytes, &plugin); err != nil {
		t.Fatal(err)
	}
	plugin["name"], plugin["cniVersion"] = list.Name, list.CNIVersion
	b, err := json.Marshal(plugin)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := cni.ParseNetConf(b, nil)
	if err != nil {
		t.Fatalf("the tortie plugin rejects 10-tortie.conflist: %v", err)
	}
	if nc.Type != "tortie" || nc.IPAM.Type != "tortie-ipam" || nc.Kubeconfig != `C:\ProgramData\tortie\kubeconfig` {
		t.Errorf("parsed config: type %q ipam %q kubeconfig %q", nc.Type, nc.IPAM.Type, nc.Kubeconfig)
	}
}

func TestMSISigned(t *testing.T) {
	needTools(t, []string{"osslsigncode", "openssl"}, "osslsigncode", "openssl")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	gen := exec.CommandContext(t.Context(), "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=tortie test signing", "-addext", "extendedKeyUsage=codeSigning", "-keyout", key, "-out", cert)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	// Signing needs real Windows programs: a small one built for windows/amd64, under the three names.
	bin := filepath.Join(dir, "bin")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, "tortie-node.exe"), "./msiversion")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(filepath.Join(bin, "tortie-node.exe"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tortiectl.exe", "tortie-cni.exe"} {
		if err := os.WriteFile(filepath.Join(bin, name), exe, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	msi := buildMSIFrom(t, bin, "SIGN_CERT="+cert, "SIGN_KEY="+key)
	out, err := exec.CommandContext(t.Context(), "osslsigncode", "verify", "-CAfile", cert, "-in", msi).CombinedOutput()
	if err != nil {
		t.Fatalf("osslsigncode verify: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Signature verification: ok") {
		t.Errorf("verify output:\n%s", out)
	}
}

func TestMSIUnsignedSaysSo(t *testing.T) {
	needTools(t, []string{"wixl", "msitools"}, "wixl", "msiinfo")
	dir := t.TempDir()
	for _, exe := range []string{"tortie-node", "tortiectl", "tortie-cni"} {
		if err := os.WriteFile(filepath.Join(dir, exe+".exe"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "bash", "build-msi.sh", "-o", filepath.Join(dir, "t.msi"), dir)
	cmd.Env = append(os.Environ(), "MSI_VERSION=0.0.1", "SIGN_CERT=", "SIGN_KEY=", "SIGN_PKCS12=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UNSIGNED (set SIGN_CERT and SIGN_KEY") {
		t.Errorf("build-msi.sh: %v\n%s", err, out)
	}
	cmd = exec.CommandContext(t.Context(), "bash", "build-msi.sh", "-o", filepath.Join(dir, "t.msi"), dir)
	cmd.Env = append(os.Environ(), "MSI_VERSION=1.2", "SIGN_CERT=", "SIGN_KEY=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MSI_VERSION=1.2: want MAJOR.MINOR.BUILD") {
		t.Errorf("a bad MSI_VERSION: %v\n%s", err, out)
	}
}
