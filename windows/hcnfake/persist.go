package hcnfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tortie-net/tortie/windows/hcn"
)

// fileStore is the state file of a fake opened with Open. Each call takes the file lock, loads the state
// when another process changed it, runs, and stores the state when it changed: separate processes (a
// CNI plugin run by libcni, an agent, a test) then share one fake HNS, as they share the real one.
type fileStore struct {
	path, lockPath string
	// mu serialises this process's calls before they take the file lock (which is per open file, and
	// so would also serialise them, but an in-process mutex keeps it cheap).
	mu sync.Mutex
	// last is the state as last loaded or stored: a load that reads the same bytes changes nothing,
	// so the evaluator's compiled rules stay valid.
	last []byte
	// err is the last load or store failure, returned by the next HNS call.
	err error
}

// diskState is what the state file holds. Injected failures with a condition (FailWhen) are functions
// and stay in the process that set them; FailNext failures are stored, so a test can make a call of
// another process fail.
type diskState struct {
	Version         hcn.Version
	ProviderAddress string
	NoMatchAllows   bool

	Networks   map[string]*hcn.Network
	Endpoints  map[string]*hcn.Endpoint
	Namespaces map[string]*hcn.Namespace
	Containers map[string]*container
	NextID     int
	Macs       int
	VSwitch    bool
	Blips      int
	Calls      map[string]int
	Failing    []diskFailure
	Latency    time.Duration
}

type diskFailure struct {
	Call    string
	Message string
}

// Open returns a fake HNS whose state lives in the file at path, created (with opts) when missing; an
// existing file keeps the options it was created with. Every call of the returned HNS, in any process
// that opened the same path, sees the changes of the others: a call holds a lock on path+".lock" from
// start to end. The file is JSON, readable when a test fails.
func Open(path string, opts Options) (*HNS, error) {
	h := New(opts)
	h.file = &fileStore{path: path, lockPath: path + ".lock"}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of the fake HNS state %s: %w", path, err)
	}
	unlock, err := lockFile(h.file.lockPath)
	if err != nil {
		return nil, fmt.Errorf("locking the fake HNS state %s: %w", path, err)
	}
	defer unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch err := h.load(); {
	case errors.Is(err, fs.ErrNotExist):
		if err := h.store(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	return h, nil
}

// Path returns the state file of a fake made by Open ("" for one made by New).
func (h *HNS) Path() string {
	if h.file == nil {
		return ""
	}
	return h.file.path
}

// txn brackets one call of a file-backed fake: it takes the file lock and loads the state; the function
// it returns stores the state and releases the lock. For a fake made by New both are no-ops. Use it as
// `defer h.txn()()` at the top of every exported method.
func (h *HNS) txn() func() {
	f := h.file
	if f == nil {
		return func() {}
	}
	f.mu.Lock()
	unlock, err := lockFile(f.lockPath)
	if err != nil {
		f.err = fmt.Errorf("locking the fake HNS state %s: %w", f.path, err)
		f.mu.Unlock()
		return func() {}
	}
	h.mu.Lock()
	f.err = h.load()
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		if f.err == nil {
			f.err = h.store()
		}
		h.mu.Unlock()
		unlock()
		f.mu.Unlock()
	}
}

// fileErr returns the state file's last failure, for begin.
func (h *HNS) fileErr() error {
	if h.file == nil || h.file.err == nil {
		return nil
	}
	return h.file.err
}

// load reads the state file into h (h.mu held).
func (h *HNS) load() error {
	f := h.file
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("reading the fake HNS state: %w", err)
	}
	if bytes.Equal(data, f.last) {
		return nil
	}
	var s diskState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("the fake HNS state %s is not valid JSON (delete it to start from an empty HNS): %w", f.path, err)
	}
	pa, err := netip.ParseAddr(s.ProviderAddress)
	if err != nil {
		return fmt.Errorf("the fake HNS state %s: ProviderAddress %q: %w", f.path, s.ProviderAddress, err)
	}
	h.opts = Options{Version: s.Version, ProviderAddress: pa, NoMatchAllows: s.NoMatchAllows}
	h.feat = hcn.FeaturesFor(s.Version)
	h.networks = nonNil(s.Networks)
	h.endpoints = nonNil(s.Endpoints)
	h.namespaces = nonNil(s.Namespaces)
	h.containers = nonNil(s.Containers)
	h.nextID, h.macs, h.vswitch, h.blips = s.NextID, s.Macs, s.VSwitch, s.Blips
	h.calls = nonNil(s.Calls)
	h.latency = s.Latency
	var kept []failure
	for _, fl := range h.failing {
		if fl.when != nil {
			kept = append(kept, fl)
		}
	}
	for _, fl := range s.Failing {
		kept = append(kept, failure{call: fl.Call, err: errors.New(fl.Message), once: true})
	}
	h.failing = kept
	h.gen++ // the evaluator's compiled rules are stale
	f.last = data
	return nil
}

// store writes h's state to the file when it changed (h.mu held), through a temporary file and a
// rename so that a crash never leaves half a state.
func (h *HNS) store() error {
	f := h.file
	s := diskState{
		Version: h.opts.Version, ProviderAddress: h.opts.ProviderAddress.String(), NoMatchAllows: h.opts.NoMatchAllows,
		Networks: h.networks, Endpoints: h.endpoints, Namespaces: h.namespaces, Containers: h.containers,
		NextID: h.nextID, Macs: h.macs, VSwitch: h.vswitch, Blips: h.blips, Calls: h.calls, Latency: h.latency,
	}
	for _, fl := range h.failing {
		if fl.when == nil {
			s.Failing = append(s.Failing, diskFailure{Call: fl.call, Message: fl.err.Error()})
		}
	}
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("encoding the fake HNS state: %w", err)
	}
	if bytes.Equal(data, f.last) {
		return nil
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing the fake HNS state: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("writing the fake HNS state: %w", err)
	}
	f.last = data
	return nil
}

func nonNil[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
