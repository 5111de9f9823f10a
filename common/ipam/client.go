package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// Defaults.
const (
	// DefaultMaxBlocksPerHost caps the blocks one host may claim when IPAMConfig maxBlocksPerHost is 0
	// (Calico's default since v3.19).
	DefaultMaxBlocksPerHost = 20
	// DefaultRetries bounds the compare-and-swap retries of one write (Calico: 100).
	DefaultRetries = 100
	// DefaultTimeout bounds an operation whose context has no deadline.
	DefaultTimeout = 90 * time.Second
	// DefaultEmptyBlockMinAge is how long a claimed block must exist before Check reports it as an empty
	// block to release (Calico: 1 minute), so a block is not taken away from a node about to use it.
	DefaultEmptyBlockMinAge = time.Minute
)

// Allocation attribute keys (Calico's), stored in the block's attributes.
const (
	AttributeNamespace = "namespace"
	AttributePod       = "pod"
	AttributeNode      = "node"
	AttributeTimestamp = "timestamp"
	AttributeType      = "type"
	AttributeService   = "service"
	AttributeNote      = "note"
)

// Values of AttributeType for tunnel addresses.
const (
	AttributeTypeIPIP         = "ipipTunnelAddress"
	AttributeTypeVXLAN        = "vxlanTunnelAddress"
	AttributeTypeVXLANV6      = "vxlanV6TunnelAddress"
	AttributeTypeWireguard    = "wireguardTunnelAddress"
	AttributeTypeWireguardV6  = "wireguardV6TunnelAddress"
	WindowsReservedHandle     = "windows-reserved-ipam-handle"
	windowsReservedHandleNote = "windows host rsvd"
)

// HostReservedAttr reserves the first StartOfBlock and last EndOfBlock addresses of every block this
// call creates, allocated to Handle (Windows keeps network, gateway, DNS and broadcast addresses; the
// CNI plugin passes WindowsHostReserved()).
type HostReservedAttr struct {
	StartOfBlock int
	EndOfBlock   int
	Handle       string
	Note         string
}

// WindowsHostReserved is what Windows nodes reserve in each block: the first three addresses and the
// last one, under WindowsReservedHandle.
func WindowsHostReserved() *HostReservedAttr {
	return &HostReservedAttr{StartOfBlock: 3, EndOfBlock: 1, Handle: WindowsReservedHandle, Note: windowsReservedHandleNote}
}

// Client allocates addresses over a datastore.Backend. It is safe for concurrent use; all state lives in
// the datastore, so any number of Clients (in any number of processes) may work on one datastore.
type Client struct {
	b                datastore.Backend
	retries          int
	timeout          time.Duration
	now              func() time.Time
	log              *slog.Logger
	emptyBlockMinAge time.Duration
	maxBackoff       time.Duration

	rngMu sync.Mutex
	rng   *rand.Rand

	// hints remembers, per host and IP version, the affine block this Client last allocated from, so
	// that a long-lived Client tries it first instead of reading every full block before it.
	hints sync.Map // hintKey → netip.Prefix
}

type hintKey struct {
	host string
	ver  int
}

// Option configures a Client.
type Option func(*Client)

// WithRetries sets how often one compare-and-swap write is retried after a conflict (default
// DefaultRetries).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 1) } }

// WithTimeout bounds operations whose context has no deadline (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithClock sets the clock (allocation timestamps, cool-down, ages).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithLogger sets the logger for warnings the caller cannot act on (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithEmptyBlockMinAge sets how old an empty block must be before Check reports it (default
// DefaultEmptyBlockMinAge).
func WithEmptyBlockMinAge(d time.Duration) Option { return func(c *Client) { c.emptyBlockMinAge = d } }

// WithMaxBackoff sets the longest random pause between conflicting compare-and-swap attempts (default
// 20ms; the pause grows with the attempt number up to this).
func WithMaxBackoff(d time.Duration) Option { return func(c *Client) { c.maxBackoff = d } }

