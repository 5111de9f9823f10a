package syncertest_test

import (
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
)

func upd(typ datastore.UpdateType, o api.Resource, rev string) datastore.Update {
	k, _ := datastore.KeyOf(o)
	u := datastore.Update{Type: typ, Key: k, Revision: rev}
	if typ != datastore.UpdateDeleted {
		c := o.DeepCopyObject().(api.Resource)
		c.SetResourceVersion(rev)
		u.Value = c
	}
	return u
}

func TestCacheAppliesAndCompares(t *testing.T) {
	a, b := dstest.IPPool("a", "10.1.0.0/16"), dstest.IPPool("b", "10.2.0.0/16")
	c := syncertest.New()
	c.OnStatusUpdated(datastore.ResyncInProgress)
	c.OnUpdates([]datastore.Update{upd(datastore.UpdateNew, a, "1"), upd(datastore.UpdateNew, b, "2")})
	c.OnStatusUpdated(datastore.InSync)
	b2 := b.DeepCopy()
	b2.Spec.NATOutgoing = false
	c.OnUpdates([]datastore.Update{upd(datastore.UpdateModified, b2, "3"), upd(datastore.UpdateDeleted, a, "4")})
	if p := c.Problems(); len(p) != 0 {
		t.Errorf("problems in a valid stream: %q", p)
	}
	if d := c.Diff([]api.Resource{b2}); d != "" {
		t.Errorf("Diff: %s", d)
	}
	if d := c.Diff([]api.Resource{b}); !strings.Contains(d, "differs") {
		t.Errorf("Diff against stale content = %q, want a difference", d)
	}
	if d := c.Diff([]api.Resource{a, b2}); !strings.Contains(d, `IPPool "a": wanted but not held`) {
		t.Errorf("Diff with a missing object = %q", d)
	}
}

func TestCacheFindsBrokenPromises(t *testing.T) {
	a, b := dstest.IPPool("a", "10.1.0.0/16"), dstest.IPPool("b", "10.2.0.0/16")
	c := syncertest.New()
	c.OnUpdates([]datastore.Update{upd(datastore.UpdateNew, a, "1")}) // before any status
	c.OnStatusUpdated(datastore.InSync)
	c.OnStatusUpdated(datastore.InSync)
	c.OnUpdates(nil)
	c.OnUpdates([]datastore.Update{
		upd(datastore.UpdateNew, a, "2"),
		upd(datastore.UpdateModified, b, "3"),
		upd(datastore.UpdateDeleted, dstest.IPPool("c", "10.3.0.0/16"), "4"),
		upd(datastore.UpdateModified, a, "5"), // content unchanged
	})
	c.OnStatusUpdated(datastore.ResyncInProgress)
	c.OnUpdates([]datastore.Update{upd(datastore.UpdateDeleted, a, "6")})
	c.OnUpdates([]datastore.Update{upd(datastore.UpdateNew, a, "7")})
	got := strings.Join(c.Problems(), "\n")
	for _, want := range []string{
		"updates before any status",
		"status InSync sent twice",
		"empty batch",
		`New IPPool "a", which is already held`,
		`Modified IPPool "b", which is not held`,
		`Deleted IPPool "c", which is not held`,
		`Modified IPPool "a" changes nothing`,
		`spurious delete/re-add`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q; got:\n%s", want, got)
		}
	}
}
