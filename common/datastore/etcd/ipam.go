package etcd

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// IPAMPrefix is where Calico keeps IPAM data in etcd, beside (not under) ResourcePrefix. The keys and
// values are those of libcalico-go's backend model package, which calico-ipam, calicoctl ipam and
// kube-controllers read and write:
//
//	/calico/ipam/v2/assignment/ipv4/block/10.48.166.128-26     AllocationBlock
//	/calico/ipam/v2/host/<node>/ipv4/block/10.48.166.128-26    BlockAffinity (virtual/<name>/… likewise)
//	/calico/ipam/v2/handle/<handle ID>                         IPAMHandle
//	/calico/ipam/v2/config                                     IPAMConfig
const IPAMPrefix = "/calico/ipam/v2"

// ipamCodecs is the one table that maps tortie's IPAM kinds to Calico's etcd layout. Every other kind
// is stored under ResourcePrefix.
var ipamCodecs = map[string]ipamCodec{
	api.KindIPAMBlock:     blockCodec{},
	api.KindBlockAffinity: affinityCodec{},
	api.KindIPAMHandle:    handleCodec{},
	api.KindIPAMConfig:    configCodec{},
}

// ipamCodec translates one IPAM kind between tortie's objects and Calico's keys and values. Paths are
// relative to IPAMPrefix (with the backend's Config.Prefix before it) and start with "/".
//
// The key of an IPAM object holds its contents (a block's CIDR, an affinity's node and CIDR, a handle's
// ID), while tortie addresses objects by name; the names are the ones Calico gives the same objects in
// the Kubernetes datastore (package api's IPAM names), so each side can be computed from the other, with
// a lookup where a name has several readings.
type ipamCodec interface {
	// keyRange is the range [start, end) of every key of the kind.
	keyRange() (start, end string)
	// nameOf returns the object name stored at path, or false if path is not one of the kind's keys.
	nameOf(path string) (string, bool)
	// lookup returns the paths that may hold the object called name, and prefixes whose keys must be
	// scanned when the name cannot be turned into a path (shortened names).
	lookup(name string) (paths, scan []string)
	// pathOf is where obj is stored, from its contents; the error names the field at fault.
	pathOf(obj api.Resource) (string, error)
	decode(path string, value []byte) (api.Resource, error)
	encode(obj api.Resource) ([]byte, error)
}

// ipamPath checks that obj is stored where its name says: tortie finds IPAM objects in etcd by name, so
// a name that its contents do not give could never be read back.
func ipamPath(c ipamCodec, obj api.Resource, info api.KindInfo) (string, error) {
	path, err := c.pathOf(obj)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", info.Kind, obj.GetName(), err)
	}
	if name, _ := c.nameOf(path); name != obj.GetName() {
		return "", fmt.Errorf("%s %q: in etcd an IPAM object's name follows from its contents (Calico's key %s); name it %q",
			info.Kind, obj.GetName(), IPAMPrefix+path, name)
	}
	return path, nil
}

// cidrKey is a CIDR as Calico writes it in keys: only the '/' becomes '-' ("10.0.0.0-26", "fd00::-122").
func cidrKey(p netip.Prefix) string {
	return strings.Replace(p.Masked().String(), "/", "-", 1)
}

func parseCIDRKey(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.Replace(s, "-", "/", 1))
	if err != nil || strings.Contains(s, "/") {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func ipVersion(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "4"
	}
	return "6"
}

// parseSpecCIDR reads a spec.cidr for a key: it must be a valid prefix; it is masked as Calico masks it.
func parseSpecCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("spec.cidr %q is not a CIDR: %w", s, err)
	}
	return p.Masked(), nil
}

// --- AllocationBlock: /assignment/ipv4/block/<cidr>.

type blockCodec struct{}

// calicoBlock is the JSON of libcalico-go's model.AllocationBlock, field for field and in its order.
type calicoBlock struct {
	CIDR                        string            `json:"cidr"`
	Affinity                    *string           `json:"affinity"`
	AffinityClaimTime           *metav1.Time      `json:"affinity_claim_time,omitempty"`
	Allocations                 []*int            `json:"allocations"`
	Unallocated                 []int             `json:"unallocated"`
	Attributes                  []calicoAttribute `json:"attributes"`
	SequenceNumber              uint64            `json:"sequenceNumber"`
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation"`
	Deleted                     bool              `json:"deleted"`
	// HostAffinity is the form of Affinity older Calico releases wrote ("<node>" for "host:<node>").
	HostAffinity *string `json:"hostAffinity,omitempty"`
}

// calicoAttribute is model.AllocationAttribute.
type calicoAttribute struct {
	HandleID   *string           `json:"handle_id,omitempty"`
	Secondary  map[string]string `json:"secondary,omitempty"`
	ReleasedAt *metav1.Time      `json:"releasedAt,omitempty"`
}

