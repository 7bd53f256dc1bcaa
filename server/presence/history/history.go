// Package history keeps a compact per-device hourly online history: for
// every device, which UTC hours of the last week it had a session in.
// The availability planner (issue 13) asks it what share of a set of
// terminals was online in a given hour of day over the past 7 days
// (countertop terminals are switched off at night).
//
// Each device costs one map entry: a 64-bit hash of its id (FNV-1a, the
// same in every run) and a 28-byte record (a 192-bit ring of hours,
// indexed by hour number mod 192, and the newest marked hour) — about 45
// bytes, where keying by the id itself cost about 105 with its copy. Two
// ids with one hash would share a history; for 10^6 devices the chance
// that any two do is about 3·10^-8, and the history only guides planning. Devices are spread over 64 independently locked shards,
// so the event loops marking different devices rarely meet on one mutex.
//
// The history is persisted as one blob per shard (Save, Load, Run) to a
// storage.OnlineHistoryStore. It is a periodic snapshot, not a durable
// record: after a kill -9 the hours marked since the last save are lost.
package history

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/termd/termd/storage"
)

const (
	// HourMs is one hour in milliseconds.
	HourMs = int64(time.Hour / time.Millisecond)
	// Hours is how many hours the history answers for: the week before
	// the current hour (Online also answers for the current hour).
	Hours = 168
	// Days is how many past days Share averages over.
	Days = 7

	// ringBits is the ring's size: more than Hours+1, so the current hour
	// and the 168 complete hours before it are always kept.
	ringBits = 192
	// Shards is the number of independently locked shards. Shard i is
	// persisted under shard number i; a device's shard is a fixed hash of
	// its id, the same in every run.
	Shards = 64

	// DefaultSaveInterval is Run's default period between saves.
	DefaultSaveInterval = 10 * time.Minute

	blobVersion   = 2
	blobVersionV1 = 1       // keyed by id; still loaded
	recordSize    = 4 + 3*8 // newest hour, ring
	keySize       = 8       // the id's hash (version 2)
)

// rec is one device's history: bit (h mod 192) of ring is set when the
// device was online in hour h (hours since the Unix epoch, UTC), for
// the hours h in (last-192, last]. Newer hours clear what they overwrite.
type rec struct {
	ring [3]uint64
	last uint32 // the newest hour marked
}

type shard struct {
	mu    sync.Mutex
	m     map[uint64]rec // by keyOf(device id)
	dirty bool           // changed since the last successful save
}

// History is each device's online hours over the last 7 days (168 bits
// + a base hour per device). All methods are safe for concurrent use.
type History struct {
	shards [Shards]shard
	now    func() time.Time
}

// Options configure a History.
type Options struct {
	// Clock overrides time.Now (tests); Online uses it for "now".
	Clock func() time.Time
}

// New returns an empty History.
func New(opt Options) *History {
	h := &History{now: opt.Clock}
	if h.now == nil {
		h.now = time.Now
	}
	for i := range h.shards {
		h.shards[i].m = make(map[uint64]rec)
	}
	return h
}

// hourOf is the UTC hour number of unix ms (floor).
func hourOf(ms int64) int64 {
	h := ms / HourMs
	if ms < 0 && ms%HourMs != 0 {
		h--
	}
	return h
}

// shardOf is a fixed (FNV-1a) hash of the id: the same in every run, so
// a shard's blob holds the same devices across restarts.
func shardOf(id string) int {
	x := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		x ^= uint32(id[i])
		x *= 16777619
	}
	return int(x % Shards)
}

func (h *History) shard(id string) *shard { return &h.shards[shardOf(id)] }

// keyOf is the map key of a device id: FNV-1a, 64 bits. Saved blobs hold
// it, so it must never change.
func keyOf(id string) uint64 {
	x := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		x ^= uint64(id[i])
		x *= 1099511628211
	}
	return x
}

