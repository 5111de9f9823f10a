package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// K8sNetworkingAPIVersion is the apiVersion of Kubernetes NetworkPolicy, which Decode converts.
const K8sNetworkingAPIVersion = "networking.k8s.io/v1"

// DecodeError is an error in one document (or one item of a list) of a decoded file.
//
// +kubebuilder:object:generate=false
type DecodeError struct {
	// Source names the input, usually a file name.
	Source string
	// Document is the 1-based index of the document among the non-empty documents of a YAML stream; 1
	// for JSON.
	Document int
	// Item is the 1-based index within a list (kind List, an XxxList, or a JSON or YAML array); 0 when
	// the document is a single object.
	Item int
	// Kind and Name identify the object when they could be read; Namespace when it is set.
	Kind, Namespace, Name string
	// Err is what went wrong.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "document %d", e.Document)
	if e.Item > 0 {
		fmt.Fprintf(&b, ", item %d", e.Item)
	}
	if e.Kind != "" {
		if e.Name != "" {
			name := e.Name
			if e.Namespace != "" {
				name = e.Namespace + "/" + name
			}
			fmt.Fprintf(&b, " (%s %q)", e.Kind, name)
		} else {
			fmt.Fprintf(&b, " (%s)", e.Kind)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode reads resources from a file's contents. source names the input in errors (a file name, or
// "stdin"). It accepts:
//
//   - YAML: one or more documents separated by "---" lines; documents holding nothing but whitespace
//     and comments are skipped and not counted.
//   - JSON: one object, an array of objects, or a list object.
//   - In either: a list object ("kind: List" or "kind: <Kind>List" with "items"), whose items are decoded
//     one by one.
//
// Objects may be written as projectcalico.org/v3 (calicoctl format) or as crd.projectcalico.org/v1 custom
// resources (same spec); both come back as projectcalico.org/v3 objects. A networking.k8s.io/v1
// NetworkPolicy comes back converted by ConvertK8sNetworkPolicy (use DecodeWithWarnings to see the rules
// the conversion dropped). Field names are checked strictly and case-sensitively: an unknown or
// duplicated field is an error naming its path.
//
// Decode neither defaults nor validates: callers that write objects call SetDefaults and Validate. Errors
// are *DecodeError; when a document is in error, Decode returns the first such error and no objects.
// DecodeDocuments reads the same input by the same rules but reports every bad document and where each
// object was.
func Decode(data []byte, source string) ([]Resource, error) {
	objs, _, err := DecodeWithWarnings(data, source)
	return objs, err
}

// DecodeWithWarnings is Decode that also returns warnings, each prefixed like an error with the source,
// document and object (today: Kubernetes NetworkPolicy rules that could not be converted).
func DecodeWithWarnings(data []byte, source string) ([]Resource, []string, error) {
	decoded, errs := DecodeDocuments(data, source)
	if len(errs) > 0 {
		return nil, nil, errs[0]
	}
	var objs []Resource
	var warnings []string
	for _, d := range decoded {
		objs = append(objs, d.Object)
		warnings = append(warnings, d.Warnings...)
	}
	return objs, warnings, nil
}

// Decoded is one object read by DecodeDocuments, with its place in the input.
//
// +kubebuilder:object:generate=false
type Decoded struct {
	// Object is the decoded object, as Decode returns it.
	Object Resource
	// Document is the 1-based index of the document among the non-empty documents of a YAML stream; 1
	// for JSON. It is numbered as DecodeError.Document is.
	Document int
	// Item is the 1-based index within a list (kind List, an XxxList, or a JSON or YAML array); 0 when
	// the document is a single object.
	Item int
	// Warnings are this object's warnings, worded as DecodeWithWarnings words them.
	Warnings []string
}

// DecodeDocuments reads resources from a file's contents by Decode's rules, but does not stop at the
// first bad document: it returns the objects of every good document, in input order and each with its
// position, and a *DecodeError for every bad document, in input order. A document in error contributes
// its first error (the first bad item of a list) and none of its objects. Decode and DecodeWithWarnings
// return what DecodeDocuments does when errs is empty, and errs[0] otherwise.
func DecodeDocuments(data []byte, source string) (decoded []Decoded, errs []error) {
	d := &decoder{source: source}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		// JSON, unless it is not valid JSON but is valid YAML (a flow mapping such as
		// "{apiVersion: projectcalico.org/v3, ...}").
		if _, yamlErr := yaml.YAMLToJSON(trimmed); json.Valid(trimmed) || yamlErr != nil {
			d.doc = 1
			d.decode(trimmed, true)
			return d.result()
		}
	}
	for _, doc := range splitYAMLDocuments(data) {
		if yamlEmpty(doc) {
			continue
		}
		d.doc++
		d.decode(doc, false)
	}
	return d.result()
}

type decoder struct {
	source string
	doc    int // the document being decoded
	out    []Decoded
	errs   []error
}

// decode decodes one document, keeping its objects only if all of them decode.
func (d *decoder) decode(raw []byte, isJSON bool) {
	n := len(d.out)
	if err := d.document(raw, isJSON); err != nil {
		clear(d.out[n:])
		d.out = d.out[:n]
		d.errs = append(d.errs, err)
	}
}

func (d *decoder) result() ([]Decoded, []error) {
	if len(d.out) == 0 {
		return nil, d.errs
	}
	return d.out, d.errs
}

func (d *decoder) fail(item int, kind, ns, name string, err error) *DecodeError {
	return &DecodeError{Source: d.source, Document: d.doc, Item: item, Kind: kind, Namespace: ns, Name: name, Err: err}
}

// header is what Decode reads before it knows the kind.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items *[]json.RawMessage `json:"items"`
}

func (d *decoder) document(raw []byte, isJSON bool) error {
	js := raw
	if !isJSON {
		var err error
		if js, err = yaml.YAMLToJSONStrict(raw); err != nil {
			return d.fail(0, "", "", "", fmt.Errorf("not valid YAML: %s", cleanYAMLError(err)))
		}
	} else if !json.Valid(js) {
		var v any
		err := json.Unmarshal(js, &v)
		return d.fail(0, "", "", "", fmt.Errorf("not valid JSON: %w", err))
	}
	js = bytes.TrimSpace(js)
	if len(js) > 0 && js[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(js, &items); err != nil {
			return d.fail(0, "", "", "", fmt.Errorf("not a list of objects: %w", err))
		}
		return d.items(items)
	}
	if len(js) == 0 || js[0] != '{' {
		return d.fail(0, "", "", "", errors.New("expected an object with apiVersion, kind, metadata and spec"))
	}
	var h header
	if err := json.Unmarshal(js, &h); err == nil && h.Items != nil && (h.Kind == "List" || strings.HasSuffix(h.Kind, "List")) {
		if err := checkListFields(js); err != nil {
			return d.fail(0, h.Kind, "", "", err)
		}
		return d.items(*h.Items)
	}
	return d.object(0, js)
}

// checkListFields rejects unknown top-level fields of a list object.
func checkListFields(js []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return err
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "apiVersion", "kind", "metadata", "items":
		default:
			return fmt.Errorf("unknown field %q in a list; a list holds only apiVersion, kind, metadata and items", k)
		}
	}
	return nil
}