func (blockCodec) keyRange() (string, string) { return prefixRange("/assignment/") }

func (blockCodec) nameOf(path string) (string, bool) {
	p, ok := parseBlockPath(path)
	if !ok {
		return "", false
	}
	return api.CIDRToName(p.String()), true
}

func parseBlockPath(path string) (netip.Prefix, bool) {
	rest, ok := strings.CutPrefix(path, "/assignment/ipv")
	if !ok || len(rest) < 2 {
		return netip.Prefix{}, false
	}
	ver, c, ok := strings.Cut(rest, "/block/")
	if !ok {
		return netip.Prefix{}, false
	}
	p, ok := parseCIDRKey(c)
	if !ok || ipVersion(p) != ver {
		return netip.Prefix{}, false
	}
	return p, true
}

func blockPath(p netip.Prefix) string {
	return "/assignment/ipv" + ipVersion(p) + "/block/" + cidrKey(p)
}

func (blockCodec) lookup(name string) ([]string, []string) {
	p, ok := api.ParseCIDRName(name)
	if !ok {
		return nil, nil
	}
	return []string{blockPath(p)}, nil
}

func (blockCodec) pathOf(obj api.Resource) (string, error) {
	b := obj.(*api.IPAMBlock)
	p, err := parseSpecCIDR(b.Spec.CIDR)
	if err != nil {
		return "", err
	}
	return blockPath(p), nil
}

func (blockCodec) decode(path string, value []byte) (api.Resource, error) {
	p, _ := parseBlockPath(path)
	var cb calicoBlock
	if err := json.Unmarshal(value, &cb); err != nil {
		return nil, err
	}
	if vp, err := netip.ParsePrefix(cb.CIDR); err != nil || vp.Masked() != p {
		return nil, fmt.Errorf("the value's cidr %q is not the key's %s", cb.CIDR, p)
	}
	b := api.NewIPAMBlock()
	b.Name = api.CIDRToName(p.String())
	b.Spec = api.IPAMBlockSpec{
		CIDR:                        p.String(),
		Affinity:                    cb.Affinity,
		AffinityClaimTime:           cb.AffinityClaimTime,
		Allocations:                 cb.Allocations,
		Unallocated:                 cb.Unallocated,
		SequenceNumber:              cb.SequenceNumber,
		SequenceNumberForAllocation: cb.SequenceNumberForAllocation,
		Deleted:                     cb.Deleted,
		Attributes:                  make([]api.AllocationAttribute, len(cb.Attributes)),
	}
	if b.Spec.Affinity == nil && cb.HostAffinity != nil {
		b.Spec.Affinity = new(api.AffinityTypeHost + ":" + *cb.HostAffinity)
	}
	for i, a := range cb.Attributes {
		b.Spec.Attributes[i] = api.AllocationAttribute{HandleID: a.HandleID, Secondary: a.Secondary, ReleasedAt: a.ReleasedAt}
	}
	return b, nil
}

// encode writes Calico's form. Calico's model has no per-block strictAffinity (the IPAMConfig's governs),
// so spec.strictAffinity is not stored.
func (blockCodec) encode(obj api.Resource) ([]byte, error) {
	b := obj.(*api.IPAMBlock)
	p, err := parseSpecCIDR(b.Spec.CIDR)
	if err != nil {
		return nil, err
	}
	cb := calicoBlock{
		CIDR:                        p.String(),
		Affinity:                    b.Spec.Affinity,
		AffinityClaimTime:           b.Spec.AffinityClaimTime,
		Allocations:                 b.Spec.Allocations,
		Unallocated:                 b.Spec.Unallocated,
		Attributes:                  make([]calicoAttribute, len(b.Spec.Attributes)),
		SequenceNumber:              b.Spec.SequenceNumber,
		SequenceNumberForAllocation: b.Spec.SequenceNumberForAllocation,
		Deleted:                     b.Spec.Deleted,
	}
	if cb.Allocations == nil {
		cb.Allocations = []*int{}
	}
	if cb.Unallocated == nil {
		cb.Unallocated = []int{}
	}
	if cb.SequenceNumberForAllocation == nil {
		cb.SequenceNumberForAllocation = map[string]uint64{}
	}
	for i, a := range b.Spec.Attributes {
		cb.Attributes[i] = calicoAttribute{HandleID: a.HandleID, Secondary: a.Secondary, ReleasedAt: a.ReleasedAt}
	}
	return json.Marshal(cb)
}

// --- BlockAffinity: /host/<node>/ipv4/block/<cidr> (and /virtual/<name>/…).

type affinityCodec struct{}

