package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/startup/node"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/platform"
	"github.com/tortie-net/tortie/platform/agent"
	"github.com/tortie-net/tortie/platform/fake"
	windp "github.com/tortie-net/tortie/windows/dataplane"
	"github.com/tortie-net/tortie/windows/hcn"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// TestVTEPPublisherRetries: a failed write is retried with doubling backoff; a newer VTEP offered while
// a write is being retried replaces it and is written at once; offering never blocks.
func TestVTEPPublisherRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v1 := windp.VTEP{TunnelAddress: netip.MustParseAddr("10.0.1.1"), MAC: "00:15:5d:00:00:01"}
		v2 := windp.VTEP{TunnelAddress: netip.MustParseAddr("10.0.1.1"), MAC: "00:15:5d:00:00:02"}
		type attempt struct {
			at time.Duration
			v  windp.VTEP
		}
		var (
			mu       sync.Mutex
			attempts []attempt
		)
		start := time.Now()
		p := newVTEPPublisher(func(_ context.Context, v windp.VTEP) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, attempt{time.Since(start), v})
			if v == v1 {
				return false, errors.New("etcd unavailable")
			}
			return true, nil
		}, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.run(ctx)
		p.offer(v1)
		time.Sleep(3500 * time.Millisecond) // attempts at 0, 1 s and 3 s
		synctest.Wait()
		p.offer(v2) // while the 4 s backoff runs
		synctest.Wait()
		time.Sleep(time.Minute) // nothing more to write
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := []attempt{{0, v1}, {time.Second, v1}, {3 * time.Second, v1}, {3500 * time.Millisecond, v2}}
		if len(attempts) != len(want) {
			t.Fatalf("attempts %+v, want %+v", attempts, want)
		}
		for i := range want {
			if attempts[i] != want[i] {
				t.Errorf("attempt %d: %+v, want %+v", i, attempts[i], want[i])
			}
		}
	})

	// The mailbox: offering never blocks and the newest value wins.
	p := newVTEPPublisher(nil, slog.New(slog.DiscardHandler))
	a := windp.VTEP{MAC: "00:15:5d:00:00:0a"}
	b := windp.VTEP{MAC: "00:15:5d:00:00:0b"}
	p.offer(a)
	p.offer(b)
	if got := <-p.slot; got != b {
		t.Errorf("pending VTEP %+v, want the newest %+v", got, b)
	}
}

// bootNode runs start-up for a node of the given OS with the given address.
func bootNode(t *testing.T, be datastore.Backend, name, goos, ip string) *node.Result {
	t.Helper()
	env := map[string]string{
		"NODENAME": name, "IP": ip, "CALICO_IPV4POOL_CIDR": "10.85.0.0/16", "CALICO_IPV4POOL_VXLAN": "Always",
		"FELIX_IPV6SUPPORT": "false",
	}
	dir := t.TempDir()
	res, err := node.Run(t.Context(), node.Options{
		Backend: be, DatastoreType: node.DatastoreEtcd, Env: func(k string) string { return env[k] }, GOOS: goos,
		Interfaces: autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{{
			Name: "eth0", Up: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix(ip + "/24")},
		}}},
		Hostname: func() (string, error) { return name, nil },
		Files: node.Files{NodenameFile: filepath.Join(dir, "nodename"), TortieNodenameFile: filepath.Join(dir, "tortie-nodename"),
			MTUFile: filepath.Join(dir, "mtu")},
	})
	if err != nil {
		t.Fatalf("start-up of %s: %v", name, err)
	}
	return res
}

// startAgent runs the agent of a node over dp until the test ends, as runAgent does after start-up.
func startAgent(t *testing.T, be datastore.Backend, name string, dp platform.Dataplane, log *slog.Logger) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "felix.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FELIX_CONFIGFILE": cfg, "FELIX_HEALTHENABLED": "false"}
	settings, err := config.LoadAgent(func(k string) string { return env[k] }, name, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	publishWindowsVTEP(ctx, dp, be, name, log)
	a, err := agent.New(agent.Options{NodeName: name, Dataplane: dp, Settings: settings, Logger: log,
		Syncer: func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
			return datastore.NewSyncer(be, cb, kinds, datastore.WithBackoff(time.Second, 5*time.Second), datastore.WithLogger(log))
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent of %s: %v", name, err)
		}
	})
}

