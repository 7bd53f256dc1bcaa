package storage

// This file is Memory's Outbox: maps under Memory.mu, ordered for
// listing by the same keys Badger's indexes use, so both page alike.

import (
	"bytes"
	"context"
	"encoding/hex"
	"slices"
	"sort"
)

// memOutbox is Memory's outbox state.
type memOutbox struct {
	entries map[string]*OutboxEntry
	// deliv maps channel NUL id to the delivery.
	deliv map[string]*OutboxDelivery
}

// outbox returns m's outbox, creating it. The caller holds the lock.
func (m *Memory) outbox() *memOutbox {
	if m.ob == nil {
		m.ob = &memOutbox{entries: map[string]*OutboxEntry{}, deliv: map[string]*OutboxDelivery{}}
	}
	return m.ob
}

func memDelivKey(ch, id string) string { return ch + "\x00" + id }

func cloneEntry(e *OutboxEntry) OutboxEntry {
	c := *e
	c.Channels = slices.Clone(e.Channels)
	c.Payload = bytes.Clone(e.Payload)
	return c
}

// EnqueueOutbox stores copies of e and its deliveries.
func (m *Memory) EnqueueOutbox(ctx context.Context, e OutboxEntry, firstAt int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e, err := checkOutboxEntry(e)
	if err != nil {
		return false, err
	}
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	ob := m.outbox()
	if _, ok := ob.entries[e.ID]; ok {
		return false, nil
	}
	ob.entries[e.ID] = &e
	for _, d := range newDeliveries(&e, firstAt) {
		ob.deliv[memDelivKey(d.Channel, d.EntryID)] = &d
	}
	m.version++
	return true, nil
}

// pending returns channel's pending deliveries in due order. The caller
// holds the lock.
func (ob *memOutbox) pending(channel string) []*OutboxDelivery {
	var ds []*OutboxDelivery
	for _, d := range ob.deliv {
		if d.Channel == channel && d.State == OutboxPending {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool {
		return bytes.Compare(ds[i].sortKey(OutboxPending), ds[j].sortKey(OutboxPending)) < 0
	})
	return ds
}

// ClaimOutbox claims channel's first due batch.
func (m *Memory) ClaimOutbox(ctx context.Context, channel string, now int64, limit int) (OutboxClaim, bool, error) {
	if err := ctx.Err(); err != nil {
		return OutboxClaim{}, false, err
	}
	limit, err := checkOutboxClaim(channel, limit)
	if err != nil {
		return OutboxClaim{}, false, err
	}
	if err := m.lock(); err != nil {
		return OutboxClaim{}, false, err
	}
	defer m.mu.Unlock()
	ob := m.outbox()
	pend := ob.pending(channel)
	if len(pend) == 0 || pend[0].NextAt > now {
		return OutboxClaim{}, false, nil
	}
	first := pend[0]
	var members []*OutboxDelivery
	switch {
	case first.Batch != "":
		for _, d := range pend {
			if d.Batch == first.Batch {
				members = append(members, d)
			}
		}
	case first.Group == "":
		members = []*OutboxDelivery{first}
	default:
		var group []*OutboxDelivery
		for _, d := range pend {
			if d.Batch == "" && d.Group == first.Group {
				group = append(group, d)
			}
		}
		sort.Slice(group, func(i, j int) bool { return group[i].EntryID < group[j].EntryID })
		members = group[:min(len(group), limit)]
		if !slices.Contains(members, first) {
			members = append(members[:len(members)-1:len(members)-1], first)
		}
	}
	sort.Slice(members, func(i, j int) bool { return members[i].EntryID < members[j].EntryID })
	c := OutboxClaim{Batch: first.Batch}
	if c.Batch == "" {
		ids := make([]string, len(members))
		for i, d := range members {
			ids[i] = d.EntryID
		}
		c.Batch = outboxBatchID(channel, ids)
	}
	for _, d := range members {
		d.Batch = c.Batch
		c.Deliveries = append(c.Deliveries, *d)
		c.Entries = append(c.Entries, cloneEntry(ob.entries[d.EntryID]))
	}
	m.version++
	return c, true, nil
}

// NextOutbox returns the due time of channel's first pending delivery.
func (m *Memory) NextOutbox(ctx context.Context, channel string) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if err := m.rlock(); err != nil {
		return 0, false, err
	}
	defer m.mu.RUnlock()
	if m.ob == nil {
		return 0, false, nil
	}
	pend := m.ob.pending(channel)
	if len(pend) == 0 {
		return 0, false, nil
	}
	return pend[0].NextAt, true, nil
}