// calicoAffinity is model.BlockAffinity.
type calicoAffinity struct {
	State   string `json:"state"`
	Deleted bool   `json:"deleted"`
}

// keyRange covers /host/ and /virtual/; no other key of Calico's sorts between them.
func (affinityCodec) keyRange() (string, string) {
	_, end := prefixRange("/" + api.AffinityTypeVirtual + "/")
	return "/" + api.AffinityTypeHost + "/", end
}

type affinityKey struct {
	typ, host string
	cidr      netip.Prefix
}

func parseAffinityPath(path string) (affinityKey, bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 5 || (parts[0] != api.AffinityTypeHost && parts[0] != api.AffinityTypeVirtual) ||
		parts[1] == "" || parts[3] != "block" {
		return affinityKey{}, false
	}
	p, ok := parseCIDRKey(parts[4])
	if !ok || parts[2] != "ipv"+ipVersion(p) {
		return affinityKey{}, false
	}
	return affinityKey{typ: parts[0], host: parts[1], cidr: p}, true
}

func affinityPath(typ, host string, p netip.Prefix) string {
	return "/" + typ + "/" + host + "/ipv" + ipVersion(p) + "/block/" + cidrKey(p)
}

func (affinityCodec) nameOf(path string) (string, bool) {
	k, ok := parseAffinityPath(path)
	if !ok {
		return "", false
	}
	return api.BlockAffinityName(k.host, k.cidr.String()), true
}

// lookup tries every reading of the name, as a host and as a virtual affinity; a shortened name keeps
// only a prefix of the host, whose keys are scanned.
func (affinityCodec) lookup(name string) (paths, scan []string) {
	for _, p := range api.SplitBlockAffinityName(name) {
		if strings.Contains(p.Host, "/") {
			continue
		}
		for _, typ := range []string{api.AffinityTypeHost, api.AffinityTypeVirtual} {
			paths = append(paths, affinityPath(typ, p.Host, p.CIDR))
		}
	}
	for _, p := range api.ShortenedBlockAffinityName(name) {
		if strings.Contains(p.Host, "/") {
			continue
		}
		for _, typ := range []string{api.AffinityTypeHost, api.AffinityTypeVirtual} {
			scan = append(scan, "/"+typ+"/"+p.Host)
		}
	}
	return paths, scan
}

func (affinityCodec) pathOf(obj api.Resource) (string, error) {
	a := obj.(*api.BlockAffinity)
	p, err := parseSpecCIDR(a.Spec.CIDR)
	if err != nil {
		return "", err
	}
	if a.Spec.Node == "" || strings.Contains(a.Spec.Node, "/") {
		return "", fmt.Errorf("spec.node %q must be a node name (not empty, no '/')", a.Spec.Node)
	}
	typ := a.Spec.Type
	switch typ {
	case "":
		typ = api.AffinityTypeHost
	case api.AffinityTypeHost, api.AffinityTypeVirtual:
	default:
		return "", fmt.Errorf("spec.type %q must be %s or %s", typ, api.AffinityTypeHost, api.AffinityTypeVirtual)
	}
	return affinityPath(typ, a.Spec.Node, p), nil
}

func (affinityCodec) decode(path string, value []byte) (api.Resource, error) {
	k, _ := parseAffinityPath(path)
	var ca calicoAffinity
	if len(value) > 0 { // Calico once stored affinities without a value
		if err := json.Unmarshal(value, &ca); err != nil {
			return nil, err
		}
	}
	if ca.State == "" {
		ca.State = api.BlockAffinityConfirmed // Calico's reading of affinities from before states
	}
	a := api.NewBlockAffinity()
	a.Name = api.BlockAffinityName(k.host, k.cidr.String())
	a.Spec = api.BlockAffinitySpec{
		State:   ca.State,
		Node:    k.host,
		Type:    k.typ,
		CIDR:    k.cidr.String(),
		Deleted: fmt.Sprint(ca.Deleted),
	}
	return a, nil
}

func (affinityCodec) encode(obj api.Resource) ([]byte, error) {
	a := obj.(*api.BlockAffinity)
	return json.Marshal(calicoAffinity{State: a.Spec.State, Deleted: a.Spec.Deleted == "true"})
}

// --- IPAMHandle: /handle/<handle ID>.

type handleCodec struct{}

// calicoHandle is model.IPAMHandle; the handle ID is in the key only.
type calicoHandle struct {
	Block   map[string]int `json:"block"`
	Deleted bool           `json:"deleted"`
}

func (handleCodec) keyRange() (string, string) { return prefixRange("/handle/") }

func (handleCodec) nameOf(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, "/handle/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return api.IPAMHandleName(id), true
}

