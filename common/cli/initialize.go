package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/version"
)

// builtinTiers are the tiers calicoctl creates before its first write, with Calico's orders and default
// actions.
var builtinTiers = []struct {
	name   string
	action api.Action
	order  float64
}{
	{api.DefaultTierName, api.Deny, api.DefaultTierOrder},
	{api.KubeAdminTierName, api.Pass, api.KubeAdminTierOrder},
	{api.KubeBaselineTierName, api.Pass, api.KubeBaselineTierOrder},
}

// ensureInitialized creates what calicoctl's client creates before it writes anything, when absent:
// ClusterInformation "default" (a random clusterGUID, this version, datastoreReady true) and the tiers
// default, kube-admin and kube-baseline. Existing objects are left alone (tortie-node completes
// ClusterInformation when it starts). It is idempotent and safe against concurrent writers.
func ensureInitialized(ctx context.Context, be datastore.Backend) error {
	if _, err := be.Get(ctx, datastore.Key{Kind: api.KindClusterInformation, Name: api.DefaultConfigName}); errors.Is(err, datastore.ErrNotFound) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generating the cluster GUID: %w", err)
		}
		b[6] = b[6]&0x0f | 0x40 // a version 4 UUID, as Calico's
		b[8] = b[8]&0x3f | 0x80
		ready := true
		ci := api.NewClusterInformation()
		ci.Name = api.DefaultConfigName
		ci.Spec = api.ClusterInformationSpec{ClusterGUID: hex.EncodeToString(b[:]), CalicoVersion: version.Get().Version, DatastoreReady: &ready}
		if _, err := be.Create(ctx, ci); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
			return fmt.Errorf("creating ClusterInformation %q: %w", ci.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("reading ClusterInformation %q: %w", api.DefaultConfigName, err)
	}
	for _, t := range builtinTiers {
		if _, err := be.Get(ctx, datastore.Key{Kind: api.KindTier, Name: t.name}); err == nil {
			continue
		} else if !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("reading Tier %q: %w", t.name, err)
		}
		tier := api.NewTier()
		tier.Name = t.name
		action, order := t.action, t.order
		tier.Spec.DefaultAction, tier.Spec.Order = &action, &order
		if _, err := be.Create(ctx, tier); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
			return fmt.Errorf("creating Tier %q: %w", t.name, err)
		}
	}
	return nil
}

// errReadOnly is returned for writes of kinds only tortie itself maintains.
var errReadOnly = errors.New("ClusterInformation is read-only: tortie-node and tortiectl maintain it")

// checkTierExists refuses a tiered policy whose tier does not exist, as Calico's client does.
func checkTierExists(ctx context.Context, be datastore.Backend, obj api.Resource) error {
	tier, ok := api.PolicyTier(obj)
	if !ok {
		return nil
	}
	_, err := be.Get(ctx, datastore.Key{Kind: api.KindTier, Name: tier})
	if errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("spec.tier: tier %q does not exist; create the Tier first", tier)
	}
	if err != nil {
		return fmt.Errorf("spec.tier: reading Tier %q: %w", tier, err)
	}
	return nil
}

// checkPoolOverlap refuses an IPPool whose CIDR overlaps another pool's, as Calico's client does.
func checkPoolOverlap(ctx context.Context, be datastore.Backend, obj api.Resource) error {
	pool, ok := obj.(*api.IPPool)
	if !ok {
		return nil
	}
	p, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil {
		return nil // reported by validation
	}
	pools, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return fmt.Errorf("spec.cidr: listing IPPools to check for overlaps: %w", err)
	}
	for _, o := range pools {
		other := o.(*api.IPPool)
		if other.Name == pool.Name {
			continue
		}
		q, err := netip.ParsePrefix(other.Spec.CIDR)
		if err == nil && p.Overlaps(q) {
			return fmt.Errorf("spec.cidr: %s overlaps with IPPool(%s) CIDR %s; pools must not overlap", pool.Spec.CIDR, other.Name, other.Spec.CIDR)
		}
	}
	return nil
}
