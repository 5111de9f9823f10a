//go:build linux

package cni

import (
	"testing"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/cnitest"

	"github.com/containernetworking/plugins/pkg/ns"
)

// BenchmarkSetupTeardown measures one CNI ADD's plumbing plus its DEL on the
// real kernel, in throwaway namespaces (namespace creation is not timed). It
// is the baseline for later comparisons (docs/performance.md).
func BenchmarkSetupTeardown(b *testing.B) {
	requireRoot(b)
	for _, bc := range []struct {
		name  string
		addrs []string
	}{
		{"ipv4", []string{"10.65.7.1/32"}},
		{"dual-stack", []string{"10.65.7.1/32", "fd00:65::7:1/128"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			node, pod := newNode(b), cnitest.NewNS(b)
			req := cnicore.InterfaceRequest{NetNS: pod.Path(), ContainerIfName: "eth0", HostIfName: HostVethName("", "bench", bc.name),
				Addresses: prefixes(bc.addrs...)}
			err := node.Do(func(ns.NetNS) error {
				ctx := b.Context()
				for b.Loop() {
					if _, err := (&PodNetwork{}).Setup(ctx, req); err != nil {
						return err
					}
					if err := (&PodNetwork{}).Teardown(ctx, req.NetNS, req.ContainerIfName, req.HostIfName); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
