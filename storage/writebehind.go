package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Write-behind bounds.
const (
	// presenceShards spreads Put over this many mutexes so event loops
	// rarely contend.
	presenceShards = 16
	// maxCondOfflines bounds the offlines kept per device that arrived
	// before any online in the same flush window (see devicePresence).
	maxCondOfflines = 8
	// finalFlushTimeout bounds the flush Run does after its context ends.
	finalFlushTimeout = 10 * time.Second
	// flushChunk is about how many updates reach the registry per
	// ApplyPresence call.
	flushChunk = 1024
	// maxSpareDevices is the largest per-shard map a flush keeps for reuse.
	maxSpareDevices = 256
	// earlyFlushDevices is the pending count at which Run flushes without
	// waiting for the interval. A connect storm then never holds more
	// than about this many devices' pending state (~300 bytes each with
	// its map slot): 19,000 terminals in under a second held 5.7 MB of it
	// until the next tick, a peak of RSS the collector kept for seconds.
	earlyFlushDevices = 2 * flushChunk
	// DefaultPresenceInterval is the flush interval NewPresenceWriter uses
	// when given one <= 0.
	DefaultPresenceInterval = time.Second
)

// PresenceWriter coalesces presence updates per device and flushes them to
// a Registry at least every interval, off the event loop.
//
// Coalescing is exact: flushing the pending state of a device has the same
// effect as applying every update Put for it in order. The one exception
// is bounded: of the Offlines that reach a device before any Online in one
// flush interval, at most 8 distinct sessions are kept, and past that the
// lowest session id is dropped (such offlines can only match the session
// the registry holds, the newest). Per device at most a handful of updates
// are kept whatever the rate, so memory is bounded by the number of
// devices with news since the last flush.
type PresenceWriter struct {
	reg      Registry
	interval time.Duration
	onFlush  func(n int, d time.Duration, err error)

	shards  [presenceShards]presenceShard
	pending atomic.Int64 // devices with pending updates, for Pending
	// kick wakes Run for an early flush (earlyFlushDevices); Put sends
	// without blocking, so one pending wake-up is enough.
	kick chan struct{}

	// flushMu makes flushes run one at a time, so batches reach the
	// registry in the order their updates were Put.
	flushMu sync.Mutex
	batch   []PresenceUpdate // reused between flushes, guarded by flushMu
	chunk   []chunkMember    // likewise
}

// chunkMember names a device of the chunk a flush is building.
type chunkMember struct {
	shard int
	id    string
}

// presenceShard holds the pending state of the devices hashing to it.
type presenceShard struct {
	mu   sync.Mutex
	devs map[string]*devicePresence
	// spare is the previous map, cleared after its flush; swapping the two
	// keeps steady-state flushes from allocating maps.
	spare map[string]*devicePresence
}

// NewPresenceWriter returns a writer that flushes to reg every interval
// once Run is started (interval <= 0 means DefaultPresenceInterval). onFlush, if not nil, is called after every flush
// that had something to write, with the number of devices written, the
// time the registry took and its error.
func NewPresenceWriter(reg Registry, interval time.Duration, onFlush func(n int, d time.Duration, err error)) *PresenceWriter {
	if interval <= 0 {
		interval = DefaultPresenceInterval
	}
	w := &PresenceWriter{reg: reg, interval: interval, onFlush: onFlush, kick: make(chan struct{}, 1)}
	for i := range w.shards {
		w.shards[i].devs = make(map[string]*devicePresence)
		w.shards[i].spare = make(map[string]*devicePresence)
	}
	return w
}

// shardOf hashes id with FNV-1a inline; hash/fnv would allocate per call.
func shardOf(id string) int {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= prime32
	}
	return int(h % presenceShards)
}

