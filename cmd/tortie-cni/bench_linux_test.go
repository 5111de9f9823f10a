//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/embedded"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/linux/cnitest"
)

// BenchmarkCNILatency measures CNI ADD and DEL latency through libcni, exactly as containerd drives
// plugins, for tortie (tortie + in-process tortie-ipam on an embedded etcd) against the reference
// ptp + host-local plugins (Debian's containernetworking-plugins) and, as the exec floor, loopback.
// Both are driven identically — same node namespace, same libcni client, cniVersion 1.0.0 (the
// reference plugins' highest) — and interleaved: for every pod each plugin's ADD runs back to back
// in an order that alternates per pod; pods accumulate (TORTIE_BENCH_PODS, default 100); then every
// pod is deleted the same way. Namespaces are created outside the timed region. It reports p50, p90
// and p99 per plugin and the ratios to ptp; with TORTIE_BENCH_OUT=file it also writes the table as
// Markdown. Run it with
//
//	go test -run '^$' -bench CNILatency -benchtime 1x ./cmd/tortie-cni/
//
// The embedded etcd runs inside the node's namespace on tmpfs without fsync, so the datastore is as
// close to the plugin as host-local's files are to host-local. The plugin is built as `make build`
// ships it and installed by copying, as the reference plugins are (benchPluginDir).
//
// TORTIE_BENCH_EXTRA=label=/path/to/tortie-cni[,label2=/path2] adds other builds of the plugin (an
// older commit, an experiment; installed by copying, as the plugin under test is) to the same
// interleaved run, each as its own network with its own pods, so that builds are compared under the
// same load (load varies too much between runs on a shared machine for separate runs to be
// comparable).
func BenchmarkCNILatency(b *testing.B) {
	testenv.RequireRoot(b)
	for _, p := range []string{"ptp", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cnitest.ReferencePluginDir, p)); err != nil {
			testenv.Unavailable(b, "reference plugin %s missing (apt-get install -y containernetworking-plugins): %v", p, err)
		}
	}
	pods := 100
	if v := os.Getenv("TORTIE_BENCH_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("TORTIE_BENCH_PODS=%q is not a positive number", v)
		}
		pods = n
	}

	extras := benchExtras(b)
	node := cnitest.NewNode(b, "bench", benchPluginDir(b), cnitest.ReferencePluginDir, extras.dir)
	dataDir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "tortie-bench-etcd-")
		if err == nil {
			dataDir = d
			b.Cleanup(func() { _ = os.RemoveAll(d) })
		}
	}
	var em *embedded.Embedded
	if err := node.Do(func() (err error) {
		em, err = embedded.StartEmbedded(context.Background(), embedded.EmbeddedConfig{
			DataDir: dataDir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", UnsafeNoFsync: true,
		})
		return err
	}); err != nil {
		b.Fatalf("starting etcd in the node: %v", err)
	}
	b.Cleanup(func() { _ = em.Close() })

	// The benchmark's own client reaches etcd in the node through sockets created there.
	cli, err := clientv3.New(clientv3.Config{Endpoints: em.Endpoints(), DialTimeout: 10 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var c net.Conn
			err := node.Do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				return err
			})
			return c, err
		})}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.Close() })
	be := etcd.NewFromClient(cli, etcd.Config{})
	createPool(b, be, "bench-pool", "10.70.0.0/16")
	ci := api.NewClusterInformation()
	ci.Name = api.DefaultConfigName
	ready := true
	ci.Spec.DatastoreReady = &ready
	if _, err := be.Create(ctxFor(b), ci); err != nil {
		b.Fatal(err)
	}

	oursPlugin := map[string]any{
		"type": "tortie", "datastore_type": "etcdv3", "etcd_endpoints": strings.Join(em.Endpoints(), ","),
		"nodename": "bench", "nodename_file_optional": true, "mtu": 1500,
		"ipam_lock_file": filepath.Join(b.TempDir(), "ipam.lock"),
		"ipam":           map[string]any{"type": "tortie-ipam", "ipv4_pools": []string{"bench-pool"}},
	}
	// TORTIE_BENCH_LOG=file logs every invocation with its phase timings (this costs a little).
	if f := os.Getenv("TORTIE_BENCH_LOG"); f != "" {
		oursPlugin["log_file_path"], oursPlugin["log_level"] = f, "debug"
	}
	ours := benchConf(b, oursPlugin)
	ptp := benchConf(b, map[string]any{
		"type": "ptp", "ipMasq": false, "mtu": 1500,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]any{{{"subnet": "10.71.0.0/16"}}}, "dataDir": b.TempDir()},
	})
	loop := benchConf(b, map[string]any{"type": "loopback"})
	cases := []struct {
		name string
		conf *libcni.NetworkConfigList
	}{{"tortie", ours}, {"ptp+host-local", ptp}, {"loopback", loop}}
	for _, label := range extras.labels {
		pl := maps.Clone(oursPlugin)
		pl["type"] = "tortie-" + label
		pl["ipam_lock_file"] = filepath.Join(b.TempDir(), "ipam.lock")
		cases = append(cases, struct {
			name string
			conf *libcni.NetworkConfigList
		}{"tortie-" + label, benchConf(b, pl)})
	}
	// Pods of different cases need different names: tortie's host veth is named after the pod.
	podName := func(k, i int) string {
		if k < 3 {
			return fmt.Sprintf("pod-%d", i)
		}
		return fmt.Sprintf("%s-pod-%d", cases[k].name, i)
	}

	ctx := context.Background()
	// One unmeasured round trip each, so page cache and etcd's first compaction do not count.
	for _, c := range cases {
		p := cnitest.NewPod(b, "bench", "warmup-"+c.name)
		if _, err := node.Add(ctx, c.conf, p); err != nil {
			b.Fatalf("%s warm-up ADD: %v", c.name, err)
		}
		if err := node.Del(ctx, c.conf, p); err != nil {
			b.Fatalf("%s warm-up DEL: %v", c.name, err)
		}
	}

	add := make([][]time.Duration, len(cases))
	del := make([][]time.Duration, len(cases))
	sandboxes := make([][]*cnitest.Pod, len(cases))
	order := func(i int) []int {
		o := make([]int, len(cases))
		for k := range o {
			o[k] = (k + i) % len(cases)
		}
		return o
	}
	b.ResetTimer()
	for i := range pods {
		for _, k := range order(i) {
			p := cnitest.NewPod(b, "bench", podName(k, i))
			start := time.Now()
			if _, err := node.Add(ctx, cases[k].conf, p); err != nil {
				b.Fatalf("%s ADD of pod %d: %v", cases[k].name, i, err)
			}
			add[k] = append(add[k], time.Since(start))
			sandboxes[k] = append(sandboxes[k], p)
		}
	}
	for i := range pods {
		for _, k := range order(i) {
			start := time.Now()
			if err := node.Del(ctx, cases[k].conf, sandboxes[k][i]); err != nil {
				b.Fatalf("%s DEL of pod %d: %v", cases[k].name, i, err)
			}
			del[k] = append(del[k], time.Since(start))
		}
	}
	b.StopTimer()

	var tbl strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&tbl, "%d pods, sequential, accumulating; interleaved per pod; cniVersion 1.0.0; load average at the end: %s\n\n",
		pods, strings.Join(strings.Fields(string(load))[:3], " "))
	tbl.WriteString("| plugin | ADD p50 | ADD p90 | ADD p99 | DEL p50 | DEL p90 | DEL p99 |\n|---|---|---|---|---|---|---|\n")
	stats := make([][6]time.Duration, len(cases))
	for k, c := range cases {
		stats[k] = [6]time.Duration{pct(add[k], 50), pct(add[k], 90), pct(add[k], 99), pct(del[k], 50), pct(del[k], 90), pct(del[k], 99)}
		fmt.Fprintf(&tbl, "| %s |", c.name)
		for _, d := range stats[k] {
			fmt.Fprintf(&tbl, " %s |", ms(d))
		}
		tbl.WriteString("\n")
	}
	ratio := func(k, col int) float64 { return float64(stats[0][col]) / float64(stats[k][col]) }
	fmt.Fprintf(&tbl, "| **tortie ÷ ptp+host-local** | **%.2f×** | %.2f× | **%.2f×** | **%.2f×** | %.2f× | %.2f× |\n",
		ratio(1, 0), ratio(1, 1), ratio(1, 2), ratio(1, 3), ratio(1, 4), ratio(1, 5))
	for k := 3; k < len(cases); k++ {
		r := func(col int) float64 { return float64(stats[k][col]) / float64(stats[1][col]) }
		fmt.Fprintf(&tbl, "| %s ÷ ptp+host-local | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× |\n",
			cases[k].name, r(0), r(1), r(2), r(3), r(4), r(5))
	}
	fmt.Fprintf(&tbl, "| tortie ÷ loopback (exec floor) | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× |\n",
		ratio(2, 0), ratio(2, 1), ratio(2, 2), ratio(2, 3), ratio(2, 4), ratio(2, 5))
	b.Log("\n" + tbl.String())
	if out := os.Getenv("TORTIE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(tbl.String()), 0o644); err != nil {
			b.Errorf("writing %s: %v", out, err)
		}
	}
	b.ReportMetric(float64(stats[0][0])/1e6, "tortie-add-p50-ms")
	b.ReportMetric(float64(stats[0][2])/1e6, "tortie-add-p99-ms")
	b.ReportMetric(float64(stats[1][0])/1e6, "ptp-add-p50-ms")
	b.ReportMetric(ratio(1, 0), "add-p50-ratio")
	b.ReportMetric(ratio(1, 2), "add-p99-ratio")
	b.ReportMetric(ratio(1, 3), "del-p50-ratio")
}

