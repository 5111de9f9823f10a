package cni

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
)

// root is a temporary host: the image's binary, the host's CNI dirs and a service-account dir.
type root struct {
	dir, binary, binDir, netDir, caFile string
}

func newRoot(t *testing.T) root {
	t.Helper()
	d := t.TempDir()
	r := root{
		dir:    d,
		binary: filepath.Join(d, "image", "tortie-cni"),
		binDir: filepath.Join(d, "host", "opt", "cni", "bin"),
		netDir: filepath.Join(d, "host", "etc", "cni", "net.d"),
		caFile: filepath.Join(d, "sa", "ca.crt"),
	}
	for _, f := range []struct {
		path, body string
	}{{r.binary, "plugin v1"}, {r.caFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, []byte(f.body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// jwt makes an unsigned token with iat and exp claims (the installer only reads them).
func jwt(sub string, iat, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": sub, "iat": iat.Unix(), "exp": exp.Unix()})
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + "." + enc([]byte("sig"))
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// issuer models TokenRequest: every call issues a new token valid for life from the clock's now.
type issuer struct {
	clock *clock
	life  time.Duration
	mu    sync.Mutex
	n     int
}

func (s *issuer) Token(context.Context) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	now := s.clock.Now()
	return Token{Value: jwt(fmt.Sprintf("token-%d", s.n), now, now.Add(s.life)), IssuedAt: now, Expires: now.Add(s.life)}, nil
}
func (s *issuer) String() string { return "test issuer" }
func (s *issuer) calls() int     { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

// stat identifies the file at p, to tell a rename from an in-place write (os.SameFile).
func stat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func baseConfig(r root, tokens TokenSource, now func() time.Time) Config {
	return Config{
		Binary:         r.binary,
		BinDirs:        []string{r.binDir},
		UpdateBinaries: true,
		NetDir:         r.netDir,
		KubeconfigName: DefaultKubeconfigName,
		APIServer:      APIServerURL("10.96.0.1", "443"),
		CAFile:         r.caFile,
		Tokens:         tokens,
		Placeholders: map[string]string{
			"__LOG_LEVEL__": "info", "__DATASTORE_TYPE__": "kubernetes", "__KUBERNETES_NODE_NAME__": "node-1", "__CNI_MTU__": "0",
		},
		Now: now,
	}
}

func mustInstaller(t *testing.T, cfg Config) *Installer {
	t.Helper()
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInstallFilesAndModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes and symbolic links")
	}
	r := newRoot(t)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	in := mustInstaller(t, baseConfig(r, &issuer{clock: clk, life: time.Hour}, clk.Now))
	res, err := in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(r.netDir, DefaultConfName)
	kc := filepath.Join(r.netDir, DefaultKubeconfigName)
	want := []string{filepath.Join(r.binDir, BinaryName("tortie")), filepath.Join(r.binDir, BinaryName("tortie-ipam")), kc, conf}
	if diff := cmp.Diff(want, res.Written); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	for p, mode := range map[string]fs.FileMode{want[0]: BinaryMode, kc: KubeconfigMode, conf: ConfMode} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	if l, err := os.Readlink(want[1]); err != nil || l != "tortie" {
		t.Errorf("tortie-ipam: link %q, %v; want a link to tortie", l, err)
	}
	if b, _ := os.ReadFile(want[0]); string(b) != "plugin v1" {
		t.Errorf("installed binary = %q", b)
	}

	// The conflist: placeholders replaced, kubeconfig path as the host sees it.
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("conflist: %v\n%s", err, b)
	}
	p0 := list.Plugins[0]
	if got := p0["kubernetes"].(map[string]any)["kubeconfig"]; got != "/etc/cni/net.d/tortie-kubeconfig" {
		t.Errorf("kubeconfig path in conflist = %v", got)
	}
	if p0["nodename"] != "node-1" || p0["mtu"] != float64(0) || p0["datastore_type"] != "kubernetes" {
		t.Errorf("plugin config = %v", p0)
	}

	// The kubeconfig loads with client-go and carries server, CA and token.
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://10.96.0.1:443" || !strings.Contains(string(rc.CAData), "MIIB") {
		t.Errorf("kubeconfig host %q CA %q", rc.Host, rc.CAData)
	}
	if iat, _ := jwtTimes(rc.BearerToken); !iat.Equal(clk.Now()) {
		t.Errorf("kubeconfig token issued at %v, want %v", iat, clk.Now())
	}
}

func TestInstallUnchangedWritesNothing(t *testing.T) {
	r := newRoot(t)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tokens := &issuer{clock: clk, life: time.Hour}
	in := mustInstaller(t, baseConfig(r, tokens, clk.Now))
	if _, err := in.Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(r.binDir, BinaryName("tortie")), filepath.Join(r.netDir, DefaultConfName), filepath.Join(r.netDir, DefaultKubeconfigName)}
	before := map[string]os.FileInfo{}
	for _, f := range files {
		before[f] = stat(t, f)
	}
	clk.Add(10 * time.Minute) // well before renewal
	res, err := in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 0 {
		t.Errorf("second install wrote %v; want nothing", res.Written)
	}
	for _, f := range files {
		if !os.SameFile(stat(t, f), before[f]) {
			t.Errorf("%s was replaced although unchanged", f)
		}
	}
	if tokens.calls() != 1 {
		t.Errorf("token requested %d times; want once until renewal", tokens.calls())
	}
	// A second Installer (the pod restarted) finds the files in place too, except the kubeconfig,
	// which gets the new process's token.
	in2 := mustInstaller(t, baseConfig(r, &issuer{clock: clk, life: 2 * time.Hour}, clk.Now))
	res, err = in2.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(r.netDir, DefaultKubeconfigName)}, res.Written); diff != "" {
		t.Errorf("restarted install wrote (-want +got):\n%s", diff)
	}
}

