package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kind names.
const (
	KindIPPool                        = "IPPool"
	KindNetworkPolicy                 = "NetworkPolicy"
	KindGlobalNetworkPolicy           = "GlobalNetworkPolicy"
	KindTier                          = "Tier"
	KindNetworkSet                    = "NetworkSet"
	KindGlobalNetworkSet              = "GlobalNetworkSet"
	KindHostEndpoint                  = "HostEndpoint"
	KindProfile                       = "Profile"
	KindBGPPeer                       = "BGPPeer"
	KindBGPConfiguration              = "BGPConfiguration"
	KindFelixConfiguration            = "FelixConfiguration"
	KindClusterInformation            = "ClusterInformation"
	KindNode                          = "Node"
	KindWorkloadEndpoint              = "WorkloadEndpoint"
	KindIPAMBlock                     = "IPAMBlock"
	KindBlockAffinity                 = "BlockAffinity"
	KindIPAMHandle                    = "IPAMHandle"
	KindIPReservation                 = "IPReservation"
	KindKubeControllersConfiguration  = "KubeControllersConfiguration"
	KindBGPFilter                     = "BGPFilter"
	KindCalicoNodeStatus              = "CalicoNodeStatus"
	KindStagedNetworkPolicy           = "StagedNetworkPolicy"
	KindStagedGlobalNetworkPolicy     = "StagedGlobalNetworkPolicy"
	KindStagedKubernetesNetworkPolicy = "StagedKubernetesNetworkPolicy"

	// KindIPAMConfiguration is the IPAM settings singleton, named as Calico's v3 API names it: etcd keeps it
	// under …/ipamconfigurations/default, and the Kubernetes datastore as the custom resource
	// ipamconfigs.crd.projectcalico.org of kind IPAMConfig (CRDKindIPAMConfig). "IPAMConfig" is accepted
	// on input as an alias.
	KindIPAMConfiguration = "IPAMConfiguration"
	// KindIPAMConfig is the former name of KindIPAMConfiguration; both name the same registered kind.
	KindIPAMConfig = KindIPAMConfiguration
	// CRDKindIPAMConfig is the custom resource kind that stores an IPAMConfiguration in Kubernetes.
	CRDKindIPAMConfig = "IPAMConfig"
)

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: APIVersion, Kind: kind}
}

// NewIPPool returns an empty IPPool with TypeMeta set to IPPool in projectcalico.org/v3.
func NewIPPool() *IPPool { return &IPPool{TypeMeta: typeMeta(KindIPPool)} }

// NewNetworkPolicy returns an empty NetworkPolicy with TypeMeta set to NetworkPolicy in projectcalico.org/v3.
func NewNetworkPolicy() *NetworkPolicy { return &NetworkPolicy{TypeMeta: typeMeta(KindNetworkPolicy)} }

// NewGlobalNetworkPolicy returns an empty GlobalNetworkPolicy with TypeMeta set to GlobalNetworkPolicy in projectcalico.org/v3.
func NewGlobalNetworkPolicy() *GlobalNetworkPolicy {
	return &GlobalNetworkPolicy{TypeMeta: typeMeta(KindGlobalNetworkPolicy)}
}

// NewTier returns an empty Tier with TypeMeta set to Tier in projectcalico.org/v3.
func NewTier() *Tier { return &Tier{TypeMeta: typeMeta(KindTier)} }

// NewNetworkSet returns an empty NetworkSet with TypeMeta set to NetworkSet in projectcalico.org/v3.
func NewNetworkSet() *NetworkSet { return &NetworkSet{TypeMeta: typeMeta(KindNetworkSet)} }

// NewGlobalNetworkSet returns an empty GlobalNetworkSet with TypeMeta set to GlobalNetworkSet in projectcalico.org/v3.
func NewGlobalNetworkSet() *GlobalNetworkSet {
	return &GlobalNetworkSet{TypeMeta: typeMeta(KindGlobalNetworkSet)}
}

// NewHostEndpoint returns an empty HostEndpoint with TypeMeta set to HostEndpoint in projectcalico.org/v3.
func NewHostEndpoint() *HostEndpoint { return &HostEndpoint{TypeMeta: typeMeta(KindHostEndpoint)} }

// NewProfile returns an empty Profile with TypeMeta set to Profile in projectcalico.org/v3.
func NewProfile() *Profile { return &Profile{TypeMeta: typeMeta(KindProfile)} }

// NewBGPPeer returns an empty BGPPeer with TypeMeta set to BGPPeer in projectcalico.org/v3.
func NewBGPPeer() *BGPPeer { return &BGPPeer{TypeMeta: typeMeta(KindBGPPeer)} }