func (r *rec) set(hr int64)   { b := uint64(hr) % ringBits; r.ring[b/64] |= 1 << (b % 64) }
func (r *rec) clear(hr int64) { b := uint64(hr) % ringBits; r.ring[b/64] &^= 1 << (b % 64) }
func (r *rec) isSet(hr int64) bool {
	b := uint64(hr) % ringBits
	return r.ring[b/64]&(1<<(b%64)) != 0
}

// has reports whether the record says the device was online in hour hr.
func (r *rec) has(hr int64) bool {
	last := int64(r.last)
	return hr <= last && last-hr < ringBits && r.isSet(hr)
}

// mark sets hour hr, moving the ring forward (clearing the hours it
// skips) when hr is newer than the newest; it reports a change.
func (r *rec) mark(hr int64) bool {
	last := int64(r.last)
	switch {
	case hr > last:
		if hr-last >= ringBits {
			r.ring = [3]uint64{}
		} else {
			for x := last + 1; x < hr; x++ {
				r.clear(x)
			}
		}
		r.last = uint32(hr)
		r.clear(hr)
	case last-hr >= ringBits:
		return false // older than the ring keeps
	case r.isSet(hr):
		return false
	}
	r.set(hr)
	return true
}

// validHour reports whether hr fits the record's uint32 hour (years 1970
// to ~491,000).
func validHour(hr int64) bool { return hr >= 0 && hr <= 1<<32-1 }

// Mark records that the device was online at atMs. It takes one shard
// lock, does no I/O and allocates only for a device's first mark (the
// map entry and a private copy of the id).
func (h *History) Mark(deviceID string, atMs int64) {
	hr := hourOf(atMs)
	if deviceID == "" || !validHour(hr) {
		return
	}
	s, k := h.shard(deviceID), keyOf(deviceID)
	s.mu.Lock()
	r, ok := s.m[k]
	if !ok {
		r = rec{last: uint32(hr)}
		r.set(hr)
		s.m[k] = r
		s.dirty = true
	} else if r.mark(hr) {
		s.m[k] = r
		s.dirty = true
	}
	s.mu.Unlock()
}

// MarkRange records that the device was online from fromMs to toMs
// (inclusive): every hour the interval touches, back to at most the
// ring's length before toMs. One shard lock for the whole range.
func (h *History) MarkRange(deviceID string, fromMs, toMs int64) {
	to := hourOf(toMs)
	from := max(hourOf(fromMs), to-ringBits+1)
	if deviceID == "" || from > to || !validHour(from) || !validHour(to) {
		return
	}
	s, k := h.shard(deviceID), keyOf(deviceID)
	s.mu.Lock()
	r, ok := s.m[k]
	changed := !ok
	if !ok {
		r = rec{last: uint32(to)}
	}
	// Newest first: the ring moves forward once, then the older hours fill in.
	changed = r.mark(to) || changed
	for x := from; x < to; x++ {
		changed = r.mark(x) || changed
	}
	if changed {
		s.m[k] = r
		s.dirty = true
	}
	s.mu.Unlock()
}

// Online reports whether the device was online in the UTC hour that
// contains hourStartMs. It is false for hours outside the window the
// history answers for: the current hour and the 168 complete hours
// before it.
func (h *History) Online(deviceID string, hourStartMs int64) bool {
	hr, now := hourOf(hourStartMs), hourOf(h.now().UnixMilli())
	if hr > now || now-hr > Hours {
		return false
	}
	return h.online(deviceID, hr)
}

func (h *History) online(deviceID string, hr int64) bool {
	s := h.shard(deviceID)
	s.mu.Lock()
	r, ok := s.m[keyOf(deviceID)]
	s.mu.Unlock()
	return ok && r.has(hr)
}

