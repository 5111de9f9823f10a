package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func runMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, Env{
		Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
		Interfaces: autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{{
			Name: "eth0", Up: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")},
		}}},
		Hostname: func() (string, error) { return "cmd-host", nil },
	})
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"version", nil, []string{"version"}, exitOK, "tortie-node "},
		{"help", nil, []string{"--help"}, exitOK, "startup"},
		{"unknown flag", nil, []string{"startup", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"help lists monitor-addresses", nil, []string{"--help"}, exitOK, "monitor-addresses"},
		{"negative --poll-interval", nil, []string{"monitor-addresses", "--poll-interval", "-1s"}, exitUsage, "--poll-interval=-1s"},
		{"unknown command", nil, []string{"frobnicate"}, exitUsage, "unknown command"},
		{"bad --log-level", nil, []string{"startup", "--log-level", "loud"}, exitUsage, `--log-level="loud"`},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, []string{"startup"}, exitUsage, `LOG_LEVEL="loud"`},
		{"bad CALICO_LOG_LEVEL (the alias rule's CALICO_ form)", map[string]string{"CALICO_LOG_LEVEL": "loud"}, []string{"startup"}, exitUsage, `CALICO_LOG_LEVEL="loud"`},
		{"bad TORTIE_STARTUP_LOGLEVEL", map[string]string{"TORTIE_STARTUP_LOGLEVEL": "loud"}, []string{"startup"}, exitUsage, `TORTIE_STARTUP_LOGLEVEL="loud"`},
		{"bad WAIT_FOR_DATASTORE", map[string]string{"WAIT_FOR_DATASTORE": "sometimes", "ETCD_ENDPOINTS": "http://127.0.0.1:1"},
			[]string{"startup"}, exitUsage, `WAIT_FOR_DATASTORE="sometimes": want true or false`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d; output %q does not contain %q", code, tt.code, stdout+stderr, tt.want)
			}
		})
	}
}

func TestStartupEtcd(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	dir := t.TempDir()
	files := []string{
		"--nodename-file", filepath.Join(dir, "calico", "nodename"),
		"--tortie-nodename-file", filepath.Join(dir, "tortie", "nodename"),
		"--mtu-file", filepath.Join(dir, "calico", "mtu"),
	}
	env := map[string]string{
		"DATASTORE_TYPE":        "etcdv3",
		"ETCD_ENDPOINTS":        strings.Join(endpoints, ","),
		"CALICO_IPV4POOL_CIDR":  "10.80.0.0/16",
		"CALICO_IPV4POOL_VXLAN": "Always",
		"FELIX_IPV6SUPPORT":     "false",
		"LOG_LEVEL":             "info",
	}
	code, _, stderr := runMain(t, env, append([]string{"startup"}, files...)...)
	if code != exitOK {
		t.Fatalf("startup exit %d:\n%s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "calico", "nodename")); err != nil || string(b) != "cmd-host" {
		t.Errorf("nodename file %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "calico", "mtu")); err != nil || string(b) != "1450" {
		t.Errorf("MTU file %q, %v", b, err)
	}
	if !strings.Contains(stderr, `msg="startup summary" node=cmd-host ipv4=10.0.0.5/24`) ||
		!strings.Contains(stderr, `pools="default-ipv4-ippool=created`) {
		t.Errorf("no summary in the log:\n%s", stderr)
	}

	code, _, stderr = runMain(t, env, append([]string{"startup", "--log-level", "warning"}, files...)...)
	if code != exitOK || stderr != "" {
		t.Errorf("second startup: exit %d, output at warning level:\n%s", code, stderr)
	}
	code, _, stderr = runMain(t, env, append([]string{"startup"}, files...)...)
	if code != exitOK || !strings.Contains(stderr, "changes=0") {
		t.Errorf("third startup: exit %d, want changes=0:\n%s", code, stderr)
	}

	// A bad variable fails with a message naming it.
	bad := map[string]string{}
	for k, v := range env {
		bad[k] = v
	}
	bad["NODENAME"] = "cmd-node-2"
	bad["IP"] = "10.0.0.6/24"
	bad["CALICO_IPV4POOL_BLOCK_SIZE"] = "40"
	code, _, stderr = runMain(t, bad, append([]string{"startup"}, files...)...)
	if code != exitError || !strings.Contains(stderr, `tortie-node: node startup failed: invalid default IPv4 pool: CALICO_IPV4POOL_BLOCK_SIZE="40"`) {
		t.Errorf("bad block size: exit %d:\n%s", code, stderr)
	}
}

func TestStartupUnreachableDatastore(t *testing.T) {
	env := map[string]string{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://127.0.0.1:1"}
	code, _, stderr := runMain(t, env, "startup", "--datastore-timeout", "300ms", "--mtu-file", filepath.Join(t.TempDir(), "mtu"))
	if code != exitError || !strings.Contains(stderr, "cannot reach the etcdv3 datastore at http://127.0.0.1:1") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMonitorAddressesEtcd(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	dir := t.TempDir()
	files := []string{
		"--nodename-file", filepath.Join(dir, "calico", "nodename"),
		"--tortie-nodename-file", filepath.Join(dir, "tortie", "nodename"),
	}
	env := map[string]string{
		"DATASTORE_TYPE":       "etcdv3",
		"ETCD_ENDPOINTS":       strings.Join(endpoints, ","),
		"CALICO_IPV4POOL_CIDR": "none",
		"FELIX_IPV6SUPPORT":    "false",
		"IP":                   "autodetect",
	}
	if code, _, stderr := runMain(t, env, append([]string{"startup", "--mtu-file", filepath.Join(dir, "mtu")}, files...)...); code != exitOK {
		t.Fatalf("startup exit %d:\n%s", code, stderr)
	}

	// Runs until its context ends (SIGINT / SIGTERM in main), then exits 0.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"monitor-addresses", "--poll-interval", "100ms"}, files...), Env{
			Stderr: &stderr, Getenv: func(k string) string { return env[k] },
			Interfaces: autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{{
				Name: "eth0", Up: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")},
			}}},
			Hostname: func() (string, error) { return "cmd-host", nil },
		})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `msg="monitoring node addresses" node=cmd-host interval=100ms`) {
		select {
		case code := <-done:
			t.Fatalf("monitor-addresses exited %d early:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor-addresses did not start:\n%s", stderr.String())
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after cancel:\n%s", code, stderr.String())
	}

	// Nothing to monitor: exits at once.
	fixed := map[string]string{}
	for k, v := range env {
		fixed[k] = v
	}
	fixed["IP"] = "10.0.0.5/24"
	code, _, out := runMain(t, fixed, append([]string{"monitor-addresses"}, files...)...)
	if code != exitOK || !strings.Contains(out, "not monitoring node addresses: none is autodetected") {
		t.Errorf("explicit IP: exit %d:\n%s", code, out)
	}

	// A bad interval names the variable.
	fixed["IP"] = "autodetect"
	fixed["AUTODETECT_POLL_INTERVAL"] = "often"
	code, _, out = runMain(t, fixed, append([]string{"monitor-addresses"}, files...)...)
	if code != exitError || !strings.Contains(out, `tortie-node: monitoring node addresses: AUTODETECT_POLL_INTERVAL="often"`) {
		t.Errorf("bad interval: exit %d:\n%s", code, out)
	}
}
