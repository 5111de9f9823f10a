package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// registerNode is step 3: the node's addresses, the conflict check, the AS number, and the Node write.
func (s *starter) registerNode(ctx context.Context) error {
	cur, err := s.loadNode(ctx)
	if err != nil {
		return err
	}
	var stored api.NodeBGPSpec
	if cur != nil && cur.Spec.BGP != nil {
		stored = *cur.Spec.BGP
	}

	// The fields this step owns; nil pointers leave the stored value alone.
	var want4, want6 *string
	var wantAS *api.ASNumber
	var orchRefs []api.OrchRef

	backend, _ := config.Lookup(s.o.Env, EnvNetworkingBackend)
	policyOnly := strings.EqualFold(backend, "none")
	if policyOnly {
		// Calico's policy-only mode: no BGP addresses or AS number are configured.
		s.log.Info("networking backend is none: not configuring node addresses or AS number", "variable", EnvNetworkingBackend)
	} else {
		if want4, want6, err = s.decideAddresses(ctx, cur, stored); err != nil {
			return err
		}
		as, from := config.Lookup(s.o.Env, EnvAS)
		if as != "" {
			n, err := api.ASNumberFromString(as)
			if err != nil {
				return fmt.Errorf("%s=%q: %w; unset it to use the cluster AS number from BGPConfiguration \"default\"", from, as, err)
			}
			wantAS = &n
		}
	}
	if ref, _ := config.Lookup(s.o.Env, EnvK8sNodeRef); ref != "" && !s.kdd {
		// In the Kubernetes datastore orchRefs come from the Kubernetes Node itself.
		orchRefs = []api.OrchRef{{NodeName: ref, Orchestrator: api.OrchestratorKubernetes}}
	}

	n, err := s.mutateNode(ctx, func(n *api.Node) error {
		if want4 != nil || want6 != nil || wantAS != nil {
			if n.Spec.BGP == nil {
				n.Spec.BGP = &api.NodeBGPSpec{}
			}
			if want4 != nil {
				n.Spec.BGP.IPv4Address = *want4
			}
			if want6 != nil {
				n.Spec.BGP.IPv6Address = *want6
			}
			if wantAS != nil {
				as := *wantAS
				n.Spec.BGP.ASNumber = &as
			}
		}
		if orchRefs != nil {
			n.Spec.OrchRefs = orchRefs
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n.Spec.BGP != nil && n.Spec.BGP.ASNumber != nil {
		as := *n.Spec.BGP.ASNumber
		s.res.ASNumber = &as
	}
	return nil
}

// decideAddresses resolves IP and IP6 and checks the result against other Nodes. It returns the
// addresses to write (nil: keep what is stored).
func (s *starter) decideAddresses(ctx context.Context, cur *api.Node, stored api.NodeBGPSpec) (want4, want6 *string, err error) {
	var internal []string
	if cur != nil {
		for _, a := range cur.Spec.Addresses {
			if a.Type == "InternalIP" {
				internal = append(internal, a.Address)
			}
		}
	}
	k8s := s.nodeAddressSource(internal)
	for _, fam := range []struct {
		family int
		stored string
		out    *autodetect.NodeIP
		want   **string
	}{
		{4, stored.IPv4Address, &s.res.IPv4, &want4},
		{6, stored.IPv6Address, &s.res.IPv6, &want6},
	} {
		existing, ok := parseStoredAddr(fam.stored, fam.family)
		if !ok {
			s.warn(fmt.Sprintf("the stored Node IPv%d address %q is not valid; treating it as unset", fam.family, fam.stored), "node", s.name)
		}
		ip, err := autodetect.ResolveNodeIP(ctx, s.o.Env, existing, fam.family, s.o.Interfaces, k8s)
		if err != nil {
			return nil, nil, err
		}
		if ip.Warning != "" {
			s.warn(ip.Warning, "node", s.name)
		}
		*fam.out = ip
		if ip.Source == autodetect.SourceAutodetected || ip.Source == autodetect.SourceEnv {
			v := ip.Prefix.String()
			*fam.want = &v
		} else if !ok {
			// An unparsable stored value is cleared rather than kept.
			v := ""
			*fam.want = &v
		}
		method := ""
		if ip.Source == autodetect.SourceAutodetected {
			method = ip.Method.String()
		}
		s.log.Info("node address decided", "family", fam.family, "address", prefixString(ip.Prefix), "source", string(ip.Source),
			"variable", ip.Var, "method", method, "interface", ip.Interface)
	}
	final4, final6 := stored.IPv4Address, stored.IPv6Address
	if want4 != nil {
		final4 = *want4
	}
	if want6 != nil {
		final6 = *want6
	}
	if final4 == "" && final6 == "" {
		return nil, nil, fmt.Errorf("node %q has no IPv4 or IPv6 address: set IP (or IP6) to the node's address, or IP=autodetect with an IP_AUTODETECTION_METHOD that finds it; "+
			"for policy-only mode without tortie networking set %s=none", s.name, EnvNetworkingBackend)
	}
	if final4 == stored.IPv4Address && final6 == stored.IPv6Address {
		return want4, want6, nil // unchanged: no conflict check (Calico checks only on change)
	}
	skip, err := config.LookupBool(s.o.Env, EnvDisableNodeIPCheck, false)
	if err != nil {
		return nil, nil, err
	}
	if skip {
		s.log.Info("not checking other nodes for address conflicts", "variable", EnvDisableNodeIPCheck)
		return want4, want6, nil
	}
	if err := s.checkConflicts(ctx, cur, final4, final6); err != nil {
		return nil, nil, err
	}
	return want4, want6, nil
}

// parseStoredAddr parses a Node address (CIDR or bare address) of the family; ok is false for a
// non-empty value that does not parse.
func parseStoredAddr(s string, family int) (netip.Prefix, bool) {
	if s == "" {
		return netip.Prefix{}, true
	}
	if p, err := netip.ParsePrefix(s); err == nil && (p.Addr().Is4() == (family == 4)) {
		return p, true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" && (a.Is4() == (family == 4)) {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func addrOf(s string) netip.Addr {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// checkConflicts fails when another Node already has one of our addresses. As in Calico, when the
// conflicting address was autodetected (IP=autodetect / IP6=autodetect) on an existing Node, the
// Node's stored address of that family is cleared first, so that the address this node held before
// is free for the node that now has it.
func (s *starter) checkConflicts(ctx context.Context, cur *api.Node, final4, final6 string) error {
	objs, _, err := s.o.Backend.List(ctx, datastore.ListOptions{Kind: api.KindNode})
	if err != nil {
		return fmt.Errorf("listing Nodes to check for address conflicts: %w (set %s=true to skip the check)", err, EnvDisableNodeIPCheck)
	}
	our4, our6 := addrOf(final4), addrOf(final6)
	var conflicts []string
	var clear4, clear6 bool
	for _, o := range objs {
		other, ok := o.(*api.Node)
		if !ok || other.Spec.BGP == nil {
			continue
		}
		their4, their6 := addrOf(other.Spec.BGP.IPv4Address), addrOf(other.Spec.BGP.IPv6Address)
		if other.Name == s.name {
			continue
		}
		if our4.IsValid() && their4 == our4 {
			conflicts = append(conflicts, fmt.Sprintf("IPv4 address %s is already used by node %q", our4, other.Name))
			clear4 = true
		}
		if our6.IsValid() && their6 == our6 {
			conflicts = append(conflicts, fmt.Sprintf("IPv6 address %s is already used by node %q", our6, other.Name))
			clear6 = true
		}
	}
	if len(conflicts) == 0 {
		return nil
	}
	v4, _ := config.Lookup(s.o.Env, autodetect.EnvIPv4)
	v6, _ := config.Lookup(s.o.Env, autodetect.EnvIPv6)
	clear4 = clear4 && strings.EqualFold(v4, autodetect.ValueAutodetect)
	clear6 = clear6 && strings.EqualFold(v6, autodetect.ValueAutodetect)
	if cur != nil && (clear4 || clear6) {
		if _, err := s.mutateNode(ctx, func(n *api.Node) error {
			if n.Spec.BGP != nil {
				if clear4 {
					n.Spec.BGP.IPv4Address = ""
				}
				if clear6 {
					n.Spec.BGP.IPv6Address = ""
				}
			}
			return nil
		}); err != nil {
			s.warn(fmt.Sprintf("could not clear this node's out-of-date address after the conflict: %v", err), "node", s.name)
		}
	}
	return fmt.Errorf("node %q: %s; two nodes cannot share an address: fix IP / IP6 or IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD "+
		"for this node (or the other node's address), or set %s=true to skip this check",
		s.name, strings.Join(conflicts, "; "), EnvDisableNodeIPCheck)
}

// loadNode reads this node's Node. In etcd a missing Node is nil (it is created later); in the
// Kubernetes datastore it is the Kubernetes Node, which the kubelet registers: startup waits for it
// for at most NodeWaitTimeout.
func (s *starter) loadNode(ctx context.Context) (*api.Node, error) {
	n, err := s.getNode(ctx)
	if err == nil || !errors.Is(err, datastore.ErrNotFound) {
		return n, err
	}
	if !s.kdd {
		s.log.Info("the Node does not exist yet; it will be created", "node", s.name)
		return nil, nil
	}
	s.log.Info("waiting for the Kubernetes Node to be registered", "node", s.name, "timeout", s.o.NodeWaitTimeout.String())
	wctx, cancel := context.WithTimeout(ctx, s.o.NodeWaitTimeout)
	defer cancel()
	t := time.NewTicker(s.o.NodeWaitInterval)
	defer t.Stop()
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for Kubernetes Node %q: %w", s.name, ctx.Err())
			}
			return nil, fmt.Errorf("the Kubernetes Node %q does not exist after waiting %s: in the Kubernetes datastore the kubelet registers the Node; "+
				"check that NODENAME (or the HOSTNAME the node name came from) is the name `kubectl get nodes` shows", s.name, s.o.NodeWaitTimeout)
		case <-t.C:
		}
		n, err := s.getNode(wctx)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, datastore.ErrNotFound) && wctx.Err() == nil {
			return nil, err
		}
	}
}

// getNode reads the Node; the error wraps datastore.ErrNotFound when it does not exist.
func (s *starter) getNode(ctx context.Context) (*api.Node, error) {
	obj, err := s.o.Backend.Get(ctx, key(api.KindNode, s.name))
	if err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("reading Node %q: %w", s.name, err)
	}
	n, ok := obj.(*api.Node)
	if !ok {
		return nil, fmt.Errorf("reading Node %q: unexpected type %T", s.name, obj)
	}
	return n, nil
}

