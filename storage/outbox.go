package storage

// This file is the notification outbox's contract: the types, the
// interface Badger and Memory implement, and the checks and key encoding
// they share. The outbox is what makes "operators are told" durable: an
// event is committed here before the report that caused it is
// acknowledged, and each channel's delivery of it stays pending (with its
// attempts, next attempt time and last error) until the channel took it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Outbox limits.
const (
	// MaxOutboxID bounds an entry id (bytes): "report/<release>/<device>/
	// <attempt>/<stage>" fits with room to spare.
	MaxOutboxID = 512
	// MaxOutboxGroup bounds a digest group name (bytes): a release id.
	MaxOutboxGroup = 256
	// MaxOutboxChannel bounds a channel name (bytes).
	MaxOutboxChannel = 64
	// MaxOutboxKind bounds an entry kind (bytes).
	MaxOutboxKind = 64
	// MaxOutboxPayload bounds an entry's payload (bytes): an event is a
	// few hundred bytes; the bound keeps a batch inside one transaction.
	MaxOutboxPayload = 8 << 10
	// MaxOutboxError is how much of a delivery error is kept (bytes).
	MaxOutboxError = 512
	// MaxOutboxBatch bounds how many deliveries one claim puts into a
	// batch: a claim and its settlement are one transaction each, which
	// Badger bounds in size (a batch of this many stays well inside it).
	MaxOutboxBatch = 1000
)

// Delivery states.
const (
	// OutboxPending: not yet taken by the channel; retried until then.
	OutboxPending = "pending"
	// OutboxDelivered: the channel took it (2xx, 250, published).
	OutboxDelivered = "delivered"
	// OutboxFailed: given up after the notifier's max age; kept for
	// operators until pruned.
	OutboxFailed = "failed"
)

// OutboxEntry is one event to deliver, stored once whatever the number
// of channels.
type OutboxEntry struct {
	// ID is the caller's stable de-duplication key: an id already stored
	// is not enqueued again.
	ID string `json:"id"`
	// Group is the digest key (a release id): pending deliveries of one
	// group on one channel are claimed together as one batch. Empty: the
	// entry is delivered on its own.
	Group string `json:"group,omitempty"`
	// Kind names what happened ("upgrade_failed", ...), for operators.
	Kind string `json:"kind"`
	// At is the unix ms the entry was enqueued.
	At int64 `json:"at_ms"`
	// Channels are the channels it was enqueued for.
	Channels []string `json:"channels"`
	// Payload is the event, opaque to the store (the notifier's JSON).
	Payload json.RawMessage `json:"payload"`
}

// OutboxDelivery is one entry's delivery state on one channel.
type OutboxDelivery struct {
	Channel string `json:"channel"`
	EntryID string `json:"entry_id"`
	Group   string `json:"group,omitempty"`
	Kind    string `json:"kind"`
	// State is OutboxPending, OutboxDelivered or OutboxFailed.
	State string `json:"state"`
	// Batch is the id of the delivery (digest) the entry was claimed
	// into, stable across retries: what a receiver de-duplicates on.
	// Empty until first claimed.
	Batch string `json:"batch,omitempty"`
	// Attempts counts attempts made.
	Attempts uint32 `json:"attempts"`
	// CreatedAt is when it was enqueued, NextAt when it is next due (unix
	// ms; pending only), LastAttemptAt when it was last tried and DoneAt
	// when it was delivered or given up (0 until then).
	CreatedAt     int64 `json:"created_at_ms"`
	NextAt        int64 `json:"next_at_ms,omitempty"`
	LastAttemptAt int64 `json:"last_attempt_at_ms,omitempty"`
	DoneAt        int64 `json:"done_at_ms,omitempty"`
	// LastError is the last attempt's error, at most MaxOutboxError bytes.
	LastError string `json:"last_error,omitempty"`
}

// OutboxClaim is a batch claimed for delivery on one channel.
type OutboxClaim struct {
	// Batch is the delivery id, stable across retries of the same batch.
	Batch string
	// Deliveries and Entries are the batch's members, in entry id order.
	Deliveries []OutboxDelivery
	Entries    []OutboxEntry
}

// OutboxResult is the outcome of one attempt at a batch.
type OutboxResult struct {
	// At is when the attempt ended (unix ms).
	At int64
	// Delivered: the channel took the batch.
	Delivered bool
	// Error says why not (kept, truncated, on every member).
	Error string
	// NextAt is when to try again; 0 (with Delivered false) gives up:
	// the members become OutboxFailed.
	NextAt int64
}

// OutboxFilter selects deliveries for operators.
type OutboxFilter struct {
	// Channel, when set, keeps only that channel's deliveries.
	Channel string
	// State: OutboxPending (ordered by channel, then next attempt),
	// OutboxFailed or OutboxDelivered (by channel, then entry id), or ""
	// for pending and failed ones (by channel, then entry id).
	State string
	// Cursor continues after the last delivery of the previous page (the
	// next value ListOutbox returned).
	Cursor string
	// Limit is the page size; <= 0 means DefaultListLimit, capped at
	// MaxListLimit.
	Limit int
}

