package api

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// API groups. Resources are written and read by users in the projectcalico.org/v3 form (calicoctl YAML);
// in the Kubernetes datastore they are stored as crd.projectcalico.org/v1 custom resources with the same spec.
const (
	Group         = "projectcalico.org"
	Version       = "v3"
	APIVersion    = Group + "/" + Version
	CRDGroup      = "crd.projectcalico.org"
	CRDVersion    = "v1"
	CRDAPIVersion = CRDGroup + "/" + CRDVersion
)

// GroupVersion is projectcalico.org/v3, the version users write.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// CRDGroupVersion is crd.projectcalico.org/v1, the version stored as CRDs in Kubernetes.
var CRDGroupVersion = schema.GroupVersion{Group: CRDGroup, Version: CRDVersion}

// Resource is any tortie resource: a Kubernetes-style object with type and object metadata.
// Every kind in this package implements it through its embedded TypeMeta and ObjectMeta plus a
// generated DeepCopyObject.
//
// +kubebuilder:object:generate=false
type Resource interface {
	runtime.Object
	metav1.Object
}

// KindInfo describes one registered kind.
//
// +kubebuilder:object:generate=false
type KindInfo struct {
	// Kind is the CamelCase kind, e.g. "IPPool".
	Kind string
	// Plural is the lower-case plural used in CRD names, etcd keys and on the command line, e.g. "ippools".
	Plural string
	// ShortNames are extra command-line aliases, e.g. "pool".
	ShortNames []string
	// Namespaced is true for namespaced kinds (NetworkPolicy, NetworkSet, WorkloadEndpoint).
	Namespaced bool
	// New returns a new, empty object of this kind with its TypeMeta set.
	New func() Resource
	// CRDKind and CRDPlural name the crd.projectcalico.org/v1 custom resource that stores the kind in
	// Kubernetes when it differs from Kind and Plural (IPAMConfiguration is stored as IPAMConfig in
	// ipamconfigs, as Calico stores it). Register fills them from Kind and Plural when empty.
	CRDKind, CRDPlural string
	// StatusSubresource is true when the CRD has a status subresource: the API server ignores status on
	// create and update, and it is written through /status.
	StatusSubresource bool

	typ reflect.Type
}

var registry = struct {
	sync.RWMutex
	byKind  map[string]*KindInfo // lower-case kind, plural and short names
	byType  map[reflect.Type]*KindInfo
	ordered []*KindInfo
}{byKind: map[string]*KindInfo{}, byType: map[reflect.Type]*KindInfo{}}

// Register adds a kind to the registry. It is called from init functions of this package only; it panics on
// a duplicate, which is a programming error.
func Register(info KindInfo) {
	registry.Lock()
	defer registry.Unlock()
	obj := info.New()
	info.typ = reflect.TypeOf(obj)
	if info.CRDKind == "" {
		info.CRDKind = info.Kind
	}
	if info.CRDPlural == "" {
		info.CRDPlural = info.Plural
	}
	p := &info
	for _, name := range append([]string{info.Kind, info.Plural}, info.ShortNames...) {
		k := strings.ToLower(name)
		if _, dup := registry.byKind[k]; dup {
			panic(fmt.Sprintf("api: kind name %q registered twice", name))
		}
		registry.byKind[k] = p
	}
	registry.byType[info.typ] = p
	registry.ordered = append(registry.ordered, p)
	sort.Slice(registry.ordered, func(i, j int) bool { return registry.ordered[i].Kind < registry.ordered[j].Kind })
}

// LookupKind finds a kind by its name, plural or short name, ignoring case ("IPPool", "ippools", "pool").
func LookupKind(name string) (KindInfo, bool) {
	registry.RLock()
	defer registry.RUnlock()
	p, ok := registry.byKind[strings.ToLower(name)]
	if !ok {
		return KindInfo{}, false
	}
	return *p, true
}

// Kinds returns every registered kind, sorted by Kind.
func Kinds() []KindInfo {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]KindInfo, len(registry.ordered))
	for i, p := range registry.ordered {
		out[i] = *p
	}
	return out
}

// KindOf returns the registered kind of obj from its Go type (not from TypeMeta, which may be empty).
func KindOf(obj Resource) (KindInfo, error) {
	registry.RLock()
	defer registry.RUnlock()
	p, ok := registry.byType[reflect.TypeOf(obj)]
	if !ok {
		return KindInfo{}, fmt.Errorf("api: %T is not a registered kind", obj)
	}
	return *p, nil
}

// NewObject returns a new empty object of the named kind.
func NewObject(kind string) (Resource, error) {
	info, ok := LookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("unknown resource kind %q", kind)
	}
	return info.New(), nil
}
