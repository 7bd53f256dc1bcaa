package presence

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// nopOwner is an Owner that ignores everything.
type nopOwner struct{}

func (nopOwner) Kick(uint64, uint8, string, Reason) {}
func (nopOwner) SetFlags(uint64, uint32)            {}
func (nopOwner) SetGroupVersion(uint64, uint64)     {}

// h0 is a UTC hour boundary.
var h0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli()

func histTracker(t *testing.T, clock func() time.Time, sweep time.Duration) (*Tracker, *history.History) {
	t.Helper()
	hist := history.New(history.Options{Clock: clock})
	tr := NewTracker(TrackerOptions{
		Registry: storage.NewMemory(), FlushInterval: time.Hour, Bus: events.NewBus(),
		Metrics: metrics.NewSet(), History: hist, Clock: clock, SweepInterval: sweep,
	})
	return tr, hist
}

// Started, Seen and Ended mark the hours a session is in; Ended marks
// every hour of the session even without a sweep.
func TestTrackerMarksHistory(t *testing.T) {
	clock := func() time.Time { return time.UnixMilli(h0 + 10*history.HourMs) }
	tr, hist := histTracker(t, clock, 0)
	a := &Entry{DeviceID: "A", SessionID: 1, Since: h0 + 5*60_000, Owner: nopOwner{}}
	tr.Started(a, nil)
	if !hist.Online("A", h0) || hist.Online("A", h0+history.HourMs) {
		t.Fatal("Started did not mark its hour only")
	}
	tr.Seen(a, h0+history.HourMs+1, nil)
	if !hist.Online("A", h0+history.HourMs) {
		t.Fatal("Seen did not mark its hour")
	}
	// Ended 4 hours later: hours 2 and 3 were never seen nor swept.
	tr.Ended(a, ReasonClosed, h0+4*history.HourMs+10)
	for i := int64(0); i <= 5; i++ {
		if got, want := hist.Online("A", h0+i*history.HourMs), i <= 4; got != want {
			t.Fatalf("hour +%d: %v, want %v", i, got, want)
		}
	}
	if hist.Online("B", h0) {
		t.Fatal("a device never seen is online")
	}
}

// A device connected across an hour boundary without a frame is marked
// in the new hour by Run's sweep (the clock is injected).
func TestTrackerHourlySweep(t *testing.T) {
	var now atomic.Int64
	now.Store(h0 - 2000) // 09:59:58
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	tr, hist := histTracker(t, clock, 5*time.Millisecond)
	quiet := &Entry{DeviceID: "quiet", SessionID: 1, Since: now.Load(), Owner: nopOwner{}}
	tr.Started(quiet, nil)
	gone := &Entry{DeviceID: "gone", SessionID: 2, Since: now.Load(), Owner: nopOwner{}}
	tr.Started(gone, nil)
	tr.Ended(gone, ReasonClosed, now.Load()+1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	time.Sleep(30 * time.Millisecond)
	if hist.Online("quiet", h0) {
		t.Fatal("marked before the hour began")
	}
	for i := int64(0); i < 3; i++ {
		now.Store(h0 + i*history.HourMs + 1500) // hh:00:01.5
		deadline := time.Now().Add(5 * time.Second)
		for !hist.Online("quiet", h0+i*history.HourMs) {
			if time.Now().After(deadline) {
				t.Fatalf("hour +%d not swept", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if hist.Online("gone", h0) {
		t.Fatal("an offline device was swept")
	}
	if hist.Online("quiet", h0+3*history.HourMs) {
		t.Fatal("a future hour is marked")
	}
}

// The sweep skips devices whose session marked the hour already, and
// marking on the heartbeat path allocates nothing.
func TestSweepSkipsAndNoAllocs(t *testing.T) {
	tr, hist := histTracker(t, nil, 0)
	e := &Entry{DeviceID: "A", SessionID: 1, Since: h0, Owner: nopOwner{}}
	tr.Started(e, nil)
	if n := tr.SweepHistory(h0 + 10); n != 0 {
		t.Fatalf("swept %d devices already marked this hour", n)
	}
	if n := tr.SweepHistory(h0 + history.HourMs); n != 1 {
		t.Fatalf("swept %d devices in a new hour", n)
	}
	ms := h0 + history.HourMs
	if n := testing.AllocsPerRun(1000, func() { ms += history.HourMs / 100; tr.markHour(e, ms) }); n != 0 {
		t.Fatalf("%v allocations per mark", n)
	}
	if hist.Len() != 1 {
		t.Fatalf("len %d", hist.Len())
	}
}

// Without a History nothing changes.
func TestTrackerWithoutHistory(t *testing.T) {
	tr := NewTracker(TrackerOptions{Registry: storage.NewMemory(), FlushInterval: time.Hour, Bus: events.NewBus(), Metrics: metrics.NewSet()})
	e := &Entry{DeviceID: "A", SessionID: 1, Since: h0, Owner: nopOwner{}}
	tr.Started(e, nil)
	tr.Seen(e, h0+1, nil)
	tr.Ended(e, ReasonClosed, h0+2)
	if tr.History() != nil || tr.SweepHistory(h0) != 0 {
		t.Fatal("history without one")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.Run(ctx)
}
