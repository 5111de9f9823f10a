package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/startup/mtu"
)

// Result summarises what Run decided and changed. Changes lists every write — datastore objects and
// files — in the order they happened; it is empty when startup found everything as it should be, so
// a second run right after a first one reports no changes.
type Result struct {
	// NodeName is this node's name and NodeNameSource where it came from ("env: NODENAME", …).
	NodeName       string
	NodeNameSource string
	// K8sNodeName is the Kubernetes Node name (CALICO_K8S_NODE_REF, else NodeName).
	K8sNodeName string
	// DatastoreType is kubernetes or etcdv3.
	DatastoreType string
	// IPv4 and IPv6 are the node's addresses as decided (Source says how).
	IPv4, IPv6 autodetect.NodeIP
	// ASNumber is the node's own AS number after startup (nil: the cluster default applies).
	ASNumber *api.ASNumber
	// Pools says what happened to each default pool.
	Pools []PoolResult
	// Tunnels says what happened to each tunnel address type.
	Tunnels []TunnelResult
	// VXLANTunnelMAC and VXLANTunnelMACV6 are the node's VXLAN device MACs (empty without VXLAN).
	VXLANTunnelMAC, VXLANTunnelMACV6 string
	// Encap is the encapsulation set the MTU was computed for; MTU the computation.
	Encap mtu.Encap
	MTU   mtu.Result
	// Changes lists the writes made ("created IPPool default-ipv4-ippool", "wrote /var/lib/calico/mtu").
	Changes []string
	// Warnings are non-fatal problems, also logged.
	Warnings []string
}

// Changed reports whether Run wrote anything.
func (r *Result) Changed() bool { return len(r.Changes) > 0 }

// PoolResult is the outcome for one default pool.
type PoolResult struct {
	// Family is 4 or 6; Name the pool name (default-ipv4-ippool, default-ipv6-ippool).
	Family int
	Name   string
	// CIDR is the CIDR the pool has or would have had, and CIDRSource where it came from.
	CIDR       string
	CIDRSource string
	// Action is what happened (PoolCreated, PoolExists, …).
	Action PoolAction
}

// PoolAction is what startup did about one default pool.
type PoolAction string

const (
	// PoolCreated: the pool was created.
	PoolCreated PoolAction = "created"
	// PoolExists: a pool of the family already exists (perhaps created by another node just now).
	PoolExists PoolAction = "exists"
	// PoolDisabledByEnv: CALICO_IPV4POOL_CIDR / CALICO_IPV6POOL_CIDR is "none".
	PoolDisabledByEnv PoolAction = "disabled"
	// PoolNoDefaultPools: NO_DEFAULT_POOLS=true.
	PoolNoDefaultPools PoolAction = "no-default-pools"
	// PoolIPv6Unsupported: IPv6 is off (FELIX_IPV6SUPPORT=false, or the host has no IPv6).
	PoolIPv6Unsupported PoolAction = "ipv6-unsupported"
)

// TunnelResult is the outcome for one tunnel address type.
type TunnelResult struct {
	// Type is the IPAM allocation type (ipipTunnelAddress, vxlanTunnelAddress, …).
	Type string
	// Handle is the IPAM handle (ipip-tunnel-addr-<node>, …).
	Handle string
	// Address is the node's tunnel address after startup, empty if none.
	Address string
	// Pools are the pools the address may come from (empty: the type is not needed).
	Pools []string
	// Action is what happened.
	Action TunnelAction
}

// TunnelAction is what startup did about one tunnel address.
type TunnelAction string

const (
	// TunnelNone: not needed and none present.
	TunnelNone TunnelAction = "none"
	// TunnelKept: the existing address is still valid.
	TunnelKept TunnelAction = "kept"
	// TunnelAssigned: a new address was allocated (any old one was released first).
	TunnelAssigned TunnelAction = "assigned"
	// TunnelReleased: the address is no longer needed and was released and cleared.
	TunnelReleased TunnelAction = "released"
)

// starter holds one Run.
type starter struct {
	o   Options
	log *slog.Logger
	res *Result

	name    string // the tortie Node name
	k8sName string // the Kubernetes Node name
	kdd     bool

	// From the Kubernetes API (Options.Kube), when available.
	kubeadm       *kubeadmConfig
	rancher       bool
	kubeadmSource string

	felix felixSettings
}

// Run performs node startup once, in this order (docs/node-startup.md has the details):
//
//  1. decide the node name (NODENAME, the stored name files, HOSTNAME, the OS hostname);
//  2. read the kubeadm-config and Rancher ConfigMaps (when Options.Kube is set);
//  3. decide the node's addresses (IP, IP6, IP_AUTODETECTION_METHOD, IP6_AUTODETECTION_METHOD), check
//     them against other Nodes (unless DISABLE_NODE_IP_CHECK=true), set the AS number (AS) and
//     register the Node: in etcd create or update it, in the Kubernetes datastore wait for the
//     Kubernetes Node and update its annotations; other fields are kept, updates are compare-and-swap
//     with retries;
//  4. create the default IPv4 and IPv6 pools when no pool of the family exists (CALICO_IPV4POOL_*,
//     CALICO_IPV6POOL_*, NO_DEFAULT_POOLS);
//  5. create the cluster-wide defaults when absent: ClusterInformation, the default, kube-admin and
//     kube-baseline Tiers, FelixConfiguration "default" (and "node.<name>" in etcd),
//     BGPConfiguration "default", IPAMConfig "default";
//  6. read the Felix settings that matter here (FelixConfiguration "default" and "node.<name>", then
//     FELIX_* variables): encapsulation overrides, WireGuard, device MTUs, the MTU interface pattern;
//     reconcile the tunnel addresses (IPIP, VXLAN, VXLAN IPv6, WireGuard) and the VXLAN MACs;
//  7. compute the pod MTU and write the MTU file;
//  8. write the node name files — last, because the CNI plugin takes the file as the sign that the node
//     agent has started.
//
// Every step is idempotent: running Run again with the same environment changes nothing. Concurrent
// runs on several nodes are safe (creates that lose a race and compare-and-swap conflicts are
// handled). On error the Result holds what was done so far.
func Run(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &starter{o: o, log: o.Logger, res: &Result{DatastoreType: o.DatastoreType}, kdd: o.DatastoreType == DatastoreKubernetes}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"node name", s.decideNodeName},
		{"cluster ConfigMaps", s.readClusterConfigMaps},
		{"node registration", s.registerNode},
		{"default IP pools", s.ensurePools},
		{"cluster defaults", s.ensureDefaults},
		{"Felix settings", s.loadFelixSettings},
		{"tunnel addresses", s.ensureTunnelAddrs},
		{"MTU", s.ensureMTU},
		{"node name files", s.writeNodenameFiles},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return s.res, fmt.Errorf("node startup interrupted before %s: %w", st.name, err)
		}
		s.log.Debug("startup step", "step", st.name)
		if err := st.fn(ctx); err != nil {
			return s.res, err
		}
	}
	s.log.Info("node startup complete", "node", s.name, "changes", len(s.res.Changes), "warnings", len(s.res.Warnings))
	return s.res, nil
}

