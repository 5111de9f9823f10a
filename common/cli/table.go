package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// column is one table column.
type column struct {
	header string
	value  func(obj api.Resource, tc *tableContext) string
}

// tableContext holds cluster-wide values some columns show, looked up once per table.
type tableContext struct {
	// defaultASN is the cluster AS number, shown in parentheses for nodes that do not set their own.
	defaultASN string
}

// tableSpec is a kind's columns for -o table and -o wide. Tables of namespaced kinds get a NAMESPACE
// column in front with --all-namespaces unless their columns already have one, as calicoctl does.
type tableSpec struct{ normal, wide []column }

var (
	colName      = column{"NAME", func(o api.Resource, _ *tableContext) string { return o.GetName() }}
	colNamespace = column{"NAMESPACE", func(o api.Resource, _ *tableContext) string { return o.GetNamespace() }}
)

// col builds a column from a function of one concrete kind.
func col[T api.Resource](header string, f func(T) string) column {
	return column{header, func(o api.Resource, _ *tableContext) string {
		if t, ok := o.(T); ok {
			return f(t)
		}
		return ""
	}}
}

func order(o *float64) string {
	if o == nil {
		return ""
	}
	return strconv.FormatFloat(*o, 'f', -1, 64)
}

func join(s []string) string { return strings.Join(s, ",") }

