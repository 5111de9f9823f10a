package etcd_test

// Resync against a real etcd (Debian's etcd-server, run as a separate process by testenv): killed with
// SIGKILL and restarted, and cut off by a TCP proxy while others write and compact.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
	"github.com/tortie-net/tortie/common/testenv"
)

var realKinds = []datastore.ListOptions{
	{Kind: api.KindIPPool}, {Kind: api.KindNetworkPolicy}, {Kind: api.KindWorkloadEndpoint},
}

func backendFor(t *testing.T, eps []string) *etcd.Backend {
	t.Helper()
	b, err := etcd.New(etcd.Config{Endpoints: eps, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// seed writes a small realistic data set and returns what it wrote.
func seed(t *testing.T, b datastore.Backend) []api.Resource {
	t.Helper()
	var objs []api.Resource
	add := func(o api.Resource) {
		got, err := b.Create(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got)
	}
	for i := range 3 {
		add(dstest.IPPool(fmt.Sprintf("pool-%d", i), fmt.Sprintf("10.%d.0.0/16", i)))
	}
	for i := range 6 {
		add(dstest.NetworkPolicy([]string{"prod", "dev"}[i%2], fmt.Sprintf("np-%d", i)))
	}
	for i := range 40 {
		add(dstest.WorkloadEndpoint([]string{"prod", "dev"}[i%2], fmt.Sprintf("node-%d", i%4), fmt.Sprintf("pod-%d", i), i))
	}
	return objs
}

// sentinels writes one new object of each kind and waits until the receiver holds them all and is
// InSync: then it has processed everything each kind's watch saw before (a kind's watch may learn of a
// failure later than another's, so one sentinel is not enough).
func sentinels(t *testing.T, b datastore.Backend, c *syncertest.Cache, tag string) []string {
	t.Helper()
	var keys []datastore.Key
	for _, o := range []api.Resource{
		dstest.IPPool("sentinel-"+tag, "10.250.0.0/16"),
		dstest.NetworkPolicy("prod", "sentinel-"+tag),
		dstest.WorkloadEndpoint("prod", "node-s", "sentinel-"+tag, 999),
	} {
		got, err := b.Create(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, mustKey(got))
	}
	dstest.WaitFor(t, c, "sentinels "+tag, func(c *syncertest.Cache) bool {
		for _, k := range keys {
			if _, ok := c.Get(k); !ok {
				return false
			}
		}
		return c.Status() == datastore.InSync
	})
	var lines []string
	for _, k := range keys {
		lines = append(lines, "New "+k.String())
	}
	return lines
}

func waitPing(t *testing.T, b datastore.Backend, up bool) {
	t.Helper()
	deadline := time.Now().Add(dstest.Timeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := b.Ping(ctx)
		cancel()
		if (err == nil) == up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd up=%v not reached: %v", !up, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// changes makes one of each kind of change (the i-th time: each time to other objects) and returns the
// updates the receiver must get for them.
func changes(t *testing.T, b datastore.Backend, objs []api.Resource, i int) []string {
	tag := fmt.Sprint(i)
	t.Helper()
	ctx := t.Context()
	var want []string
	line := func(typ datastore.UpdateType, o api.Resource) {
		k, _ := datastore.KeyOf(o)
		want = append(want, typ.String()+" "+k.String())
	}
	// New.
	n, err := b.Create(ctx, dstest.WorkloadEndpoint("prod", "node-9", "new-"+tag, 500+i))
	if err != nil {
		t.Fatal(err)
	}
	line(datastore.UpdateNew, n)
	// Modified: fetch first, the receiver's copy may be older.
	cur, err := b.Get(ctx, mustKey(objs[3+i]))
	if err != nil {
		t.Fatal(err)
	}
	cur.SetLabels(map[string]string{"changed": tag})
	m, err := b.Update(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	line(datastore.UpdateModified, m)
	// Deleted.
	if _, err := b.Delete(ctx, mustKey(objs[10+2*i]), ""); err != nil {
		t.Fatal(err)
	}
	line(datastore.UpdateDeleted, objs[10+2*i])
	// Rewritten with the same content: a new revision and nothing to send.
	same, err := b.Get(ctx, mustKey(objs[11+2*i]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, same); err != nil {
		t.Fatal(err)
	}
	return want
}

func mustKey(o api.Resource) datastore.Key {
	k, err := datastore.KeyOf(o)
	if err != nil {
		panic(err)
	}
	return k
}

func wantExactly(t *testing.T, got []datastore.Update, want []string) {
	t.Helper()
	g := dstest.Summary(got)
	w := append([]string(nil), want...)
	slices.Sort(w)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("updates:\n got  %q\n want %q", g, w)
	}
}

// TestEtcdKillRestart: the syncer rides through etcd being SIGKILLed and restarted: with no changes
// (nothing may be sent), with changes after the restart (exactly they are sent), and with changes and a
// compaction made while the syncer could not reach the restarted etcd (a relist, and exactly the
// differences are sent).
func TestEtcdKillRestart(t *testing.T) {
	p := testenv.EtcdProcess(t)
	writer := backendFor(t, p.Endpoints())
	proxy := startProxy(t, p.Endpoints()[0])
	reader := backendFor(t, []string{"http://" + proxy.addr()})
	objs := seed(t, writer)
	counted := dstest.NewFaulty(reader) // injects nothing; counts relists
	c := dstest.StartSyncer(t, counted, realKinds, datastore.WithLogger(testLogger(t)))
	dstest.WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync })
	if c.Len() != len(objs) {
		t.Fatalf("snapshot holds %d objects, want %d", c.Len(), len(objs))
	}

	for round, tc := range []struct {
		name            string
		changesAfter    bool // changes once the syncer can reach etcd again
		changesWhileCut bool // changes and a compaction before the syncer can reach etcd again
	}{
		{name: "no changes"},
		{name: "changes after the restart", changesAfter: true},
		{name: "changes and compaction before the syncer reconnects", changesWhileCut: true},
	} {
		mark, lists := c.Mark(), counted.Lists()
		if tc.changesWhileCut {
			proxy.cut()
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		waitPing(t, reader, false)
		time.Sleep(500 * time.Millisecond) // let the client notice and retry a few times
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		waitPing(t, writer, true)
		var want []string
		if tc.changesWhileCut {
			want = changes(t, writer, objs, round)
			resp, err := writer.Client().Get(t.Context(), "/")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := writer.Client().Compact(t.Context(), resp.Header.Revision); err != nil {
				t.Fatal(err)
			}
			proxy.restore()
		}
		waitPing(t, reader, true)
		if tc.changesAfter {
			want = changes(t, writer, objs, round)
		}
		want = append(want, sentinels(t, writer, c, fmt.Sprintf("r%d", round))...)
		wantExactly(t, c.UpdatesSince(mark), want)
		relists := counted.Lists() - lists
		t.Logf("%s: %d relists, statuses %v", tc.name, relists, c.StatusesSince(mark))
		if st := c.StatusesSince(mark); len(st) > 0 {
			dstest.WantStatusesAroundResync(t, st)
		}
		if tc.changesWhileCut && relists == 0 {
			t.Errorf("%s: no relist, so the compaction went unnoticed", tc.name)
		}
	}
	dstest.WantMatchesList(t, c, writer, realKinds)
	dstest.WantNoProblems(t, c)
}

// TestEtcdCompactionWhileCutOff: the syncer's connection to a real etcd is cut while another client
// writes and compacts past the syncer's watch revision. When the connection comes back the resumed
// watch finds its revision compacted; the syncer relists and sends exactly the differences.
func TestEtcdCompactionWhileCutOff(t *testing.T) {
	p := testenv.EtcdProcess(t)
	writer := backendFor(t, p.Endpoints())
	proxy := startProxy(t, p.Endpoints()[0])
	reader := backendFor(t, []string{"http://" + proxy.addr()})
	objs := seed(t, writer)
	counted := dstest.NewFaulty(reader)
	c := dstest.StartSyncer(t, counted, realKinds, datastore.WithLogger(testLogger(t)))
	dstest.WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync })
	sentinels(t, writer, c, "before")
	mark, lists := c.Mark(), counted.Lists()

	proxy.cut()
	waitPing(t, reader, false)
	want := changes(t, writer, objs, 0)
	// Delete and re-create with the same content: one Modified (new uid), never Deleted then New.
	if _, err := writer.Delete(t.Context(), mustKey(objs[20]), ""); err != nil {
		t.Fatal(err)
	}
	fresh := objs[20].DeepCopyObject().(api.Resource)
	fresh.SetResourceVersion("")
	fresh.SetUID("")
	again, err := writer.Create(t.Context(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, "Modified "+mustKey(again).String())
	rev, err := strconv.ParseInt(again.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Client().Compact(t.Context(), rev); err != nil {
		t.Fatalf("compacting at %d: %v", rev, err)
	}
	proxy.restore()

	want = append(want, sentinels(t, writer, c, "after")...)
	wantExactly(t, c.UpdatesSince(mark), want)
	if counted.Lists() == lists {
		t.Errorf("no relist: the compaction went unnoticed")
	}
	dstest.WantStatusesAroundResync(t, c.StatusesSince(mark))
	dstest.WantMatchesList(t, c, writer, realKinds)
	dstest.WantNoProblems(t, c)
}

// proxy forwards TCP connections to target until cut, which drops every connection and refuses new
// ones until restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func startProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := targetURL
	if _, rest, ok := strings.Cut(targetURL, "://"); ok {
		target = rest
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
