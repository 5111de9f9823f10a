//go:build linux

package routing

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/startup/mtu"
)

// TestMTUFileFollows: the routing manager owns the pod MTU file while the agent runs. The file follows
// the encapsulation in use, the configured device MTU, the host MTU and the interface pattern as they
// change at runtime; an edited or removed file is repaired on the next resync; and a reconciliation that
// finds the right number leaves the file alone (the same inode). Start-up's initial value (written
// with common/startup/mtu's Calculate for the same inputs) is taken over without a change.
func TestMTUFileFollows(t *testing.T) {
	fh := newFakeHost(t)
	path := filepath.Join(t.TempDir(), "mtu")
	m := newManager(t, fh.h, path)
	base := dpmodel.Config{NodeName: "n1", InterfacePrefixes: []string{"cali"}, VXLANVNI: 4096, VXLANPort: 4789}
	with := func(f func(c *dpmodel.Config)) dpmodel.Config {
		c := base
		f(&c)
		return c
	}
	eth0, err := fh.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// Start-up's initial value for a VXLAN node with a 1500-byte uplink.
	initial := mtu.Compute(1500, mtu.Encap{VXLAN: true})
	if err := mtu.WriteMTUFile(path, initial.Pod); err != nil {
		t.Fatal(err)
	}
	handedOver, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	feed(m, []dpmodel.Update{dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}}})

	steps := []struct {
		name   string
		do     func(t *testing.T)
		want   int
		sameAs bool // the file must not have been replaced
	}{
		{"VXLAN in use, as start-up computed it", func(*testing.T) {
			m.OnUpdate(dpmodel.ConfigUpdate{Config: with(func(c *dpmodel.Config) { c.VXLANEnabled = true })})
		}, 1450, true},
		{"the pools switch to IPIP", func(*testing.T) {
			m.OnUpdate(dpmodel.ConfigUpdate{Config: with(func(c *dpmodel.Config) { c.IPIPEnabled = true })})
		}, 1480, false},
		{"no encapsulation", func(*testing.T) {
			m.OnUpdate(dpmodel.ConfigUpdate{Config: base})
		}, 1500, false},
		{"vxlanMTU configured", func(*testing.T) {
			m.OnUpdate(dpmodel.ConfigUpdate{Config: with(func(c *dpmodel.Config) { c.VXLANEnabled, c.VXLANMTU = true, 1400 })})
		}, 1400, false},
		{"the uplink's MTU grows (seen on resync)", func(t *testing.T) {
			m.OnUpdate(dpmodel.ConfigUpdate{Config: with(func(c *dpmodel.Config) { c.VXLANEnabled = true })})
			if err := fh.h.LinkSetMTU(eth0.Index, 9000); err != nil {
				t.Fatal(err)
			}
			m.QueueResync()
		}, 8950, false},
		{"resync with nothing changed", func(*testing.T) { m.QueueResync() }, 8950, true},
		{"the file edited by hand is repaired", func(t *testing.T) {
			if err := os.WriteFile(path, []byte("1234"), 0o644); err != nil {
				t.Fatal(err)
			}
			m.QueueResync()
		}, 8950, false},
		{"the file removed is written again", func(t *testing.T) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			m.QueueResync()
		}, 8950, false},
	}
	prev := handedOver
	for _, st := range steps {
		st.do(t)
		if err := m.Apply(t.Context()); err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		got, err := mtu.ReadMTUFile(path)
		if err != nil || got != st.want {
			t.Errorf("%s: MTU file = %d, %v; want %d", st.name, got, err, st.want)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.sameAs && !os.SameFile(prev, fi) {
			t.Errorf("%s: the file was rewritten although it held %d", st.name, st.want)
		}
		prev = fi
	}

	// With an interface pattern that matches no up link (FELIX_MTUIFACEPATTERN, passed by the agent),
	// the host MTU is the fallback, as start-up assumes with the same pattern.
	path2 := filepath.Join(t.TempDir(), "mtu")
	m2, err := New(Options{Handle: fh.h, Local: local, MTUFile: path2, MTUIfacePattern: regexp.MustCompile(`^bond`)})
	if err != nil {
		t.Fatal(err)
	}
	feed(m2, []dpmodel.Update{dpmodel.HostUpdate{Node: "n1", Host: dpmodel.Host{IPv4: pfx("10.0.0.1/24")}}, dpmodel.ConfigUpdate{Config: base}})
	if err := m2.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := mtu.ReadMTUFile(path2); err != nil || got != mtu.FallbackHostMTU {
		t.Errorf("pattern ^bond: MTU file = %d, %v; want the fallback %d", got, err, mtu.FallbackHostMTU)
	}
}
