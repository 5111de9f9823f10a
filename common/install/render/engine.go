package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"text/template"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/installer/kubernetes/helm"
)

// Header starts every rendered manifest (ci/helmrender writes the same text).
const Header = `# tortie: CRDs, RBAC, ConfigMap, the tortie-node DaemonSet and the tortie-controllers Deployment.
# Generated from installer/kubernetes/helm/tortie with its default values by ` + "`make manifests`" + `; do not edit.
# Install: kubectl apply --server-side -f tortie.yaml   (settings: tortiectl install render, or the Helm chart)
`

// DefaultNamespace is where the components run unless told otherwise.
const DefaultNamespace = "kube-system"

// Values are chart values: a tree of map[string]any, []any, string, float64 and bool, as Helm holds them.
type Values = map[string]any

// Chart is a loaded chart.
type Chart struct {
	fsys     fs.FS
	meta     map[string]any // .Chart: Name, Version, AppVersion, ...
	defaults Values
	schema   *spec.Schema
}

// LoadChart reads the embedded chart.
func LoadChart() (*Chart, error) {
	sub, err := fs.Sub(helm.Chart, "tortie")
	if err != nil {
		return nil, err
	}
	return LoadChartFS(sub)
}

// LoadChartFS reads a chart from fsys (its root is the chart directory).
func LoadChartFS(fsys fs.FS) (*Chart, error) {
	c := &Chart{fsys: fsys}
	b, err := fs.ReadFile(fsys, "Chart.yaml")
	if err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	var md map[string]any
	if err := yaml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("chart: Chart.yaml: %w", err)
	}
	// .Chart is Helm's chart.Metadata: the same keys, capitalised.
	c.meta = map[string]any{}
	for k, v := range md {
		c.meta[strings.ToUpper(k[:1])+k[1:]] = v
	}
	if b, err = fs.ReadFile(fsys, "values.yaml"); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	if c.defaults, err = ParseValues(b); err != nil {
		return nil, fmt.Errorf("chart: values.yaml: %w", err)
	}
	if b, err = fs.ReadFile(fsys, "values.schema.json"); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	c.schema = new(spec.Schema)
	if err := json.Unmarshal(b, c.schema); err != nil {
		return nil, fmt.Errorf("chart: values.schema.json: %w", err)
	}
	return c, nil
}

// Defaults returns a copy of the chart's default values.
func (c *Chart) Defaults() Values { return deepCopy(c.defaults).(Values) }

// ParseValues reads a values file as Helm does (YAML through JSON: numbers are float64).
func ParseValues(b []byte) (Values, error) {
	var v Values
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v == nil {
		v = Values{}
	}
	return v, nil
}

// Options of a rendering.
type Options struct {
	// Namespace of the release (DefaultNamespace when empty).
	Namespace string
}

// Render merges user over the chart's defaults as Helm does (maps merge, a null removes a default),
// validates the result against values.schema.json and renders the manifest: the CRDs, then every
// template, each with a "# Source:" line. Errors name the value or template at fault.
func (c *Chart) Render(user Values, o Options) ([]byte, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	u, _ := toJSONTypes(user).(map[string]any) // values built in Go render as if read from a file
	vals := coalesce(c.Defaults(), u)
	if err := c.Validate(vals); err != nil {
		return nil, err
	}
	top := map[string]any{
		"Values": vals,
		"Chart":  c.meta,
		"Release": map[string]any{
			"Name": "tortie", "Namespace": o.Namespace, "IsUpgrade": false, "IsInstall": true, "Revision": 1, "Service": "Helm",
		},
	}
	name, _ := c.meta["Name"].(string)
	tpls, err := fs.Glob(c.fsys, "templates/*")
	if err != nil {
		return nil, err
	}
	sort.Strings(tpls)
	t := template.New("chart")
	t.Funcs(funcMap(t))
	t.Option("missingkey=zero")
	for _, p := range tpls {
		b, err := fs.ReadFile(c.fsys, p)
		if err != nil {
			return nil, err
		}
		if _, err := t.New(name + "/" + p).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("chart template %s: %w", p, err)
		}
	}
	var out bytes.Buffer
	out.WriteString(Header)
	crds, err := fs.Glob(c.fsys, "crds/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(crds)
	for _, p := range crds {
		b, err := fs.ReadFile(c.fsys, p)
		if err != nil {
			return nil, err
		}
		writeDoc(&out, name+"/"+p, string(b))
	}
	for _, p := range tpls {
		if strings.HasPrefix(path.Base(p), "_") {
			continue // partials
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name+"/"+p, top); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", p, err)
		}
		writeDoc(&out, name+"/"+p, strings.ReplaceAll(buf.String(), "<no value>", ""))
	}
	return out.Bytes(), nil
}

