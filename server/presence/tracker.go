package presence

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// Tracker is the one place presence changes: each transition (a session
// starts, a terminal is seen, a session ends) updates the table, queues
// the registry write-behind, publishes the event and counts it, together.
// It also keeps the heartbeat flags features set per device. Every method
// may be called from any goroutine; the ones the event loops call take
// only short shard locks and never do I/O.
type Tracker struct {
	table  *Table
	bus    *events.Bus
	writer *storage.PresenceWriter
	log    *slog.Logger

	flagSeed maphash.Seed
	flags    [shardCount]flagShard

	offline       [ReasonReplaced]*metrics.Counter
	replaced      *metrics.Counter
	flushDuration *metrics.Histogram
	flushErrors   *metrics.Counter
	flushFailing  atomic.Bool // a flush failure was logged and none has succeeded since

	// hist, if set, receives every online hour of every device (history.go).
	hist          *history.History
	clock         func() time.Time
	sweepInterval time.Duration
}

type flagShard struct {
	mu sync.Mutex
	m  map[string]uint32
	gv map[string]uint64 // group_version of devices whose version is not 0
}

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	// Registry receives the written-behind presence fields.
	Registry storage.Registry
	// FlushInterval is the write-behind's period (storage.flush_interval).
	FlushInterval time.Duration
	// Bus receives every transition.
	Bus *events.Bus
	// Metrics is the set the presence metrics are registered in.
	Metrics *metrics.Set
	// Log receives flush failures; nil: slog.Default().
	Log *slog.Logger
	// History, if set, is marked with every hour each device is online
	// in: at session start, on heartbeats (once per hour), by Run's sweep
	// at each hour boundary and over the whole session at its end.
	History *history.History
	// Clock overrides time.Now for the hourly sweep (tests).
	Clock func() time.Time
	// SweepInterval is how often Run checks for a new hour to sweep;
	// <= 0: DefaultSweepInterval.
	SweepInterval time.Duration
}

// NewTracker returns a Tracker with an empty table. Run must run for the
// write-behind to reach the registry.
func NewTracker(opt TrackerOptions) *Tracker {
	t := &Tracker{table: NewTable(), bus: opt.Bus, log: opt.Log, flagSeed: maphash.MakeSeed(),
		hist: opt.History, clock: opt.Clock, sweepInterval: opt.SweepInterval}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.clock == nil {
		t.clock = time.Now
	}
	if t.sweepInterval <= 0 {
		t.sweepInterval = DefaultSweepInterval
	}
	for i := range t.flags {
		t.flags[i].m = make(map[string]uint32)
		t.flags[i].gv = make(map[string]uint64)
	}
	set := opt.Metrics
	for _, r := range OfflineReasons() {
		t.offline[r] = set.NewCounter(fmt.Sprintf(`termd_offline_total{reason=%q}`, r))
	}
	t.replaced = set.NewCounter("termd_sessions_replaced_total")
	t.flushDuration = set.NewHistogram("termd_writebehind_flush_duration_seconds")
	t.flushErrors = set.NewCounter("termd_writebehind_flush_errors_total")
	set.NewGauge("termd_online", func() float64 { return float64(t.table.Online()) })
	set.NewGauge("termd_writebehind_pending", func() float64 { return float64(t.writer.Pending()) })
	t.writer = storage.NewPresenceWriter(opt.Registry, opt.FlushInterval, t.onFlush)
	return t
}

// onFlush counts flushes; a failure is logged when failures start and
// when they end (a full disk would otherwise log every second).
func (t *Tracker) onFlush(n int, d time.Duration, err error) {
	t.flushDuration.Update(d.Seconds())
	if err != nil {
		t.flushErrors.Inc()
		if !t.flushFailing.Swap(true) {
			t.log.Warn("presence write-behind flush failed; retrying every flush interval (logged again when it recovers)", "devices", n, "err", err)
		}
		return
	}
	if n > 0 && t.flushFailing.Swap(false) {
		t.log.Info("presence write-behind flushes again", "devices", n)
	}
}

// Run flushes the write-behind until ctx ends, then once more. With a
// History it also runs the hourly sweep (history.go) until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	if t.hist == nil {
		t.writer.Run(ctx)
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); t.sweepLoop(ctx) }()
	t.writer.Run(ctx)
	wg.Wait()
}

// Flush writes everything pending now.
func (t *Tracker) Flush(ctx context.Context) error { return t.writer.Flush(ctx) }

// Pending is the number of devices with updates waiting for a flush.
func (t *Tracker) Pending() int { return t.writer.Pending() }

// Started makes e the device's live session (newest login wins, spec
// §3.4). attrs are e's attrs as MessagePack (copied if kept). A session
// it replaces is told to end with GOAWAY [5, "replaced"] and the device
// stays online: the event is `replaced`, not `online`. It returns the
// replaced session, if any.
func (t *Tracker) Started(e *Entry, attrs []byte) (old *Entry) {
	old = t.table.Register(e)
	t.applyFlags(e)
	t.markHour(e, e.Since)
	remote := e.RemoteAddr()
	t.writer.Put(storage.PresenceUpdate{
		Kind: storage.PresenceOnline, ID: e.DeviceID, At: e.Since, SessionID: e.SessionID,
		RemoteAddr: remote, FW: e.FW, Model: e.Model, Attrs: attrs,
	})
	kind := events.KindOnline
	if old != nil {
		t.replaced.Inc()
		old.Owner.Kick(old.SessionID, uint8(protocol.Conflict), "replaced", ReasonReplaced)
		kind = events.KindReplaced
	}
	t.bus.Publish(events.Event{Kind: kind, DeviceID: e.DeviceID, SessionID: e.SessionID, At: e.Since, Remote: remote})
	return old
}

