package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
	winsvc "github.com/tortie-net/tortie/windows/service"
	"github.com/tortie-net/tortie/windows/service/scmfake"
)

// withFakeSCM points the service commands at a fake service control manager whose "processes" run
// this package's Main with the service's arguments, as the real SCM starts tortie-node.exe. Not
// parallel: it replaces package state.
func withFakeSCM(t *testing.T, processEnv map[string]string) (*scmfake.SCM, string) {
	t.Helper()
	pd := filepath.Join(t.TempDir(), "ProgramData")
	scm := scmfake.New()
	t.Cleanup(scm.Close)
	scm.Launch = func(args []string) {
		var out bytes.Buffer
		code := Main(context.Background(), args, Env{
			Stdout: &out, Stderr: &out,
			Getenv: func(k string) string { return processEnv[k] },
			Interfaces: autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{{
				Name: "Ethernet", Up: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.7/24")},
			}}},
			Hostname: func() (string, error) { return "WIN-HOST", nil },
		})
		if code != exitOK {
			t.Logf("service process exited %d: %s", code, out.String())
		}
	}
	old := serviceHost
	serviceHost = func() winsvc.Host { return scm.Host(winsvc.Name, pd) }
	t.Cleanup(func() { serviceHost = old })
	return scm, pd
}

// waitFor polls cond until it holds or the test's context ends (no timing assertion: only a bound).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestServiceCommandsUsage(t *testing.T) {
	withFakeSCM(t, nil)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad --env", []string{"service", "install", "--env", "NODENAME"}, exitUsage, `--env "NODENAME": want KEY=VALUE`},
		{"bad --start-type", []string{"service", "install", "--start-type", "sometimes"}, exitUsage, `--start-type="sometimes"`},
		{"relative --env-file", []string{"service", "install", "--env-file", "tortie.env"}, exitUsage, "give an absolute path"},
		{"status before install", []string{"service", "status"}, exitOK, "not-installed"},
		{"start before install", []string{"service", "start"}, exitError, "not installed; run 'tortie-node service install' first"},
		{"configure before install", []string{"service", "configure"}, exitError, "install the MSI"},
		{"help", []string{"service", "--help"}, exitOK, "Application Event Log"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d; output %q does not contain %q", code, tt.code, stdout+stderr, tt.want)
			}
		})
	}
}

type fakeNode struct{ holdsVXLAN bool }

func (fakeNode) WindowsBuild() (uint32, error) { return 20348, nil }
func (fakeNode) Service(name string) (winsvc.ServiceInfo, error) {
	return winsvc.ServiceInfo{Installed: true, Running: name == "hns"}, nil
}
func (n fakeNode) UDPPortInUse(int) (bool, error) { return n.holdsVXLAN, nil }
func (fakeNode) Elevated() (bool, error)          { return true, nil }

