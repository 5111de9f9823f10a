package kube

import (
	"fmt"
	"sort"
	"strings"
)

// Revisions.
//
// A tortie kind that maps to one Kubernetes resource (every CRD kind, Node from core Nodes,
// WorkloadEndpoint from Pods) uses that resource's resourceVersion unchanged as its revision.
//
// A kind merged from several Kubernetes resources (NetworkPolicy = CRD networkpolicies + Kubernetes
// NetworkPolicies; Profile = Namespaces + ServiceAccounts) needs one resourceVersion per resource to
// resume a watch without a gap: the lists are separate reads, so no single resourceVersion is a
// consistent point for both. List and the events of Watch therefore return a composite revision,
// "crd:<rv>;knp:<rv>" (sources sorted by name). Watch accepts either form: a composite revision resumes
// each source where it was; a plain resourceVersion (for example an object's own resourceVersion) is
// used for every source, which is exact because Kubernetes resourceVersions are etcd revisions shared
// by all resources.

// compositeRevision encodes per-source resourceVersions.
func compositeRevision(revs map[string]string) string {
	names := make([]string, 0, len(revs))
	for n := range revs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(revs[n])
	}
	return b.String()
}

// parseRevision splits a revision into per-source resourceVersions for the given sources. A plain
// resourceVersion applies to all of them; "" means "from now" for all of them.
func parseRevision(rev string, sources []string) (map[string]string, error) {
	out := make(map[string]string, len(sources))
	if !strings.Contains(rev, ":") {
		for _, s := range sources {
			out[s] = rev
		}
		return out, nil
	}
	known := make(map[string]bool, len(sources))
	for _, s := range sources {
		known[s] = true
	}
	for _, part := range strings.Split(rev, ";") {
		name, rv, ok := strings.Cut(part, ":")
		if !ok || name == "" || rv == "" {
			return nil, fmt.Errorf("malformed revision %q: want <source>:<resourceVersion>;…", rev)
		}
		if !known[name] {
			return nil, fmt.Errorf("revision %q names source %q, which this kind does not have (want %s)",
				rev, name, strings.Join(sources, ", "))
		}
		out[name] = rv
	}
	for _, s := range sources {
		if _, ok := out[s]; !ok {
			return nil, fmt.Errorf("revision %q lacks source %q", rev, s)
		}
	}
	return out, nil
}
