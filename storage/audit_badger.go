package storage

// This file is Badger's Audit: records under auditPrefix keyed by seq,
// with index keys under auditDevPrefix, auditSvcPrefix and
// auditReqPrefix (see the key layout in badger.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// pruneAuditChunk is how many records PruneAudit deletes per WriteBatch
// and per hold of auditMu, so appends interleave with a long prune.
const pruneAuditChunk = 512

// auditKey returns the key of the record with seq.
func auditKey(seq uint64) []byte {
	k := make([]byte, 0, len(auditPrefix)+8)
	return binary.BigEndian.AppendUint64(append(k, auditPrefix...), seq)
}

// auditIndexPrefix returns prefix + name + NUL, the prefix of name's
// index keys.
func auditIndexPrefix(prefix []byte, name string) []byte {
	k := make([]byte, 0, len(prefix)+len(name)+1+8)
	k = append(k, prefix...)
	k = append(k, name...)
	return append(k, 0)
}

// auditIndexKey returns prefix + name + NUL + n (big-endian).
func auditIndexKey(prefix []byte, name string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(auditIndexPrefix(prefix, name), n)
}

// auditSeqValue decodes a stored uint64 seq (the counter, an "ar/" value).
func auditSeqValue(what string, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %s of %d bytes", ErrCorrupt, what, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// getAuditSeqValue reads a uint64 seq stored under key; found is false
// when there is none.
func getAuditSeqValue(txn *badger.Txn, key []byte, what string) (seq uint64, found bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	err = item.Value(func(v []byte) (err error) {
		seq, err = auditSeqValue(what, v)
		return err
	})
	return seq, err == nil, err
}

// getAudit reads the record with seq; found is false when there is none.
func getAudit(txn *badger.Txn, seq uint64) (r AuditRecord, found bool, err error) {
	item, err := txn.Get(auditKey(seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return AuditRecord{}, false, nil
	}
	if err != nil {
		return AuditRecord{}, false, err
	}
	err = item.Value(func(v []byte) (err error) {
		r, err = decodeAudit(seq, v)
		return err
	})
	return r, err == nil, err
}

// lastAuditSeq returns the last seq assigned: the largest of the counter
// key, the newest stored record (read once per open or Restore) and what
// this process assigned. The caller holds auditMu.
func (b *Badger) lastAuditSeq(txn *badger.Txn) (uint64, error) {
	if !b.auditSeqLoaded {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: auditPrefix, Reverse: true})
		it.Seek(auditKey(math.MaxUint64))
		if it.Valid() {
			if k := it.Item().Key(); len(k) == len(auditPrefix)+8 {
				b.auditSeq = max(b.auditSeq, binary.BigEndian.Uint64(k[len(auditPrefix):]))
			}
		}
		it.Close()
		b.auditSeqLoaded = true
	}
	counter, _, err := getAuditSeqValue(txn, keyAuditSeq, "audit seq counter")
	if err != nil {
		return 0, err
	}
	return max(b.auditSeq, counter), nil
}