func (d *decoder) items(items []json.RawMessage) error {
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) == 0 || it[0] != '{' {
			return d.fail(i+1, "", "", "", errors.New("expected an object with apiVersion, kind, metadata and spec"))
		}
		if err := d.object(i+1, it); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) object(item int, js []byte) error {
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		// A header field of the wrong type, e.g. "kind: 5" or "metadata: x".
		return d.fail(item, "", "", "", friendlyJSONError(err))
	}
	kind, ns, name := h.Kind, h.Metadata.Namespace, h.Metadata.Name
	if kind == "" {
		return d.fail(item, "", ns, name, fmt.Errorf("kind is missing; set it to one of %s", strings.Join(kindNames(), ", ")))
	}
	switch h.APIVersion {
	case APIVersion, CRDAPIVersion:
	case K8sNetworkingAPIVersion:
		if kind != "NetworkPolicy" {
			return d.fail(item, kind, ns, name, fmt.Errorf("kind %q of %s is not supported; only NetworkPolicy is", kind, K8sNetworkingAPIVersion))
		}
		return d.k8sNetworkPolicy(item, js, ns, name)
	case "":
		return d.fail(item, kind, ns, name, fmt.Errorf("apiVersion is missing; set it to %s", APIVersion))
	default:
		return d.fail(item, kind, ns, name, fmt.Errorf("apiVersion %q is not supported; use %s (or %s, or %s for Kubernetes NetworkPolicy)", h.APIVersion, APIVersion, CRDAPIVersion, K8sNetworkingAPIVersion))
	}
	info, ok := lookupExactKind(kind)
	if !ok {
		msg := fmt.Sprintf("unknown kind %q", kind)
		if li, found := LookupKind(kind); found {
			msg += fmt.Sprintf("; did you mean %q?", li.Kind)
		}
		return d.fail(item, kind, ns, name, fmt.Errorf("%s; accepted kinds: %s", msg, strings.Join(kindNames(), ", ")))
	}
	obj := info.New()
	if err := strictUnmarshal(js, obj); err != nil {
		return d.fail(item, info.Kind, ns, name, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(GroupVersion.WithKind(info.Kind))
	d.out = append(d.out, Decoded{Object: obj, Document: d.doc, Item: item})
	return nil
}

func (d *decoder) k8sNetworkPolicy(item int, js []byte, ns, name string) error {
	var np networkingv1.NetworkPolicy
	if err := strictUnmarshal(js, &np); err != nil {
		return d.fail(item, "NetworkPolicy", ns, name, err)
	}
	out, warnings, err := ConvertK8sNetworkPolicy(&np)
	if err != nil {
		return d.fail(item, "NetworkPolicy", ns, name, err)
	}
	dec := Decoded{Object: out, Document: d.doc, Item: item}
	for _, w := range warnings {
		dec.Warnings = append(dec.Warnings, d.fail(item, "NetworkPolicy", ns, name, errors.New(w)).Error())
	}
	d.out = append(d.out, dec)
	return nil
}

// lookupExactKind finds a kind by its exact CamelCase name, or the exact name of the custom resource that
// stores it ("IPAMConfig", the crd.projectcalico.org/v1 kind and tortie's former name, for
// IPAMConfiguration).
func lookupExactKind(kind string) (KindInfo, bool) {
	info, ok := LookupKind(kind)
	if !ok || (info.Kind != kind && info.CRDKind != kind) {
		return KindInfo{}, false
	}
	return info, true
}

func kindNames() []string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Kind)
	}
	return names
}