// Share is the average over the 7 past days of the share of deviceIDs
// online in the UTC hour of day hourOfDayUTC (0..23), from 0 to 1. The 7
// days are the 7 most recent complete occurrences of that hour before
// nowMs (the current, incomplete hour is never counted). Devices never
// seen count as offline; an id listed twice counts twice. No ids, or an
// hour outside 0..23: 0.
func (h *History) Share(deviceIDs []string, hourOfDayUTC int, nowMs int64) float64 {
	if len(deviceIDs) == 0 || hourOfDayUTC < 0 || hourOfDayUTC > 23 {
		return 0
	}
	hrs := SlotHours(hourOfDayUTC, nowMs)
	online := 0
	for _, id := range deviceIDs {
		s := h.shard(id)
		s.mu.Lock()
		r, ok := s.m[keyOf(id)]
		s.mu.Unlock()
		if !ok {
			continue
		}
		for _, hr := range hrs {
			if r.has(hr) {
				online++
			}
		}
	}
	return float64(online) / float64(Days*len(deviceIDs))
}

// SlotHours are the hour numbers (hours since the epoch, UTC) Share
// averages over for hourOfDayUTC at nowMs, newest first: the most recent
// complete hour of that hour of day and the same hour on the 6 days
// before it.
func SlotHours(hourOfDayUTC int, nowMs int64) [Days]int64 {
	cur := hourOf(nowMs)
	// Newest complete hour h < cur with h mod 24 == hourOfDayUTC.
	newest := cur - 1 - ((cur-1-int64(hourOfDayUTC))%24+24)%24
	var out [Days]int64
	for d := range out {
		out[d] = newest - 24*int64(d)
	}
	return out
}

