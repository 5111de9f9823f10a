package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
	"github.com/tortie-net/tortie/common/datastore"
)

// DefaultRequestTimeout bounds every API call except the long-running watch streams.
const DefaultRequestTimeout = 30 * time.Second

// Config says how to reach the Kubernetes API.
type Config struct {
	// Kubeconfig is the path of a kubeconfig file, or several separated by the OS path-list separator
	// (":" on Linux, ";" on Windows), merged as kubectl merges $KUBECONFIG. Empty means the in-cluster
	// configuration (service account token and KUBERNETES_SERVICE_HOST).
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig. Its Timeout, if any, is used as
	// RequestTimeout when that is zero (it is not applied to watch streams).
	RESTConfig *rest.Config
	// RequestTimeout bounds each API call (default DefaultRequestTimeout). Watch streams are bounded by
	// their context instead.
	RequestTimeout time.Duration
	// Logger receives warnings about objects that cannot be converted (they are skipped) and about
	// Kubernetes NetworkPolicy rules that cannot be. Default: nowhere.
	Logger *slog.Logger
}

// Backend is a datastore.Backend over the Kubernetes API. See the package documentation for how each
// kind maps to Kubernetes objects.
type Backend struct {
	dyn dynamic.Interface
	// http and readyz are for Ping: a plain GET of the API server's /readyz over the dynamic
	// client's HTTP client (same transport, credentials and connections). client-go's discovery or
	// typed REST clients would do the same but link every Kubernetes API group into the binary,
	// which the CNI plugin pays for in start-up time on every invocation.
	http     *http.Client
	readyz   string
	timeout  time.Duration
	log      *slog.Logger
	handlers map[string]handler // by api kind
	closed   atomic.Bool
	// watchTimeout, when set, asks the API server to end each watch request after that long (tests:
	// it exercises the resumption of watches that end normally).
	watchTimeout time.Duration
}

var _ datastore.Backend = (*Backend)(nil)

// New connects to the Kubernetes API described by cfg. It does not contact the API server; use Ping.
func New(cfg Config) (*Backend, error) {
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		// client-go's default (5 QPS, burst 10) throttles a syncer's initial lists of a busy cluster.
		rc.QPS, rc.Burst = 50, 100
	}
	if rc.UserAgent == "" {
		rc.UserAgent = "tortie"
	}
	// A rest.Config Timeout becomes the HTTP client's timeout, which would also cut every watch stream
	// after that long; calls are bounded by RequestTimeout through their contexts instead.
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = rc.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	rc.Timeout = 0
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", rc.Host, err)
	}
	dyn, err := dynamic.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", rc.Host, err)
	}
	readyz, err := readyzURL(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", rc.Host, err)
	}
	b := &Backend{dyn: dyn, http: hc, readyz: readyz, timeout: timeout, log: cfg.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.handlers = newHandlers(b)
	return b, nil
}

func restConfig(cfg Config) (*rest.Config, error) {
	if cfg.RESTConfig != nil {
		return cfg.RESTConfig, nil
	}
	rc, err := kubeconfig.LoadSource(kubeconfig.Source{Path: cfg.Kubeconfig}, kubeconfig.Options{})
	if err != nil && cfg.Kubeconfig == "" {
		return nil, fmt.Errorf("no kubeconfig given and not running in a pod (%w): set the kubeconfig "+
			"path (KUBECONFIG, or kubeconfig in the datastore config)", err)
	}
	return rc, err
}

// Ping asks the API server's /readyz endpoint, which also fails while the API server cannot reach etcd.
func (b *Backend) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return errors.New("pinging the Kubernetes datastore: the backend is closed")
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.readyz, nil)
	if err != nil {
		return fmt.Errorf("pinging the Kubernetes datastore (GET /readyz): %w", err)
	}
	req.Header.Set("Accept", "text/plain, application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return fmt.Errorf("pinging the Kubernetes datastore (GET /readyz): %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if msg := strings.TrimSpace(string(body)); msg != "" {
			return fmt.Errorf("pinging the Kubernetes datastore (GET /readyz): %s: %s", resp.Status, msg)
		}
		return fmt.Errorf("pinging the Kubernetes datastore (GET /readyz): %s", resp.Status)
	}
	return nil
}

// readyzURL is the API server's /readyz under rc's host (and its path prefix, if any), as client-go's
// AbsPath("/readyz") would build it.
func readyzURL(rc *rest.Config) (string, error) {
	base, _, err := rest.DefaultServerUrlFor(rc)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: base.Scheme, Host: base.Host, Path: strings.TrimSuffix(base.Path, "/") + "/readyz"}
	return u.String(), nil
}

// Close marks the backend closed. client-go holds no per-client resources that need releasing; idle
// connections are shared by the transport cache.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}

// handlerFor finds the handler of a kind and checks the namespace against the kind's scope.
func (b *Backend) handlerFor(op, kind, namespace string, needNamespace bool) (handler, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: the backend is closed", op)
	}
	info, ok := api.LookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: unknown kind %q", op, kind)
	}
	h, ok := b.handlers[info.Kind]
	if !ok {
		return nil, errorf(op, datastore.ErrUnsupported, "kind %s is not stored in the Kubernetes datastore", info.Kind)
	}
	if !info.Namespaced && namespace != "" {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %s is cluster-scoped but namespace %q was given",
			op, info.Kind, namespace)
	}
	if info.Namespaced && needNamespace && namespace == "" {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %s is namespaced and no namespace was given", op, info.Kind)
	}
	return h, nil
}