// mutateNode applies fn to a fresh copy of the Node (a new Node in etcd when there is none) and writes
// it when fn changed it: compare-and-swap, re-reading and re-applying fn after a conflict. fn must only
// set the fields it owns, so that concurrent writers' fields survive. It returns the stored Node.
func (s *starter) mutateNode(ctx context.Context, fn func(*api.Node) error) (*api.Node, error) {
	for attempt := 1; ; attempt++ {
		cur, err := s.getNode(ctx)
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return nil, err
		}
		if cur == nil && s.kdd {
			return nil, fmt.Errorf("the Kubernetes Node %q was deleted during startup", s.name)
		}
		n := api.NewNode()
		n.Name = s.name
		if cur != nil {
			n = cur.DeepCopy()
		}
		if err := fn(n); err != nil {
			return nil, err
		}
		normalizeNode(n)
		if cur != nil && reflect.DeepEqual(cur.Spec, n.Spec) {
			return cur, nil
		}
		if err := api.Validate(n); err != nil {
			return nil, fmt.Errorf("writing Node %q: %w", s.name, err)
		}
		var out api.Resource
		op := "updated"
		if cur == nil {
			op = "created"
			out, err = s.o.Backend.Create(ctx, n)
		} else {
			out, err = s.o.Backend.Update(ctx, n)
		}
		if err == nil {
			s.change("%s Node %s", op, s.name)
			stored, ok := out.(*api.Node)
			if !ok {
				return nil, fmt.Errorf("writing Node %q: unexpected type %T", s.name, out)
			}
			return stored, nil
		}
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrAlreadyExists) {
			return nil, fmt.Errorf("writing Node %q: %w", s.name, err)
		}
		if attempt >= maxAttempts {
			return nil, fmt.Errorf("writing Node %q: gave up after %d attempts: other writers keep changing it: %w", s.name, attempt, err)
		}
		s.log.Debug("concurrent Node update, retrying", "node", s.name, "attempt", attempt)
		if err := retryPause(ctx, attempt); err != nil {
			return nil, fmt.Errorf("writing Node %q: %w", s.name, err)
		}
	}
}

// normalizeNode drops empty sub-structs, as Calico does (an empty BGP spec is invalid there).
func normalizeNode(n *api.Node) {
	if n.Spec.BGP != nil && *n.Spec.BGP == (api.NodeBGPSpec{}) {
		n.Spec.BGP = nil
	}
	if n.Spec.Wireguard != nil && *n.Spec.Wireguard == (api.NodeWireguardSpec{}) {
		n.Spec.Wireguard = nil
	}
}