// benchPluginDir builds the plugin as `make build` ships it — CGO_ENABLED=0, a static binary — and
// installs it the way an installer does, by copying, with the plugin names linked to it.
//
// Both matter for a process that lives for milliseconds. A cgo build (what a plain `go build` makes on
// a machine with a C compiler, and what cnitest.PluginDir runs) is dynamically linked and pays the
// dynamic loader and libc's start-up on every invocation: about 0.5 ms here. And the linker writes
// its output through a memory mapping, which leaves the file's page cache in small pages; every
// invocation then pays more for its page faults than a copied (installed) binary or one read from
// disk after a reboot: about 1 ms per start here, for the same bytes. TORTIE_BENCH_CGO=1 benchmarks a
// cgo build (installed the same way) instead.
func benchPluginDir(b *testing.B) string {
	build := filepath.Join(b.TempDir(), "tortie-cni")
	cmd := exec.Command("go", "build", "-o", build, "./cmd/tortie-cni")
	cmd.Dir = cnitest.ModuleRoot(b)
	cmd.Env = os.Environ()
	if os.Getenv("TORTIE_BENCH_CGO") != "1" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/tortie-cni: %v\n%s", err, out)
	}
	dir := b.TempDir()
	installCopy(b, build, filepath.Join(dir, "tortie-cni"))
	for _, name := range cnitest.PluginNames {
		if err := os.Symlink("tortie-cni", filepath.Join(dir, name)); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// installCopy copies an executable with plain reads and writes, as an installer copies a plugin into
// the CNI bin directory (see benchPluginDir for why the benchmark does not run the linker's output).
func installCopy(b *testing.B, src, dst string) {
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
}

// benchExtra are the builds named by TORTIE_BENCH_EXTRA, linked as "tortie-<label>" in dir.
type benchExtra struct {
	dir    string
	labels []string
}

func benchExtras(b *testing.B) benchExtra {
	e := benchExtra{dir: b.TempDir()}
	v := os.Getenv("TORTIE_BENCH_EXTRA")
	if v == "" {
		return e
	}
	for _, item := range strings.Split(v, ",") {
		label, path, ok := strings.Cut(item, "=")
		if !ok || label == "" || strings.ContainsAny(label, "/ ") || strings.HasSuffix(label, "ipam") {
			b.Fatalf("TORTIE_BENCH_EXTRA: %q is not label=/path/to/tortie-cni", item)
		}
		if _, err := os.Stat(path); err != nil {
			b.Fatalf("TORTIE_BENCH_EXTRA: %v", err)
		}
		// Installed like the plugin under test, so that every build starts from the same state.
		installCopy(b, path, filepath.Join(e.dir, "tortie-"+label))
		e.labels = append(e.labels, label)
	}
	return e
}

func benchConf(t testing.TB, plugin map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "bench-" + plugin["type"].(string), "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	return cnitest.ConfList(t, string(raw))
}

// pct is the p-th percentile (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
