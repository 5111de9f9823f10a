// Package mtu computes the MTUs a node uses — the host MTU, each tunnel device's MTU and the pod MTU —
// the way Calico's Felix does, and publishes the pod MTU in the file the CNI plugin reads.
//
// Host MTU: the smallest MTU among interfaces that are UP (running, with carrier) and whose name matches
// mtuIfacePattern (DefaultIfacePattern, Calico's default); 1460 when none matches.
//
// Tunnel device MTUs: the configured value (FelixConfiguration ipipMTU / vxlanMTU / vxlanMTUV6 /
// wireguardMTU / wireguardMTUV6, or FELIX_IPINIPMTU … in the environment) when non-zero, else the host
// MTU minus the overhead: IPIP 20, VXLAN 50 (IPv4) / 70 (IPv6), WireGuard 60 (IPv4) / 80 (IPv6).
//
// Pod MTU: the smallest device MTU among the enabled encapsulations — with nothing configured that is
// the host MTU minus the largest enabled overhead — or the host MTU when no encapsulation is enabled.
// It is written to DefaultFile (/var/lib/calico/mtu, Calico's path, so both CNI plugins find it)
// atomically with WriteMTUFile.
//
// Not modelled: Calico's extra 100-byte WireGuard reduction on AKS with host encryption.
//
// The package is platform-neutral and works on interface lists from autodetect.InterfaceSource.
package mtu