// SettleOutbox applies r to the pending members of batch.
func (m *Memory) SettleOutbox(ctx context.Context, channel, batch string, r OutboxResult) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkOutboxName("channel", channel, MaxOutboxChannel, false); err != nil {
		return 0, err
	}
	if err := checkOutboxName("batch", batch, MaxOutboxID, false); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for _, d := range m.outbox().deliv {
		if d.Channel == channel && d.Batch == batch && d.State == OutboxPending {
			d.settle(r)
			n++
		}
	}
	m.version++
	return n, nil
}

// ListOutbox returns a page of copies in Badger's order.
func (m *Memory) ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxDelivery, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	cur, err := checkOutboxFilter(f)
	if err != nil {
		return nil, "", err
	}
	if err := m.rlock(); err != nil {
		return nil, "", err
	}
	defer m.mu.RUnlock()
	type keyed struct {
		k []byte
		d OutboxDelivery
	}
	var all []keyed
	for _, d := range m.outbox().deliv {
		if f.Channel != "" && d.Channel != f.Channel {
			continue
		}
		if f.State == "" && d.State == OutboxDelivered || f.State != "" && d.State != f.State {
			continue
		}
		all = append(all, keyed{d.sortKey(f.State), *d})
	}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].k, all[j].k) < 0 })
	i := sort.Search(len(all), func(i int) bool { return bytes.Compare(all[i].k, cur) > 0 })
	limit := listLimit(f.Limit)
	ds := []OutboxDelivery{}
	for ; i < len(all) && len(ds) < limit; i++ {
		ds = append(ds, all[i].d)
	}
	if i == len(all) {
		return ds, "", nil
	}
	return ds, hex.EncodeToString(all[i-1].k), nil
}

// GetOutboxEntry returns a copy of one entry.
func (m *Memory) GetOutboxEntry(ctx context.Context, id string) (OutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return OutboxEntry{}, err
	}
	if err := m.rlock(); err != nil {
		return OutboxEntry{}, err
	}
	defer m.mu.RUnlock()
	if m.ob == nil || m.ob.entries[id] == nil {
		return OutboxEntry{}, ErrNotFound
	}
	return cloneEntry(m.ob.entries[id]), nil
}

// OutboxCounts counts pending and failed deliveries per channel.
func (m *Memory) OutboxCounts(ctx context.Context) (map[string]OutboxCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.rlock(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	counts := map[string]OutboxCount{}
	for _, d := range m.outbox().deliv {
		c := counts[d.Channel]
		switch d.State {
		case OutboxPending:
			c.Pending++
		case OutboxFailed:
			c.Failed++
		default:
			continue
		}
		counts[d.Channel] = c
	}
	return counts, nil
}

// PruneOutbox deletes the done entries last done before before.
func (m *Memory) PruneOutbox(ctx context.Context, before int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	ob := m.outbox()
	n := 0
	for id, e := range ob.entries {
		done := true
		for _, ch := range e.Channels {
			if d := ob.deliv[memDelivKey(ch, id)]; d != nil && (d.State == OutboxPending || d.DoneAt >= before) {
				done = false
				break
			}
		}
		if !done {
			continue
		}
		for _, ch := range e.Channels {
			delete(ob.deliv, memDelivKey(ch, id))
		}
		delete(ob.entries, id)
		n++
	}
	if n > 0 {
		m.version++
	}
	return n, nil
}
