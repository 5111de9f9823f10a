// Package hcnfake is a stateful fake of the Windows Host Networking Service behind windows/hcn.API. It
// models what tortie depends on, so that the Windows dataplane is tested on Linux against HNS semantics
// rather than a call script:
//
//   - networks (Overlay needs a Static subnet with a VSID ≥ 4096; HNS adds the ProviderAddress and
//     DrMacAddress policies), the Hyper-V vSwitch that the first non-NAT network creates and the last
//     one's deletion tears down (each is a host connectivity blip, counted by Blips);
//   - endpoints (address inside the subnet, unique per network), namespaces and attachment;
//   - network policies: RemoteSubnetRoute (HNS ≥ 9.2, Overlay only, one per prefix), SetPolicy IP sets
//     (HNS ≥ 13.0, refused while an ACL refers to the set), VxlanPort (≥ 10.3), HostRoute (≥ 9.2);
//   - endpoint policies: ACLs validated as HNS validates them (numeric protocols, "256" = any; ports only
//     with TCP or UDP; ranges only from 7.2; no "Any" address; set IDs only where SetPolicy exists) and
//     Update replacing the whole policy list;
//   - ACL evaluation (Verdict, EndpointVerdict): per direction and per layer (Switch = VFP, Host = WFP),
//     the matching rule with the lowest Priority decides; at equal priority Block beats Allow (HNS's
//     tie-break differs from first-match, so tortie never relies on it); once any rule exists in a
//     direction and layer, a packet no rule matches is blocked (the Windows Server 2025 behaviour;
//     Options.NoMatchAllows models older builds); RemoteSubnetRoute decides whether a non-local
//     destination is reachable through the overlay;
//   - faults: Restart (an HNS service restart: endpoints, namespaces and non-persistent networks are
//     lost), Reboot (all networks but NAT ones are lost too), injected call failures (FailNext, FailWhen)
//     and slow calls (SetLatency, honouring the context);
//   - counters: every call by name (Calls), for "at most one HNS call per endpoint per change" tests;
//   - containers of the Docker flow (AddContainer, RemoveContainer): each has a compartment (an HNS
//     namespace, shared by the containers of one pod), and HotAttachEndpoint puts an endpoint into it,
//     idempotently, as hcsshim's hot attach does.
//
// New keeps the state in memory. Open keeps it in a file shared by processes — a CNI plugin run by
// libcni, an agent and the test — as they share the host's HNS: every call takes a lock on
// "<path>.lock", loads the state if another process changed it, and stores it. FailNext failures are
// stored too (a test makes a call of the plugin's process fail); FailWhen conditions are functions and
// stay in the process that set them.
package hcnfake
