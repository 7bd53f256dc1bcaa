package storage

// This file is Badger's Groups (key layout in groups.go).

import (
	"bytes"
	"context"
	"encoding/binary"

	"github.com/dgraph-io/badger/v4"
)

var (
	groupPrefix     = []byte("gg/")
	groupDevPrefix  = []byte("gd/")
	groupIdemPrefix = []byte("gi/")
)

func groupKey(id string) []byte    { return append(bytes.Clone(groupPrefix), id...) }
func groupDevKey(id string) []byte { return append(bytes.Clone(groupDevPrefix), id...) }
func groupIdemKey(dev string, rid uint64) []byte {
	k := append(bytes.Clone(groupIdemPrefix), dev...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, rid)
}

// ApplyGroups commits w in one transaction.
func (b *Badger) ApplyGroups(ctx context.Context, w GroupWrite) error {
	if err := checkGroupWrite(w); err != nil {
		return err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	return b.db.Update(func(txn *badger.Txn) error {
		set := func(k []byte, v any) error {
			val, err := encodeGroupValue(v)
			if err != nil {
				return err
			}
			return txn.Set(k, val)
		}
		for _, g := range w.PutGroups {
			if err := set(groupKey(g.ID), g); err != nil {
				return err
			}
		}
		for _, id := range w.DeleteGroups {
			if err := txn.Delete(groupKey(id)); err != nil {
				return err
			}
		}
		for _, d := range w.Devices {
			if err := set(groupDevKey(d.DeviceID), d); err != nil {
				return err
			}
		}
		for _, e := range w.Idem {
			if err := set(groupIdemKey(e.DeviceID, e.RequestID), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanGroups decodes every value under prefix into a new T and hands it to fn.
func scanGroups[T any](txn *badger.Txn, prefix []byte, fn func(T) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return decodeGroupValue(b, &v) }); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// LoadGroups returns every group and device record.
func (b *Badger) LoadGroups(ctx context.Context) (gs []Group, ds []DeviceGroups, err error) {
	if err := b.enter(); err != nil {
		return nil, nil, err
	}
	defer b.leave()
	err = b.db.View(func(txn *badger.Txn) error {
		if err := scanGroups(txn, groupPrefix, func(g Group) error { gs = append(gs, g); return ctx.Err() }); err != nil {
			return err
		}
		return scanGroups(txn, groupDevPrefix, func(d DeviceGroups) error { ds = append(ds, d); return ctx.Err() })
	})
	return gs, ds, err
}

// LoadGroupIdem returns the remembered answers at or after sinceMs.
func (b *Badger) LoadGroupIdem(ctx context.Context, sinceMs int64) (out []GroupIdem, err error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	err = b.db.View(func(txn *badger.Txn) error {
		return scanGroups(txn, groupIdemPrefix, func(e GroupIdem) error {
			if e.AtMs >= sinceMs {
				out = append(out, e)
			}
			return ctx.Err()
		})
	})
	return out, err
}

// PruneGroupIdem deletes the answers older than beforeMs.
func (b *Badger) PruneGroupIdem(ctx context.Context, beforeMs int64) (int, error) {
	var old [][]byte
	if err := b.enter(); err != nil {
		return 0, err
	}
	err := b.db.View(func(txn *badger.Txn) error {
		return scanGroups(txn, groupIdemPrefix, func(e GroupIdem) error {
			if e.AtMs < beforeMs {
				old = append(old, groupIdemKey(e.DeviceID, e.RequestID))
			}
			return ctx.Err()
		})
	})
	b.leave()
	if err != nil || len(old) == 0 {
		return 0, err
	}
	if err := b.enterWrite(); err != nil {
		return 0, err
	}
	defer b.leave()
	n := 0
	for len(old) > 0 {
		chunk := old[:min(len(old), MaxGroupBatch)]
		old = old[len(chunk):]
		if err := b.db.Update(func(txn *badger.Txn) error {
			for _, k := range chunk {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}
