package kube

import (
	"crypto/sha3"
	"encoding/base32"
	"maps"
	"strings"

	"github.com/tortie-net/tortie/common/api"
)

// IPAM objects as Calico writes them. Calico's IPAM (calico-ipam, kube-controllers, calicoctl ipam) finds
// a node's block affinities by label, not by listing all of them: an affinity without the labels below
// is invisible to it, and calico-ipam would claim another block for the same node. So every
// BlockAffinity tortie writes carries them, computed as libcalico-go computes them.
const (
	// LabelAffinityType is the affinity's spec.type ("host" or "virtual").
	LabelAffinityType = "projectcalico.org/affinity-type"
	// LabelHostnameHash is the node name hashed to fit a label value: SHA3-256, base32 without padding.
	LabelHostnameHash = "projectcalico.org/hostname-hash"
	// LabelIPVersion is "4" or "6".
	LabelIPVersion = "projectcalico.org/ip-version"
)

// HostnameHash is the value of LabelHostnameHash for a node name, as Calico computes it.
func HostnameHash(node string) string {
	sum := sha3.Sum256([]byte(node))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
}

// calicoIPAMForm returns obj as Calico would store it, or obj itself when nothing changes; obj is not
// modified.
//   - BlockAffinity: spec.type defaults to host (older Calico releases left it empty, meaning host), and
//     the three lookup labels are set from the spec.
//   - IPAMConfig: autoAllocateBlocks is written out. Calico's custom resource has a plain boolean, so an
//     absent value reads as false there, which would stop calico-ipam from claiming blocks; tortie's
//     absent value means true.
func calicoIPAMForm(obj api.Resource) api.Resource {
	switch o := obj.(type) {
	case *api.BlockAffinity:
		c := o.DeepCopy()
		if c.Spec.Type == "" {
			c.Spec.Type = api.AffinityTypeHost
		}
		version := "4"
		if strings.Contains(c.Spec.CIDR, ":") {
			version = "6"
		}
		labels := maps.Clone(c.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelHostnameHash] = HostnameHash(c.Spec.Node)
		labels[LabelAffinityType] = c.Spec.Type
		labels[LabelIPVersion] = version
		c.Labels = labels
		return c
	case *api.IPAMConfig:
		if o.Spec.AutoAllocateBlocks != nil {
			return obj
		}
		c := o.DeepCopy()
		c.Spec.AutoAllocateBlocks = new(true)
		return c
	}
	return obj
}
