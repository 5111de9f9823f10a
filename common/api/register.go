package api

func init() {
	reg := func(kind, plural string, namespaced bool, newFn func() Resource, short ...string) {
		Register(KindInfo{Kind: kind, Plural: plural, ShortNames: short, Namespaced: namespaced, New: newFn})
	}
	// Short names are calicoctl's aliases (singular forms equal to the kind are implied by the kind itself).
	reg(KindIPPool, "ippools", false, func() Resource { return NewIPPool() }, "ipp", "ipps", "pool", "pools")
	reg(KindNetworkPolicy, "networkpolicies", true, func() Resource { return NewNetworkPolicy() }, "np", "nps", "policy", "policies", "pol", "pols")
	reg(KindGlobalNetworkPolicy, "globalnetworkpolicies", false, func() Resource { return NewGlobalNetworkPolicy() }, "gnp", "gnps")
	reg(KindTier, "tiers", false, func() Resource { return NewTier() })
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
	reg(KindIPAMConfig, "ipamconfigs", false, func() Resource { return NewIPAMConfig() }, "IPAMConfiguration", "ipamconfigurations")
	reg(KindIPReservation, "ipreservations", false, func() Resource { return NewIPReservation() }, "ipres")
	reg(KindKubeControllersConfiguration, "kubecontrollersconfigurations", false, func() Resource { return NewKubeControllersConfiguration() }, "kcconfig", "kcconfigs")
}
