package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
	"github.com/tortie-net/tortie/common/datastore/internal/zapslog"
)

// Defaults for Config.
const (
	DefaultEndpoint       = "http://127.0.0.1:2379"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultListPageSize is how many keys one range request of a List reads; the pages are read at one
	// revision, so the list is consistent.
	DefaultListPageSize = 5000
	// maxUnconditionalRetries bounds the read-modify-write loop of an Update without resourceVersion.
	maxUnconditionalRetries = 16
)

// Config says how to reach etcd.
type Config struct {
	// Endpoints are the client URLs (default DefaultEndpoint).
	Endpoints []string
	// CACertFile, CertFile and KeyFile are PEM files for TLS: the CA that signed the servers'
	// certificates, and the client certificate and key (ETCD_CA_CERT_FILE, ETCD_CERT_FILE,
	// ETCD_KEY_FILE). With none set, https endpoints are verified against the system roots.
	CACertFile, CertFile, KeyFile string
	// Username and Password, for etcd's own authentication (ETCD_USERNAME, ETCD_PASSWORD).
	Username, Password string
	// DialTimeout bounds connecting and authenticating (default DefaultDialTimeout). Connecting does
	// not block New: the client connects in the background and calls fail until it has.
	DialTimeout time.Duration
	// RequestTimeout bounds each request: a Get, one page of a List, one transaction (default
	// DefaultRequestTimeout). A caller's shorter context deadline wins.
	RequestTimeout time.Duration
	// ListPageSize is how many keys one range request reads (default DefaultListPageSize).
	ListPageSize int64
	// Prefix is put before every key, for isolation (tests, or several clusters in one etcd). Empty
	// means the standard layout, where calicoctl and Calico find the data. It must start with "/" and
	// not end with one.
	Prefix string
	// Logger receives the backend's warnings and the etcd client's (default: discarded).
	Logger *slog.Logger
}

// ConfigFromEnv reads Calico's etcd settings: ETCD_ENDPOINTS (comma-separated URLs), ETCD_CA_CERT_FILE,
// ETCD_CERT_FILE, ETCD_KEY_FILE, ETCD_USERNAME and ETCD_PASSWORD. getenv is usually os.Getenv.
func ConfigFromEnv(getenv func(string) string) Config {
	var cfg Config
	for _, e := range strings.Split(getenv("ETCD_ENDPOINTS"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.Endpoints = append(cfg.Endpoints, e)
		}
	}
	cfg.CACertFile = getenv("ETCD_CA_CERT_FILE")
	cfg.CertFile = getenv("ETCD_CERT_FILE")
	cfg.KeyFile = getenv("ETCD_KEY_FILE")
	cfg.Username = getenv("ETCD_USERNAME")
	cfg.Password = getenv("ETCD_PASSWORD")
	return cfg
}

// Backend is the etcd datastore.Backend.
type Backend struct {
	cli      *clientv3.Client
	layout   layout
	ipamRoot string // Config.Prefix + IPAMPrefix
	timeout  time.Duration
	pageSize int64
	log      *slog.Logger
}

var _ datastore.Backend = (*Backend)(nil)

// New returns a Backend for cfg. It does not wait for etcd to answer (use Ping for that): an agent
// may start before its datastore.
func New(cfg Config) (*Backend, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{DefaultEndpoint}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/")) {
		return nil, fmt.Errorf("etcd key prefix %q must start with '/' and not end with one", cfg.Prefix)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zapslog.New(log.With("component", "etcd-client"), zap.WarnLevel),
		// gRPC's default reconnect backoff grows to two minutes; a restarted local etcd should be back
		// in seconds.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: cfg.DialTimeout,
		})},
		// Detect a dead connection (etcd killed, network gone) within seconds, even without requests.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return NewFromClient(cli, cfg), nil
}

// NewFromClient returns a Backend that uses cli, with the other settings from cfg (Endpoints, TLS and
// DialTimeout are ignored). Close closes cli.
func NewFromClient(cli *clientv3.Client, cfg Config) *Backend {
	b := &Backend{
		cli:      cli,
		layout:   layout{root: cfg.Prefix + ResourcePrefix},
		ipamRoot: cfg.Prefix + IPAMPrefix,
		timeout:  cfg.RequestTimeout,
		pageSize: cfg.ListPageSize,
		log:      cfg.Logger,
	}
	if b.timeout <= 0 {
		b.timeout = DefaultRequestTimeout
	}
	if b.pageSize <= 0 {
		b.pageSize = DefaultListPageSize
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CACertFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		for _, e := range cfg.Endpoints {
			if strings.HasPrefix(e, "https://") {
				return &tls.Config{MinVersion: tls.VersionTLS12}, nil
			}
		}
		return nil, nil
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("etcd TLS: ETCD_CERT_FILE (%q) and ETCD_KEY_FILE (%q) must be given together", cfg.CertFile, cfg.KeyFile)
	}
	info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CACertFile}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS (CA %q, certificate %q, key %q): %w", cfg.CACertFile, cfg.CertFile, cfg.KeyFile, err)
	}
	return c, nil
}

