package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
)

// Values startup writes into the cluster-wide defaults (Calico's).
const (
	// defaultLogSeverity is FelixConfiguration "default" logSeverityScreen.
	defaultLogSeverity = "Info"
	// felixNodeConfigPrefix names per-node FelixConfigurations: node.<name>.
	felixNodeConfigPrefix = "node."
	// ClusterType values startup adds.
	clusterTypeKubeadm = "kubeadm"
	clusterTypeRancher = "rancher"
	clusterTypeWindows = "win"
	clusterTypeKDD     = "kdd"
)

// ensureDefaults is step 5: the objects every cluster needs, created when absent. Each is
// create-if-absent (another node creating it first is fine) or, for ClusterInformation and
// FelixConfiguration "default", completed compare-and-swap when a field startup owns is unset.
func (s *starter) ensureDefaults(ctx context.Context) error {
	if err := s.ensureClusterInformation(ctx); err != nil {
		return err
	}
	for _, t := range []struct {
		name   string
		action api.Action
		order  float64
	}{
		{api.DefaultTierName, api.Deny, api.DefaultTierOrder},
		{api.KubeAdminTierName, api.Pass, api.KubeAdminTierOrder},
		{api.KubeBaselineTierName, api.Pass, api.KubeBaselineTierOrder},
	} {
		tier := api.NewTier()
		tier.Name = t.name
		action, order := t.action, t.order
		tier.Spec.DefaultAction, tier.Spec.Order = &action, &order
		if err := s.ensure(ctx, tier, nil); err != nil {
			// Calico tolerates this too (a node may not be allowed to create tiers); policy evaluation
			// does not depend on the Tier objects existing.
			s.warn(fmt.Sprintf("could not ensure Tier %q: %v", t.name, err))
		}
	}

	fc := api.NewFelixConfiguration()
	fc.Name = api.DefaultConfigName
	fc.Spec.ReportingInterval = &metav1.Duration{}
	fc.Spec.LogSeverityScreen = defaultLogSeverity
	if err := s.ensure(ctx, fc, func(existing api.Resource) bool {
		e, ok := existing.(*api.FelixConfiguration)
		if !ok {
			return false
		}
		changed := false
		if e.Spec.ReportingInterval == nil {
			e.Spec.ReportingInterval = &metav1.Duration{}
			changed = true
		}
		if e.Spec.LogSeverityScreen == "" {
			e.Spec.LogSeverityScreen = defaultLogSeverity
			changed = true
		}
		return changed
	}); err != nil {
		return err
	}

	if !s.kdd {
		// Calico lets workloads reach their own host in etcd mode (not in KDD, where per-node Felix
		// configuration was historically unsupported); kept for compatibility.
		nc := api.NewFelixConfiguration()
		nc.Name = felixNodeConfigPrefix + s.name
		nc.Spec.DefaultEndpointToHostAction = "Return"
		if err := s.ensure(ctx, nc, func(existing api.Resource) bool {
			e, ok := existing.(*api.FelixConfiguration)
			if !ok || e.Spec.DefaultEndpointToHostAction != "" {
				return false
			}
			e.Spec.DefaultEndpointToHostAction = "Return"
			return true
		}); err != nil {
			return err
		}
	}

	bgp := api.NewBGPConfiguration()
	bgp.Name = api.DefaultConfigName
	if err := s.ensure(ctx, bgp, nil); err != nil {
		return err
	}

	ic := api.NewIPAMConfig()
	ic.Name = api.IPAMConfigName
	api.SetDefaults(ic)
	enabled := "Enabled"
	ic.Spec.KubeVirtVMAddressPersistence = &enabled
	return s.ensure(ctx, ic, nil)
}

// clusterType is what this node adds to ClusterInformation clusterType: CLUSTER_TYPE, then kubeadm,
// rancher, win (a Windows node) and kdd (the Kubernetes datastore), in Calico's order.
func (s *starter) clusterType() []string {
	var types []string
	if v, _ := config.Lookup(s.o.Env, EnvClusterType); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
	}
	if s.kubeadm != nil {
		types = append(types, clusterTypeKubeadm)
	}
	if s.rancher {
		types = append(types, clusterTypeRancher)
	}
	if s.o.GOOS == "windows" {
		types = append(types, clusterTypeWindows)
	}
	if s.kdd {
		types = append(types, clusterTypeKDD)
	}
	return types
}

// ensureClusterInformation creates ClusterInformation "default" (a random clusterGUID, this version,
// datastoreReady true, the cluster type) or completes it: the version is set to ours, a missing GUID
// is generated, an unset datastoreReady becomes true (an explicit false — a migration in progress — is
// left alone) and this node's cluster types are added to the list.
func (s *starter) ensureClusterInformation(ctx context.Context) error {
	guid, err := newGUID(s.o.Rand)
	if err != nil {
		return fmt.Errorf("generating the cluster GUID: %w", err)
	}
	types := s.clusterType()
	ready := true
	ci := api.NewClusterInformation()
	ci.Name = api.DefaultConfigName
	ci.Spec = api.ClusterInformationSpec{
		ClusterGUID:    guid,
		ClusterType:    strings.Join(types, ","),
		CalicoVersion:  s.o.Version,
		DatastoreReady: &ready,
	}
	return s.ensure(ctx, ci, func(existing api.Resource) bool {
		e, ok := existing.(*api.ClusterInformation)
		if !ok {
			return false
		}
		changed := false
		if e.Spec.CalicoVersion != s.o.Version {
			e.Spec.CalicoVersion = s.o.Version
			changed = true
		}
		if e.Spec.ClusterGUID == "" {
			e.Spec.ClusterGUID = guid
			changed = true
		}
		if e.Spec.DatastoreReady == nil {
			r := true
			e.Spec.DatastoreReady = &r
			changed = true
		}
		var have []string
		if e.Spec.ClusterType != "" {
			have = strings.Split(e.Spec.ClusterType, ",")
		}
		for _, t := range types {
			if !slices.Contains(have, t) {
				have = append(have, t)
				changed = true
			}
		}
		e.Spec.ClusterType = strings.Join(have, ",")
		return changed
	})
}

// newGUID returns 32 hex digits of a random (version 4) UUID, as Calico writes clusterGUID.
func newGUID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}