// New returns a Client over b.
func New(b datastore.Backend, opts ...Option) *Client {
	c := &Client{
		b:                b,
		retries:          DefaultRetries,
		timeout:          DefaultTimeout,
		now:              time.Now,
		log:              slog.New(slog.DiscardHandler),
		emptyBlockMinAge: DefaultEmptyBlockMinAge,
		maxBackoff:       20 * time.Millisecond,
		rng:              rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Backend returns the datastore the Client works on.
func (c *Client) Backend() datastore.Backend { return c.b }

// opCtx bounds ctx by the Client's timeout when it has no deadline.
func (c *Client) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// backoff pauses before retry attempt (1-based) of a conflicting write: a random wait that grows with
// the attempt, so that writers racing for one block spread out instead of colliding again.
func (c *Client) backoff(ctx context.Context, attempt int) error {
	if c.maxBackoff <= 0 {
		return ctx.Err()
	}
	limit := time.Duration(min(attempt, 20)) * time.Millisecond
	limit = min(limit, c.maxBackoff)
	c.rngMu.Lock()
	d := time.Duration(c.rng.Int64N(int64(limit) + 1))
	c.rngMu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// --- Configuration.

// config is the effective IPAMConfig.
type config struct {
	strictAffinity     bool
	autoAllocateBlocks bool
	maxBlocksPerHost   int // as configured; 0 = DefaultMaxBlocksPerHost
	cooldown           time.Duration
}

func (c *Client) getConfig(ctx context.Context) (config, error) {
	cfg := config{autoAllocateBlocks: true}
	obj, err := c.b.Get(ctx, datastore.Key{Kind: api.KindIPAMConfig, Name: api.IPAMConfigName})
	if errors.Is(err, datastore.ErrNotFound) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading IPAMConfig %q: %w", api.IPAMConfigName, err)
	}
	o, ok := obj.(*api.IPAMConfig)
	if !ok {
		return cfg, fmt.Errorf("reading IPAMConfig %q: unexpected type %T", api.IPAMConfigName, obj)
	}
	cfg.strictAffinity = o.Spec.StrictAffinity
	if o.Spec.AutoAllocateBlocks != nil {
		cfg.autoAllocateBlocks = *o.Spec.AutoAllocateBlocks
	}
	cfg.maxBlocksPerHost = max(o.Spec.MaxBlocksPerHost, 0)
	if s := o.Spec.IPCooldownSeconds; s != nil && *s > 0 {
		cfg.cooldown = time.Duration(min(*s, api.MaxIPCooldownSeconds)) * time.Second
	}
	return cfg, nil
}

// blockLimit is the effective per-host block cap: the smaller of the configured value and the
// request's (when either is set), else DefaultMaxBlocksPerHost.
func (cfg config) blockLimit(requested int) int {
	limit := cfg.maxBlocksPerHost
	if requested > 0 && (limit == 0 || requested < limit) {
		limit = requested
	}
	if limit == 0 {
		limit = DefaultMaxBlocksPerHost
	}
	return limit
}

func (c *Client) listPools(ctx context.Context) (poolSet, error) {
	objs, _, err := c.b.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return poolSet{}, fmt.Errorf("listing IP pools: %w", err)
	}
	pools := make([]*api.IPPool, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*api.IPPool); ok {
			pools = append(pools, p)
		}
	}
	s := newPoolSet(pools)
	for _, m := range s.invalid {
		c.log.Warn("ignoring invalid IP pool", "reason", m)
	}
	return s, nil
}

func (c *Client) listReservations(ctx context.Context) (reservations, error) {
	objs, _, err := c.b.List(ctx, datastore.ListOptions{Kind: api.KindIPReservation})
	if err != nil {
		return reservations{}, fmt.Errorf("listing IP reservations: %w", err)
	}
	rs := make([]*api.IPReservation, 0, len(objs))
	for _, o := range objs {
		if r, ok := o.(*api.IPReservation); ok {
			rs = append(rs, r)
		}
	}
	r, bad := parseReservations(rs)
	for _, m := range bad {
		c.log.Warn("ignoring invalid IP reservation", "reason", m)
	}
	return r, nil
}