// Client returns the underlying etcd client (for tools and tests).
func (b *Backend) Client() *clientv3.Client { return b.cli }

// Path returns the etcd key that stores k, with this backend's prefix. For an IPAM kind whose name has
// several readings (see package api's IPAM names) it is the first reading's.
func (b *Backend) Path(k datastore.Key) (string, error) {
	if info, ok := api.LookupKind(k.Kind); ok {
		if c := ipamCodecs[info.Kind]; c != nil {
			paths, _ := c.lookup(k.Name)
			if len(paths) == 0 {
				return "", fmt.Errorf("%s is not a valid key for kind %s in etcd: the name does not follow from an object's contents", k, info.Kind)
			}
			return b.ipamRoot + paths[0], nil
		}
	}
	return b.layout.checkedPath(k)
}

func (b *Backend) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

func formatRev(r int64) string { return strconv.FormatInt(r, 10) }

func parseRev(s string) (int64, error) {
	r, err := strconv.ParseInt(s, 10, 64)
	if err != nil || r < 0 {
		return 0, fmt.Errorf("invalid revision %q: etcd revisions are non-negative decimal integers", s)
	}
	return r, nil
}

// decode reads a stored value. The key is authoritative for name and namespace; the mod revision is
// the resourceVersion.
func decode(kv *mvccpb.KeyValue, key datastore.Key, info api.KindInfo) (api.Resource, error) {
	obj := info.New()
	if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, fmt.Errorf("decoding %s from etcd key %s: %w", key, kv.Key, err)
	}
	objutil.SetTypeMeta(obj, info)
	if ann := obj.GetAnnotations(); ann[api.AnnotationMetadata] != "" && api.IsTieredPolicyKind(info.Kind) {
		// Calico's record of the policy name (written by encode); the key is authoritative.
		ann = maps.Clone(ann)
		delete(ann, api.AnnotationMetadata)
		if len(ann) == 0 {
			ann = nil
		}
		obj.SetAnnotations(ann)
	}
	obj.SetName(key.Name)
	obj.SetNamespace(key.Namespace)
	obj.SetResourceVersion(formatRev(kv.ModRevision))
	return obj, nil
}

// encode writes the v3 JSON form; obj's resourceVersion is empty (objutil.ForCreate/ForUpdate). Tiered
// policies carry the projectcalico.org/metadata annotation {"name":"<name>"} as Calico's etcd datastore
// writes it (Calico reads a policy without it as a pre-v3.30 one and strips a "default." prefix).
func encode(obj api.Resource, key datastore.Key) (string, error) {
	if api.IsTieredPolicyKind(key.Kind) {
		c := obj.DeepCopyObject().(api.Resource)
		c.SetAnnotations(api.WithStoredPolicyName(c))
		obj = c
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("encoding %s for etcd: %w", key, err)
	}
	return string(b), nil
}

