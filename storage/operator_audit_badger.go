package storage

// Badger's OperatorAudit: "op/" + seq (uint64 big-endian) → JSON of the
// record. The next seq is one past the newest key, read in the append's
// own transaction (appends are people's actions, so a seek each is
// cheap), which keeps it right across restarts and restores without a
// counter key.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

var opAuditPrefix = []byte("op/")

func opAuditKey(seq uint64) []byte {
	k := make([]byte, 0, len(opAuditPrefix)+8)
	return binary.BigEndian.AppendUint64(append(k, opAuditPrefix...), seq)
}

// SetOperatorKeep sets how many operator records the store keeps (<= 0:
// DefaultOperatorKeep); the next append deletes the ones beyond it.
func (b *Badger) SetOperatorKeep(n int) {
	b.opMu.Lock()
	b.opKeep = n
	b.opMu.Unlock()
}

// AppendOperator stores rec under the next seq and deletes the records
// beyond the retention, in one transaction, durable before return.
func (b *Badger) AppendOperator(ctx context.Context, rec OperatorRecord) (uint64, error) {
	if err := normalizeOperator(&rec); err != nil {
		return 0, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return 0, err
	}
	defer b.leave()
	b.opMu.Lock()
	defer b.opMu.Unlock()
	keep := uint64(DefaultOperatorKeep)
	if b.opKeep > 0 {
		keep = uint64(b.opKeep)
	}
	var seq uint64
	err := b.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: opAuditPrefix, Reverse: true})
		it.Seek(opAuditKey(math.MaxUint64))
		if it.Valid() {
			seq = binary.BigEndian.Uint64(it.Item().Key()[len(opAuditPrefix):])
		}
		it.Close()
		seq++
		rec.Seq = seq
		v, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		if err := txn.Set(opAuditKey(seq), v); err != nil {
			return err
		}
		if seq <= keep {
			return nil
		}
		// Normally one key (seq-keep); more after the retention shrank,
		// bounded per append so a transaction stays small.
		old := txn.NewIterator(badger.IteratorOptions{Prefix: opAuditPrefix})
		defer old.Close()
		var dead [][]byte
		for old.Rewind(); old.Valid() && len(dead) < pruneAuditChunk; old.Next() {
			k := old.Item().KeyCopy(nil)
			if binary.BigEndian.Uint64(k[len(opAuditPrefix):]) > seq-keep {
				break
			}
			dead = append(dead, k)
		}
		for _, k := range dead {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: append operator record: %w", err)
	}
	return seq, nil
}

// ListOperator walks the records from f.Before down, newest first.
func (b *Badger) ListOperator(ctx context.Context, f OperatorFilter) ([]OperatorRecord, uint64, error) {
	if err := b.enter(); err != nil {
		return nil, 0, err
	}
	defer b.leave()
	limit := listLimit(f.Limit)
	before := f.Before
	if before == 0 {
		before = math.MaxUint64
	}
	var (
		out  []OperatorRecord
		next uint64
	)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: opAuditPrefix, Reverse: true, PrefetchValues: true})
		defer it.Close()
		scanned := 0
		for it.Seek(opAuditKey(before - 1)); it.Valid(); it.Next() {
			k := it.Item().Key()
			seq := binary.BigEndian.Uint64(k[len(opAuditPrefix):])
			if len(out) == limit || scanned == maxOperatorScan {
				next = seq + 1
				return nil
			}
			if scanned++; scanned%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var r OperatorRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("%w: operator record %d: %v", ErrCorrupt, seq, err)
			}
			r.Seq = seq
			if f.matches(&r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("storage: list operator records: %w", err)
	}
	return out, next, nil
}
