// Package testenv starts real services for Go tests: etcd (embedded in the
// test binary, or Debian's etcd binary as a separate process) and a real
// kube-apiserver built by ci/build-kube-apiserver.sh.
//
// # Wiring a package
//
// Shared instances (Etcd, KubeAPIServer) are started once per test binary and
// must be stopped when the binary ends, not when the first test that asked for
// them ends. A package that uses them calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// (or `os.Exit(testenv.Run(m))` when TestMain does more). Main runs the tests
// and then stops every process and removes every directory that testenv
// registered. Without Main, Etcd and KubeAPIServer still work but give each
// caller a private instance that is torn down by t.Cleanup: correct, but
// slower. On Linux every child process also gets PR_SET_PDEATHSIG(SIGKILL),
// so a test binary killed by -timeout or a signal does not leave etcd or
// kube-apiserver running.
//
// # Shared versus private instances
//
//   - Etcd: one embedded etcd per test binary. Tests share its keyspace, so
//     each test uses its own key prefix, or calls EtcdClean (and then must not
//     run in parallel with other tests using it).
//   - EtcdProcess: a private etcd process per call, for tests that stop and
//     restart etcd (Process.Stop, Process.Kill, Process.Start keep the data dir
//     and ports).
//   - KubeAPIServer: one etcd process + kube-apiserver per test binary.
//     KubeAPIServer restarts whichever of the two a previous test left
//     stopped. Tests that stop and restart them should use NewKubeAPIServer,
//     which gives a private instance, so parallel tests are not disturbed.
//
// Tests on the shared KubeAPIServer use their own namespaces or object names.
//
// # Example
//
//	func TestWatch(t *testing.T) {
//		k := testenv.NewKubeAPIServer(t) // private: this test restarts it
//		cs := kubernetes.NewForConfigOrDie(k.RestConfig())
//		// ... start a watch ...
//		if err := k.StopAPIServer(); err != nil {
//			t.Fatal(err)
//		}
//		if err := k.StartAPIServer(); err != nil { // same port, certs, data
//			t.Fatal(err)
//		}
//		// ... the watch must resume ...
//	}
//
// k.Kubeconfig() is a kubeconfig file for client-go's loaders and for
// commands run with KUBECONFIG set (tortiectl). Starting a kube-apiserver
// takes about 5-15 s on this project's 2-core machines; sharing it is what
// keeps suites fast.
//
// # Files
//
// Data directories, certificates and logs live in $TMPDIR/tortie-testenv-*,
// removed when the instance is torn down. Each records its owner's pid; a
// directory left by a test binary that was killed is removed by the next
// test binary that uses testenv (on Linux). A failed start's error includes
// the tail of the service's log; Process.LogPath names the whole log.
//
// # Finding the binaries
//
//   - TORTIE_ETCD: path to etcd (default: "etcd" on PATH; Debian's etcd-server
//     package installs /usr/bin/etcd, version 3.4).
//   - TORTIE_KUBE_APISERVER: path to kube-apiserver (ci/build-kube-apiserver.sh
//     prints it; ci/test-env.sh exports it).
//
// When a binary is missing the test is skipped with the reason, unless
// TORTIE_REQUIRE_SERVICES=1 (CI sets it), in which case it fails.
//
// This package uses only portable standard-library APIs (os/exec, net,
// crypto); the Linux-only parent-death signal lives in procattr_linux.go.
package testenv
