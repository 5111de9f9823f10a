// Package policy is the policy conformance suite every dataplane runs: truth tables from cases.yaml.
//
// The model (the Kubernetes network-policy e2e model): namespaces x, y and z labelled ns=<name>; in each,
// pods a, b and c labelled pod=<name>, with service account sa-<pod> (labelled sa=<pod>), container
// ports serve-80-tcp, serve-81-tcp, serve-80-udp and serve-81-udp, and address 10.0.<1|2|3>.<1|2|3>
// (namespace x, y, z; pod a, b, c). Pod a of every namespace runs on node n1, b on n2, c on n3.
//
// A case is a sequence of steps. A step applies or deletes resources (calicoctl or Kubernetes YAML),
// changes pod or namespace labels, removes or re-adds pods, or changes a pod's profiles; then every probe
// (tcp/80, tcp/81, udp/80, udp/81 by default; a case may list others, such as icmp/8/0 or sctp/80) is
// sent from every pod to every pod, and the 9×9 verdicts must equal the step's expected matrix. A
// matrix has one line per source pod, one column per destination pod, in the order x/a x/b x/c y/a …
// z/c: "." allowed, "X" denied, "-" no such pod.
//
// Run drives any implementation of Dataplane: the calculation plus the dpmodel interpreter here, the
// Linux dataplane and the Windows dataplane on the fake HNS in their packages. TestReference checks
// every expected matrix against the independent evaluator in ./reference; regenerate the expectations
// from it with `go test ./platform/dptest/policy -run TestReference -update` and review the diff.
package policy
