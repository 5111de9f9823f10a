package memory_test

import (
	"testing"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/memory"
)

func TestConformance(t *testing.T) {
	dstest.Run(t, func(t *testing.T) datastore.Backend {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
