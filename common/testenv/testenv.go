package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// RequireServicesEnv names the environment variable that turns "service not
// available" skips into failures. CI sets it to 1.
const RequireServicesEnv = "TORTIE_REQUIRE_SERVICES"

// mainActive is set by Run while the package's tests run: only then may
// instances outlive the test that started them.
var mainActive atomic.Bool

// registry holds teardown functions for everything that must not outlive the
// test binary, run in reverse order by Run after m.Run.
var registry struct {
	mu    sync.Mutex
	stops []func()
}

func register(stop func()) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.stops = append(registry.stops, stop)
}

// stopAll runs every registered teardown, newest first.
func stopAll() {
	registry.mu.Lock()
	stops := registry.stops
	registry.stops = nil
	registry.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// Main runs the package's tests, stops every shared service, and exits with
// the tests' exit code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the os.Exit, for a TestMain that does more work around
// the tests. It returns m.Run's exit code.
func Run(m *testing.M) int {
	mainActive.Store(true)
	defer func() {
		mainActive.Store(false)
		stopAll()
	}()
	return m.Run()
}

// shared reports whether shared (per-binary) instances may be used. Without
// Run there is nobody to stop them, so callers fall back to per-test ones.
func shared() bool { return mainActive.Load() }

// RequireServices reports whether TORTIE_REQUIRE_SERVICES asks for missing
// services to fail tests instead of skipping them.
func RequireServices() bool {
	v, err := strconv.ParseBool(os.Getenv(RequireServicesEnv))
	return err == nil && v
}

// Unavailable skips the test with reason, or fails it when
// TORTIE_REQUIRE_SERVICES is set, so that CI never skips silently.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireServices() {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, RequireServicesEnv)
	}
	t.Skip(msg)
}

// RequireRoot skips the test unless it runs as root (euid 0). On Windows,
// where os.Geteuid returns -1, it always skips.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("test needs root (euid is %d)", os.Geteuid())
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller binds it; starters here retry with
// new ports when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports: holding every listener open until
// all are chosen keeps the kernel from handing out the same one twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var errs []error
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errs = append(errs, err)
			break
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("finding %d free ports: %w", n, err)
	}
	return ports, nil
}

const tempPrefix = "tortie-testenv-"

var sweepOnce sync.Once

// tempDir makes a directory that lives until the instance owning it is torn
// down (t.TempDir would vanish with the first test of a shared instance). It
// records the owning process so that directories left by a test binary that
// died without cleaning up (-timeout, SIGKILL) are removed by the next one.
func tempDir(prefix string) (string, error) {
	sweepOnce.Do(sweepStaleDirs)
	dir, err := os.MkdirTemp("", tempPrefix+prefix+"-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

const ownerFile = "testenv.owner"

// sweepStaleDirs removes testenv directories whose owning process is gone.
// Where liveness cannot be told (processAlive reports ok=false), it keeps
// them.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if alive, ok := processAlive(pid); ok && !alive {
			_ = os.RemoveAll(dir)
		}
	}
}