// Get implements datastore.Backend.
func (b *Backend) Get(ctx context.Context, key datastore.Key) (api.Resource, error) {
	key, info, err := objutil.LookupKey(key)
	if err != nil {
		return nil, fmt.Errorf("getting %s from etcd: %w", key, err)
	}
	if c := ipamCodecs[info.Kind]; c != nil {
		return b.getIPAM(ctx, key, info, c)
	}
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	resp, err := b.cli.Get(ctx, b.layout.path(key, info))
	if err != nil {
		return nil, fmt.Errorf("getting %s from etcd: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("getting %s from etcd: %w", key, datastore.ErrNotFound)
	}
	return decode(resp.Kvs[0], key, info)
}

// List implements datastore.Backend. Values that do not decode are left out (and logged), as if absent.
func (b *Backend) List(ctx context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	opts, info, err := objutil.LookupList(opts)
	if err != nil {
		return nil, "", fmt.Errorf("listing in etcd: %w", err)
	}
	what := info.Plural
	if opts.Namespace != "" {
		what += " in namespace " + strconv.Quote(opts.Namespace)
	}
	st := b.storeOf(opts, info)
	var (
		out  []api.Resource
		rev  int64
		from = st.start
		end  = st.end
	)
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(b.pageSize)}
		if rev != 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		pctx, cancel := b.reqCtx(ctx)
		resp, err := b.cli.Get(pctx, from, ops...)
		cancel()
		if err != nil {
			return nil, "", fmt.Errorf("listing %s in etcd: %w", what, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			if out == nil && resp.Count > 0 {
				out = make([]api.Resource, 0, resp.Count)
			}
		}
		for _, kv := range resp.Kvs {
			key, ok := st.parse(string(kv.Key))
			if !ok {
				b.log.Warn("ignoring etcd key of an unexpected shape", "etcd_key", string(kv.Key))
				continue
			}
			obj, err := st.decode(kv, key)
			if err != nil {
				b.log.Warn("ignoring etcd value that does not decode", "etcd_key", string(kv.Key), "error", err)
				continue
			}
			out = append(out, obj)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	// etcd orders by key, in which "a-b/x" sorts before "a/x", and IPAM keys are not names; List
	// promises namespace, then name.
	if info.Namespaced || st.ipam {
		slices.SortFunc(out, objutil.Compare)
	}
	return out, formatRev(rev), nil
}

// Create implements datastore.Backend: a transaction that puts the key only if it has never been
// created (CreateRevision 0).
func (b *Backend) Create(ctx context.Context, obj api.Resource) (api.Resource, error) {
	key, info, err := objutil.Check(obj)
	if err != nil {
		return nil, fmt.Errorf("creating in etcd: %w", err)
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		return nil, fmt.Errorf("creating %s in etcd: resourceVersion must be empty, not %q", key, rv)
	}
	if c := ipamCodecs[info.Kind]; c != nil {
		return b.createIPAM(ctx, obj, key, info, c)
	}
	stored := objutil.ForCreate(obj, info, time.Now())
	val, err := encode(stored, key)
	if err != nil {
		return nil, err
	}
	path := b.layout.path(key, info)
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	resp, err := b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(path), "=", 0)).
		Then(clientv3.OpPut(path, val)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("creating %s in etcd: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("creating %s in etcd: %w", key, datastore.ErrAlreadyExists)
	}
	stored.SetResourceVersion(formatRev(resp.Header.Revision))
	return stored, nil
}

// Update implements datastore.Backend: a transaction that puts the key only if its ModRevision is the
// given resourceVersion. Without a resourceVersion it reads the current revision and retries on a race.
func (b *Backend) Update(ctx context.Context, obj api.Resource) (api.Resource, error) {
	key, info, err := objutil.Check(obj)
	if err != nil {
		return nil, fmt.Errorf("updating in etcd: %w", err)
	}
	if c := ipamCodecs[info.Kind]; c != nil {
		return b.updateIPAM(ctx, obj, key, info, c)
	}
	var want int64
	conditional := obj.GetResourceVersion() != ""
	if conditional {
		if want, err = parseRev(obj.GetResourceVersion()); err != nil {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, err)
		}
	}
	path := b.layout.path(key, info)
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	for range maxUnconditionalRetries {
		// The stored value is always read: its server-set fields and the fields tortie's type cannot
		// hold are carried into the new value, and the transaction below writes only if it is still
		// the stored one.
		got, err := b.cli.Get(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("updating %s in etcd: reading it: %w", key, err)
		}
		if len(got.Kvs) == 0 {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, datastore.ErrNotFound)
		}
		old := got.Kvs[0]
		casRev := old.ModRevision
		if conditional && old.ModRevision != want {
			return nil, fmt.Errorf("updating %s at revision %d in etcd (stored: %d): %w", key, want, old.ModRevision, datastore.ErrConflict)
		}
		cur, err := decode(old, key, info)
		if err != nil {
			// Neither server-set nor unknown fields can be carried over from an unreadable value.
			b.log.Warn("replacing an etcd value that does not decode", "etcd_key", path, "error", err)
			cur = nil
		}
		stored := objutil.ForUpdate(obj, cur, info)
		val, err := encode(stored, key)
		if err != nil {
			return nil, err
		}
		if cur != nil {
			if val, err = carryUnknownFields(val, old.Value, key, info); err != nil {
				return nil, err
			}
		}
		resp, err := b.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(path), "=", casRev)).
			Then(clientv3.OpPut(path, val)).
			Else(clientv3.OpGet(path, clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, err)
		}
		if resp.Succeeded {
			stored.SetResourceVersion(formatRev(resp.Header.Revision))
			return stored, nil
		}
		if len(resp.Responses) == 0 || len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, datastore.ErrNotFound)
		}
		if conditional {
			return nil, fmt.Errorf("updating %s at revision %d in etcd (stored: %d): %w", key, want,
				resp.Responses[0].GetResponseRange().Kvs[0].ModRevision, datastore.ErrConflict)
		}
	}
	return nil, fmt.Errorf("updating %s in etcd: still racing other writers after %d attempts: %w", key, maxUnconditionalRetries, datastore.ErrConflict)
}