// strictUnmarshal decodes JSON into v, rejecting unknown and duplicate fields (case-sensitively) and
// rewording encoding errors to name the field path.
func strictUnmarshal(js []byte, v any) error {
	strictErrs, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return friendlyJSONError(err)
	}
	if len(strictErrs) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(strictErrs))
	for _, se := range strictErrs {
		msg := se.Error()
		var fe sigsjson.FieldError
		if errors.As(se, &fe) && strings.HasPrefix(msg, "unknown field") {
			if s := suggestField(reflect.TypeOf(v), fe.FieldPath()); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += " (check its spelling, case and indentation)"
			}
		}
		msgs = append(msgs, msg)
	}
	return errors.New(strings.Join(msgs, "; "))
}

var typeErrRE = regexp.MustCompile(`^json: cannot unmarshal (\w+)(?: (\S+))? into Go (?:struct field \w+\.(\S+)|value) of type (.+)$`)

// friendlyJSONError rewords encoding/json type errors: `field "spec.blockSize": got a string, want a number`.
func friendlyJSONError(err error) error {
	m := typeErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	got := map[string]string{"string": "a string", "number": "a number", "bool": "true or false", "array": "a list", "object": "an object"}[m[1]]
	if got == "" {
		got = m[1]
	}
	if m[2] != "" {
		got = m[2] // the number that did not fit
	}
	field, want := m[3], "a value of type "+m[4]
	// Both encoding/json and its sigs.k8s.io/json fork carry the target type in a field named Type.
	if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("Type"); f.IsValid() && f.CanInterface() {
			if t, ok := f.Interface().(reflect.Type); ok && t != nil {
				want = describeType(t)
			}
		}
	}
	if field == "" {
		return fmt.Errorf("got %s, want %s", got, want)
	}
	return fmt.Errorf("field %q: got %s, want %s", field, got, want)
}

func describeType(t reflect.Type) string {
	switch deref(t).Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint8:
		return "a number 0-255"
	case reflect.Uint16:
		return "a number 0-65535"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "an object"
	}
}