// AppendAudit stores rec under the next seq together with its index keys
// and the seq counter in one transaction, durable before return (see
// updateDevice for what durable means).
func (b *Badger) AppendAudit(ctx context.Context, rec AuditRecord) (uint64, error) {
	if err := normalizeAudit(&rec); err != nil {
		return 0, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return 0, err
	}
	defer b.leave()
	b.auditMu.Lock()
	defer b.auditMu.Unlock()
	var seq uint64
	err := b.db.Update(func(txn *badger.Txn) (err error) {
		seq, err = b.appendAuditTxn(txn, &rec)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: append audit: %w", err)
	}
	b.auditSeq = seq
	return seq, nil
}

// auditRefIndexKey is the "ac/" key of a refusal key.
func auditRefIndexKey(k auditRefKey) []byte {
	key := make([]byte, 0, len(auditRefPrefix)+len(k.device)+len(k.service)+len(k.op)+4)
	key = append(append(key, auditRefPrefix...), k.device...)
	key = append(append(key, 0), k.service...)
	key = append(append(key, 0), k.op...)
	return append(key, 0, k.status)
}

// AppendRefusal stores rec as a refusal: in one transaction it either
// rewrites the newest refusal record of rec's key with a larger Count or
// appends rec with its index keys and its "ac/" key.
func (b *Badger) AppendRefusal(ctx context.Context, rec AuditRecord, window int64) (uint64, bool, error) {
	asRefusal(&rec)
	if err := normalizeAudit(&rec); err != nil {
		return 0, false, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return 0, false, err
	}
	defer b.leave()
	b.auditMu.Lock()
	defer b.auditMu.Unlock()
	var (
		seq       uint64
		coalesced bool
		appended  bool
	)
	refKey := auditRefIndexKey(refKeyOf(&rec))
	err := b.db.Update(func(txn *badger.Txn) error {
		prev, ok, err := getAuditSeqValue(txn, refKey, "audit refusal index")
		if err != nil {
			return err
		}
		if ok {
			r, found, err := getAudit(txn, prev)
			if err != nil {
				return err
			}
			if found && coalesces(&r, rec.At, window) {
				r.Count++
				r.LastAt = max(r.LastAt, rec.At)
				v, err := encodeAudit(&r)
				if err != nil {
					return err
				}
				seq, coalesced = prev, true
				return txn.Set(auditKey(prev), v)
			}
		}
		if seq, err = b.appendAuditTxn(txn, &rec); err != nil {
			return err
		}
		appended = true
		return txn.Set(refKey, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return 0, false, fmt.Errorf("storage: append refusal: %w", err)
	}
	if appended {
		b.auditSeq = seq
	}
	return seq, coalesced, nil
}

// appendAuditTxn writes rec under the next seq with its index keys and
// the seq counter in txn. The caller holds auditMu and sets b.auditSeq
// once txn has committed.
func (b *Badger) appendAuditTxn(txn *badger.Txn, rec *AuditRecord) (uint64, error) {
	last, err := b.lastAuditSeq(txn)
	if err != nil {
		return 0, err
	}
	if last == math.MaxUint64 {
		return 0, errors.New("audit seq exhausted")
	}
	seq := last + 1
	rec.Seq = seq
	v, err := encodeAudit(rec)
	if err != nil {
		return 0, err
	}
	if err := txn.Set(auditKey(seq), v); err != nil {
		return 0, err
	}
	if rec.DeviceID != "" {
		if err := txn.Set(auditIndexKey(auditDevPrefix, rec.DeviceID, seq), nil); err != nil {
			return 0, err
		}
	}
	if err := txn.Set(auditIndexKey(auditSvcPrefix, rec.Service, seq), nil); err != nil {
		return 0, err
	}
	if rec.HasRequestID && !rec.Repeat {
		k := auditIndexKey(auditReqPrefix, rec.DeviceID, rec.RequestID)
		if err := txn.Set(k, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return 0, err
		}
	}
	return seq, txn.Set(keyAuditSeq, binary.BigEndian.AppendUint64(nil, seq))
}

// ListAudit returns records matching f, newest first. With a device or
// service filter it walks that index (the device's when both are set,
// checking the service on each record) instead of every record.
func (b *Badger) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	if err := b.enterCtx(ctx); err != nil {
		return nil, err
	}
	defer b.leave()
	recs := []AuditRecord{}
	if !auditNameMatchable(f.DeviceID, MaxIDLen) || !auditNameMatchable(f.Service, MaxAuditService) || f.Before == 1 {
		return recs, nil // nothing can match
	}
	limit := listLimit(f.Limit)
	// Reverse iteration starts at the largest key <= the seek key.
	from := uint64(math.MaxUint64)
	if f.Before != 0 {
		from = f.Before - 1
	}
	err := b.db.View(func(txn *badger.Txn) error {
		switch {
		case f.DeviceID != "":
			return scanAuditIndex(ctx, txn, auditIndexPrefix(auditDevPrefix, f.DeviceID), from, func(r *AuditRecord) bool {
				if f.Service != "" && r.Service != f.Service {
					return true
				}
				recs = append(recs, *r)
				return len(recs) < limit
			})
		case f.Service != "":
			return scanAuditIndex(ctx, txn, auditIndexPrefix(auditSvcPrefix, f.Service), from, func(r *AuditRecord) bool {
				recs = append(recs, *r)
				return len(recs) < limit
			})
		}
		it := txn.NewIterator(badger.IteratorOptions{
			Prefix:         auditPrefix,
			Reverse:        true,
			PrefetchValues: true,
			PrefetchSize:   min(limit, badger.DefaultIteratorOptions.PrefetchSize),
		})
		defer it.Close()
		n := 0
		for it.Seek(auditKey(from)); it.Valid() && len(recs) < limit; it.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(auditPrefix)+8 {
				return fmt.Errorf("%w: audit key of %d bytes", ErrCorrupt, len(k))
			}
			err := item.Value(func(v []byte) error {
				r, err := decodeAudit(binary.BigEndian.Uint64(k[len(auditPrefix):]), v)
				if err == nil {
					recs = append(recs, r)
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
		return nil, fmt.Errorf("storage: list audit: %w", err)
	}
	return recs, nil
}

// scanAuditIndex walks the index keys under prefix (prefix + seq) from
// seq from down, calling fn with each record they point at until fn
// returns false. Index keys whose record is gone (an interrupted prune)
// are skipped.
func scanAuditIndex(ctx context.Context, txn *badger.Txn, prefix []byte, from uint64, fn func(r *AuditRecord) bool) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()
	n := 0
	for it.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), from)); it.Valid(); it.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := it.Item().Key()
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("%w: audit index key of %d bytes", ErrCorrupt, len(k))
		}
		r, found, err := getAudit(txn, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return err
		}
		if found && !fn(&r) {
			return nil
		}
	}
	return nil
}

