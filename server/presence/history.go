package presence

import (
	"context"
	"time"

	"github.com/termd/termd/server/presence/history"
)

// DefaultSweepInterval is how often the tracker checks whether a new
// hour began, to mark every online device in it: a device connected
// across an hour boundary without a frame (a 30-minute heartbeat) is
// marked in the new hour within this interval.
const DefaultSweepInterval = time.Minute

// History is the online history the tracker marks, nil if none.
func (t *Tracker) History() *history.History { return t.hist }

// markHour marks e's device online at ms: one of 64 shard locks and a
// bit test (about 50 ns), no allocation once the device's history exists
// (its session's start made it). The session keeps no "hour already
// marked" field: the connection's size class has no room for it
// (TestConnSize), and the history's own bit test is as cheap.
func (t *Tracker) markHour(e *Entry, ms int64) {
	if t.hist != nil {
		t.hist.Mark(e.DeviceID, ms)
	}
}

// SweepHistory marks every online device at nowMs (those already marked
// in that hour are skipped) and drops the histories that
// have no hour left in the window. Run calls it at each hour boundary;
// it returns how many devices it marked.
func (t *Tracker) SweepHistory(nowMs int64) int {
	if t.hist == nil {
		return 0
	}
	n := 0
	t.table.Each(func(e *Entry) bool {
		if !t.hist.Online(e.DeviceID, nowMs-nowMs%history.HourMs) {
			t.markHour(e, nowMs)
			n++
		}
		return true
	})
	t.hist.Prune(nowMs)
	return n
}

// sweepLoop runs SweepHistory once per UTC hour (checked every
// sweepInterval, so within that interval of the boundary) until ctx ends.
func (t *Tracker) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(t.sweepInterval)
	defer tick.Stop()
	last := t.clock().UnixMilli() / history.HourMs
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := t.clock().UnixMilli()
		if h := now / history.HourMs; h != last {
			last = h
			t.SweepHistory(now)
		}
	}
}