// Put queues u. It is called on event loops: it never blocks on I/O and
// holds a shard mutex only to merge u into the device's pending state.
// Put copies what it keeps from u, so the caller may reuse its buffers.
// Updates that could never be stored (empty or oversized id, unknown kind)
// are dropped, as the registry would reject their whole batch.
func (w *PresenceWriter) Put(u PresenceUpdate) {
	if checkUpdate(&u) != nil {
		return
	}
	s := &w.shards[shardOf(u.ID)]
	s.mu.Lock()
	p, ok := s.devs[u.ID]
	if !ok {
		p = &devicePresence{id: u.ID}
		s.devs[u.ID] = p
		if w.pending.Add(1) >= earlyFlushDevices {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
	}
	p.put(&u)
	s.mu.Unlock()
}

// Pending returns how many devices have updates waiting for a flush.
func (w *PresenceWriter) Pending() int { return int(w.pending.Load()) }

// Run flushes every interval, and at once when earlyFlushDevices devices
// are pending, until ctx is done, then flushes once more (bounded by
// finalFlushTimeout) and returns.
func (w *PresenceWriter) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush(ctx) // reported through onFlush; kept for the next tick
		case <-w.kick:
			_ = w.Flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			_ = w.Flush(fctx)
			cancel()
			return
		}
	}
}

// Flush writes everything pending now. On failure the updates are merged
// back ahead of any that arrived meanwhile and retried by the next flush.
func (w *PresenceWriter) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()

	var (
		taken [presenceShards]map[string]*devicePresence
		sizes [presenceShards]int // len(taken[i]) when taken: applied entries are deleted from it
	)
	devices := 0
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.Lock()
		if len(s.devs) > 0 {
			taken[i], sizes[i] = s.devs, len(s.devs)
			s.devs, s.spare = s.spare, nil
			if s.devs == nil {
				s.devs = make(map[string]*devicePresence)
			}
			devices += len(taken[i])
		}
		s.mu.Unlock()
	}
	if devices == 0 {
		return nil
	}
	w.pending.Add(-int64(devices))

	// The registry gets the updates in chunks of about flushChunk, so the
	// batch buffer stays small whatever the fleet did in one interval (a
	// connect storm puts every device in one flush). A device's updates
	// stay in one chunk and in order.
	var (
		err     error
		elapsed time.Duration
		batch   = w.batch[:0]
		inChunk = w.chunk[:0] // devices of the chunk being built
	)
	apply := func() {
		start := time.Now()
		err = w.reg.ApplyPresence(ctx, batch)
		elapsed += time.Since(start)
		clear(batch) // pin no flushed bytes
		batch = batch[:0]
		if err == nil {
			// Applied: a failure later must not merge these back, as
			// replaying them would not be a no-op (an offline kept for a
			// session the registry did not hold yet would now match it).
			for _, d := range inChunk {
				delete(taken[d.shard], d.id)
			}
		}
		clear(inChunk)
		inChunk = inChunk[:0]
	}
	for i, m := range taken {
		for id, p := range m {
			batch = p.appendUpdates(batch)
			inChunk = append(inChunk, chunkMember{shard: i, id: id})
			if len(batch) >= flushChunk {
				if apply(); err != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
	}
	if err == nil && len(batch) > 0 {
		apply()
	}
	if w.onFlush != nil {
		w.onFlush(devices, elapsed, err)
	}
	if err != nil {
		// What is left in taken was not applied: it is retried.
		w.mergeBack(taken)
	}
	w.batch, w.chunk = batch[:0], inChunk[:0]
	for i, m := range taken {
		if m == nil {
			continue
		}
		// By its size when taken: the applied devices were deleted from it
		// since, but the map keeps the room they took.
		keep := sizes[i] <= maxSpareDevices
		clear(m)
		s := &w.shards[i]
		s.mu.Lock()
		if s.spare == nil && keep {
			// A map that grew in a storm is left to the collector: Go maps
			// never shrink, and a spare sized for the whole fleet would be
			// held for good.
			s.spare = m
		}
		s.mu.Unlock()
	}
	return err
}

// mergeBack reinstates the pending state of a failed flush. Updates Put
// since the flush began happened after the failed ones, so each device's
// failed state is kept and the newer updates are replayed on top of it.
func (w *PresenceWriter) mergeBack(taken [presenceShards]map[string]*devicePresence) {
	var replay []PresenceUpdate
	for i, m := range taken {
		if m == nil {
			continue
		}
		s := &w.shards[i]
		s.mu.Lock()
		for id, failed := range m {
			if newer, ok := s.devs[id]; ok {
				replay = newer.appendUpdates(replay[:0])
				for j := range replay {
					failed.put(&replay[j])
				}
			} else {
				w.pending.Add(1)
			}
			s.devs[id] = failed
		}
		s.mu.Unlock()
		clear(replay)
	}
}