// Delete implements datastore.Backend; with a revision it is a transaction on the key's ModRevision.
func (b *Backend) Delete(ctx context.Context, key datastore.Key, revision string) (api.Resource, error) {
	key, info, err := objutil.LookupKey(key)
	if err != nil {
		return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
	}
	if c := ipamCodecs[info.Kind]; c != nil {
		return b.deleteIPAM(ctx, key, revision, info, c)
	}
	path := b.layout.path(key, info)
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	var prev []*mvccpb.KeyValue
	if revision == "" {
		resp, err := b.cli.Delete(ctx, path, clientv3.WithPrevKV())
		if err != nil {
			return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
		}
		prev = resp.PrevKvs
	} else {
		want, err := parseRev(revision)
		if err != nil {
			return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
		}
		resp, err := b.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(path), "=", want)).
			Then(clientv3.OpDelete(path, clientv3.WithPrevKV())).
			Else(clientv3.OpGet(path, clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
		}
		if !resp.Succeeded {
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 {
				return nil, fmt.Errorf("deleting %s from etcd: %w", key, datastore.ErrNotFound)
			}
			return nil, fmt.Errorf("deleting %s at revision %d from etcd (stored: %d): %w", key, want, kvs[0].ModRevision, datastore.ErrConflict)
		}
		prev = resp.Responses[0].GetResponseDeleteRange().PrevKvs
	}
	if len(prev) == 0 {
		return nil, fmt.Errorf("deleting %s from etcd: %w", key, datastore.ErrNotFound)
	}
	obj, err := decode(prev[0], key, info)
	if err != nil {
		// The key is gone either way; say what was deleted even if its value was unreadable.
		b.log.Warn("deleted an etcd value that does not decode", "etcd_key", path, "error", err)
		obj = info.New()
		obj.SetName(key.Name)
		obj.SetNamespace(key.Namespace)
		obj.SetResourceVersion(formatRev(prev[0].ModRevision))
	}
	return obj, nil
}

// Ping implements datastore.Backend with a linearizable read of one key, which needs a leader.
func (b *Backend) Ping(ctx context.Context) error {
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	if _, err := b.cli.Get(ctx, b.layout.root+"/ping", clientv3.WithKeysOnly()); err != nil {
		return fmt.Errorf("pinging etcd at %s: %w", strings.Join(b.cli.Endpoints(), ","), err)
	}
	return nil
}

// Close implements datastore.Backend.
func (b *Backend) Close() error {
	if err := b.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing etcd client: %w", err)
	}
	return nil
}

// store says where List and Watch find a kind: the key range, how a key becomes a datastore key, and
// how a value becomes an object.
type store struct {
	start, end string
	ipam       bool
	parse      func(path string) (datastore.Key, bool)
	decode     func(kv *mvccpb.KeyValue, key datastore.Key) (api.Resource, error)
}

func (b *Backend) storeOf(opts datastore.ListOptions, info api.KindInfo) store {
	if c := ipamCodecs[info.Kind]; c != nil {
		start, end := c.keyRange()
		return store{
			start: b.ipamRoot + start,
			end:   b.ipamRoot + end,
			ipam:  true,
			parse: func(path string) (datastore.Key, bool) { return b.ipamKeyOf(path, info, c) },
			decode: func(kv *mvccpb.KeyValue, key datastore.Key) (api.Resource, error) {
				return b.decodeIPAM(kv, key, info, c)
			},
		}
	}
	prefix := b.layout.listPrefix(opts, info)
	return store{
		start:  prefix,
		end:    clientv3.GetPrefixRangeEnd(prefix),
		parse:  func(path string) (datastore.Key, bool) { return b.layout.parse(path, info) },
		decode: func(kv *mvccpb.KeyValue, key datastore.Key) (api.Resource, error) { return decode(kv, key, info) },
	}
}
