package hcnfake

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/windows/hcn"
)

// TestOpenSharesState: two fakes opened on one file (as a CNI plugin process and an agent would) see each
// other's changes, including options, counters and stored failures.
func TestOpenSharesState(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hns.json")
	a, err := Open(path, Options{Version: hcn.Version{Major: 12, Minor: 0}})
	if err != nil {
		t.Fatal(err)
	}
	// The second opener's options are ignored: the file's win.
	b, err := Open(path, Options{Version: hcn.Version{Major: 15, Minor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Version(ctx); v != (hcn.Version{Major: 12, Minor: 0}) {
		t.Errorf("b.Version = %v, want the file's 12.0", v)
	}
	n, err := a.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/26", 4096))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.GetNetworkByName(ctx, "tortie-vxlan")
	if err != nil {
		t.Fatalf("b does not see a's network: %v", err)
	}
	if diff := cmp.Diff(n, got); diff != "" {
		t.Errorf("network as b reads it (-a +b):\n%s", diff)
	}
	ep, err := b.CreateEndpoint(ctx, &hcn.Endpoint{Name: "p", HostComputeNetwork: n.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: "10.0.0.5"}}})
	if err != nil {
		t.Fatal(err)
	}
	// a's evaluator sees b's endpoint (its compiled rules are invalidated by the load).
	if v := a.Verdict(Packet{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("8.8.8.8"), Protocol: 6, DstPort: 53}); !v.Allowed {
		t.Errorf("a's verdict for b's endpoint: %+v", v)
	}
	if err := a.ApplyEndpointPolicy(ctx, ep.ID, hcn.RequestUpdate, []hcn.EndpointPolicy{acl(hcn.ACLSetting{Action: hcn.ActionBlock, Direction: hcn.DirectionOut, Priority: 100})}); err != nil {
		t.Fatal(err)
	}
	if v := b.Verdict(Packet{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("8.8.8.8"), Protocol: 6, DstPort: 53}); v.Allowed {
		t.Errorf("b's verdict after a blocked egress: %+v", v)
	}
	// A failure injected through one handle fails the other's call, once.
	a.FailNext("DeleteEndpoint", errors.New("injected"))
	if err := b.DeleteEndpoint(ctx, ep.ID); err == nil {
		t.Error("b.DeleteEndpoint succeeded despite a.FailNext")
	}
	if err := b.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Errorf("second DeleteEndpoint: %v", err)
	}
	if got := a.Calls()["DeleteEndpoint"]; got != 2 {
		t.Errorf("a counts %d DeleteEndpoint calls made by b, want 2", got)
	}
	// A third opener starts from the file.
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if eps, _ := c.ListEndpoints(ctx); len(eps) != 0 {
		t.Errorf("endpoints after delete: %+v", eps)
	}
	if c.Blips() != 1 {
		t.Errorf("blips = %d, want 1", c.Blips())
	}
	if c.Path() != path || New(Options{}).Path() != "" {
		t.Errorf("Path() = %q", c.Path())
	}
}

// TestOpenConcurrent: concurrent calls through separate handles lose no update.
func TestOpenConcurrent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hns.json")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := first.CreateNetwork(ctx, overlay("tortie-vxlan", "10.0.0.0/24", 4096))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 4 {
		h, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				ip := fmt.Sprintf("10.0.0.%d", 10+w*10+i)
				if _, err := h.CreateEndpoint(ctx, &hcn.Endpoint{Name: ip, HostComputeNetwork: n.ID, IpConfigurations: []hcn.IPConfig{{IpAddress: ip}}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eps, err := first.ListEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range eps {
		ids[e.ID] = true
	}
	if len(eps) != 40 || len(ids) != 40 {
		t.Errorf("%d endpoints with %d distinct IDs, want 40", len(eps), len(ids))
	}
}

func TestOpenBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hns.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("Open of a corrupt state file succeeded")
	}
	h, err := Open(filepath.Join(t.TempDir(), "ok.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListNetworks(t.Context()); err == nil {
		t.Error("a call after the state file was corrupted succeeded")
	}
}

// TestContainers models the Docker flow: endpoints hot-attached to an infra container join its
// compartment; an application container sharing it attaches the same endpoint.
func TestContainers(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t, Options{})
	h := w.h
	if err := h.HotAttachEndpoint(ctx, "infra", w.a.ID); !hcn.IsNotFound(err) {
		t.Fatalf("attach to a missing container: %v, want not found", err)
	}
	ns, err := h.AddContainer("infra", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddContainer("app", "infra"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"infra", "infra", "app"} {
		if err := h.HotAttachEndpoint(ctx, c, w.a.ID); err != nil {
			t.Fatalf("attach to %s: %v", c, err)
		}
	}
	e, _ := h.GetEndpointByID(ctx, w.a.ID)
	if e.HostComputeNamespace != ns {
		t.Errorf("attached endpoint's namespace %q, want the container's %q", e.HostComputeNamespace, ns)
	}
	if err := h.HotAttachEndpoint(ctx, "infra", "nope"); !hcn.IsNotFound(err) {
		t.Errorf("attach of a missing endpoint: %v", err)
	}
	if err := h.HotDetachEndpoint(ctx, "infra", w.a.ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := h.GetEndpointByID(ctx, w.a.ID); e.HostComputeNamespace != ns {
		t.Errorf("still attached to app, namespace %q", e.HostComputeNamespace)
	}
	if err := h.HotDetachEndpoint(ctx, "app", w.a.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.HotDetachEndpoint(ctx, "app", w.a.ID); err != nil {
		t.Errorf("second detach: %v", err)
	}
	if e, _ := h.GetEndpointByID(ctx, w.a.ID); e.HostComputeNamespace != "" {
		t.Errorf("detached endpoint's namespace %q", e.HostComputeNamespace)
	}
	if err := h.HotAttachEndpoint(ctx, "infra", w.b.ID); err != nil {
		t.Fatal(err)
	}
	h.RemoveContainer("app")
	h.RemoveContainer("infra")
	if e, _ := h.GetEndpointByID(ctx, w.b.ID); e.HostComputeNamespace != "" {
		t.Errorf("endpoint of a removed container still in namespace %q", e.HostComputeNamespace)
	}
	if nss, _ := h.ListNamespaces(ctx); len(nss) != 0 {
		t.Errorf("namespaces after the containers left: %+v", nss)
	}
}