// waitState polls cond until it holds or a generous deadline passes (a wait, not a timing assertion).
func waitState(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// overlayState returns the HNS overlay network's router MAC in Linux form and its RemoteSubnetRoutes.
func overlayState(t *testing.T, h *hcnfake.HNS) (string, []hcn.RemoteSubnetRouteSetting) {
	t.Helper()
	n, err := h.GetNetworkByName(t.Context(), config.HNSOverlayNetwork)
	if hcn.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var mac string
	var routes []hcn.RemoteSubnetRouteSetting
	for _, p := range n.Policies {
		switch p.Type {
		case hcn.NetworkPolicyDrMacAddress:
			var s hcn.DrMacAddressSetting
			if err := json.Unmarshal(p.Settings, &s); err != nil {
				t.Fatal(err)
			}
			mac = strings.ToLower(strings.ReplaceAll(s.Address, "-", ":"))
		case hcn.NetworkPolicyRemoteSubnetRoute:
			var s hcn.RemoteSubnetRouteSetting
			if err := json.Unmarshal(p.Settings, &s); err != nil {
				t.Fatal(err)
			}
			routes = append(routes, s)
		}
	}
	return mac, routes
}

// TestWindowsVTEPReachesLinuxPeers runs a Windows node (the Windows dataplane on the fake HNS) and a
// Linux node (the fake dataplane) over embedded etcd, each start-up then agent as `tortie-node run`:
// the Windows node publishes its overlay network's gateway and router MAC on its Node, and the Linux
// node's calculation hands its dataplane a VTEP for the Windows node with exactly those (what its FDB
// and neighbour entries are made of); the Windows node gets a RemoteSubnetRoute to the Linux block
// through the Linux VTEP.
func TestWindowsVTEPReachesLinuxPeers(t *testing.T) {
	endpoints := testenv.Etcd(t)
	testenv.EtcdClean(t, endpoints)
	be, err := etcd.New(etcd.Config{Endpoints: endpoints, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	log := slog.New(slog.DiscardHandler)

	winRes := bootNode(t, be, "win1", "windows", "192.0.2.10")
	linRes := bootNode(t, be, "lin1", "linux", "192.0.2.20")
	winAddr := netip.MustParseAddr(vxlanAddr(t, winRes))
	if winAddr.As4()[3]%64 != 1 {
		t.Fatalf("Windows VXLAN tunnel address %s is not a /26 block's gateway", winAddr)
	}
	if obj, err := be.Get(t.Context(), datastore.Key{Kind: api.KindNode, Name: "win1"}); err != nil || obj.(*api.Node).Spec.VXLANTunnelMACAddr != "" {
		t.Fatalf("Node win1 after start-up: %+v, %v; want no VXLAN MAC before the HNS network exists", obj, err)
	}

	h := hcnfake.New(hcnfake.Options{ProviderAddress: netip.MustParseAddr("192.0.2.10")})
	startAgent(t, be, "win1", windp.New(windp.Options{API: h, Logger: log}), log)
	lin := fake.New(fake.WithLogger(log))
	startAgent(t, be, "lin1", lin, log)

	var drMAC string
	waitState(t, "the Windows node's router MAC on its Node", func() (bool, string) {
		drMAC, _ = overlayState(t, h)
		obj, err := be.Get(t.Context(), datastore.Key{Kind: api.KindNode, Name: "win1"})
		if err != nil {
			return false, err.Error()
		}
		n := obj.(*api.Node)
		return drMAC != "" && n.Spec.VXLANTunnelMACAddr == drMAC && n.Spec.IPv4VXLANTunnelAddr == winAddr.String(),
			"HNS router MAC " + drMAC + ", Node " + n.Spec.IPv4VXLANTunnelAddr + " " + n.Spec.VXLANTunnelMACAddr
	})
	want := dpmodel.VTEP{TunnelIPv4: winAddr, MACv4: drMAC, ParentIPv4: netip.MustParseAddr("192.0.2.10")}
	waitState(t, "the Linux node's VTEP for the Windows node", func() (bool, string) {
		v, ok := lin.Desired().VTEPs["win1"]
		return ok && v == want, strings.TrimSpace(lin.Render())
	})
	linMAC := linRes.VXLANTunnelMAC
	waitState(t, "the Windows node's route to the Linux block", func() (bool, string) {
		_, routes := overlayState(t, h)
		for _, r := range routes {
			if r.ProviderAddress == "192.0.2.20" && r.DistributedRouterMacAddress == strings.ReplaceAll(linMAC, ":", "-") {
				return true, ""
			}
		}
		b, _ := json.Marshal(routes)
		return false, string(b)
	})
}

func vxlanAddr(t *testing.T, res *node.Result) string {
	t.Helper()
	for _, tr := range res.Tunnels {
		if tr.Type == "vxlanTunnelAddress" {
			return tr.Address
		}
	}
	t.Fatalf("no VXLAN tunnel address in %+v", res.Tunnels)
	return ""
}