// nodeLabels returns the labels of the Node named host (none when it does not exist).
func (c *Client) nodeLabels(ctx context.Context, host string) (map[string]string, error) {
	obj, err := c.b.Get(ctx, datastore.Key{Kind: api.KindNode, Name: host})
	if errors.Is(err, datastore.ErrNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the labels of node %q: %w", host, err)
	}
	return obj.GetLabels(), nil
}

// --- Object names.

// blockKey is the datastore key of the block at cidr.
func blockKey(cidr string) datastore.Key {
	return datastore.Key{Kind: api.KindIPAMBlock, Name: api.CIDRToName(cidr)}
}

func affinityKey(host, cidr string) datastore.Key {
	return datastore.Key{Kind: api.KindBlockAffinity, Name: api.BlockAffinityName(host, cidr)}
}

// HandleName returns the name of the IPAMHandle object of a handle ID (api.IPAMHandleName): the ID in
// lower case, as Calico names it, when that is a valid object name; otherwise a valid name made unique
// with a hash suffix.
func HandleName(handleID string) string { return api.IPAMHandleName(handleID) }

func handleKey(handleID string) datastore.Key {
	return datastore.Key{Kind: api.KindIPAMHandle, Name: HandleName(handleID)}
}

// --- Typed reads.

func (c *Client) getBlock(ctx context.Context, cidr string) (*api.IPAMBlock, error) {
	obj, err := c.b.Get(ctx, blockKey(cidr))
	if err != nil {
		return nil, err
	}
	b, ok := obj.(*api.IPAMBlock)
	if !ok {
		return nil, fmt.Errorf("IPAMBlock %s: unexpected type %T", cidr, obj)
	}
	return b, nil
}

func (c *Client) listBlocks(ctx context.Context) ([]*api.IPAMBlock, error) {
	objs, _, err := c.b.List(ctx, datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		return nil, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	out := make([]*api.IPAMBlock, 0, len(objs))
	for _, o := range objs {
		if b, ok := o.(*api.IPAMBlock); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

func (c *Client) listAffinities(ctx context.Context) ([]*api.BlockAffinity, error) {
	objs, _, err := c.b.List(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil {
		return nil, fmt.Errorf("listing block affinities: %w", err)
	}
	out := make([]*api.BlockAffinity, 0, len(objs))
	for _, o := range objs {
		if a, ok := o.(*api.BlockAffinity); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// hostAffinities returns the host-type affinities of host.
func (c *Client) hostAffinities(ctx context.Context, host string) ([]*api.BlockAffinity, error) {
	all, err := c.listAffinities(ctx)
	if err != nil {
		return nil, err
	}
	var out []*api.BlockAffinity
	for _, a := range all {
		if a.Spec.Node == host && (a.Spec.Type == "" || a.Spec.Type == api.AffinityTypeHost) && a.Spec.Deleted != "true" {
			out = append(out, a)
		}
	}
	return out, nil
}

func (c *Client) listHandles(ctx context.Context) ([]*api.IPAMHandle, error) {
	objs, _, err := c.b.List(ctx, datastore.ListOptions{Kind: api.KindIPAMHandle})
	if err != nil {
		return nil, fmt.Errorf("listing IPAM handles: %w", err)
	}
	out := make([]*api.IPAMHandle, 0, len(objs))
	for _, o := range objs {
		if h, ok := o.(*api.IPAMHandle); ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// typed converts what a Backend returned to the type asked for.
func typed[T api.Resource](r api.Resource) (T, error) {
	t, ok := r.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("the datastore returned %T, want %T", r, zero)
	}
	return t, nil
}

// parallel runs fns concurrently and returns their errors joined.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