// change records a write.
func (s *starter) change(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.Changes = append(s.res.Changes, msg)
	s.log.Info("changed", "change", msg)
}

// warn records and logs a non-fatal problem.
func (s *starter) warn(msg string, args ...any) {
	s.res.Warnings = append(s.res.Warnings, msg)
	s.log.Warn("startup warning", append([]any{"warning", msg}, args...)...)
}

// decideNodeName is step 1.
func (s *starter) decideNodeName(context.Context) error {
	files := s.o.Files
	env := func(k string) string {
		switch k {
		case autodetect.EnvNodeNameFile:
			return files.NodenameFile
		case autodetect.EnvTortieNodeNameFile:
			return files.TortieNodenameFile
		}
		return s.o.Env(k)
	}
	name, source, err := autodetect.NodeName(env, os.ReadFile, s.o.Hostname)
	if err != nil {
		return err
	}
	probe := api.NewNode()
	probe.Name = name
	if err := api.Validate(probe); err != nil {
		return fmt.Errorf("the node name %q (from %s) cannot be used: %w; set %s to the node's name as `kubectl get nodes` shows it",
			name, source, err, autodetect.EnvNodeName)
	}
	s.name, s.res.NodeName, s.res.NodeNameSource = name, name, source
	s.k8sName = name
	if ref, _ := config.Lookup(s.o.Env, EnvK8sNodeRef); ref != "" {
		s.k8sName = ref
	}
	s.res.K8sNodeName = s.k8sName
	s.log.Info("node name decided", "node", name, "source", source, "k8s_node", s.k8sName)
	return nil
}

// writeNodenameFiles is the last step.
func (s *starter) writeNodenameFiles(context.Context) error {
	for _, p := range []string{s.o.Files.NodenameFile, s.o.Files.TortieNodenameFile} {
		changed, err := writeFileIfChanged(p, []byte(s.name))
		if err != nil {
			return fmt.Errorf("writing the node name file: %w (the CNI plugin reads it; mount the directory into the node agent, or set %s)",
				err, autodetect.EnvNodeNameFile)
		}
		if changed {
			s.change("wrote %s", p)
		}
	}
	return nil
}

// Datastore helpers.

// maxAttempts bounds compare-and-swap retries of one object.
const maxAttempts = 10

// retryPause waits a little before another attempt after a conflict.
func retryPause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt*attempt) * 10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func key(kind, name string) datastore.Key { return datastore.Key{Kind: kind, Name: name} }

// ensure creates obj when it is absent. When it exists and fill is set, fill may modify the stored
// object (returning true), which is then written back compare-and-swap. Losing a create race or a
// compare-and-swap is retried from a fresh read.
func (s *starter) ensure(ctx context.Context, obj api.Resource, fill func(existing api.Resource) bool) error {
	k, err := datastore.KeyOf(obj)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.o.Backend.Get(ctx, k)
		switch {
		case errors.Is(err, datastore.ErrNotFound):
			if verr := api.Validate(obj); verr != nil {
				return fmt.Errorf("creating %s: %w", k, verr)
			}
			_, err = s.o.Backend.Create(ctx, obj.DeepCopyObject().(api.Resource))
			if err == nil {
				s.change("created %s %s", k.Kind, k.Name)
				return nil
			}
			if !errors.Is(err, datastore.ErrAlreadyExists) {
				return fmt.Errorf("creating %s: %w", k, err)
			}
			s.log.Debug("another node created the object first", "kind", k.Kind, "name", k.Name)
		case err != nil:
			return fmt.Errorf("reading %s: %w", k, err)
		default:
			if fill == nil || !fill(cur) {
				return nil
			}
			// Not validated: fill sets only valid values, and an oddity elsewhere in an object another
			// tool wrote must not stop the node from starting.
			_, err = s.o.Backend.Update(ctx, cur)
			if err == nil {
				s.change("updated %s %s", k.Kind, k.Name)
				return nil
			}
			if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
				return fmt.Errorf("updating %s: %w", k, err)
			}
			s.log.Debug("concurrent update, retrying", "kind", k.Kind, "name", k.Name)
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("writing %s: gave up after %d attempts: other writers keep changing it", k, attempt)
		}
		if err := retryPause(ctx, attempt); err != nil {
			return fmt.Errorf("writing %s: %w", k, err)
		}
	}
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return strings.Join(q, ", ")
}