func TestServiceCheck(t *testing.T) {
	old := prereqHost
	t.Cleanup(func() { prereqHost = old })
	prereqHost = func() winsvc.PrereqHost { return fakeNode{} }
	code, stdout, stderr := runMain(t, nil, "service", "check")
	if code != exitOK || !strings.Contains(stdout, "ok    HNS           running") || !strings.Contains(stdout, "containerd    installed, stopped") {
		t.Errorf("check on a ready node: exit %d\n%s%s", code, stdout, stderr)
	}
	prereqHost = func() winsvc.PrereqHost { return fakeNode{holdsVXLAN: true} }
	code, stdout, stderr = runMain(t, nil, "service", "check", "--json")
	if code != exitError || !strings.Contains(stderr, "prerequisites not met: VXLANPort") ||
		!strings.Contains(stdout, `"check": "VXLANPort",`+"\n"+`    "ok": false,`) {
		t.Errorf("check with UDP 4789 taken: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The whole service path against real etcd: install writes the settings, the service manager starts
// `service run`, which runs node startup with those settings (the Node is registered and the node name
// file written) and then the agent; stop cancels the agent; uninstall removes the service.
func TestServiceRunsStartupThenAgent(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	scm, pd := withFakeSCM(t, map[string]string{"LOG_LEVEL": "info", "NODENAME": "name-from-the-machine-environment"})
	dir := t.TempDir()
	nodenameFile := filepath.Join(dir, "calico", "nodename")

	type agentRun struct {
		nodename string
		ctxErr   error
	}
	runs := make(chan agentRun, 4)
	old := agentMain
	agentMain = func(ctx context.Context, env *Env, log *slog.Logger) error {
		log.Info("fake agent running")
		runs <- agentRun{nodename: env.Getenv("NODENAME")}
		<-ctx.Done()
		runs <- agentRun{ctxErr: ctx.Err()}
		return nil
	}
	t.Cleanup(func() { agentMain = old })

	code, stdout, stderr := runMain(t, nil, "service", "install",
		"--env", "DATASTORE_TYPE=etcdv3",
		"--env", "ETCD_ENDPOINTS="+strings.Join(endpoints, ","),
		"--env", "KUBECONFIG=", // an empty MSI property: not written
		"--env", "NODENAME=win-node-1",
		"--env", "CALICO_NODENAME_FILE="+nodenameFile,
		"--env", "TORTIE_NODENAME_FILE="+filepath.Join(dir, "tortie", "nodename"),
		"--env", "TORTIE_MTU_FILE="+filepath.Join(dir, "calico", "mtu"),
		"--env", "CALICO_IPV4POOL_CIDR=10.90.0.0/16",
		"--env", "FELIX_IPV6SUPPORT=false",
	)
	if code != exitOK {
		t.Fatalf("install exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "installed service tortie-node") || !strings.Contains(stdout, "restart after 5s, restart after 15s, restart after 1m0s") {
		t.Errorf("install output:\n%s", stdout)
	}
	envFile := filepath.Join(pd, "tortie", "tortie-node.env")
	if b, err := os.ReadFile(envFile); err != nil || strings.Contains(string(b), "KUBECONFIG") {
		t.Errorf("environment file (err %v):\n%s", err, b)
	}

	if code, _, stderr := runMain(t, nil, "service", "start"); code != exitOK {
		t.Fatalf("start exit %d: %s", code, stderr)
	}
	var first agentRun
	waitFor(t, "the agent to run", func() bool {
		select {
		case first = <-runs:
			return true
		default:
		}
		if ev := strings.Join(scm.EventLog(), "\n"); strings.Contains(ev, "terminated unexpectedly") {
			log, _ := os.ReadFile(filepath.Join(pd, "tortie", "logs", "tortie-node.log"))
			t.Fatalf("the service failed before the agent ran; event log:\n%s\nlog:\n%s", ev, log)
		}
		return false
	})
	if first.nodename != "win-node-1" {
		t.Errorf("the agent saw NODENAME=%q, want the environment file's win-node-1", first.nodename)
	}
	if b, err := os.ReadFile(nodenameFile); err != nil || string(b) != "win-node-1" {
		t.Errorf("startup's node name file = %q, %v", b, err)
	}
	if code, stdout, _ := runMain(t, nil, "service", "status"); code != exitOK || stdout != "running\n" {
		t.Errorf("status = %d %q", code, stdout)
	}
	if code, _, stderr := runMain(t, nil, "service", "stop"); code != exitOK {
		t.Fatalf("stop exit %d: %s", code, stderr)
	}
	if r := <-runs; r.ctxErr == nil {
		t.Error("stop did not cancel the agent's context")
	}
	log, err := os.ReadFile(filepath.Join(pd, "tortie", "logs", "tortie-node.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="startup summary" node=win-node-1 ipv4=10.0.0.7/24`, `msg="fake agent running"`, `msg="service stopped"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("service log lacks %q:\n%s", want, log)
		}
	}
	if code, _, stderr := runMain(t, nil, "service", "uninstall"); code != exitOK {
		t.Fatalf("uninstall exit %d: %s", code, stderr)
	}
}

// Until the agent is built in, the service runs startup, then stops with a clear error in the Event Log,
// and the service manager's recovery restarts it.
func TestServiceWithoutAgent(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	scm, _ := withFakeSCM(t, nil)
	old := agentMain
	agentMain = nil
	t.Cleanup(func() { agentMain = old })
	dir := t.TempDir()
	if code, _, stderr := runMain(t, nil, "service", "install",
		"--env", "DATASTORE_TYPE=etcdv3", "--env", "ETCD_ENDPOINTS="+strings.Join(endpoints, ","),
		"--env", "NODENAME=win-node-2", "--env", "CALICO_NODENAME_FILE="+filepath.Join(dir, "nodename"),
		"--env", "TORTIE_NODENAME_FILE="+filepath.Join(dir, "tnodename"), "--env", "TORTIE_MTU_FILE="+filepath.Join(dir, "mtu"),
	); code != exitOK {
		t.Fatalf("install: %s", stderr)
	}
	if code, _, stderr := runMain(t, nil, "service", "start"); code != exitOK {
		t.Fatalf("start: %s", stderr)
	}
	waitFor(t, "the service to fail", func() bool {
		return strings.Contains(strings.Join(scm.EventLog(), "\n"), "restarting in 5s")
	})
	ev := strings.Join(scm.EventLog(), "\n")
	if !strings.Contains(ev, "the agent is not built into this binary") {
		t.Errorf("event log lacks the missing-agent error:\n%s", ev)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "nodename")); err != nil || string(b) != "win-node-2" {
		t.Errorf("startup did not run before the error: %q, %v", b, err)
	}
}