// NewBGPConfiguration returns an empty BGPConfiguration with TypeMeta set to BGPConfiguration in projectcalico.org/v3.
func NewBGPConfiguration() *BGPConfiguration {
	return &BGPConfiguration{TypeMeta: typeMeta(KindBGPConfiguration)}
}

// NewFelixConfiguration returns an empty FelixConfiguration with TypeMeta set to FelixConfiguration in projectcalico.org/v3.
func NewFelixConfiguration() *FelixConfiguration {
	return &FelixConfiguration{TypeMeta: typeMeta(KindFelixConfiguration)}
}

// NewClusterInformation returns an empty ClusterInformation with TypeMeta set to ClusterInformation in projectcalico.org/v3.
func NewClusterInformation() *ClusterInformation {
	return &ClusterInformation{TypeMeta: typeMeta(KindClusterInformation)}
}

// NewNode returns an empty Node with TypeMeta set to Node in projectcalico.org/v3.
func NewNode() *Node { return &Node{TypeMeta: typeMeta(KindNode)} }

// NewWorkloadEndpoint returns an empty WorkloadEndpoint with TypeMeta set to WorkloadEndpoint in projectcalico.org/v3.
func NewWorkloadEndpoint() *WorkloadEndpoint {
	return &WorkloadEndpoint{TypeMeta: typeMeta(KindWorkloadEndpoint)}
}

// NewIPAMBlock returns an empty IPAMBlock with TypeMeta set to IPAMBlock in projectcalico.org/v3.
func NewIPAMBlock() *IPAMBlock { return &IPAMBlock{TypeMeta: typeMeta(KindIPAMBlock)} }

// NewBlockAffinity returns an empty BlockAffinity with TypeMeta set to BlockAffinity in projectcalico.org/v3.
func NewBlockAffinity() *BlockAffinity { return &BlockAffinity{TypeMeta: typeMeta(KindBlockAffinity)} }

// NewIPAMHandle returns an empty IPAMHandle with TypeMeta set to IPAMHandle in projectcalico.org/v3.
func NewIPAMHandle() *IPAMHandle { return &IPAMHandle{TypeMeta: typeMeta(KindIPAMHandle)} }

// NewIPAMConfig returns an empty IPAMConfig with TypeMeta set to IPAMConfiguration in projectcalico.org/v3.
func NewIPAMConfig() *IPAMConfig { return &IPAMConfig{TypeMeta: typeMeta(KindIPAMConfiguration)} }

// NewIPReservation returns an empty IPReservation with TypeMeta set to IPReservation in projectcalico.org/v3.
func NewIPReservation() *IPReservation { return &IPReservation{TypeMeta: typeMeta(KindIPReservation)} }

// NewKubeControllersConfiguration returns an empty KubeControllersConfiguration with TypeMeta set to KubeControllersConfiguration in projectcalico.org/v3.
func NewKubeControllersConfiguration() *KubeControllersConfiguration {
	return &KubeControllersConfiguration{TypeMeta: typeMeta(KindKubeControllersConfiguration)}
}

// NewBGPFilter returns an empty BGPFilter with TypeMeta set to BGPFilter in projectcalico.org/v3.
func NewBGPFilter() *BGPFilter { return &BGPFilter{TypeMeta: typeMeta(KindBGPFilter)} }

// NewCalicoNodeStatus returns an empty CalicoNodeStatus with TypeMeta set to CalicoNodeStatus in projectcalico.org/v3.
func NewCalicoNodeStatus() *CalicoNodeStatus {
	return &CalicoNodeStatus{TypeMeta: typeMeta(KindCalicoNodeStatus)}
}

// NewStagedNetworkPolicy returns an empty StagedNetworkPolicy with TypeMeta set to StagedNetworkPolicy in projectcalico.org/v3.
func NewStagedNetworkPolicy() *StagedNetworkPolicy {
	return &StagedNetworkPolicy{TypeMeta: typeMeta(KindStagedNetworkPolicy)}
}

// NewStagedGlobalNetworkPolicy returns an empty StagedGlobalNetworkPolicy with TypeMeta set to StagedGlobalNetworkPolicy in projectcalico.org/v3.
func NewStagedGlobalNetworkPolicy() *StagedGlobalNetworkPolicy {
	return &StagedGlobalNetworkPolicy{TypeMeta: typeMeta(KindStagedGlobalNetworkPolicy)}
}

// NewStagedKubernetesNetworkPolicy returns an empty StagedKubernetesNetworkPolicy with TypeMeta set to StagedKubernetesNetworkPolicy in projectcalico.org/v3.
func NewStagedKubernetesNetworkPolicy() *StagedKubernetesNetworkPolicy {
	return &StagedKubernetesNetworkPolicy{TypeMeta: typeMeta(KindStagedKubernetesNetworkPolicy)}
}