// AuditByRequest returns the record the (deviceID, requestID) index key
// points at, when its At >= since.
func (b *Badger) AuditByRequest(ctx context.Context, deviceID string, requestID uint64, since int64) (AuditRecord, error) {
	if err := b.enterCtx(ctx); err != nil {
		return AuditRecord{}, err
	}
	defer b.leave()
	if !auditNameMatchable(deviceID, MaxIDLen) {
		return AuditRecord{}, ErrNotFound
	}
	var (
		r     AuditRecord
		found bool
	)
	err := b.db.View(func(txn *badger.Txn) error {
		seq, ok, err := getAuditSeqValue(txn, auditIndexKey(auditReqPrefix, deviceID, requestID), "audit request index")
		if err != nil || !ok {
			return err
		}
		r, found, err = getAudit(txn, seq)
		return err
	})
	if err != nil {
		return AuditRecord{}, fmt.Errorf("storage: audit by request %q/%d: %w", deviceID, requestID, err)
	}
	if !found || r.At < since {
		return AuditRecord{}, ErrNotFound
	}
	return r, nil
}

// PruneAudit deletes records with At < before, oldest first, stopping at
// the first record with At >= before (seq order is arrival order but
// for records of slow operations, so a few just past the cut may wait
// for the next prune). It deletes pruneAuditChunk records per WriteBatch
// and returns how many it deleted, also when it fails part way.
func (b *Badger) PruneAudit(ctx context.Context, before int64) (int, error) {
	return b.pruneAudit(ctx, func(r *AuditRecord) bool { return r.At < before })
}

// TrimAudit deletes the oldest records beyond the newest keep. Records
// are only ever deleted oldest first, so the seqs stored are one run and
// their number is the last seq minus the first plus one (or fewer, if an
// append failed after taking a seq: then it keeps fewer than keep).
func (b *Badger) TrimAudit(ctx context.Context, keep int) (int, error) {
	first, last, err := b.auditSeqRange()
	if err != nil || first == 0 || last-first+1 <= uint64(max(keep, 0)) {
		return 0, err
	}
	cut := last - uint64(max(keep, 0)) // records with seq <= cut go
	return b.pruneAudit(ctx, func(r *AuditRecord) bool { return r.Seq <= cut })
}