func TestInstallReplacesAtomically(t *testing.T) {
	r := newRoot(t)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	in := mustInstaller(t, baseConfig(r, &issuer{clock: clk, life: time.Hour}, clk.Now))
	if _, err := in.Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(r.binDir, BinaryName("tortie"))
	var old *os.File
	if runtime.GOOS != "windows" { // Windows cannot rename over an open file
		var err error
		if old, err = os.Open(dst); err != nil { // a runtime executing the old plugin
			t.Fatal(err)
		}
		defer old.Close()
	}
	oldFile := stat(t, dst)
	// A crash of an earlier run left a temporary file behind.
	stale := filepath.Join(r.binDir, tmpPrefix+"tortie.123")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.binary, []byte("plugin v2, longer"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantWritten := []string{dst}
	if runtime.GOOS == "windows" { // tortie-ipam is a copy of the binary there, not a link to it
		wantWritten = append(wantWritten, filepath.Join(r.binDir, BinaryName("tortie-ipam")))
	}
	if diff := cmp.Diff(wantWritten, res.Written); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	// Wine reuses file identities across a rename, so identity is only checked off Windows.
	if runtime.GOOS != "windows" && os.SameFile(stat(t, dst), oldFile) {
		t.Error("the binary was rewritten in place; want a new file renamed over it")
	}
	if old != nil {
		buf := make([]byte, 64)
		n, _ := old.ReadAt(buf, 0)
		if string(buf[:n]) != "plugin v1" {
			t.Errorf("the open old binary reads %q; a rename leaves it intact", buf[:n])
		}
	}
	if b, _ := os.ReadFile(dst); string(b) != "plugin v2, longer" {
		t.Errorf("new binary = %q", b)
	}
	ents, _ := os.ReadDir(r.binDir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{BinaryName("tortie"), BinaryName("tortie-ipam")}
	slices.Sort(want) // ReadDir's order
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("bin dir (-want +got):\n%s", diff)
	}

	// A mode changed on the host is repaired (the kubeconfig must not become world-readable).
	kc := filepath.Join(r.netDir, DefaultKubeconfigName)
	if runtime.GOOS != "windows" {
		if err := os.Chmod(kc, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Install(t.Context()); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(kc); fi.Mode().Perm() != KubeconfigMode {
			t.Errorf("kubeconfig mode %v after repair", fi.Mode().Perm())
		}
	}
	// A removed conflist comes back.
	if err := os.Remove(filepath.Join(r.netDir, DefaultConfName)); err != nil {
		t.Fatal(err)
	}
	res, err = in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Written, filepath.Join(r.netDir, DefaultConfName)) {
		t.Errorf("removed conflist not rewritten: %v", res.Written)
	}
}

func TestTokenRefreshBeforeExpiry(t *testing.T) {
	r := newRoot(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	tokens := &issuer{clock: clk, life: 3 * time.Hour}
	in := mustInstaller(t, baseConfig(r, tokens, clk.Now))
	kc := filepath.Join(r.netDir, DefaultKubeconfigName)
	token := func() string {
		rc, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			t.Fatal(err)
		}
		return rc.BearerToken
	}
	res, err := in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := token()
	if want := start.Add(2 * time.Hour); !res.TokenRenewAt.Equal(want) {
		t.Errorf("renew at %v, want %v (two thirds of the lifetime)", res.TokenRenewAt, want)
	}
	// Just before the renewal time: same token, nothing written.
	clk.t = start.Add(2*time.Hour - time.Second)
	if res, err = in.Install(t.Context()); err != nil || len(res.Written) != 0 || token() != first {
		t.Fatalf("before renewal: wrote %v, err %v, token changed %v", res.Written, err, token() != first)
	}
	// At the renewal time, an hour before expiry: a new token, the kubeconfig alone rewritten.
	clk.t = start.Add(2 * time.Hour)
	res, err = in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{kc}, res.Written); diff != "" {
		t.Errorf("written at renewal (-want +got):\n%s", diff)
	}
	second := token()
	if second == first {
		t.Fatal("token not renewed")
	}
	if _, exp := jwtTimes(second); !exp.Equal(start.Add(5 * time.Hour)) {
		t.Errorf("renewed token expires %v", exp)
	}
	if tokens.calls() != 2 {
		t.Errorf("%d token requests, want 2", tokens.calls())
	}
}

