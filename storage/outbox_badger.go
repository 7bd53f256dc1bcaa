package storage

// This file is Badger's Outbox (key layout in outbox.go). Writes hold
// outboxMu, so a claim and a settlement of one channel never interleave
// (Badger's own conflict detection is off).

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// pruneOutboxChunk is how many entries PruneOutbox deletes per hold of
// outboxMu, so claims interleave with a long prune.
const pruneOutboxChunk = 256

// getOutbox reads and decodes key into v; found is false when absent.
func getOutbox(txn *badger.Txn, key []byte, v any) (found bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return decodeOutbox(b, v) })
}

// setOutbox encodes v under key.
func setOutbox(txn *badger.Txn, key []byte, v any) error {
	b, err := encodeOutbox(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// EnqueueOutbox stores e and its pending deliveries in one transaction.
func (b *Badger) EnqueueOutbox(ctx context.Context, e OutboxEntry, firstAt int64) (bool, error) {
	e, err := checkOutboxEntry(e)
	if err != nil {
		return false, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return false, err
	}
	defer b.leave()
	b.outboxMu.Lock()
	defer b.outboxMu.Unlock()
	added := false
	err = b.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(outboxEntryKey(e.ID)); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := setOutbox(txn, outboxEntryKey(e.ID), &e); err != nil {
			return err
		}
		for _, d := range newDeliveries(&e, firstAt) {
			if err := b.putDelivery(txn, nil, &d); err != nil {
				return err
			}
		}
		added = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storage: enqueue outbox %q: %w", e.ID, err)
	}
	return added, nil
}

// putDelivery stores d and moves its index keys from where old had them
// (nil: a new delivery).
func (b *Badger) putDelivery(txn *badger.Txn, old, d *OutboxDelivery) error {
	if old != nil {
		for _, k := range deliveryIndexKeys(old) {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	for _, k := range deliveryIndexKeys(d) {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	return setOutbox(txn, outboxDelivKey(d.Channel, d.EntryID), d)
}

// deliveryIndexKeys returns the index keys d has in its state.
func deliveryIndexKeys(d *OutboxDelivery) [][]byte {
	switch d.State {
	case OutboxPending:
		ks := [][]byte{outboxDueKey(d.Channel, d.NextAt, d.EntryID)}
		switch {
		case d.Batch != "":
			ks = append(ks, outboxBatchKey(d.Channel, d.Batch, d.EntryID))
		case d.Group != "":
			ks = append(ks, outboxGroupKey(d.Channel, d.Group, d.EntryID))
		}
		return ks
	case OutboxFailed:
		return [][]byte{outboxFailedKey(d.Channel, d.EntryID)}
	}
	return nil
}

// firstDue returns the first "oq/" key of channel: its due time and id.
func firstDue(txn *badger.Txn, channel string) (at int64, id string, ok bool, err error) {
	p := outboxChannelPrefix(outboxDuePrefix, channel)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	it.Rewind()
	if !it.Valid() {
		return 0, "", false, nil
	}
	at, id, err = parseDueKey(p, it.Item().Key())
	return at, id, err == nil, err
}

// idsUnder returns the ids after prefix p of at most limit keys.
func idsUnder(txn *badger.Txn, p []byte, limit int) []string {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	var ids []string
	for it.Rewind(); it.Valid() && len(ids) < limit; it.Next() {
		ids = append(ids, string(it.Item().Key()[len(p):]))
	}
	return ids
}

// getDelivery reads channel's delivery of id; a missing one is corrupt
// (an index key points at it).
func getDelivery(txn *badger.Txn, channel, id string) (OutboxDelivery, error) {
	var d OutboxDelivery
	found, err := getOutbox(txn, outboxDelivKey(channel, id), &d)
	if err == nil && !found {
		err = fmt.Errorf("%w: outbox index names missing delivery %q/%q", ErrCorrupt, channel, id)
	}
	return d, err
}

// ClaimOutbox reads channel's first due batch and commits the new batch
// id on its members in chunks (see writeDeliveries).
func (b *Badger) ClaimOutbox(ctx context.Context, channel string, now int64, limit int) (OutboxClaim, bool, error) {
	limit, err := checkOutboxClaim(channel, limit)
	if err != nil {
		return OutboxClaim{}, false, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return OutboxClaim{}, false, err
	}
	defer b.leave()
	b.outboxMu.Lock()
	defer b.outboxMu.Unlock()
	var (
		c       OutboxClaim
		changes []deliveryChange
	)
	err = b.db.View(func(txn *badger.Txn) error {
		at, id, ok, err := firstDue(txn, channel)
		if err != nil || !ok || at > now {
			return err
		}
		first, err := getDelivery(txn, channel, id)
		if err != nil {
			return err
		}
		var ids []string
		switch {
		case first.Batch != "":
			// A retry: the members are fixed; none is added.
			c.Batch = first.Batch
			ids = idsUnder(txn, outboxBatchKey(channel, first.Batch, ""), MaxOutboxBatch)
		case first.Group == "":
			ids = []string{id}
		default:
			ids = idsUnder(txn, outboxGroupKey(channel, first.Group, ""), limit)
			if !slices.Contains(ids, id) { // the due one always goes
				if len(ids) >= limit {
					ids = ids[:limit-1]
				}
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if c.Batch == "" {
			c.Batch = outboxBatchID(channel, ids)
		}
		for _, mid := range ids {
			d, err := getDelivery(txn, channel, mid)
			if err != nil {
				return err
			}
			if d.Batch == "" {
				old := d
				d.Batch = c.Batch
				changes = append(changes, deliveryChange{old, d})
			}
			var e OutboxEntry
			found, err := getOutbox(txn, outboxEntryKey(mid), &e)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%w: outbox delivery of missing entry %q", ErrCorrupt, mid)
			}
			c.Deliveries = append(c.Deliveries, d)
			c.Entries = append(c.Entries, e)
		}
		return nil
	})
	if err == nil {
		err = b.writeDeliveries(changes)
	}
	if err != nil {
		return OutboxClaim{}, false, fmt.Errorf("storage: claim outbox %q: %w", channel, err)
	}
	return c, len(c.Deliveries) > 0, nil
}

// outboxWriteChunk is how many deliveries one transaction of a claim or
// a settlement rewrites: a batch of MaxOutboxBatch in one transaction
// would exceed Badger's transaction size (ErrTxnTooBig).
const outboxWriteChunk = 100

// deliveryChange is a delivery before and after a claim or settlement.
type deliveryChange struct{ old, new OutboxDelivery }

// writeDeliveries commits changes, outboxWriteChunk per transaction. A
// crash part way is safe because nothing was sent yet (a claim: the
// members not yet marked are claimed into a later batch, never sent
// twice) or because the whole batch was sent (a settlement: the members
// still pending are sent again under the same delivery id, which the
// receiver already has). The caller holds outboxMu.
func (b *Badger) writeDeliveries(changes []deliveryChange) error {
	for len(changes) > 0 {
		chunk := changes[:min(len(changes), outboxWriteChunk)]
		changes = changes[len(chunk):]
		err := b.db.Update(func(txn *badger.Txn) error {
			for i := range chunk {
				if err := b.putDelivery(txn, &chunk[i].old, &chunk[i].new); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// NextOutbox returns the due time of channel's first pending delivery.
func (b *Badger) NextOutbox(ctx context.Context, channel string) (int64, bool, error) {
	if err := b.enterCtx(ctx); err != nil {
		return 0, false, err
	}
	defer b.leave()
	var (
		at int64
		ok bool
	)
	err := b.db.View(func(txn *badger.Txn) (err error) {
		at, _, ok, err = firstDue(txn, channel)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("storage: next outbox %q: %w", channel, err)
	}
	return at, ok, nil
}

// SettleOutbox applies r to the pending members of batch, in chunks
// (see writeDeliveries).
func (b *Badger) SettleOutbox(ctx context.Context, channel, batch string, r OutboxResult) (int, error) {
	if err := checkOutboxName("channel", channel, MaxOutboxChannel, false); err != nil {
		return 0, err
	}
	if err := checkOutboxName("batch", batch, MaxOutboxID, false); err != nil {
		return 0, err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return 0, err
	}
	defer b.leave()
	b.outboxMu.Lock()
	defer b.outboxMu.Unlock()
	var changes []deliveryChange
	err := b.db.View(func(txn *badger.Txn) error {
		for _, id := range idsUnder(txn, outboxBatchKey(channel, batch, ""), MaxOutboxBatch) {
			d, err := getDelivery(txn, channel, id)
			if err != nil {
				return err
			}
			old := d
			d.settle(r)
			changes = append(changes, deliveryChange{old, d})
		}
		return nil
	})
	if err == nil {
		err = b.writeDeliveries(changes)
	}
	if err != nil {
		return 0, fmt.Errorf("storage: settle outbox %q/%q: %w", channel, batch, err)
	}
	return len(changes), nil
}

// ListOutbox walks the index of f.State ("oq/" for pending, "of/" for
// failed, "od/" otherwise) from the cursor.
func (b *Badger) ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxDelivery, string, error) {
	cur, err := checkOutboxFilter(f)
	if err != nil {
		return nil, "", err
	}
	if err := b.enterCtx(ctx); err != nil {
		return nil, "", err
	}
	defer b.leave()
	limit := listLimit(f.Limit)
	prefix := outboxDelivPrefix
	switch f.State {
	case OutboxPending:
		prefix = outboxDuePrefix
	case OutboxFailed:
		prefix = outboxFailedPrefix
	}
	if f.Channel != "" {
		prefix = outboxChannelPrefix(prefix, f.Channel)
	}
	ds := []OutboxDelivery{}
	var last []byte
	more := false
	err = b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		seek := prefix
		if len(cur) > 0 {
			seek = append(bytes.Clone(cur), 0) // the first key after the cursor
		}
		n := 0
		for it.Seek(seek); it.Valid(); it.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Item().Key()
			var d OutboxDelivery
			if bytes.HasPrefix(k, outboxDelivPrefix) {
				if err := it.Item().Value(func(v []byte) error { return decodeOutbox(v, &d) }); err != nil {
					return err
				}
			} else {
				ch, id, err := splitIndexKey(k, f.State)
				if err != nil {
					return err
				}
				if d, err = getDelivery(txn, ch, id); err != nil {
					return err
				}
			}
			if f.State == "" && d.State == OutboxDelivered || f.State == OutboxDelivered && d.State != OutboxDelivered {
				continue
			}
			if len(ds) == limit {
				more = true
				return nil
			}
			ds = append(ds, d)
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("storage: list outbox: %w", err)
	}
	if !more {
		return ds, "", nil
	}
	return ds, hex.EncodeToString(last), nil
}

// splitIndexKey returns the channel and entry id of an "oq/" or "of/" key.
func splitIndexKey(k []byte, state string) (ch, id string, err error) {
	rest := k[3:] // both prefixes are 3 bytes
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", "", fmt.Errorf("%w: outbox index key without channel", ErrCorrupt)
	}
	ch, rest = string(rest[:i]), rest[i+1:]
	if state == OutboxPending {
		if len(rest) < 8 {
			return "", "", fmt.Errorf("%w: outbox due key of %d bytes", ErrCorrupt, len(k))
		}
		rest = rest[8:]
	}
	return ch, string(rest), nil
}

// GetOutboxEntry reads one entry.
func (b *Badger) GetOutboxEntry(ctx context.Context, id string) (OutboxEntry, error) {
	if err := b.enterCtx(ctx); err != nil {
		return OutboxEntry{}, err
	}
	defer b.leave()
	var e OutboxEntry
	found := false
	err := b.db.View(func(txn *badger.Txn) (err error) {
		found, err = getOutbox(txn, outboxEntryKey(id), &e)
		return err
	})
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("storage: get outbox %q: %w", id, err)
	}
	if !found {
		return OutboxEntry{}, ErrNotFound
	}
	return e, nil
}

// OutboxCounts counts "oq/" and "of/" keys (keys only, no values).
func (b *Badger) OutboxCounts(ctx context.Context) (map[string]OutboxCount, error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	counts := map[string]OutboxCount{}
	err := b.db.View(func(txn *badger.Txn) error {
		for _, st := range []string{OutboxPending, OutboxFailed} {
			p := outboxDuePrefix
			if st == OutboxFailed {
				p = outboxFailedPrefix
			}
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
			n := 0
			for it.Rewind(); it.Valid(); it.Next() {
				if n++; n%ctxCheckEvery == 0 {
					if err := ctx.Err(); err != nil {
						it.Close()
						return err
					}
				}
				ch, _, err := splitIndexKey(it.Item().Key(), st)
				if err != nil {
					it.Close()
					return err
				}
				c := counts[ch]
				if st == OutboxPending {
					c.Pending++
				} else {
					c.Failed++
				}
				counts[ch] = c
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: outbox counts: %w", err)
	}
	return counts, nil
}

// PruneOutbox deletes done entries in chunks of pruneOutboxChunk.
func (b *Badger) PruneOutbox(ctx context.Context, before int64) (int, error) {
	total := 0
	var from []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, next, err := b.pruneOutboxChunk(before, from)
		total += n
		if err != nil || next == nil {
			return total, err
		}
		from = next
	}
}

// pruneOutboxChunk examines up to pruneOutboxChunk entries from key from
// on and deletes the done ones; next is where to go on (nil: the end).
func (b *Badger) pruneOutboxChunk(before int64, from []byte) (n int, next []byte, err error) {
	if err := b.enterWrite(); err != nil {
		return 0, nil, err
	}
	defer b.leave()
	b.outboxMu.Lock()
	defer b.outboxMu.Unlock()
	err = b.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: outboxEntryPrefix, PrefetchValues: true})
		defer it.Close()
		seen := 0
		var due []OutboxEntry
		if from == nil {
			from = outboxEntryPrefix
		}
		for it.Seek(from); it.Valid(); it.Next() {
			if seen == pruneOutboxChunk {
				next = bytes.Clone(it.Item().Key())
				break
			}
			seen++
			var e OutboxEntry
			if err := it.Item().Value(func(v []byte) error { return decodeOutbox(v, &e) }); err != nil {
				return err
			}
			done := true
			for _, ch := range e.Channels {
				var d OutboxDelivery
				found, err := getOutbox(txn, outboxDelivKey(ch, e.ID), &d)
				if err != nil {
					return err
				}
				if found && (d.State == OutboxPending || d.DoneAt >= before) {
					done = false
					break
				}
			}
			if done {
				due = append(due, e)
			}
		}
		for _, e := range due {
			for _, ch := range e.Channels {
				var d OutboxDelivery
				if found, err := getOutbox(txn, outboxDelivKey(ch, e.ID), &d); err != nil {
					return err
				} else if found {
					for _, k := range deliveryIndexKeys(&d) {
						if err := txn.Delete(k); err != nil {
							return err
						}
					}
				}
				if err := txn.Delete(outboxDelivKey(ch, e.ID)); err != nil {
					return err
				}
			}
			if err := txn.Delete(outboxEntryKey(e.ID)); err != nil {
				return err
			}
		}
		n = len(due)
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("storage: prune outbox: %w", err)
	}
	return n, next, nil
}