// OutboxCount is one channel's pending and failed deliveries.
type OutboxCount struct {
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
}

// Outbox is the durable notification outbox. Durable means as
// Registry.SetKey: committed before return, surviving kill -9.
type Outbox interface {
	// EnqueueOutbox stores e with one pending delivery per channel, first
	// due at firstAt, durable before return. added is false, and nothing
	// changes, when e.ID is already stored.
	EnqueueOutbox(ctx context.Context, e OutboxEntry, firstAt int64) (added bool, err error)
	// ClaimOutbox returns the batch due first on channel when it is due at
	// now (ok false otherwise). A delivery already in a batch brings its
	// whole batch, unchanged (a retry); one not yet in a batch is claimed
	// with the other unbatched pending deliveries of its group, at most
	// max (<= MaxOutboxBatch) of them, into a new batch whose id is
	// committed before return, so a retry after a restart has the same
	// members and id. A claim is not a lease: until SettleOutbox moves
	// it, the same batch is claimed again, so one goroutine claims per
	// channel and a crash between claim and settle only means a retry.
	ClaimOutbox(ctx context.Context, channel string, now int64, max int) (c OutboxClaim, ok bool, err error)
	// NextOutbox returns when the first pending delivery of channel is
	// due (ok false when none is pending).
	NextOutbox(ctx context.Context, channel string) (at int64, ok bool, err error)
	// SettleOutbox records r on every pending member of batch on channel,
	// durable before return, and returns how many it changed.
	SettleOutbox(ctx context.Context, channel, batch string, r OutboxResult) (int, error)
	// ListOutbox returns a page of deliveries matching f and the cursor of
	// the next page ("" when there are no more).
	ListOutbox(ctx context.Context, f OutboxFilter) (ds []OutboxDelivery, next string, err error)
	// GetOutboxEntry returns the entry with id or ErrNotFound.
	GetOutboxEntry(ctx context.Context, id string) (OutboxEntry, error)
	// OutboxCounts returns pending and failed deliveries per channel.
	OutboxCounts(ctx context.Context) (map[string]OutboxCount, error)
	// PruneOutbox deletes the entries whose deliveries are all done
	// (delivered or failed) and were last done before before, with their
	// deliveries, and returns how many entries it deleted.
	PruneOutbox(ctx context.Context, before int64) (int, error)
}

// outboxV1 is the leading version byte of outbox values (JSON follows).
const outboxV1 byte = 1

// Outbox key layout (Badger), NUL-separated names (checkOutboxName
// refuses NUL):
//
//	oe/ id                           → outboxV1 + JSON OutboxEntry
//	od/ channel NUL id               → outboxV1 + JSON OutboxDelivery
//	oq/ channel NUL next_at(8) id    → empty: pending, by due time
//	og/ channel NUL group NUL id     → empty: pending, not yet batched
//	ob/ channel NUL batch NUL id     → empty: pending members of a batch
//	of/ channel NUL id               → empty: failed (given up)
//
// A delivery and its index keys change in one transaction.
var (
	outboxEntryPrefix  = []byte("oe/")
	outboxDelivPrefix  = []byte("od/")
	outboxDuePrefix    = []byte("oq/")
	outboxGroupPrefix  = []byte("og/")
	outboxBatchPrefix  = []byte("ob/")
	outboxFailedPrefix = []byte("of/")
)

// joinKey returns prefix + parts joined by NUL.
func joinKey(prefix []byte, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+8)
	k = append(k, prefix...)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func outboxEntryKey(id string) []byte                { return joinKey(outboxEntryPrefix, id) }
func outboxDelivKey(ch, id string) []byte            { return joinKey(outboxDelivPrefix, ch, id) }
func outboxFailedKey(ch, id string) []byte           { return joinKey(outboxFailedPrefix, ch, id) }
func outboxGroupKey(ch, g, id string) []byte         { return joinKey(outboxGroupPrefix, ch, g, id) }
func outboxBatchKey(ch, b, id string) []byte         { return joinKey(outboxBatchPrefix, ch, b, id) }
func outboxChannelPrefix(p []byte, ch string) []byte { return append(joinKey(p, ch), 0) }

// outboxDueKey is the "oq/" key of a pending delivery.
func outboxDueKey(ch string, nextAt int64, id string) []byte {
	k := outboxChannelPrefix(outboxDuePrefix, ch)
	k = binary.BigEndian.AppendUint64(k, uint64(max(nextAt, 0)))
	return append(k, id...)
}

// parseDueKey splits an "oq/" key of channel ch's prefix p.
func parseDueKey(p, k []byte) (nextAt int64, id string, err error) {
	if len(k) < len(p)+8 || !bytes.HasPrefix(k, p) {
		return 0, "", fmt.Errorf("%w: outbox due key of %d bytes", ErrCorrupt, len(k))
	}
	return int64(binary.BigEndian.Uint64(k[len(p):])), string(k[len(p)+8:]), nil
}

