package etcd

import (
	"fmt"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// ResourcePrefix is where Calico's etcd datastore keeps v3 resources, and so where tortie does:
//
//	/calico/resources/v3/projectcalico.org/<plural>/<name>              cluster-scoped kinds
//	/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>  namespaced kinds
const ResourcePrefix = "/calico/resources/v3/projectcalico.org"

// layout maps keys to etcd paths under root (Config.Prefix + ResourcePrefix).
type layout struct{ root string }

// kindPrefix is the path prefix of every object of a kind; the trailing slash keeps "ippools" from
// matching "ippoolsx".
func (l layout) kindPrefix(info api.KindInfo) string {
	return l.root + "/" + info.Plural + "/"
}

// listPrefix is the path prefix of what opts selects.
func (l layout) listPrefix(opts datastore.ListOptions, info api.KindInfo) string {
	if opts.Namespace != "" {
		return l.kindPrefix(info) + opts.Namespace + "/"
	}
	return l.kindPrefix(info)
}

// path is the etcd key of k (which must have been checked).
func (l layout) path(k datastore.Key, info api.KindInfo) string {
	if info.Namespaced {
		return l.kindPrefix(info) + k.Namespace + "/" + k.Name
	}
	return l.kindPrefix(info) + k.Name
}

// parse turns an etcd key under the kind's prefix back into a key; keys of the wrong shape (another
// tool's, or a namespaced key under a cluster-scoped kind) are reported as not ours.
func (l layout) parse(path string, info api.KindInfo) (datastore.Key, bool) {
	rest, ok := strings.CutPrefix(path, l.kindPrefix(info))
	if !ok || rest == "" {
		return datastore.Key{}, false
	}
	if !info.Namespaced {
		if strings.Contains(rest, "/") {
			return datastore.Key{}, false
		}
		return datastore.Key{Kind: info.Kind, Name: rest}, true
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return datastore.Key{}, false
	}
	return datastore.Key{Kind: info.Kind, Namespace: ns, Name: name}, true
}

// KeyPath returns the etcd key that stores k with no Config.Prefix, e.g.
// "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool".
func KeyPath(k datastore.Key) (string, error) {
	return layout{root: ResourcePrefix}.checkedPath(k)
}

func (l layout) checkedPath(k datastore.Key) (string, error) {
	info, ok := api.LookupKind(k.Kind)
	if !ok {
		return "", fmt.Errorf("unknown resource kind %q", k.Kind)
	}
	k.Kind = info.Kind
	if k.Name == "" || strings.Contains(k.Name, "/") || strings.Contains(k.Namespace, "/") ||
		info.Namespaced != (k.Namespace != "") {
		return "", fmt.Errorf("%s is not a valid key for kind %s", k, info.Kind)
	}
	return l.path(k, info), nil
}
