package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// Output formats of get. "ps" is calicoctl's name for the table.
var outputFormats = []string{"table", "wide", "yaml", "json", "name"}

type getFlags struct {
	namespace     string
	allNamespaces bool
	output        string
}

func newGetCommand(s *state) *cobra.Command {
	var f getFlags
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "Show resources as a table, YAML, JSON or names",
		Long: `Show resources of one kind: all of them, or the named ones. KIND is a kind, its plural or a short name,
in any case (IPPool, ippools, pool).

Namespaced kinds (NetworkPolicy, NetworkSet, WorkloadEndpoint) are read from --namespace ("default" when not
given), or from every namespace with --all-namespaces.

-o yaml and -o json print one object for one NAME, and otherwise a list with apiVersion
projectcalico.org/v3, kind <Kind>List and items, as calicoctl does.`,
		Example: fmt.Sprintf(`  %[1]s get ippools
  %[1]s get ippool default-ipv4-ippool -o yaml
  %[1]s get networkpolicy -A -o wide
  %[1]s get nodes -o json`, s.name),
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.runGet(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", `namespace of namespaced kinds (default "default")`)
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "show namespaced kinds from every namespace")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: "+strings.Join(outputFormats, ", ")+" (ps is an alias of table)")
	return cmd
}

func (s *state) runGet(cmd *cobra.Command, f getFlags, args []string) error {
	format := strings.ToLower(f.output)
	if format == "ps" {
		format = "table"
	}
	valid := false
	for _, o := range outputFormats {
		valid = valid || o == format
	}
	if !valid {
		return usagef("-o %s: unknown output format; use %s", f.output, strings.Join(outputFormats, ", "))
	}
	if f.allNamespaces && cmd.Flags().Changed("namespace") {
		return usagef("give --namespace or --all-namespaces, not both")
	}
	info, err := lookupKind(args[0])
	if err != nil {
		return err
	}
	names := args[1:]
	if f.allNamespaces && len(names) > 0 {
		return usagef("names need a single namespace: drop --all-namespaces or the names")
	}
	ns := ""
	if info.Namespaced && !f.allNamespaces {
		ns = defaultNamespace(f.namespace)
	}

	be, err := s.backend(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var objs []api.Resource
	var revision string
	var missing int
	if len(names) == 0 {
		objs, revision, err = be.List(ctx, datastore.ListOptions{Kind: info.Kind, Namespace: ns})
		if err != nil {
			return fmt.Errorf("listing %s: %w", info.Plural, err)
		}
	} else {
		for _, n := range names {
			key := datastore.Key{Kind: info.Kind, Namespace: ns, Name: n}
			obj, err := be.Get(ctx, key)
			if err != nil {
				missing++
				printf(s.stderr(), "Failed to get resources: %v\n", describeErr(key, err))
				continue
			}
			objs = append(objs, obj)
		}
	}
	for _, o := range objs {
		setTypeMeta(o, info)
	}

	if len(names) > 0 && len(objs) == 0 {
		// Nothing to print; the failures are already on stderr.
		return &reportedError{fmt.Sprintf("%d of %d resource(s) not found", missing, len(names))}
	}
	w := s.stdout()
	switch format {
	case "yaml", "json":
		var v any
		if len(names) == 1 {
			v, err = encodeObject(objs[0])
		} else {
			v, err = listOf(info, objs, revision)
		}
		if err == nil {
			err = printStructured(w, format, v)
		}
	case "name":
		for _, o := range objs {
			printf(w, "%s/%s\n", strings.ToLower(info.Kind), o.GetName())
		}
	default:
		err = s.printTable(cmd, w, info, objs, format == "wide", f.allNamespaces)
	}
	if err != nil {
		return err
	}
	if missing > 0 {
		return &reportedError{fmt.Sprintf("%d of %d resource(s) not found", missing, len(names))}
	}
	return nil
}

// setTypeMeta makes an object print as projectcalico.org/v3, whatever the backend left in TypeMeta.
func setTypeMeta(obj api.Resource, info api.KindInfo) {
	obj.GetObjectKind().SetGroupVersionKind(api.GroupVersion.WithKind(info.Kind))
}

// resourceList is calicoctl's list shape: apiVersion, kind <Kind>List, metadata, items.
type resourceList struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   listMeta          `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

func listOf(info api.KindInfo, objs []api.Resource, revision string) (resourceList, error) {
	l := resourceList{APIVersion: api.APIVersion, Kind: info.Kind + "List", Metadata: listMeta{revision}, Items: []json.RawMessage{}}
	for _, o := range objs {
		js, err := encodeObject(o)
		if err != nil {
			return l, err
		}
		l.Items = append(l.Items, js)
	}
	return l, nil
}

// objectKeyOrder is the order of an object's top-level fields in JSON output; others follow, sorted.
var objectKeyOrder = []string{"apiVersion", "kind", "metadata", "spec", "status"}

// encodeObject writes an object as compact JSON with apiVersion, kind, metadata, spec and status first, and
// without empty metadata fields (creationTimestamp: null). Unlike api.EncodeJSON it keeps status: get
// shows what is stored, not only what can be applied.
func encodeObject(obj api.Resource) (json.RawMessage, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	if md, ok := m["metadata"]; ok {
		var meta map[string]json.RawMessage
		if err := json.Unmarshal(md, &meta); err == nil {
			for k, v := range meta {
				if string(v) == "null" {
					delete(meta, k)
				}
			}
			if m["metadata"], err = json.Marshal(meta); err != nil {
				return nil, err
			}
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.Write(m[k])
		delete(m, k)
	}
	for _, k := range objectKeyOrder {
		if _, ok := m[k]; ok {
			write(k)
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		write(k)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func printStructured(w io.Writer, format string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
	} else {
		data = append(data, '\n')
	}
	_, err = w.Write(data)
	return err
}