// suggestField finds the field at path's parent in t and returns the closest known sibling name (full
// path) to the unknown last segment, or "".
func suggestField(t reflect.Type, path string) string {
	segs := strings.Split(path, ".")
	last := segs[len(segs)-1]
	parent := segs[:len(segs)-1]
	cur := t
	for _, s := range parent {
		name, _, _ := strings.Cut(s, "[")
		cur = deref(cur)
		for cur.Kind() == reflect.Slice || cur.Kind() == reflect.Map {
			cur = deref(cur.Elem())
		}
		if cur.Kind() != reflect.Struct {
			return ""
		}
		f, ok := jsonField(cur, name)
		if !ok {
			return ""
		}
		cur = f
		if strings.Contains(s, "[") {
			cur = deref(cur)
			if cur.Kind() == reflect.Slice || cur.Kind() == reflect.Map {
				cur = cur.Elem()
			}
		}
	}
	cur = deref(cur)
	for cur.Kind() == reflect.Slice || cur.Kind() == reflect.Map {
		cur = deref(cur.Elem())
	}
	if cur.Kind() != reflect.Struct {
		return ""
	}
	best, bestD := "", 3
	for _, n := range jsonFieldNames(cur) {
		if d := editDistance(strings.ToLower(last), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return strings.Join(append(append([]string{}, parent...), best), ".")
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func jsonTagName(f reflect.StructField) (name string, inline bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(opts, "inline") || (name == "" && f.Anonymous) {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		n, inline := jsonTagName(f)
		if inline {
			if deref(f.Type).Kind() != reflect.Struct {
				continue
			}
			if ft, ok := jsonField(deref(f.Type), name); ok {
				return ft, true
			}
			continue
		}
		if n == name {
			return f.Type, true
		}
	}
	return nil, false
}

func jsonFieldNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		n, inline := jsonTagName(f)
		if inline {
			if deref(f.Type).Kind() == reflect.Struct {
				out = append(out, jsonFieldNames(deref(f.Type))...)
			}
		} else if n != "" && f.IsExported() {
			out = append(out, n)
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// splitYAMLDocuments splits a YAML stream at "---" separator lines (optionally followed by a comment or
// content on the same line, which stays with the next document).
func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		trimmed := bytes.TrimRight(line, " \t\r\n")
		if bytes.HasPrefix(trimmed, []byte("---")) && (len(trimmed) == 3 || trimmed[3] == ' ' || trimmed[3] == '\t') {
			docs = append(docs, cur)
			cur = append([]byte(nil), bytes.TrimLeft(trimmed[3:], " \t")...)
			if len(cur) > 0 {
				cur = append(cur, '\n')
			}
			continue
		}
		if bytes.Equal(trimmed, []byte("...")) {
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

// yamlEmpty reports whether a document holds only whitespace and comments.
func yamlEmpty(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n")
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// EncodeYAML writes objects as projectcalico.org/v3 YAML documents separated by "---" lines. Each object
// is written with apiVersion projectcalico.org/v3 and its kind; status and empty metadata fields
// (creationTimestamp: null) are left out. The objects are not modified.
func EncodeYAML(objs ...Resource) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		js, err := encodeObject(o)
		if err != nil {
			return nil, err
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// EncodeJSON writes one object as an indented JSON object, or several as a JSON list object
// {"apiVersion": "projectcalico.org/v3", "kind": "List", "items": [...]}, in the same v3 form as
// EncodeYAML.
func EncodeJSON(objs ...Resource) ([]byte, error) {
	var out []byte
	if len(objs) == 1 {
		js, err := encodeObject(objs[0])
		if err != nil {
			return nil, err
		}
		out = js
	} else {
		items := make([]json.RawMessage, 0, len(objs))
		for _, o := range objs {
			js, err := encodeObject(o)
			if err != nil {
				return nil, err
			}
			items = append(items, js)
		}
		var err error
		out, err = json.Marshal(struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}{APIVersion, "List", items})
		if err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// encodeObject marshals obj in v3 form without status and without null/empty metadata noise.
func encodeObject(obj Resource) ([]byte, error) {
	info, err := KindOf(obj)
	if err != nil {
		return nil, err
	}
	c := obj.DeepCopyObject().(Resource)
	c.GetObjectKind().SetGroupVersionKind(GroupVersion.WithKind(info.Kind))
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", info.Kind, obj.GetName(), err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"]; ok {
		var meta map[string]json.RawMessage
		if err := json.Unmarshal(md, &meta); err == nil {
			for k, v := range meta {
				if s := string(v); s == "null" || s == "{}" || s == "[]" || s == `""` {
					delete(meta, k)
				}
			}
			if md, err = json.Marshal(meta); err != nil {
				return nil, err
			}
			m["metadata"] = md
		}
	}
	return marshalOrdered(m, []string{"apiVersion", "kind", "metadata", "spec"})
}

// marshalOrdered writes a JSON object with the given keys first, in that order, then the rest sorted.
func marshalOrdered(m map[string]json.RawMessage, first []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	write := func(k string, v json.RawMessage) {
		if n > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.Write(v)
		n++
	}
	seen := map[string]bool{}
	for _, k := range first {
		if v, ok := m[k]; ok {
			write(k, v)
			seen[k] = true
		}
	}
	for _, k := range sortedKeys(m) {
		if !seen[k] {
			write(k, m[k])
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