// Validate checks values against the chart's schema; the error lists every violation by its path.
func (c *Chart) Validate(vals Values) error {
	res := validate.NewSchemaValidator(c.schema, nil, "", strfmt.Default).Validate(toJSONTypes(vals))
	if res == nil || res.IsValid() {
		return nil
	}
	msgs := make([]string, 0, len(res.Errors))
	for _, e := range res.Errors {
		msgs = append(msgs, e.Error())
	}
	sort.Strings(msgs)
	return fmt.Errorf("values do not match the chart's values.schema.json:\n  %s", strings.Join(msgs, "\n  "))
}

func writeDoc(b *bytes.Buffer, name, body string) {
	body = strings.TrimSpace(body)
	if body == "" {
		return
	}
	fmt.Fprintf(b, "---\n# Source: %s\n%s\n", name, body)
}

// funcMap holds the functions the chart's templates may use: Helm's own (include, required, toYaml,
// toJson) and the few Sprig ones (default, quote, indent, nindent, sha256sum), with Helm's semantics.
// A template using anything else fails to parse here, which keeps the chart renderable by both.
func funcMap(t *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var buf bytes.Buffer
			if err := t.ExecuteTemplate(&buf, name, data); err != nil {
				return "", err
			}
			return buf.String(), nil
		},
		"required": func(msg string, v any) (any, error) {
			if v == nil {
				return v, errors.New("execution error: " + msg)
			}
			if s, ok := v.(string); ok && s == "" {
				return v, errors.New("execution error: " + msg)
			}
			return v, nil
		},
		"toYaml": func(v any) string {
			b, err := yaml.Marshal(v)
			if err != nil {
				return ""
			}
			return strings.TrimSuffix(string(b), "\n")
		},
		"toJson": func(v any) string {
			b, err := json.Marshal(v)
			if err != nil {
				return ""
			}
			return string(b)
		},
		"default": func(d any, given ...any) any {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"quote": func(vs ...any) string {
			out := make([]string, 0, len(vs))
			for _, v := range vs {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", strval(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"indent": indent,
		"nindent": func(n int, s string) string {
			return "\n" + indent(n, s)
		},
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func strval(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%v", v)
	}
}

// empty is Sprig's notion of an empty value.
func empty(v any) bool {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return true
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Complex64, reflect.Complex128:
		return rv.Complex() == 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Struct:
		return false
	default:
		return rv.IsNil()
	}
}

// coalesce merges user values over a chart's defaults.
func coalesce(dst, src Values) Values { return Merge(dst, src) }

// Merge merges src over dst as Helm merges values (maps recursively, a nil removes the key) and
// returns dst.
func Merge(dst, src Values) Values {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			dst[k] = Merge(dm, sm)
			continue
		}
		dst[k] = sv
	}
	return dst
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// toJSONTypes turns values built in Go (ints, []string, map[string]string) into what JSON decoding
// gives, so that the schema sees the same types whether values came from a file or from code.
func toJSONTypes(v Values) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
