package api

func init() {
	reg := func(kind, plural string, namespaced bool, newFn func() Resource, short ...string) {
		Register(KindInfo{Kind: kind, Plural: plural, ShortNames: short, Namespaced: namespaced, New: newFn})
	}
	// Short names are calicoctl's aliases (singular forms equal to the kind are implied by the kind itself).
	Register(KindInfo{Kind: KindIPPool, Plural: "ippools", ShortNames: []string{"ipp", "ipps", "pool", "pools"}, StatusSubresource: true,
		New: func() Resource { return NewIPPool() }})
	reg(KindNetworkPolicy, "networkpolicies", true, func() Resource { return NewNetworkPolicy() }, "np", "nps", "policy", "policies", "pol", "pols")
	reg(KindGlobalNetworkPolicy, "globalnetworkpolicies", false, func() Resource { return NewGlobalNetworkPolicy() }, "gnp", "gnps")
	Register(KindInfo{Kind: KindTier, Plural: "tiers", StatusSubresource: true, New: func() Resource { return NewTier() }})
	reg(KindNetworkSet, "networksets", true, func() Resource { return NewNetworkSet() }, "netset", "netsets")
	reg(KindGlobalNetworkSet, "globalnetworksets", false, func() Resource { return NewGlobalNetworkSet() }, "gns")
	reg(KindHostEndpoint, "hostendpoints", false, func() Resource { return NewHostEndpoint() }, "hep", "heps")
	reg(KindProfile, "profiles", false, func() Resource { return NewProfile() }, "pro", "pros")
	reg(KindBGPPeer, "bgppeers", false, func() Resource { return NewBGPPeer() }, "bgpp", "bgpps", "bp", "bps")
	reg(KindBGPConfiguration, "bgpconfigurations", false, func() Resource { return NewBGPConfiguration() }, "bgpconfig", "bgpconfigs")
	reg(KindFelixConfiguration, "felixconfigurations", false, func() Resource { return NewFelixConfiguration() }, "felixconfig", "felixconfigs")
	reg(KindClusterInformation, "clusterinformations", false, func() Resource { return NewClusterInformation() }, "clusterinfo", "clusterinfos")
	reg(KindNode, "nodes", false, func() Resource { return NewNode() }, "no")
	reg(KindWorkloadEndpoint, "workloadendpoints", true, func() Resource { return NewWorkloadEndpoint() }, "wep", "weps")
	reg(KindIPAMBlock, "ipamblocks", false, func() Resource { return NewIPAMBlock() })
	reg(KindBlockAffinity, "blockaffinities", false, func() Resource { return NewBlockAffinity() }, "affinity", "affinities")
	reg(KindIPAMHandle, "ipamhandles", false, func() Resource { return NewIPAMHandle() })
	Register(KindInfo{Kind: KindIPAMConfiguration, Plural: "ipamconfigurations", CRDKind: CRDKindIPAMConfig, CRDPlural: "ipamconfigs",
		ShortNames: []string{CRDKindIPAMConfig, "ipamconfigs"}, New: func() Resource { return NewIPAMConfig() }})
	reg(KindIPReservation, "ipreservations", false, func() Resource { return NewIPReservation() }, "ipres")
	Register(KindInfo{Kind: KindKubeControllersConfiguration, Plural: "kubecontrollersconfigurations", ShortNames: []string{"kcconfig", "kcconfigs"},
		StatusSubresource: true, New: func() Resource { return NewKubeControllersConfiguration() }})
	reg(KindBGPFilter, "bgpfilters", false, func() Resource { return NewBGPFilter() }, "bgpf", "bgpfs")
	Register(KindInfo{Kind: KindCalicoNodeStatus, Plural: "caliconodestatuses", ShortNames: []string{"cns"},
		StatusSubresource: true, New: func() Resource { return NewCalicoNodeStatus() }})
	reg(KindStagedNetworkPolicy, "stagednetworkpolicies", true, func() Resource { return NewStagedNetworkPolicy() }, "snp", "snps")
	reg(KindStagedGlobalNetworkPolicy, "stagedglobalnetworkpolicies", false, func() Resource { return NewStagedGlobalNetworkPolicy() }, "sgnp", "sgnps")
	reg(KindStagedKubernetesNetworkPolicy, "stagedkubernetesnetworkpolicies", true, func() Resource { return NewStagedKubernetesNetworkPolicy() }, "sknp", "sknps")
}