// Seen records a valid frame of e's session at now: last_seen, and the
// device's new status when status is not nil (the caller gives it up).
// Only what the caller decides to persist reaches the write-behind; the
// live value is e's.
func (t *Tracker) Seen(e *Entry, now int64, status []byte) {
	t.markHour(e, now)
	t.writer.Put(storage.PresenceUpdate{Kind: storage.PresenceSeen, ID: e.DeviceID, At: now, Status: status})
}

// Ended records the end of e's session at now with reason (ReasonNone
// counts as ReasonClosed). A replaced session, or one that is no longer
// the device's (a newer one took over), ends without an offline
// transition. It reports whether the device went offline.
func (t *Tracker) Ended(e *Entry, reason Reason, now int64) bool {
	if t.hist != nil {
		// Every hour the session touched, whatever the sweep saw.
		t.hist.MarkRange(e.DeviceID, e.Since, now)
	}
	if reason == ReasonReplaced || !t.table.Unregister(e.DeviceID, e.SessionID) {
		return false
	}
	if reason == ReasonNone || reason >= ReasonReplaced {
		reason = ReasonClosed
	}
	t.offline[reason].Inc()
	t.writer.Put(storage.PresenceUpdate{Kind: storage.PresenceSeen, ID: e.DeviceID, At: e.LastSeen()})
	t.writer.Put(storage.PresenceUpdate{Kind: storage.PresenceOffline, ID: e.DeviceID, At: now, SessionID: e.SessionID, Reason: reason.String()})
	t.bus.Publish(events.Event{Kind: events.KindOffline, DeviceID: e.DeviceID, SessionID: e.SessionID, At: now, Reason: reason.String()})
	return true
}

// Duplicate reports that deviceID started a duplicate-device cool-down.
func (t *Tracker) Duplicate(deviceID, remote string, now int64) {
	t.bus.Publish(events.Event{Kind: events.KindDuplicate, DeviceID: deviceID, At: now, Remote: remote})
}

// Restarted counts the n devices a crash left online, marked offline
// with ReasonRestart at start.
func (t *Tracker) Restarted(n int) { t.offline[ReasonRestart].Add(n) }

// Get returns the device's live session, or nil when it is offline.
func (t *Tracker) Get(deviceID string) *Entry { return t.table.Get(deviceID) }

// Online is the number of devices online.
func (t *Tracker) Online() int { return t.table.Online() }

// Page returns up to limit online entries after the id, in id order.
func (t *Tracker) Page(after string, limit int) []*Entry { return t.table.Page(after, limit) }

// Each calls fn for every online entry until fn returns false.
func (t *Tracker) Each(fn func(*Entry) bool) { t.table.Each(fn) }

// Heartbeat flags (HEARTBEAT_ACK flags, spec §4).
const (
	// FlagGroupStale: the device's group_version differs from the
	// terminal's; it should send GROUP_LIST.
	FlagGroupStale uint32 = 1 << 0
	// FlagUpgradePending: an offer or campaign applies that no
	// UPGRADE_QUERY of this session has returned yet.
	FlagUpgradePending uint32 = 1 << 1
)

func (t *Tracker) flagShard(id string) *flagShard {
	return &t.flags[maphash.String(t.flagSeed, id)%shardCount]
}

// SetFlags sets then clears heartbeat flag bits of a device and returns
// the device's flags. They are kept per device (only devices with a bit
// set take memory) and copied into its live session, so the next
// HEARTBEAT_ACK carries them; a session that starts later starts with
// them. Safe from any goroutine; it never waits on I/O.
func (t *Tracker) SetFlags(deviceID string, set, clear uint32) uint32 {
	s := t.flagShard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := (s.m[deviceID] | set) &^ clear
	if v == 0 {
		delete(s.m, deviceID)
	} else {
		s.m[deviceID] = v
	}
	// Under the shard lock: a session registering now either sees v in
	// applyFlags or is found here, and both store the same value.
	if e := t.table.Get(deviceID); e != nil {
		e.Owner.SetFlags(e.SessionID, v)
	}
	return v
}

// Flags returns the device's heartbeat flags.
func (t *Tracker) Flags(deviceID string) uint32 {
	s := t.flagShard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[deviceID]
}

// applyFlags gives a session that just registered its device's flags
// and group_version.
func (t *Tracker) applyFlags(e *Entry) {
	s := t.flagShard(e.DeviceID)
	s.mu.Lock()
	if v := s.m[e.DeviceID]; v != 0 {
		e.Owner.SetFlags(e.SessionID, v)
	}
	if v := s.gv[e.DeviceID]; v != 0 {
		e.Owner.SetGroupVersion(e.SessionID, v)
	}
	s.mu.Unlock()
}

// SetGroupVersion records the device's current group_version (spec §4,
// §7) and copies it into its live session, whose HEARTBEAT_ACK sets
// GROUP_STALE when the terminal's differs; a session that starts later
// starts with it. Devices at version 0 take no memory. Safe from any
// goroutine; it never waits on I/O.
func (t *Tracker) SetGroupVersion(deviceID string, v uint64) {
	s := t.flagShard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == 0 {
		delete(s.gv, deviceID)
	} else {
		s.gv[deviceID] = v
	}
	if e := t.table.Get(deviceID); e != nil {
		e.Owner.SetGroupVersion(e.SessionID, v)
	}
}

// GroupVersion returns the device's group_version as last set.
func (t *Tracker) GroupVersion(deviceID string) uint64 {
	s := t.flagShard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gv[deviceID]
}
