package etcd

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

// The Backend's operations on IPAM kinds, stored in Calico's IPAM layout (ipam.go). They keep the
// Backend's contract: revisions are ModRevisions, Create and conditional Update/Delete are
// transactions on them, List reads one revision, Watch covers the kind's key range. What Calico's model
// has no room for is not stored: metadata (labels, annotations, uid, creationTimestamp) and a block's
// strictAffinity.

// decodeIPAM reads a stored IPAM value at its full etcd key.
func (b *Backend) decodeIPAM(kv *mvccpb.KeyValue, key datastore.Key, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	obj, err := c.decode(strings.TrimPrefix(string(kv.Key), b.ipamRoot), kv.Value)
	if err != nil {
		return nil, fmt.Errorf("decoding %s from etcd key %s: %w", key, kv.Key, err)
	}
	objutil.SetTypeMeta(obj, info)
	obj.SetResourceVersion(formatRev(kv.ModRevision))
	return obj, nil
}

// findIPAM returns the stored key-value of the object called key.Name, or nil when there is none. A
// name with a single reading is one Get; several readings are read in one transaction; shortened
// names scan the keys under their host prefix.
func (b *Backend) findIPAM(ctx context.Context, key datastore.Key, c ipamCodec) (*mvccpb.KeyValue, error) {
	paths, scan := c.lookup(key.Name)
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	var kvs []*mvccpb.KeyValue
	switch {
	case len(paths) == 1 && len(scan) == 0:
		resp, err := b.cli.Get(ctx, b.ipamRoot+paths[0])
		if err != nil {
			return nil, err
		}
		kvs = resp.Kvs
	case len(paths) > 0:
		ops := make([]clientv3.Op, len(paths))
		for i, p := range paths {
			ops[i] = clientv3.OpGet(b.ipamRoot + p)
		}
		resp, err := b.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			kvs = append(kvs, r.GetResponseRange().Kvs...)
		}
	}
	for _, kv := range kvs {
		if name, ok := c.nameOf(strings.TrimPrefix(string(kv.Key), b.ipamRoot)); ok && name == key.Name {
			return kv, nil
		}
	}
	for _, prefix := range scan {
		resp, err := b.cli.Get(ctx, b.ipamRoot+prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			if name, ok := c.nameOf(strings.TrimPrefix(string(kv.Key), b.ipamRoot)); ok && name == key.Name {
				got, err := b.cli.Get(ctx, string(kv.Key))
				if err != nil {
					return nil, err
				}
				if len(got.Kvs) > 0 {
					return got.Kvs[0], nil
				}
			}
		}
	}
	return nil, nil
}

func (b *Backend) getIPAM(ctx context.Context, key datastore.Key, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	kv, err := b.findIPAM(ctx, key, c)
	if err != nil {
		return nil, fmt.Errorf("getting %s from etcd: %w", key, err)
	}
	if kv == nil {
		return nil, fmt.Errorf("getting %s from etcd: %w", key, datastore.ErrNotFound)
	}
	return b.decodeIPAM(kv, key, info, c)
}

// storedIPAM is what a write returns: the object as it now reads back (what Calico's model holds).
func (b *Backend) storedIPAM(path string, val []byte, rev int64, key datastore.Key, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	return b.decodeIPAM(&mvccpb.KeyValue{Key: []byte(b.ipamRoot + path), Value: val, ModRevision: rev}, key, info, c)
}

func (b *Backend) createIPAM(ctx context.Context, obj api.Resource, key datastore.Key, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	path, err := ipamPath(c, obj, info)
	if err != nil {
		return nil, fmt.Errorf("creating in etcd: %w", err)
	}
	val, err := c.encode(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for etcd: %w", key, err)
	}
	full := b.ipamRoot + path
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	resp, err := b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(full), "=", 0)).
		Then(clientv3.OpPut(full, string(val))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("creating %s in etcd: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("creating %s in etcd: %w", key, datastore.ErrAlreadyExists)
	}
	return b.storedIPAM(path, val, resp.Header.Revision, key, info, c)
}

