//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/tortie-net/tortie/linux/netlinkx"
)

// Teardown removes a pod's interface (CNI DEL). It is idempotent and
// succeeds when there is nothing left to remove: the namespace is gone (the
// kernel then destroys the pair by itself), the interfaces are gone, or it
// already ran.
//
// It deletes ContainerIfName in the namespace at netnsPath if that is a veth;
// the kernel removes the host end with it. It then deletes a host veth named
// hostIfName if one is left whose peer is in that same namespace or in the
// host namespace (an orphan). A host veth whose peer is in any other
// namespace is left alone: host names derive from the pod's name, so a newer
// sandbox of the same pod has the same host name, and a late DEL for the old
// sandbox must not cut it off. Interfaces that are not veths are never ours.
//
// Any of the three arguments may be empty to skip that part.
func (p *PodNetwork) Teardown(ctx context.Context, netnsPath, containerIfName, hostIfName string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tearing down pod interface %s: %w", hostIfName, err)
	}
	if containerIfName != "" {
		if err := validIfName(containerIfName); err != nil {
			return fmt.Errorf("container interface: %w", err)
		}
	}
	if hostIfName != "" {
		if err := validIfName(hostIfName); err != nil {
			return fmt.Errorf("host interface: %w", err)
		}
	}

	m := p.machineOrReal()
	host, err := m.openHost(ctx)
	if err != nil {
		return err
	}
	defer host.Close() //nolint:errcheck // nothing to flush

	var errs []error
	contID := -1 // the container namespace's id as the host sees it
	if netnsPath != "" {
		contNS, err := m.openPod(ctx, netnsPath)
		switch {
		case err == nil:
			defer contNS.Close() //nolint:errcheck // nothing to flush
			cont := contNS.handle()
			contID = host.NetNSID(cont)
			if containerIfName != "" {
				if err := deleteVeth(cont, containerIfName, containerWhere(netnsPath)); err != nil {
					errs = append(errs, err)
				}
			}
		case nsGone(err):
			// Nothing to do inside; the kernel removes the pair with the
			// namespace.
		default:
			errs = append(errs, err)
		}
	}

	if hostIfName != "" {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("tearing down %s in %s: %w", hostIfName, hostWhere, err))...)
		}
		l, err := linkByName(host, hostIfName)
		if err != nil {
			errs = append(errs, fmt.Errorf("looking up %s in %s: %w", hostIfName, hostWhere, err))
		} else if l != nil && isVeth(l) {
			// NetNsID < 0: the peer is in the host namespace too (an
			// orphan); == contID: the peer is in the namespace we are
			// tearing down.
			if peerID := l.PeerNetNSID; peerID < 0 || (contID >= 0 && peerID == contID) {
				if err := host.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting veth %s in %s: %w", hostIfName, hostWhere, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tearing down pod interface %s/%s: %w", hostIfName, containerIfName, err)
	}
	return nil
}

// deleteVeth deletes the veth called name in h's namespace, if there is one.
func deleteVeth(h netlinkx.Handle, name, where string) error {
	l, err := linkByName(h, name)
	if err != nil {
		return fmt.Errorf("looking up %s in %s: %w", name, where, err)
	}
	if l == nil || !isVeth(l) {
		return nil
	}
	if err := h.LinkDel(l.Index); err != nil && !netlinkx.IsNotFound(err) {
		return fmt.Errorf("deleting veth %s in %s: %w", name, where, err)
	}
	return nil
}
