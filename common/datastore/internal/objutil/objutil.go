// Package objutil holds the object bookkeeping every datastore backend does the same way: checking
// that an object can be stored, copying, and stamping server-set metadata.
package objutil

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// Check returns obj's key and kind after checking that it can be stored: a registered kind, a name, a
// namespace exactly when the kind is namespaced, and no '/' in either (they are path segments in etcd).
func Check(obj api.Resource) (datastore.Key, api.KindInfo, error) {
	if obj == nil {
		return datastore.Key{}, api.KindInfo{}, errors.New("nil object")
	}
	info, err := api.KindOf(obj)
	if err != nil {
		return datastore.Key{}, api.KindInfo{}, err
	}
	k := datastore.Key{Kind: info.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	if err := CheckKey(k, info); err != nil {
		return k, info, err
	}
	return k, info, nil
}

// CheckKey checks a key against its kind (see Check).
func CheckKey(k datastore.Key, info api.KindInfo) error {
	switch {
	case k.Name == "":
		return fmt.Errorf("%s has no name", info.Kind)
	case strings.Contains(k.Name, "/"):
		return fmt.Errorf("%s: a name may not contain '/'", k)
	case info.Namespaced && k.Namespace == "":
		return fmt.Errorf("%s: kind %s is namespaced but no namespace was given", k, info.Kind)
	case !info.Namespaced && k.Namespace != "":
		return fmt.Errorf("%s: kind %s is cluster-scoped but has a namespace", k, info.Kind)
	case strings.Contains(k.Namespace, "/"):
		return fmt.Errorf("%s: a namespace may not contain '/'", k)
	}
	return nil
}

// LookupKey resolves k's kind (which may be an alias) and checks it; the returned key has the
// canonical kind name.
func LookupKey(k datastore.Key) (datastore.Key, api.KindInfo, error) {
	info, ok := api.LookupKind(k.Kind)
	if !ok {
		return k, api.KindInfo{}, fmt.Errorf("unknown resource kind %q", k.Kind)
	}
	k.Kind = info.Kind
	return k, info, CheckKey(k, info)
}

// LookupList resolves opts' kind and checks the namespace against it.
func LookupList(opts datastore.ListOptions) (datastore.ListOptions, api.KindInfo, error) {
	info, ok := api.LookupKind(opts.Kind)
	if !ok {
		return opts, api.KindInfo{}, fmt.Errorf("unknown resource kind %q", opts.Kind)
	}
	opts.Kind = info.Kind
	if opts.Namespace != "" && !info.Namespaced {
		return opts, info, fmt.Errorf("kind %s is cluster-scoped; it cannot be listed in namespace %q", info.Kind, opts.Namespace)
	}
	if strings.Contains(opts.Namespace, "/") {
		return opts, info, fmt.Errorf("namespace %q may not contain '/'", opts.Namespace)
	}
	return opts, info, nil
}

// Copy deep-copies obj.
func Copy(obj api.Resource) api.Resource {
	return obj.DeepCopyObject().(api.Resource)
}

// SetTypeMeta sets obj's apiVersion and kind to the projectcalico.org/v3 form.
func SetTypeMeta(obj api.Resource, info api.KindInfo) {
	obj.GetObjectKind().SetGroupVersionKind(api.GroupVersion.WithKind(info.Kind))
}

// ForCreate returns a copy of obj ready to store as new: type metadata set, resourceVersion empty, and
// creationTimestamp (whole seconds, as JSON keeps them) and uid stamped when missing.
func ForCreate(obj api.Resource, info api.KindInfo, now time.Time) api.Resource {
	c := Copy(obj)
	SetTypeMeta(c, info)
	c.SetResourceVersion("")
	if c.GetCreationTimestamp().Time.IsZero() {
		c.SetCreationTimestamp(metav1.NewTime(now.Truncate(time.Second)))
	}
	if c.GetUID() == "" {
		c.SetUID(uuid.NewUUID())
	}
	return c
}

// ForUpdate returns a copy of obj ready to replace stored: type metadata set, resourceVersion empty,
// and the server-set creationTimestamp and uid carried over from stored when obj leaves them empty.
func ForUpdate(obj, stored api.Resource, info api.KindInfo) api.Resource {
	c := Copy(obj)
	SetTypeMeta(c, info)
	c.SetResourceVersion("")
	if stored != nil {
		if c.GetCreationTimestamp().Time.IsZero() {
			c.SetCreationTimestamp(stored.GetCreationTimestamp())
		}
		if c.GetUID() == "" {
			c.SetUID(stored.GetUID())
		}
	}
	return c
}

// NeedsStored reports whether ForUpdate needs the stored object to fill in server-set fields.
func NeedsStored(obj api.Resource) bool {
	return obj.GetCreationTimestamp().Time.IsZero() || obj.GetUID() == ""
}

// Compare orders objects by namespace, then name: the order List returns (for slices.SortFunc).
func Compare(a, b api.Resource) int {
	if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
		return c
	}
	return strings.Compare(a.GetName(), b.GetName())
}