func TestFileTokenFollowsKubelet(t *testing.T) {
	r := newRoot(t)
	tokFile := filepath.Join(r.dir, "sa", "token")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(s string) {
		if err := os.WriteFile(tokFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(jwt("a", now, now.Add(time.Hour)))
	in := mustInstaller(t, baseConfig(r, FileTokenSource{Path: tokFile}, func() time.Time { return now }))
	if _, err := in.Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The kubelet rotated the projected token: the kubeconfig follows at the next round.
	write(jwt("b", now, now.Add(2*time.Hour)))
	res, err := in.Install(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 1 || !strings.HasSuffix(res.Written[0], DefaultKubeconfigName) {
		t.Errorf("after rotation wrote %v, want the kubeconfig", res.Written)
	}
	// An expired token is refused rather than installed.
	write(jwt("c", now.Add(-2*time.Hour), now.Add(-time.Hour)))
	if _, err := in.Install(t.Context()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: err = %v", err)
	}
}

func TestBadConfigWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		ph         map[string]string
		want       string
	}{
		{"placeholder without value", DefaultNetworkConfig, map[string]string{"__LOG_LEVEL__": "info", "__DATASTORE_TYPE__": "kubernetes", "__CNI_MTU__": "0"},
			"placeholder __KUBERNETES_NODE_NAME__ has no value"},
		{"not JSON", `{"name": "x", "plugins": [`, nil, "is not valid JSON"},
		{"not a list", `{"name": "x", "cniVersion": "1.0.0", "type": "tortie"}`, nil, `"plugins" is missing`},
		{"bad plugin setting", `{"name": "x", "cniVersion": "1.0.0", "plugins": [{"type": "tortie", "datastore_type": "kubernetes", "kubernetes": {"kubeconfig": "/k"}, "mtu": 20}]}`, nil,
			`plugins[0] (type "tortie")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoot(t)
			clk := &clock{t: time.Now()}
			cfg := baseConfig(r, &issuer{clock: clk, life: time.Hour}, clk.Now)
			cfg.NetworkConfig, cfg.ConfigFrom, cfg.Placeholders = tc.conf, "CNI_NETWORK_CONFIG", tc.ph
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "CNI_NETWORK_CONFIG") {
				t.Fatalf("err = %v; want it to name CNI_NETWORK_CONFIG and say %q", err, tc.want)
			}
			if _, err := os.Stat(r.netDir); !os.IsNotExist(err) {
				t.Errorf("net dir exists after a refused config: %v", err)
			}
		})
	}
}

func TestKeepBinariesWhenNotUpdating(t *testing.T) {
	r := newRoot(t)
	clk := &clock{t: time.Now()}
	cfg := baseConfig(r, &issuer{clock: clk, life: time.Hour}, clk.Now)
	cfg.UpdateBinaries = false
	cfg.CalicoNames = true
	if err := os.MkdirAll(r.binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.binDir, BinaryName("tortie")), []byte("operator's build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := mustInstaller(t, cfg).Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.binDir, BinaryName("tortie"))); string(b) != "operator's build" {
		t.Errorf("binary replaced although UpdateBinaries is false: %q", b)
	}
	for _, n := range []string{"tortie-ipam", "calico", "calico-ipam"} {
		if runtime.GOOS == "windows" {
			continue
		}
		if l, err := os.Readlink(filepath.Join(r.binDir, BinaryName(n))); err != nil || l != "tortie" {
			t.Errorf("%s: %q %v", n, l, err)
		}
	}
}
