package etcd

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

// carryUnknownFields returns val, the encoding of an update of key, with the fields of the stored
// value old that tortie's type for the kind cannot hold merged in where val does not set them: a field
// written by a newer Calico survives a read-modify-write through tortie. The comparison is against old
// decoded through tortie's type and encoded again, so a field tortie knows is never carried and
// clearing it clears it. Objects are merged at every depth (metadata, spec, status, their
// sub-objects); lists are written as val has them. val is returned unchanged when old has nothing
// unknown.
func carryUnknownFields(val string, old []byte, key datastore.Key, info api.KindInfo) (string, error) {
	stored, err := decodeJSON(old)
	if err != nil {
		return "", fmt.Errorf("updating %s in etcd: reading the stored value: %w", key, err)
	}
	obj := info.New()
	if err := json.Unmarshal(old, obj); err != nil {
		return "", fmt.Errorf("updating %s in etcd: reading the stored value: %w", key, err)
	}
	proj, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("updating %s in etcd: re-encoding the stored value: %w", key, err)
	}
	known, err := decodeJSON(proj)
	if err != nil {
		return "", fmt.Errorf("updating %s in etcd: re-encoding the stored value: %w", key, err)
	}
	extra, _ := objutil.UnknownPart(stored, known).(map[string]any)
	if extra == nil {
		return val, nil
	}
	out, err := decodeJSON([]byte(val))
	if err != nil {
		return "", fmt.Errorf("updating %s in etcd: merging unknown fields: %w", key, err)
	}
	objutil.MergeAbsent(out, extra)
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("updating %s in etcd: merging unknown fields: %w", key, err)
	}
	return string(b), nil
}

// decodeJSON decodes a JSON object keeping numbers as written (json.Number), so that large integers
// in fields tortie does not know are stored back exactly.
func decodeJSON(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("the value is JSON null, not an object")
	}
	return m, nil
}
