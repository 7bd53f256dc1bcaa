package storage

// This file is the online-history snapshot store: a few opaque blobs,
// one per shard of server/presence/history, overwritten by each save.

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// MaxOnlineHistoryShard bounds shard numbers (they are small: the
// history has 64 shards).
const MaxOnlineHistoryShard = 1 << 16

// OnlineHistoryStore keeps the per-device hourly online history's
// snapshot (server/presence/history) as one blob per shard. It is a
// periodic snapshot, not a durable operator record: a save replaces the
// shard's previous blob, and what was marked after the last save is lost
// on a crash.
type OnlineHistoryStore interface {
	// SaveOnlineHistory replaces shard's blob (0 <= shard <
	// MaxOnlineHistoryShard; an empty blob is stored as empty). It refuses
	// with ErrDiskFull while the disk is below its reserve.
	SaveOnlineHistory(ctx context.Context, shard int, blob []byte) error
	// LoadOnlineHistory calls fn with every stored shard's blob, in shard
	// order; fn must not keep blob after it returns. An error from fn
	// stops the walk and is returned.
	LoadOnlineHistory(ctx context.Context, fn func(shard int, blob []byte) error) error
}

var (
	_ OnlineHistoryStore = (*Badger)(nil)
	_ OnlineHistoryStore = (*Memory)(nil)
)

// ohPrefix holds the snapshot: "oh/" + shard (uint32 big-endian) → blob.
var ohPrefix = []byte("oh/")

func checkHistoryShard(shard int) error {
	if shard < 0 || shard >= MaxOnlineHistoryShard {
		return fmt.Errorf("%w: online history shard %d", ErrInvalid, shard)
	}
	return nil
}

// SaveOnlineHistory replaces the shard's blob.
func (b *Badger) SaveOnlineHistory(ctx context.Context, shard int, blob []byte) error {
	if err := checkHistoryShard(shard); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.enterWrite(); err != nil {
		return err
	}
	defer b.leave()
	key := binary.BigEndian.AppendUint32(append([]byte(nil), ohPrefix...), uint32(shard))
	err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(key, append([]byte(nil), blob...))
	})
	if err != nil {
		return fmt.Errorf("storage: save online history shard %d: %w", shard, err)
	}
	return nil
}

// LoadOnlineHistory calls fn with every stored shard's blob.
func (b *Badger) LoadOnlineHistory(ctx context.Context, fn func(shard int, blob []byte) error) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = ohPrefix
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(ohPrefix)+4 {
				return fmt.Errorf("%w: online history key %q", ErrCorrupt, k)
			}
			shard := int(binary.BigEndian.Uint32(k[len(ohPrefix):]))
			if err := item.Value(func(v []byte) error { return fn(shard, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// SaveOnlineHistory replaces the shard's blob.
func (m *Memory) SaveOnlineHistory(ctx context.Context, shard int, blob []byte) error {
	if err := checkHistoryShard(shard); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.onlineHist == nil {
		m.onlineHist = make(map[int][]byte)
	}
	m.onlineHist[shard] = append([]byte{}, blob...)
	return nil
}

// LoadOnlineHistory calls fn with every stored shard's blob (copies: fn
// runs without the store's lock).
func (m *Memory) LoadOnlineHistory(ctx context.Context, fn func(shard int, blob []byte) error) error {
	if err := m.rlock(); err != nil {
		return err
	}
	blobs := maps.Clone(m.onlineHist)
	m.mu.RUnlock()
	for _, shard := range slices.Sorted(maps.Keys(blobs)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(shard, blobs[shard]); err != nil {
			return err
		}
	}
	return nil
}