func boolStr(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func labelsStr(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

var tables = map[string]tableSpec{
	api.KindIPPool: {
		normal: []column{colName, col("CIDR", func(p *api.IPPool) string { return p.Spec.CIDR }), poolSelector},
		wide: []column{colName,
			col("CIDR", func(p *api.IPPool) string { return p.Spec.CIDR }),
			col("NAT", func(p *api.IPPool) string { return strconv.FormatBool(p.Spec.NATOutgoing) }),
			col("IPIPMODE", func(p *api.IPPool) string { return string(p.Spec.IPIPMode) }),
			col("VXLANMODE", func(p *api.IPPool) string { return string(p.Spec.VXLANMode) }),
			col("DISABLED", func(p *api.IPPool) string { return strconv.FormatBool(p.Spec.Disabled) }),
			col("DISABLEBGPEXPORT", func(p *api.IPPool) string { return strconv.FormatBool(p.Spec.DisableBGPExport) }),
			poolSelector},
	},
	api.KindNetworkPolicy: {
		normal: []column{colNamespace, colName},
		wide: []column{colNamespace, colName,
			col("ORDER", func(p *api.NetworkPolicy) string { return order(p.Spec.Order) }),
			col("SELECTOR", func(p *api.NetworkPolicy) string { return p.Spec.Selector })},
	},
	api.KindGlobalNetworkPolicy: {
		normal: []column{colName},
		wide: []column{colName,
			col("ORDER", func(p *api.GlobalNetworkPolicy) string { return order(p.Spec.Order) }),
			col("SELECTOR", func(p *api.GlobalNetworkPolicy) string { return p.Spec.Selector })},
	},
	api.KindTier: {
		normal: []column{colName, col("ORDER", func(t *api.Tier) string { return order(t.Spec.Order) })},
		wide: []column{colName, col("ORDER", func(t *api.Tier) string { return order(t.Spec.Order) }),
			col("DEFAULTACTION", func(t *api.Tier) string {
				if t.Spec.DefaultAction == nil {
					return ""
				}
				return string(*t.Spec.DefaultAction)
			})},
	},
	api.KindNetworkSet: {
		normal: []column{colNamespace, colName},
		wide:   []column{colNamespace, colName, col("NETS", func(n *api.NetworkSet) string { return join(n.Spec.Nets) })},
	},
	api.KindGlobalNetworkSet: {
		normal: []column{colName},
		wide:   []column{colName, col("NETS", func(n *api.GlobalNetworkSet) string { return join(n.Spec.Nets) })},
	},
	api.KindHostEndpoint: {
		normal: []column{colName, col("NODE", func(h *api.HostEndpoint) string { return h.Spec.Node })},
		wide: []column{colName,
			col("NODE", func(h *api.HostEndpoint) string { return h.Spec.Node }),
			col("INTERFACE", func(h *api.HostEndpoint) string { return h.Spec.InterfaceName }),
			col("IPS", func(h *api.HostEndpoint) string { return join(h.Spec.ExpectedIPs) }),
			col("PROFILES", func(h *api.HostEndpoint) string { return join(h.Spec.Profiles) })},
	},
	api.KindProfile: {
		normal: []column{colName},
		wide:   []column{colName, col("LABELS", func(p *api.Profile) string { return labelsStr(p.Spec.LabelsToApply) })},
	},
	api.KindBGPPeer: {
		normal: bgpPeerColumns,
		wide:   bgpPeerColumns,
	},
	api.KindBGPConfiguration: {
		normal: bgpConfigColumns,
		wide:   bgpConfigColumns,
	},
	api.KindClusterInformation: {
		normal: []column{colName},
		wide: []column{colName,
			col("CALICOVERSION", func(c *api.ClusterInformation) string { return c.Spec.CalicoVersion }),
			col("CLUSTERTYPE", func(c *api.ClusterInformation) string { return c.Spec.ClusterType }),
			col("DATASTOREREADY", func(c *api.ClusterInformation) string { return boolStr(c.Spec.DatastoreReady) })},
	},
	api.KindNode: {
		normal: []column{colName},
		wide: []column{colName,
			{"ASN", nodeASN},
			col("IPV4", func(n *api.Node) string {
				if n.Spec.BGP == nil {
					return ""
				}
				return n.Spec.BGP.IPv4Address
			}),
			col("IPV6", func(n *api.Node) string {
				if n.Spec.BGP == nil {
					return ""
				}
				return n.Spec.BGP.IPv6Address
			})},
	},
	api.KindWorkloadEndpoint: {
		normal: []column{wepWorkload, wepNode, wepNetworks, wepInterface},
		wide: []column{colName, wepWorkload, wepNode, wepNetworks, wepInterface,
			col("PROFILES", func(w *api.WorkloadEndpoint) string { return join(w.Spec.Profiles) }),
			col("NATS", func(w *api.WorkloadEndpoint) string {
				nats := make([]string, len(w.Spec.IPNATs))
				for i, n := range w.Spec.IPNATs {
					nats[i] = n.InternalIP + "->" + n.ExternalIP
				}
				return join(nats)
			})},
	},
	api.KindIPReservation: {
		normal: []column{colName},
		wide:   []column{colName, col("CIDRS", func(r *api.IPReservation) string { return join(r.Spec.ReservedCIDRs) })},
	},
	api.KindIPAMBlock: {
		normal: []column{colName, col("CIDR", func(b *api.IPAMBlock) string { return b.Spec.CIDR })},
		wide: []column{colName, col("CIDR", func(b *api.IPAMBlock) string { return b.Spec.CIDR }),
			col("AFFINITY", func(b *api.IPAMBlock) string {
				if b.Spec.Affinity == nil {
					return ""
				}
				return *b.Spec.Affinity
			})},
	},
	api.KindBlockAffinity: {
		normal: []column{colName, col("CIDR", func(b *api.BlockAffinity) string { return b.Spec.CIDR }),
			col("NODE", func(b *api.BlockAffinity) string { return b.Spec.Node })},
		wide: []column{colName, col("CIDR", func(b *api.BlockAffinity) string { return b.Spec.CIDR }),
			col("NODE", func(b *api.BlockAffinity) string { return b.Spec.Node }),
			col("STATE", func(b *api.BlockAffinity) string { return b.Spec.State })},
	},
}

var (
	poolSelector = col("SELECTOR", func(p *api.IPPool) string { return p.Spec.NodeSelector })

	bgpPeerColumns = []column{colName,
		col("PEERIP", func(p *api.BGPPeer) string {
			if p.Spec.PeerIP != "" {
				return p.Spec.PeerIP
			}
			return p.Spec.PeerSelector
		}),
		col("NODE", func(p *api.BGPPeer) string {
			switch {
			case p.Spec.NodeSelector != "":
				return p.Spec.NodeSelector
			case p.Spec.Node != "":
				return p.Spec.Node
			}
			return "(global)"
		}),
		col("ASN", func(p *api.BGPPeer) string {
			if p.Spec.ASNumber == 0 {
				return ""
			}
			return strconv.FormatUint(uint64(p.Spec.ASNumber), 10)
		})}

	bgpConfigColumns = []column{colName,
		col("LOGSEVERITY", func(c *api.BGPConfiguration) string { return c.Spec.LogSeverityScreen }),
		col("MESHENABLED", func(c *api.BGPConfiguration) string { return boolStr(c.Spec.NodeToNodeMeshEnabled) }),
		col("ASNUMBER", func(c *api.BGPConfiguration) string {
			if c.Spec.ASNumber == nil {
				return ""
			}
			return strconv.FormatUint(uint64(*c.Spec.ASNumber), 10)
		})}

	wepWorkload = col("WORKLOAD", func(w *api.WorkloadEndpoint) string {
		if w.Spec.Workload != "" {
			return w.Spec.Workload
		}
		return w.Spec.Pod
	})
	wepNode      = col("NODE", func(w *api.WorkloadEndpoint) string { return w.Spec.Node })
	wepNetworks  = col("NETWORKS", func(w *api.WorkloadEndpoint) string { return join(w.Spec.IPNetworks) })
	wepInterface = col("INTERFACE", func(w *api.WorkloadEndpoint) string { return w.Spec.InterfaceName })
)

// nodeASN shows the node's AS number, or the cluster's in parentheses when the node inherits it, as
// calicoctl does.
func nodeASN(o api.Resource, tc *tableContext) string {
	n, ok := o.(*api.Node)
	if !ok || n.Spec.BGP == nil {
		return ""
	}
	if n.Spec.BGP.ASNumber != nil {
		return strconv.FormatUint(uint64(*n.Spec.BGP.ASNumber), 10)
	}
	return "(" + tc.defaultASN + ")"
}

// defaultASN is Calico's AS number when BGPConfiguration default does not set one.
const defaultASN = 64512

func columnsFor(info api.KindInfo, wide, allNamespaces bool) []column {
	spec, ok := tables[info.Kind]
	if !ok {
		spec = tableSpec{normal: []column{colName}, wide: []column{colName}}
		if info.Namespaced {
			spec = tableSpec{normal: []column{colNamespace, colName}, wide: []column{colNamespace, colName}}
		}
	}
	cols := spec.normal
	if wide {
		cols = spec.wide
	}
	if info.Namespaced && allNamespaces && cols[0].header != "NAMESPACE" {
		cols = append([]column{colNamespace}, cols...)
	}
	return cols
}

func (s *state) printTable(cmd *cobra.Command, w io.Writer, info api.KindInfo, objs []api.Resource, wide, allNamespaces bool) error {
	cols := columnsFor(info, wide, allNamespaces)
	tc := &tableContext{defaultASN: strconv.Itoa(defaultASN)}
	if wide && info.Kind == api.KindNode {
		if err := s.lookupDefaultASN(cmd, tc); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 5, 1, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	printf(tw, "%s\n", strings.Join(headers, "\t"))
	for _, o := range objs {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = c.value(o, tc)
		}
		printf(tw, "%s\n", strings.Join(vals, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads empty last cells; drop the trailing blanks.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func (s *state) lookupDefaultASN(cmd *cobra.Command, tc *tableContext) error {
	be, err := s.backend(cmd)
	if err != nil {
		return err
	}
	obj, err := be.Get(cmd.Context(), datastore.Key{Kind: api.KindBGPConfiguration, Name: "default"})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading BGPConfiguration default for the cluster AS number: %w", err)
	}
	if c, ok := obj.(*api.BGPConfiguration); ok && c.Spec.ASNumber != nil {
		tc.defaultASN = strconv.FormatUint(uint64(*c.Spec.ASNumber), 10)
	}
	return nil
}