// auditSeqRange returns the seqs of the oldest and the newest stored
// records (0, 0 when there are none).
func (b *Badger) auditSeqRange() (first, last uint64, err error) {
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	err = b.db.View(func(txn *badger.Txn) error {
		for _, rev := range []bool{false, true} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: auditPrefix, Reverse: rev})
			if rev {
				it.Seek(auditKey(math.MaxUint64))
			} else {
				it.Rewind()
			}
			if it.Valid() {
				if k := it.Item().Key(); len(k) == len(auditPrefix)+8 {
					if s := binary.BigEndian.Uint64(k[len(auditPrefix):]); rev {
						last = s
					} else {
						first = s
					}
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: audit range: %w", err)
	}
	return first, last, nil
}

// pruneAudit deletes records from the oldest on while due says so.
func (b *Badger) pruneAudit(ctx context.Context, due func(*AuditRecord) bool) (int, error) {
	n := 0
	from := uint64(0)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, next, done, err := b.pruneAuditChunk(due, from)
		n += k
		if err != nil {
			return n, err
		}
		if done {
			return n, nil
		}
		from = next
	}
}

// prunedAudit is a record PruneAudit deletes.
type prunedAudit struct {
	rec    AuditRecord
	dropAR bool // the "ar/" key still points at rec
	dropAC bool // the "ac/" key still points at rec
}

// pruneAuditChunk deletes up to pruneAuditChunk records that are due
// from seq from on, stopping at the first that is not. It returns how many it deleted, the seq to go on
// from, and done when no more are due.
func (b *Badger) pruneAuditChunk(due func(*AuditRecord) bool, from uint64) (n int, next uint64, done bool, err error) {
	if err := b.enterWrite(); err != nil {
		return 0, 0, false, err
	}
	defer b.leave()
	b.auditMu.Lock()
	defer b.auditMu.Unlock()
	var recs []prunedAudit
	done = true
	err = b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			Prefix:         auditPrefix,
			PrefetchValues: true,
			PrefetchSize:   badger.DefaultIteratorOptions.PrefetchSize,
		})
		defer it.Close()
		for it.Seek(auditKey(from)); it.Valid(); it.Next() {
			if len(recs) == pruneAuditChunk {
				done = false
				return nil
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(auditPrefix)+8 {
				return fmt.Errorf("%w: audit key of %d bytes", ErrCorrupt, len(k))
			}
			var r AuditRecord
			err := item.Value(func(v []byte) (err error) {
				r, err = decodeAudit(binary.BigEndian.Uint64(k[len(auditPrefix):]), v)
				return err
			})
			if err != nil {
				return err
			}
			if !due(&r) {
				return nil
			}
			p := prunedAudit{rec: r}
			if r.HasRequestID {
				seq, ok, err := getAuditSeqValue(txn, auditIndexKey(auditReqPrefix, r.DeviceID, r.RequestID), "audit request index")
				if err != nil {
					return err
				}
				p.dropAR = ok && seq == r.Seq
			}
			if r.Count > 0 {
				seq, ok, err := getAuditSeqValue(txn, auditRefIndexKey(refKeyOf(&r)), "audit refusal index")
				if err != nil {
					return err
				}
				p.dropAC = ok && seq == r.Seq
			}
			recs = append(recs, p)
		}
		return nil
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
	}
	if len(recs) == 0 {
		return 0, 0, true, nil
	}
	// WriteBatch commits in as many transactions as ErrTxnTooBig demands;
	// index keys go before their record (see the key layout).
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range recs {
		r := &recs[i].rec
		if r.DeviceID != "" {
			if err := wb.Delete(auditIndexKey(auditDevPrefix, r.DeviceID, r.Seq)); err != nil {
				return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
			}
		}
		if err := wb.Delete(auditIndexKey(auditSvcPrefix, r.Service, r.Seq)); err != nil {
			return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
		}
		if recs[i].dropAR {
			if err := wb.Delete(auditIndexKey(auditReqPrefix, r.DeviceID, r.RequestID)); err != nil {
				return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
			}
		}
		if recs[i].dropAC {
			if err := wb.Delete(auditRefIndexKey(refKeyOf(r))); err != nil {
				return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
			}
		}
		if err := wb.Delete(auditKey(r.Seq)); err != nil {
			return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, 0, false, fmt.Errorf("storage: prune audit: %w", err)
	}
	return len(recs), recs[len(recs)-1].rec.Seq + 1, done, nil
}
