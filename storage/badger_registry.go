package storage

// This file is Badger's half of the Registry: device records under
// devPrefix, read-merged-written under Badger.mu.

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// devKey returns the Badger key of a device record.
func devKey(id string) []byte {
	k := make([]byte, 0, len(devPrefix)+len(id))
	return append(append(k, devPrefix...), id...)
}

// getDevice reads id's record in txn; exists is false when there is none.
func getDevice(txn *badger.Txn, id string) (d Device, exists bool, err error) {
	item, err := txn.Get(devKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Device{ID: id}, false, nil
	}
	if err != nil {
		return Device{}, false, err
	}
	err = item.Value(func(v []byte) error {
		d, err = decodeDevice(id, v)
		return err
	})
	return d, err == nil, err
}

// Get returns the device's record or ErrNotFound.
func (b *Badger) Get(ctx context.Context, id string) (Device, error) {
	if err := b.enter(); err != nil {
		return Device{}, err
	}
	defer b.leave()
	var (
		d      Device
		exists bool
	)
	err := b.db.View(func(txn *badger.Txn) (err error) {
		d, exists, err = getDevice(txn, id)
		return err
	})
	if err != nil {
		return Device{}, fmt.Errorf("storage: get %q: %w", id, err)
	}
	if !exists {
		return Device{}, ErrNotFound
	}
	return d, nil
}

