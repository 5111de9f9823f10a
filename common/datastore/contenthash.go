package datastore

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"reflect"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// contentSeed seeds every content hash of this process; hashes are only compared within it.
var contentSeed = maphash.MakeSeed()

var (
	timeType       = reflect.TypeFor[time.Time]()
	quantityType   = reflect.TypeFor[resource.Quantity]()
	objectMetaType = reflect.TypeFor[metav1.ObjectMeta]()
)

// ignoredMeta marks, by field index, the ObjectMeta fields that change on every write without changing
// meaning (as in SameContent).
var ignoredMeta = func() []bool {
	out := make([]bool, objectMetaType.NumField())
	for i := range out {
		switch objectMetaType.Field(i).Name {
		case "ResourceVersion", "ManagedFields", "Generation":
			out[i] = true
		}
	}
	return out
}()

// contentHash is a 64-bit digest of obj's content under SameContent's equality: two objects of one key
// that SameContent calls equal hash equal (nil and empty collections alike, times as instants, revision
// bookkeeping ignored, map order irrelevant). The converse holds except for a hash collision between
// two versions of the same key (probability 2^-64 per change). It lets the syncer remember what the
// receiver holds without keeping the object.
func contentHash(obj api.Resource) uint64 {
	hs := hasherPool.Get().(*hasher) //nolint:forcetypeassert // the pool holds only *hasher
	hs.depth = 0
	hs.h[0].Reset()
	hs.value(0, reflect.ValueOf(obj))
	sum := hs.h[0].Sum64()
	hasherPool.Put(hs)
	return sum
}

// hasher holds one maphash.Hash per map nesting level, so that hashing allocates nothing per call.
type hasher struct {
	h     []maphash.Hash
	depth int
}

var hasherPool = sync.Pool{New: func() any {
	hs := &hasher{h: make([]maphash.Hash, 1, 4)}
	hs.h[0].SetSeed(contentSeed)
	return hs
}}

// level returns the hash of map nesting level d, reset.
func (hs *hasher) level(d int) *maphash.Hash {
	for len(hs.h) <= d {
		var n maphash.Hash
		n.SetSeed(contentSeed)
		hs.h = append(hs.h, n)
	}
	hs.h[d].Reset()
	return &hs.h[d]
}

func writeUint(h *maphash.Hash, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	_, _ = h.Write(b[:])
}

func (hs *hasher) value(d int, v reflect.Value) {
	h := &hs.h[d]
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			_ = h.WriteByte(0)
			return
		}
		_ = h.WriteByte(1)
		if v.Kind() == reflect.Interface {
			_, _ = h.WriteString(v.Elem().Type().String())
		}
		hs.value(d, v.Elem())
	case reflect.Struct:
		switch v.Type() {
		case timeType:
			if v.CanInterface() {
				t := v.Interface().(time.Time) //nolint:forcetypeassert // checked by type
				writeUint(h, uint64(t.UnixNano()))
				return
			}
		case quantityType:
			if v.CanInterface() {
				q := v.Interface().(resource.Quantity) //nolint:forcetypeassert // checked by type
				_, _ = h.WriteString(q.String())
				return
			}
		}
		meta := v.Type() == objectMetaType
		for i := range v.NumField() {
			if meta && ignoredMeta[i] {
				continue
			}
			hs.value(d, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		writeUint(h, uint64(v.Len()))
		for i := range v.Len() {
			hs.value(d, v.Index(i))
		}
	case reflect.Map:
		writeUint(h, uint64(v.Len()))
		// Order-independent: the sum of each entry's own digest.
		var sum uint64
		it := v.MapRange()
		for it.Next() {
			e := hs.level(d + 1)
			hs.value(d+1, it.Key())
			hs.value(d+1, it.Value())
			sum += e.Sum64()
		}
		h = &hs.h[d] // level may have grown the slice
		writeUint(h, sum)
	case reflect.String:
		writeUint(h, uint64(v.Len()))
		_, _ = h.WriteString(v.String())
	case reflect.Bool:
		if v.Bool() {
			_ = h.WriteByte(1)
		} else {
			_ = h.WriteByte(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writeUint(h, uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		writeUint(h, v.Uint())
	case reflect.Float32, reflect.Float64:
		writeUint(h, math.Float64bits(v.Float()))
	default:
		// Channels, functions and the like do not occur in resources; their presence is enough.
		_, _ = h.WriteString(v.Kind().String())
	}
}