func (b *Backend) updateIPAM(ctx context.Context, obj api.Resource, key datastore.Key, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	path, err := ipamPath(c, obj, info)
	if err != nil {
		return nil, fmt.Errorf("updating in etcd: %w", err)
	}
	var want int64
	conditional := obj.GetResourceVersion() != ""
	if conditional {
		if want, err = parseRev(obj.GetResourceVersion()); err != nil {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, err)
		}
	}
	val, err := c.encode(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for etcd: %w", key, err)
	}
	full := b.ipamRoot + path
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	for range maxUnconditionalRetries {
		casRev := want
		if !conditional {
			resp, err := b.cli.Get(ctx, full, clientv3.WithKeysOnly())
			if err != nil {
				return nil, fmt.Errorf("updating %s in etcd: reading it: %w", key, err)
			}
			if len(resp.Kvs) == 0 {
				return nil, fmt.Errorf("updating %s in etcd: %w", key, datastore.ErrNotFound)
			}
			casRev = resp.Kvs[0].ModRevision
		}
		resp, err := b.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(full), "=", casRev)).
			Then(clientv3.OpPut(full, string(val))).
			Else(clientv3.OpGet(full, clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, err)
		}
		if resp.Succeeded {
			return b.storedIPAM(path, val, resp.Header.Revision, key, info, c)
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, fmt.Errorf("updating %s in etcd: %w", key, datastore.ErrNotFound)
		}
		if conditional {
			return nil, fmt.Errorf("updating %s at revision %d in etcd (stored: %d): %w", key, want, kvs[0].ModRevision, datastore.ErrConflict)
		}
	}
	return nil, fmt.Errorf("updating %s in etcd: still racing other writers after %d attempts: %w", key, maxUnconditionalRetries, datastore.ErrConflict)
}

func (b *Backend) deleteIPAM(ctx context.Context, key datastore.Key, revision string, info api.KindInfo, c ipamCodec) (api.Resource, error) {
	var want int64
	if revision != "" {
		var err error
		if want, err = parseRev(revision); err != nil {
			return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
		}
	}
	kv, err := b.findIPAM(ctx, key, c)
	if err != nil {
		return nil, fmt.Errorf("deleting %s from etcd: %w", key, err)
	}
	if kv == nil {
		return nil, fmt.Errorf("deleting %s from etcd: %w", key, datastore.ErrNotFound)
	}
	full := string(kv.Key)
	cmp := clientv3.Compare(clientv3.ModRevision(full), "=", want)
	if revision == "" {
		cmp = clientv3.Compare(clientv3.CreateRevision(full), ">", 0)
	}
	ctx, cancel := b.reqCtx(ctx)
	defer cancel()
	resp, err := b.cli.Txn(ctx).
		If(cmp).
		Then(clientv3.OpDelete(full, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(full, clientv3.WithKeysOnly())).
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
	prev := resp.Responses[0].GetResponseDeleteRange().PrevKvs
	if len(prev) == 0 {
		return nil, fmt.Errorf("deleting %s from etcd: %w", key, datastore.ErrNotFound)
	}
	obj, err := b.decodeIPAM(prev[0], key, info, c)
	if err != nil {
		b.log.Warn("deleted an etcd value that does not decode", "etcd_key", full, "error", err)
		obj = info.New()
		obj.SetName(key.Name)
		obj.SetResourceVersion(formatRev(prev[0].ModRevision))
	}
	return obj, nil
}

// ipamKeyOf parses a full etcd key of an IPAM kind.
func (b *Backend) ipamKeyOf(path string, info api.KindInfo, c ipamCodec) (datastore.Key, bool) {
	rel, ok := strings.CutPrefix(path, b.ipamRoot)
	if !ok {
		return datastore.Key{}, false
	}
	name, ok := c.nameOf(rel)
	if !ok {
		return datastore.Key{}, false
	}
	return datastore.Key{Kind: info.Kind, Name: name}, true
}