// List returns a page of devices ordered by id.
func (b *Badger) List(ctx context.Context, opt ListOptions) ([]Device, string, error) {
	if err := b.enter(); err != nil {
		return nil, "", err
	}
	defer b.leave()
	limit := listLimit(opt.Limit)
	seek := devPrefix
	if opt.Cursor != "" {
		// The smallest key strictly greater than the cursor's.
		seek = append(devKey(opt.Cursor), 0)
	}
	var (
		devs []Device
		more bool
	)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			Prefix:         devPrefix,
			PrefetchValues: true,
			PrefetchSize:   min(limit+1, badger.DefaultIteratorOptions.PrefetchSize),
		})
		defer it.Close()
		n := 0
		for it.Seek(seek); it.Valid() && !more; it.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			err := item.Value(func(v []byte) error {
				if opt.Online != nil {
					on, err := deviceOnline(v)
					if err != nil || on != *opt.Online {
						return err
					}
				}
				if len(devs) == limit {
					more = true // one more match exists past a full page
					return nil
				}
				d, err := decodeDevice(string(item.Key()[len(devPrefix):]), v)
				if err == nil {
					devs = append(devs, d)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("storage: list: %w", err)
	}
	if more {
		return devs, devs[len(devs)-1].ID, nil
	}
	return devs, "", nil
}

// ApplyPresence applies presence updates in order, in chunks of
// presenceChunk written with one WriteBatch each. The batch is validated
// first, so an invalid update fails it before anything is written. It
// returns once the writes are in the write-ahead log, so a completed call
// survives kill -9 even though presence is written behind.
func (b *Badger) ApplyPresence(ctx context.Context, batch []PresenceUpdate) error {
	if err := checkBatch(batch); err != nil {
		return err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	// No ctx check between chunks: a batch once started is finished unless
	// Badger fails, so a retry rarely replays a half-applied batch.
	for start := 0; start < len(batch); start += presenceChunk {
		if err := b.applyChunk(batch[start:min(start+presenceChunk, len(batch))]); err != nil {
			return fmt.Errorf("storage: apply presence: %w", err)
		}
	}
	return nil
}

// pendingRecord is a device record being merged by applyChunk.
type pendingRecord struct {
	d      Device
	exists bool
	dirty  bool
}

// applyChunk reads, merges and writes the records one chunk touches.
// The records are one slice and their keys and values one growing
// buffer, so a chunk of 1,024 devices allocates a few times rather than
// a few times per device (a connect storm of new devices is all chunks).
// WriteBatch.Set keeps the slices it is given until the flush: a value
// is never written over once handed to it, and a buffer outgrown stays
// alive for the slices into it.
func (b *Badger) applyChunk(chunk []PresenceUpdate) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx := make(map[string]int, len(chunk))
	recs := make([]pendingRecord, 0, len(chunk))
	err := b.db.View(func(txn *badger.Txn) error {
		for i := range chunk {
			id := chunk[i].ID
			if _, ok := idx[id]; ok {
				continue
			}
			d, exists, err := getDevice(txn, id)
			if err != nil {
				return err
			}
			idx[id] = len(recs)
			recs = append(recs, pendingRecord{d: d, exists: exists})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range chunk {
		r := &recs[idx[chunk[i].ID]]
		if applyPresence(&r.d, r.exists, &chunk[i]) {
			r.exists, r.dirty = true, true
		}
	}
	// WriteBatch commits in as many transactions as ErrTxnTooBig demands.
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	buf := make([]byte, 0, len(recs)*128)
	for i := range recs {
		r := &recs[i]
		if !r.dirty {
			continue
		}
		start := len(buf)
		buf = append(append(buf, devPrefix...), r.d.ID...)
		key := buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = encodeDevice(buf, &r.d)
		if err := wb.Set(key, buf[start:len(buf):len(buf)]); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// updateDevice runs a durable read-modify-write of one device record in
// a normal transaction, creating the record when absent. Without
// SyncWrites the write survives kill -9 (it is in the OS page cache once
// the commit returns) but not power loss; with it Badger fsyncs first.
func (b *Badger) updateDevice(id string, modify func(d *Device)) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := b.enterWrite(); err != nil {
		return err
	}
	defer b.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.db.Update(func(txn *badger.Txn) error {
		d, _, err := getDevice(txn, id)
		if err != nil {
			return err
		}
		modify(&d)
		return txn.Set(devKey(id), encodeDevice(nil, &d))
	})
}

// SetKey stores or (with an empty key) clears the device's key, durable
// before return (see updateDevice for what durable means).
func (b *Badger) SetKey(ctx context.Context, id string, key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	key = cloneBytes(key)
	if len(key) == 0 {
		key = nil
	}
	if err := b.updateDevice(id, func(d *Device) { d.Key = key }); err != nil {
		return fmt.Errorf("storage: set key %q: %w", id, err)
	}
	return nil
}

// SetBlocked stores the device's blocked flag, durable before return.
func (b *Badger) SetBlocked(ctx context.Context, id string, blocked bool) error {
	if err := b.updateDevice(id, func(d *Device) { d.Blocked = blocked }); err != nil {
		return fmt.Errorf("storage: set blocked %q: %w", id, err)
	}
	return nil
}

// scanDevices calls fn with every device record in id order inside one
// read transaction. v is only valid during the call.
func (b *Badger) scanDevices(ctx context.Context, fn func(id string, v []byte) error) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			Prefix:         devPrefix,
			PrefetchValues: true,
			PrefetchSize:   badger.DefaultIteratorOptions.PrefetchSize,
		})
		defer it.Close()
		n := 0
		for it.Seek(devPrefix); it.Valid(); it.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			err := item.Value(func(v []byte) error {
				return fn(string(item.Key()[len(devPrefix):]), v)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Credentials calls fn for every keyed or blocked device in id order.
func (b *Badger) Credentials(ctx context.Context, fn func(id string, key []byte, blocked bool) error) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.scanDevices(ctx, func(id string, v []byte) error {
		d, err := decodeDevice(id, v)
		if err != nil {
			return err
		}
		if d.Key == nil && !d.Blocked {
			return nil
		}
		return fn(id, d.Key, d.Blocked)
	})
}

// MarkOnlineOffline turns every device persisted Online offline.
func (b *Badger) MarkOnlineOffline(ctx context.Context, reason string, at int64) (int, error) {
	if err := b.enterWrite(); err != nil {
		return 0, err
	}
	defer b.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	err := b.scanDevices(ctx, func(id string, v []byte) error {
		if on, err := deviceOnline(v); err != nil || !on {
			return err
		}
		d, err := decodeDevice(id, v)
		if err != nil {
			return err
		}
		d.Online = false
		d.LastOffline = at
		d.OfflineReason = reason
		n++
		return wb.Set(devKey(id), encodeDevice(nil, &d))
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("storage: mark online offline: %w", err)
	}
	return n, nil
}