// lookup: a name is the lower-cased handle ID, which is where tortie's and Calico's handles (whose IDs
// are lower case in practice) are; a hashed name (an ID that is no object name) is found by a scan.
// An ID with upper-case letters, which only Calico could have written, is found by List but not by
// name.
func (handleCodec) lookup(name string) (paths, scan []string) {
	if strings.Contains(name, "/") {
		return nil, nil
	}
	paths = []string{"/handle/" + name}
	if api.HashedIPAMHandleName(name) {
		scan = []string{"/handle/"}
	}
	return paths, scan
}

func (handleCodec) pathOf(obj api.Resource) (string, error) {
	h := obj.(*api.IPAMHandle)
	if h.Spec.HandleID == "" || strings.Contains(h.Spec.HandleID, "/") {
		return "", fmt.Errorf("spec.handleID %q must be set and must not contain '/'", h.Spec.HandleID)
	}
	return "/handle/" + h.Spec.HandleID, nil
}

func (handleCodec) decode(path string, value []byte) (api.Resource, error) {
	id := strings.TrimPrefix(path, "/handle/")
	var ch calicoHandle
	if err := json.Unmarshal(value, &ch); err != nil {
		return nil, err
	}
	h := api.NewIPAMHandle()
	h.Name = api.IPAMHandleName(id)
	h.Spec = api.IPAMHandleSpec{HandleID: id, Block: ch.Block, Deleted: ch.Deleted}
	return h, nil
}

func (handleCodec) encode(obj api.Resource) ([]byte, error) {
	h := obj.(*api.IPAMHandle)
	return json.Marshal(calicoHandle{Block: h.Spec.Block, Deleted: h.Spec.Deleted})
}

// --- IPAMConfig: /config, the settings calico-ipam reads (calicoctl ipam configure writes them). The
// v3 resource calicoctl keeps under ResourcePrefix is not what Calico's IPAM reads, so tortie does not
// use it.

type configCodec struct{}

// calicoConfig is model.IPAMConfig.
type calicoConfig struct {
	StrictAffinity               bool    `json:"strict_affinity,omitempty"`
	AutoAllocateBlocks           bool    `json:"auto_allocate_blocks,omitempty"`
	MaxBlocksPerHost             int     `json:"maxBlocksPerHost,omitempty"`
	KubeVirtVMAddressPersistence *string `json:"kubeVirtVMAddressPersistence,omitempty"`
	IPCooldownSeconds            int     `json:"ipCooldownSeconds,omitempty"`
}

const configPath = "/config"

func (configCodec) keyRange() (string, string) { return configPath, configPath + "\x00" }

func (configCodec) nameOf(path string) (string, bool) {
	return api.IPAMConfigName, path == configPath
}

func (configCodec) lookup(name string) ([]string, []string) {
	if name != api.IPAMConfigName {
		return nil, nil
	}
	return []string{configPath}, nil
}

func (configCodec) pathOf(obj api.Resource) (string, error) {
	if obj.GetName() != api.IPAMConfigName {
		return "", fmt.Errorf("the IPAM configuration is a single object named %q", api.IPAMConfigName)
	}
	return configPath, nil
}

// decode reads Calico's values as Calico does: a missing auto_allocate_blocks is false.
func (configCodec) decode(_ string, value []byte) (api.Resource, error) {
	var cc calicoConfig
	if err := json.Unmarshal(value, &cc); err != nil {
		return nil, err
	}
	c := api.NewIPAMConfig()
	c.Name = api.IPAMConfigName
	c.Spec = api.IPAMConfigSpec{
		StrictAffinity:               cc.StrictAffinity,
		AutoAllocateBlocks:           new(cc.AutoAllocateBlocks),
		MaxBlocksPerHost:             cc.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: cc.KubeVirtVMAddressPersistence,
	}
	if cc.IPCooldownSeconds != 0 {
		c.Spec.IPCooldownSeconds = new(cc.IPCooldownSeconds)
	}
	return c, nil
}

// encode writes autoAllocateBlocks explicitly (unset means true for tortie; Calico reads absent as false).
func (configCodec) encode(obj api.Resource) ([]byte, error) {
	c := obj.(*api.IPAMConfig)
	cc := calicoConfig{
		StrictAffinity:               c.Spec.StrictAffinity,
		AutoAllocateBlocks:           c.Spec.AutoAllocateBlocks == nil || *c.Spec.AutoAllocateBlocks,
		MaxBlocksPerHost:             c.Spec.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: c.Spec.KubeVirtVMAddressPersistence,
	}
	if c.Spec.IPCooldownSeconds != nil {
		cc.IPCooldownSeconds = *c.Spec.IPCooldownSeconds
	}
	return json.Marshal(cc)
}

// prefixRange is the range of every key that starts with prefix.
func prefixRange(prefix string) (string, string) {
	return prefix, prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)
}