// sortKey is where d sits in ListOutbox's order for state (the key of the
// index walked); cursors are its hex.
func (d *OutboxDelivery) sortKey(state string) []byte {
	if state == OutboxPending {
		return outboxDueKey(d.Channel, d.NextAt, d.EntryID)
	}
	return outboxDelivKey(d.Channel, d.EntryID)
}

// outboxBatchID is the id of a new batch of entry ids on channel: a hash,
// so it is unguessable from outside only in the sense that it reveals no
// internals, and the same members always get the same id.
func outboxBatchID(channel string, ids []string) string {
	h := sha256.New()
	h.Write([]byte(channel))
	for _, id := range ids {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// checkOutboxName rejects a name that cannot be stored.
func checkOutboxName(what, s string, maxLen int, empty bool) error {
	if s == "" && !empty {
		return fmt.Errorf("%w: empty outbox %s", ErrInvalid, what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: outbox %s of %d bytes exceeds %d", ErrInvalid, what, len(s), maxLen)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: outbox %s contains NUL", ErrInvalid, what)
	}
	return nil
}

// checkOutboxEntry validates e and returns a copy with its channels sorted
// and de-duplicated.
func checkOutboxEntry(e OutboxEntry) (OutboxEntry, error) {
	if err := checkOutboxName("id", e.ID, MaxOutboxID, false); err != nil {
		return e, err
	}
	if err := checkOutboxName("group", e.Group, MaxOutboxGroup, true); err != nil {
		return e, err
	}
	if err := checkOutboxName("kind", e.Kind, MaxOutboxKind, false); err != nil {
		return e, err
	}
	if len(e.Payload) > MaxOutboxPayload {
		return e, fmt.Errorf("%w: outbox payload of %d bytes exceeds %d", ErrInvalid, len(e.Payload), MaxOutboxPayload)
	}
	if len(e.Payload) > 0 && !json.Valid(e.Payload) {
		return e, fmt.Errorf("%w: outbox payload is not JSON", ErrInvalid)
	}
	if len(e.Channels) == 0 {
		return e, fmt.Errorf("%w: outbox entry %q has no channel", ErrInvalid, e.ID)
	}
	chs := slices.Clone(e.Channels)
	slices.Sort(chs)
	chs = slices.Compact(chs)
	for _, ch := range chs {
		if err := checkOutboxName("channel", ch, MaxOutboxChannel, false); err != nil {
			return e, err
		}
	}
	e.Channels = chs
	e.Payload = bytes.Clone(e.Payload)
	return e, nil
}

// checkOutboxClaim validates ClaimOutbox's arguments and applies max's
// bounds.
func checkOutboxClaim(channel string, max int) (int, error) {
	if err := checkOutboxName("channel", channel, MaxOutboxChannel, false); err != nil {
		return 0, err
	}
	if max <= 0 || max > MaxOutboxBatch {
		max = MaxOutboxBatch
	}
	return max, nil
}

// checkOutboxFilter validates f's state.
func checkOutboxFilter(f OutboxFilter) ([]byte, error) {
	switch f.State {
	case "", OutboxPending, OutboxFailed, OutboxDelivered:
	default:
		return nil, fmt.Errorf("%w: outbox state %q (want pending, failed or delivered)", ErrInvalid, f.State)
	}
	cur, err := hex.DecodeString(f.Cursor)
	if err != nil {
		return nil, fmt.Errorf("%w: outbox cursor %q", ErrInvalid, f.Cursor)
	}
	return cur, nil
}

// newDeliveries returns e's pending deliveries.
func newDeliveries(e *OutboxEntry, firstAt int64) []OutboxDelivery {
	ds := make([]OutboxDelivery, len(e.Channels))
	for i, ch := range e.Channels {
		ds[i] = OutboxDelivery{Channel: ch, EntryID: e.ID, Group: e.Group, Kind: e.Kind, State: OutboxPending, CreatedAt: e.At, NextAt: firstAt}
	}
	return ds
}

// settle applies r to a pending delivery.
func (d *OutboxDelivery) settle(r OutboxResult) {
	d.Attempts++
	d.LastAttemptAt = r.At
	switch {
	case r.Delivered:
		d.State, d.DoneAt, d.NextAt, d.LastError = OutboxDelivered, r.At, 0, ""
	case r.NextAt == 0:
		d.State, d.DoneAt, d.NextAt = OutboxFailed, r.At, 0
	default:
		d.NextAt = r.NextAt
	}
	if !r.Delivered {
		d.LastError = truncateUTF8(strings.ToValidUTF8(r.Error, "\uFFFD"), MaxOutboxError)
	}
}

func encodeOutbox(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{outboxV1}, j...), nil
}

func decodeOutbox(v []byte, into any) error {
	if len(v) == 0 || v[0] != outboxV1 {
		return fmt.Errorf("%w: outbox value without version byte", ErrCorrupt)
	}
	if err := json.Unmarshal(v[1:], into); err != nil {
		return fmt.Errorf("%w: outbox value: %v", ErrCorrupt, err)
	}
	return nil
}

var (
	_ Outbox = (*Badger)(nil)
	_ Outbox = (*Memory)(nil)
)
