//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/linux/lab"
)

// demoStep is one step of the demo: a sentence, the documents it applies or deletes, the probe.
type demoStep struct {
	say           string
	apply, delete string
	port, proto   string
}

var demoSteps = []demoStep{
	{say: "No policy yet: every pod reaches every pod (the namespace profiles allow all).", port: "80", proto: "TCP"},
	{say: "A Kubernetes NetworkPolicy selects every pod in x and allows no ingress: nothing reaches x any more (a pod reaching itself never leaves it, so the diagonal stays open).",
		apply: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
`, port: "80", proto: "TCP"},
	{say: "A second one lets pods of namespace y reach x/a on TCP 80 (policies add up: y → x/a opens, the rest stays closed).",
		apply: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]
    ports: [{port: 80, protocol: TCP}]
`, port: "80", proto: "TCP"},
	{say: "The same pods on TCP 81: the allow names port 80 only, so x stays closed on 81.", port: "81", proto: "TCP"},
	{say: "A Calico GlobalNetworkPolicy (order 10, before the Kubernetes policies) denies egress from z/c to everything.",
		apply: `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: isolate-z-c}
spec:
  order: 10
  selector: projectcalico.org/namespace == 'z' && pod == 'c'
  types: [Egress]
  egress: [{action: Deny}]
`, port: "80", proto: "TCP"},
	{say: "Deleting the three policies restores full connectivity.",
		delete: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y, namespace: x}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: isolate-z-c}
`, port: "80", proto: "TCP"},
}

func (a *app) demo() *cobra.Command {
	var (
		o                 lab.UpOptions
		podCIDR, underlay string
		keep              bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "3 nodes, namespaces x/y/z with pods a/b/c, policies step by step with the matrix after each; then down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.upOptions(&o, podCIDR, underlay); err != nil {
				return err
			}
			return a.runDemo(cmd.Context(), o, keep)
		},
	}
	a.upFlags(cmd, &o, &podCIDR, &underlay)
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up after the demo (tortie-lab down removes it)")
	return cmd
}

func (a *app) runDemo(ctx context.Context, o lab.UpOptions, keep bool) (err error) {
	w := a.out()
	start := time.Now()
	say := func(format string, args ...any) {
		printf(w, "\n[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	say("Creating a lab: %d nodes (network namespaces on bridge %s), an embedded etcd, a tortie-node per node.", o.Nodes, lab.BridgeName)
	if err := lab.Up(ctx, a.dir, o, w); err != nil {
		return err
	}
	if !keep {
		defer func() {
			say("Removing the lab (tortie-lab down).")
			if derr := lab.Down(a.dir, w); derr != nil && err == nil {
				err = derr
			}
		}()
	}
	l, err := lab.Open(a.dir)
	if err != nil {
		return err
	}
	defer l.Close()
	if l.State().Dataplane == "fake" {
		say("WARNING: the agents run the fake dataplane (this tortie-node has no Linux dataplane): policy is computed but " +
			"not enforced and pods on different nodes cannot reach each other, so the matrices below do not show what the sentences say.")
	}
	say("Namespaces x, y, z (labelled ns=<name>), each with pods a, b, c (labelled pod=<name>) on nodes n1, n2, n3; every pod serves TCP and UDP on ports 80 and 81.")
	for _, ns := range []string{"x", "y", "z"} {
		if err := l.AddNamespace(ctx, ns, map[string]string{"ns": ns}); err != nil {
			return err
		}
		for i, p := range []string{"a", "b", "c"} {
			if err := l.AddPod(ctx, ns+"/"+p, lab.PodOptions{Node: i%o.Nodes + 1, Labels: map[string]string{"pod": p}}); err != nil {
				return err
			}
		}
	}
	for i, st := range demoSteps {
		say("%s", st.say)
		for verb, docs := range map[string]string{"apply": st.apply, "delete": st.delete} {
			if docs == "" {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(docs), "\n") {
				printf(w, "    | %s\n", line)
			}
			if code := l.Tortiectl(ctx, []string{verb, "-f", "-"}, strings.NewReader(docs), w, a.env.Stderr); code != 0 {
				return fmt.Errorf("the demo's %s failed (exit %d)", verb, code)
			}
		}
		if err := l.Sync(ctx, time.Minute); err != nil {
			return err
		}
		m, err := l.Probe(ctx, lab.ProbeOptions{Port: st.port, Proto: st.proto, Timeout: time.Second})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, m.Text()); err != nil {
			return err
		}
		if i == 0 && l.State().Dataplane != "fake" && strings.Contains(strings.Join(m.Results["TCP/80"], ""), "X") {
			say("WARNING: without any policy some pods do not reach each other: this tortie-node's Linux dataplane " +
				"does not route between nodes yet, so pods on different nodes stay apart in every matrix below.")
		}
	}
	say("Done. Try it yourself: tortie-lab up; tortie-lab ns add ...; tortie-lab pod add ...; tortie-lab probe (docs/lab.md).")
	return nil
}
