package loadtest

import (
	"context"
	"errors"
	"math"

	"github.com/panjf2000/gnet/v2"
)

// Run implements gnet.Runnable: the ticker's tick, run on the loop. It
// fires every terminal whose due time has passed: a HELLO deadline, an
// ack deadline, or a slot of the schedule.
func (l *loop) Run(context.Context) error {
	l.queued.Store(false)
	e := l.e
	now := e.now()
	sc := e.sched.Load()
	if l.gen.Load() != sc.gen {
		l.replan(now, sc)
	}
	for len(l.heap) > 0 && l.heap[0].due <= now+tickLead {
		l.fire(l.heap[0], now, sc)
	}
	l.rearm()
	return nil
}

// rearm publishes the loop's earliest due time for the ticker, and wakes
// the ticker if that is before its next wake.
func (l *loop) rearm() {
	w := int64(math.MaxInt64)
	if len(l.heap) > 0 {
		w = l.heap[0].due
	}
	l.wakeAt.Store(w)
	if w < l.e.tickAt.Load() {
		l.e.wakeTicker()
	}
}

// replan moves every live terminal of the loop to the new schedule.
func (l *loop) replan(now int64, sc *schedule) {
	l.gen.Store(sc.gen)
	keep := l.heap[:0]
	for _, tc := range l.heap {
		if tc.state == stLive && !l.plan(tc, now, sc) {
			tc.hidx = -1
			continue
		}
		keep = append(keep, tc)
	}
	clear(l.heap[len(keep):])
	l.heap = keep
	for i, tc := range l.heap {
		tc.hidx = int32(i)
	}
	l.heap.init()
	// Live terminals that had no slots under the old schedule.
	if sc.mode != schedNone {
		for i := range l.e.live {
			if tc := l.e.live[i].Load(); tc != nil && tc.l == l && tc.hidx < 0 && tc.state == stLive {
				if l.plan(tc, now, sc) {
					l.heap.push(tc)
				}
			}
		}
	}
}

// plan sets a live terminal's next slot under sc; false if sc gives it
// none.
func (l *loop) plan(tc *termConn, now int64, sc *schedule) bool {
	switch sc.mode {
	case schedFixed:
		tc.period = sc.period
		tc.due = firstSlot(now, sc.start, sc.period, phaseOf(tc.t.Index))
	case schedServer:
		if tc.period <= 0 {
			return false
		}
		// Spec §4: the first heartbeat at a random point in [0.5, 1.0] ×
		// the interval; later ones every interval.
		tc.due = now + tc.period/2 + int64(phaseOf(tc.t.Index)*float64(tc.period/2))
	default:
		return false
	}
	return true
}

// fire handles a terminal whose due time has passed. It always moves the
// terminal's due time forward or takes it out of the heap.
func (l *loop) fire(tc *termConn, now int64, sc *schedule) {
	e := l.e
	if tc.state == stHello {
		l.ctr.fail("timeout:hello")
		l.closeNow(tc)
		return
	}
	if tc.npend > 0 {
		if oldest := tc.oldest(); now-oldest > int64(e.cfg.AckTimeout) {
			l.ctr.fail("timeout:answer")
			l.closeNow(tc)
			return
		}
	}
	// Slots due before the next tick go now (see tickLead).
	o := planSlot(now+tickLead, tc.due, tc.period, int(tc.npend), sc.limit)
	if o.skippedLate > 0 {
		l.ctr.skippedLate.Add(o.skippedLate)
	}
	if o.skippedBusy > 0 {
		l.ctr.skippedBusy.Add(o.skippedBusy)
	}
	tc.due = o.next
	l.heap.fix(int(tc.hidx))
	if !o.send {
		return
	}
	kind := uint8(kindHeartbeat)
	switch {
	case e.cfg.Mix != nil:
		kind = e.cfg.Mix.pick(l.rng.Uint32())
	case e.cfg.Upgrade != nil && e.up != nil:
		kind = e.up.NextKind(&tc.t, e.cfg.Upgrade)
	case e.cfg.Campaign && e.camp != nil:
		kind = e.camp.CampaignKind(&tc.t)
		if kind == kindIdle {
			return // nothing to send in this slot
		}
	}
	seq := tc.nextSeq
	tc.nextSeq++
	var out []byte
	if kind == kindHeartbeat {
		out = e.proto.Ping(&tc.t, seq, l.out[:0])
	} else {
		ok := false
		if e.req != nil {
			out, ok = e.req.Request(&tc.t, mixKinds[kind], seq, l.out[:0])
		}
		if !ok {
			l.ctr.count(skippedTypeKey[kind], 1)
			return
		}
	}
	l.out = out
	l.lag.Record((now - o.intended) / 1e3) // an early send counts as no lag
	tc.addPending(seq, kind, min(o.intended, now))
	l.ctr.sent.Add(1)
	// A failed write closes the connection (OnClose) inside Write; the
	// heap was updated before, so the tick goes on safely.
	_, _ = tc.gc.Write(out)
}

// closeNow closes tc at once, from the loop (OnClose runs before it
// returns), as the engine's own decision.
func (l *loop) closeNow(tc *termConn) {
	tc.closing = true
	l.heap.remove(tc)
	if err := l.el.Close(tc.gc); err != nil {
		tc.state = stClosed
	}
}