// Len is the number of devices with a history.
func (h *History) Len() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Prune drops the devices with no hour marked within the ring before
// nowMs (all their bits are out of the window) and returns how many.
func (h *History) Prune(nowMs int64) int {
	now := hourOf(nowMs)
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for id, r := range s.m {
			if now-int64(r.last) > Hours {
				delete(s.m, id)
				s.dirty = true
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Hours is the device's hour-by-hour history for the 168 hours ending
// with the one that contains nowMs, oldest first: start of each hour in
// unix ms and whether the device was online in it.
func (h *History) Hours(deviceID string, nowMs int64) [Hours]HourOnline {
	s := h.shard(deviceID)
	s.mu.Lock()
	r, ok := s.m[keyOf(deviceID)]
	s.mu.Unlock()
	cur := hourOf(nowMs)
	var out [Hours]HourOnline
	for i := range out {
		hr := cur - Hours + 1 + int64(i)
		out[i] = HourOnline{StartMs: hr * HourMs, Online: ok && r.has(hr)}
	}
	return out
}

// HourOnline is one hour of a device's history.
type HourOnline struct {
	StartMs int64
	Online  bool
}

// encodeShard is the shard's blob: a version byte (2), then per device
// the id's hash (uint64), the newest hour (uint32) and the ring (3 ×
// uint64), big-endian. Version 1 had the id's length (uvarint) and the id
// in place of the hash; decodeShard still reads it. The caller holds the
// shard lock.
func encodeShard(s *shard) []byte {
	b := make([]byte, 0, 1+len(s.m)*(keySize+recordSize))
	b = append(b, blobVersion)
	for k, r := range s.m {
		b = binary.BigEndian.AppendUint64(b, k)
		b = binary.BigEndian.AppendUint32(b, r.last)
		for _, w := range r.ring {
			b = binary.BigEndian.AppendUint64(b, w)
		}
	}
	return b
}

// errCorrupt wraps storage.ErrCorrupt for a blob that does not decode.
func errCorrupt(shard int, what string) error {
	return fmt.Errorf("%w: online history shard %d: %s", storage.ErrCorrupt, shard, what)
}

// decodeShard calls fn for every record of a shard blob; it checks the
// whole blob before the first call, so a corrupt blob adds nothing.
func decodeShard(shard int, b []byte, fn func(key uint64, r rec)) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != blobVersion && b[0] != blobVersionV1 {
		return errCorrupt(shard, fmt.Sprintf("unknown version %d", b[0]))
	}
	v1 := b[0] == blobVersionV1
	for pass := 0; pass < 2; pass++ {
		p := b[1:]
		for len(p) > 0 {
			var key uint64
			if v1 {
				n, k := binary.Uvarint(p)
				if k <= 0 || n == 0 || n > storage.MaxIDLen || uint64(len(p)-k) < n+recordSize {
					return errCorrupt(shard, "truncated record")
				}
				p = p[k:]
				key = keyOf(string(p[:n]))
				p = p[n:]
			} else {
				if len(p) < keySize+recordSize {
					return errCorrupt(shard, "truncated record")
				}
				key = binary.BigEndian.Uint64(p)
				p = p[keySize:]
			}
			var r rec
			r.last = binary.BigEndian.Uint32(p)
			for i := range r.ring {
				r.ring[i] = binary.BigEndian.Uint64(p[4+8*i:])
			}
			p = p[recordSize:]
			if pass == 1 {
				fn(key, r)
			}
		}
	}
	return nil
}

// merge folds o into r: the union of the hours both keep.
func (r *rec) merge(o rec) {
	last := int64(o.last)
	for x := max(last-ringBits+1, 0); x <= last; x++ {
		if o.isSet(x) {
			r.mark(x)
		}
	}
}

// Load adds the snapshot in st to the history (a device already present
// keeps the union of both). A corrupt shard is skipped and reported in
// the returned error after the others are loaded.
func (h *History) Load(ctx context.Context, st storage.OnlineHistoryStore) error {
	var bad []error
	err := st.LoadOnlineHistory(ctx, func(shardNo int, blob []byte) error {
		if err := decodeShard(shardNo, blob, h.loader(shardNo)); err != nil {
			bad = append(bad, err)
		}
		return nil
	})
	return errors.Join(append(bad, err)...)
}

// loader adds the records of shard i's blob. A record is kept in the
// shard it was saved from: a device's shard is a hash of its id, which a
// version 2 blob no longer holds, and shard i of every run is the same.
func (h *History) loader(i int) func(key uint64, r rec) {
	return func(key uint64, r rec) {
		if i < 0 || i >= Shards {
			return
		}
		s := &h.shards[i]
		s.mu.Lock()
		if old, ok := s.m[key]; ok {
			old.merge(r)
			r = old
		}
		s.m[key] = r
		s.mu.Unlock()
	}
}

// Save writes every shard changed since its last successful save. A
// shard is encoded under its lock (a copy, so marks do not wait for the
// disk) and marked clean before the write; a failed write marks it dirty
// again, so the next Save retries it.
func (h *History) Save(ctx context.Context, st storage.OnlineHistoryStore) error {
	var errs []error
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		if !s.dirty {
			s.mu.Unlock()
			continue
		}
		blob := encodeShard(s)
		s.dirty = false
		s.mu.Unlock()
		if err := st.SaveOnlineHistory(ctx, i, blob); err != nil {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
			errs = append(errs, err)
			if errors.Is(err, storage.ErrClosed) || errors.Is(err, storage.ErrDiskFull) || ctx.Err() != nil {
				// The others would fail alike; they stay dirty.
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("save online history: %w", errs[0])
	}
	return nil
}

// Run saves every interval (<= 0: DefaultSaveInterval) until ctx ends.
// It does not save at the end: the caller does once the sessions have
// ended (Save), so the last hours are in the snapshot. A failure is
// logged when failures start and when they end.
func (h *History) Run(ctx context.Context, st storage.OnlineHistoryStore, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultSaveInterval
	}
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.Save(ctx, st)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			log.Warn("online history snapshot failed; retrying every interval (logged again when it recovers)", "err", err)
		case err == nil && failing:
			failing = false
			log.Info("online history snapshot saved again")
		}
	}
}