// Get implements datastore.Backend.
func (b *Backend) Get(ctx context.Context, key datastore.Key) (api.Resource, error) {
	op := "getting " + key.String()
	h, err := b.handlerFor(op, key.Kind, key.Namespace, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return h.get(ctx, op, key)
}

// List implements datastore.Backend.
func (b *Backend) List(ctx context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	op := "listing " + opts.Kind
	if opts.Namespace != "" {
		op += fmt.Sprintf(" in namespace %q", opts.Namespace)
	}
	h, err := b.handlerFor(op, opts.Kind, opts.Namespace, false)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	srcs := h.sources()
	revs := make(map[string]string, len(srcs))
	var out []api.Resource
	for _, s := range srcs {
		items, rv, err := b.listSource(ctx, op, s, opts.Namespace)
		if err != nil {
			return nil, "", err
		}
		revs[s.name] = rv
		out = append(out, items...)
	}
	out = append(out, h.static()...)
	sortResources(out)
	return out, revisionOf(srcs, revs), nil
}

// revisionOf is the revision a List or watch event reports: the plain resourceVersion for a kind with
// one source, the composite one otherwise.
func revisionOf(srcs []*source, revs map[string]string) string {
	if len(srcs) == 1 {
		return revs[srcs[0].name]
	}
	return compositeRevision(revs)
}

func sortResources(rs []api.Resource) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].GetNamespace() != rs[j].GetNamespace() {
			return rs[i].GetNamespace() < rs[j].GetNamespace()
		}
		return rs[i].GetName() < rs[j].GetName()
	})
}

// Create implements datastore.Backend.
func (b *Backend) Create(ctx context.Context, obj api.Resource) (api.Resource, error) {
	key, err := datastore.KeyOf(obj)
	if err != nil {
		return nil, fmt.Errorf("creating a resource in the Kubernetes datastore: %w", err)
	}
	op := "creating " + key.String()
	h, err := b.handlerFor(op, key.Kind, key.Namespace, true)
	if err != nil {
		return nil, err
	}
	if key.Name == "" {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: metadata.name is empty", op)
	}
	if obj.GetResourceVersion() != "" {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: metadata.resourceVersion must be empty on create (it is %q)",
			op, obj.GetResourceVersion())
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return h.create(ctx, op, obj)
}

// Update implements datastore.Backend.
func (b *Backend) Update(ctx context.Context, obj api.Resource) (api.Resource, error) {
	key, err := datastore.KeyOf(obj)
	if err != nil {
		return nil, fmt.Errorf("updating a resource in the Kubernetes datastore: %w", err)
	}
	op := "updating " + key.String()
	h, err := b.handlerFor(op, key.Kind, key.Namespace, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return h.update(ctx, op, obj)
}

// Delete implements datastore.Backend.
func (b *Backend) Delete(ctx context.Context, key datastore.Key, revision string) (api.Resource, error) {
	op := "deleting " + key.String()
	h, err := b.handlerFor(op, key.Kind, key.Namespace, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return h.delete(ctx, op, key, revision)
}

// Watch implements datastore.Backend.
func (b *Backend) Watch(ctx context.Context, opts datastore.ListOptions, revision string) (datastore.Watcher, error) {
	op := "watching " + opts.Kind
	if opts.Namespace != "" {
		op += fmt.Sprintf(" in namespace %q", opts.Namespace)
	}
	h, err := b.handlerFor(op, opts.Kind, opts.Namespace, false)
	if err != nil {
		return nil, err
	}
	return b.startWatch(ctx, op, h, opts.Namespace, revision)
}

// handler implements the operations of one tortie kind.
type handler interface {
	// sources are the Kubernetes resources List and Watch read, in a fixed order.
	sources() []*source
	// static are objects that always exist (the default-allow profile), returned by List after the
	// sources' objects and never reported by Watch.
	static() []api.Resource
	get(ctx context.Context, op string, key datastore.Key) (api.Resource, error)
	create(ctx context.Context, op string, obj api.Resource) (api.Resource, error)
	update(ctx context.Context, op string, obj api.Resource) (api.Resource, error)
	delete(ctx context.Context, op string, key datastore.Key, revision string) (api.Resource, error)
}

// source is one Kubernetes resource that a tortie kind is read from.
type source struct {
	// name tags the source's resourceVersion in composite revisions ("crd", "knp", "ns", "sa").
	name       string
	gvr        schema.GroupVersionResource
	namespaced bool
	// filterNamespace says whether ListOptions.Namespace restricts this source (false for the
	// ServiceAccounts behind the cluster-scoped Profile kind).
	filterNamespace bool
	// convert returns the tortie object a Kubernetes object stands for, or nil when it stands for
	// none (a host-network pod).
	convert func(u *unstructured.Unstructured) (api.Resource, error)
	// keyOf returns the key of the tortie object a Kubernetes object stands for without converting it,
	// or false when it stands for none. A watch reports an object that cannot be converted as the
	// deletion of this key, so that no consumer keeps acting on data that can no longer be read (the
	// etcd backend does the same); List leaves such objects out.
	keyOf func(u *unstructured.Unstructured) (datastore.Key, bool)
}

func (s *source) client(b *Backend, namespace string) dynamic.ResourceInterface {
	r := b.dyn.Resource(s.gvr)
	if s.namespaced && s.filterNamespace && namespace != "" {
		return r.Namespace(namespace)
	}
	if s.namespaced {
		return r.Namespace("")
	}
	return r
}