// event handles what Proto.Read recognised.
func (l *loop) event(tc *termConn, ev Event) gnet.Action {
	e := l.e
	if ev.Reply != nil {
		if _, err := tc.gc.Write(ev.Reply); err != nil {
			return gnet.Close
		}
	}
	if ev.Note != "" {
		l.ctr.count(ev.Note, 1)
	}
	switch ev.Kind {
	case EvOpened:
		return l.opened(tc, ev)
	case EvPong, EvAnswer:
		if tc.state != stLive {
			l.ctr.fail("answer_before_session")
			tc.closing = true
			return gnet.Close
		}
		p, ok := tc.take(ev.Seq, ev.Kind == EvPong)
		if !ok {
			l.ctr.count("unmatched_answers", 1)
			return gnet.None
		}
		now := e.now()
		l.ctr.answered.Add(1)
		us := (now - p.at) / 1e3
		l.record(mixKinds[p.kind], us)
		if p.kind == kindHeartbeat {
			l.step.Record(us)
			if e.cfg.Campaign && e.camp != nil && e.camp.Placing() {
				l.recordOnly(KindHeartbeatPlacing, us)
			}
		}
		if ev.Err != nil {
			l.ctr.refusals.Add(1)
		}
		if ev.Err != nil || e.cfg.Mix != nil {
			l.ctr.answer(p.kind, ev.Status)
		}
	case EvRefused:
		tc.closing = true
		l.ctr.count("refused", 1)
		l.ctr.fail("refused:" + statusOr(ev.Status, ev.Err))
		return gnet.Close
	case EvClosed:
		tc.closing = true
		if errors.Is(ev.Err, ErrReplaced) {
			l.ctr.count("replaced", 1)
		} else {
			l.ctr.fail("goaway:" + statusOr(ev.Status, ev.Err))
		}
		return gnet.Close
	}
	return gnet.None
}

// opened makes a terminal live: its connect is over, its slots begin.
func (l *loop) opened(tc *termConn, ev Event) gnet.Action {
	e := l.e
	if tc.state != stHello {
		l.ctr.fail("second_session_open")
		tc.closing = true
		return gnet.Close
	}
	now := e.now()
	l.heap.remove(tc)
	tc.state = stLive
	<-e.sem
	e.settled.Add(1)
	e.connected.Add(1)
	l.ctr.count("connect_ok", 1)
	l.record("hello", (now-tc.dialAt)/1e3)
	e.live[tc.t.Index].Store(tc)
	tc.period = int64(ev.Interval)
	if tc.period <= 0 {
		tc.period = int64(e.cfg.DefaultInterval)
	}
	if sc := e.sched.Load(); sc.gen == l.gen.Load() && l.plan(tc, now, sc) {
		l.heap.push(tc)
		l.rearm()
	}
	// Otherwise the loop re-plans at its next tick and picks tc up.
	return gnet.None
}

// record adds one latency, µs, of request kind.
func (l *loop) record(kind string, us int64) {
	l.recordOnly(kind, us)
	l.win.Record(us)
}

// recordOnly adds one latency, µs, of kind without counting it in the
// second's window (a second view of a request already recorded).
func (l *loop) recordOnly(kind string, us int64) {
	h := l.lat[kind]
	if h == nil {
		h = NewHistogram()
		l.lat[kind] = h
	}
	h.Record(us)
}

func statusOr(status string, err error) string {
	if status != "" {
		return status
	}
	if err != nil {
		return err.Error()
	}
	return "unknown"
}

// addPending records an outstanding request; the caller checked there
// is room (npend < limit ≤ len(pend)).
func (tc *termConn) addPending(seq uint16, kind uint8, at int64) {
	if at == 0 {
		at = 1 // 0 marks a free entry
	}
	for i := range tc.pend {
		if tc.pend[i].at == 0 {
			tc.pend[i] = pending{at: at, seq: seq, kind: kind}
			tc.npend++
			return
		}
	}
}

// take removes and returns the request an answer with seq answers. A
// heartbeat answer without a matching seq (MQTT's PINGRESP has none)
// takes the oldest outstanding heartbeat: servers answer them in order.
func (tc *termConn) take(seq uint16, heartbeat bool) (pending, bool) {
	if tc.npend == 0 {
		return pending{}, false
	}
	oldest := -1
	for i := range tc.pend {
		p := tc.pend[i]
		if p.at == 0 {
			continue
		}
		if p.seq == seq && (p.kind == kindHeartbeat) == heartbeat {
			tc.pend[i] = pending{}
			tc.npend--
			return p, true
		}
		if heartbeat && p.kind == kindHeartbeat && (oldest < 0 || p.at < tc.pend[oldest].at) {
			oldest = i
		}
	}
	if oldest < 0 {
		return pending{}, false
	}
	p := tc.pend[oldest]
	tc.pend[oldest] = pending{}
	tc.npend--
	return p, true
}

// oldest is the intended time of the oldest outstanding request.
func (tc *termConn) oldest() int64 {
	var at int64
	for _, p := range tc.pend {
		if p.at != 0 && (at == 0 || p.at < at) {
			at = p.at
		}
	}
	return at
}
