package server

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
)

// PushResult is how a push ended.
type PushResult uint8

// Push outcomes.
const (
	// PushSent: written to the connection (a push that needs no ack).
	PushSent PushResult = iota
	// PushAcked: the terminal acknowledged it.
	PushAcked
	// PushGivenUp: no ack within server.push_ack_timeout, or the session
	// had max_pending_acks newer ones outstanding.
	PushGivenUp
	// PushDropped: the session had ended, or ended before the ack.
	PushDropped
)

var pushResultNames = [...]string{PushSent: "sent", PushAcked: "acked", PushGivenUp: "given_up", PushDropped: "dropped"}

func (r PushResult) String() string { return pushResultNames[r] }

// ErrNotPush: the message is not a push type (0x40–0x5F), or Fanout was
// given one that needs an ack.
var ErrNotPush = errors.New("server: not a push this call can send")

// Push sends m, a push (0x40–0x5F), to the device's live session on this
// node. The frame is encoded and tagged on the session's event loop, in
// send order with its replies, with the session's next push seq. done,
// if not nil, is called exactly once with the outcome, on that loop: it
// must return quickly and never block (hand work to a goroutine). A push
// that needs an ack (spec §1.1) ends when the ack arrives, when
// server.push_ack_timeout passes, or when the session ends.
//
// Push reports false, and does not call done, when the device has no live
// session here. The session is the one live at the call: if it is
// replaced before the loop runs the push, the push is dropped (the new
// session learns the state from its heartbeat flags or its own queries).
func (s *Server) Push(deviceID string, m protocol.Message, done func(PushResult)) (bool, error) {
	if !isPush(m.Type()) {
		return false, ErrNotPush
	}
	e := s.Presence.Get(deviceID)
	if e == nil {
		return false, nil
	}
	c, ok := e.Owner.(*conn)
	if !ok {
		return false, nil
	}
	sid := e.SessionID
	c.l.post(func() { c.l.pushNow(c, sid, m, done) })
	return true, nil
}

// FanoutSlowBytes is how much unsent data a connection may hold and still
// be given a fan-out push: above it the push is skipped for that member
// and counted in termd_fanout_skipped_slow_total (spec §7: GROUP_MESSAGE
// is dropped for a member with more than 16 KiB unsent), so one reader
// that stopped reading neither slows the others nor grows our memory.
const FanoutSlowBytes = 16 << 10

// Fanout sends the same push to the live sessions of deviceIDs on this
// node. It is for pushes that need no ack (GROUP_MESSAGE): the body is
// encoded once per event loop and each session's frame gets its own seq
// and tag there. done, if not nil, is called once, from the last loop to
// finish, with the number of sessions the push was written to (spec §7:
// GROUP_SEND_ACK's delivered); like Push's done it must not block.
// Devices with no live session are skipped, and so are sessions with more
// than FanoutSlowBytes unsent (not closed: a slow member only misses the
// message).
func (s *Server) Fanout(deviceIDs []string, m protocol.Message, done func(delivered int)) error {
	t := m.Type()
	if !isPush(t) || protocol.PushNeedsAck(t) {
		return ErrNotPush
	}
	byLoop := make(map[*loop][]pushTarget)
	for _, id := range deviceIDs {
		e := s.Presence.Get(id)
		if e == nil {
			continue
		}
		if c, ok := e.Owner.(*conn); ok {
			byLoop[c.l] = append(byLoop[c.l], pushTarget{c: c, sid: e.SessionID})
		}
	}
	if len(byLoop) == 0 {
		if done != nil {
			done(0)
		}
		return nil
	}
	f := &fanout{m: m, done: done}
	f.loops.Store(int32(len(byLoop)))
	for l, targets := range byLoop {
		l.post(func() { l.fanoutNow(f, targets) })
	}
	return nil
}

func isPush(t byte) bool { return t >= 0x40 && t <= 0x5F }

type pushTarget struct {
	c   *conn
	sid uint64
}

// fanout is one Fanout call's shared state. Each loop adds its count to
// delivered before it counts itself done, so the last loop reads the total.
type fanout struct {
	m         protocol.Message
	done      func(int)
	loops     atomic.Int32
	delivered atomic.Int64
}

// encodedPush is a push whose body was encoded once for a whole loop.
type encodedPush struct {
	t    byte
	body []byte
}

func (p *encodedPush) Type() byte                    { return p.t }
func (p *encodedPush) Encode(w *protocol.Writer)     { w.Raw(p.body) }
func (p *encodedPush) Decode(*protocol.Reader) error { return protocol.Internal }

// pushNow sends one push on the loop.
func (l *loop) pushNow(c *conn, sid uint64, m protocol.Message, done func(PushResult)) {
	t := m.Type()
	if !c.serves(sid) {
		l.s.m.pushed(t, PushDropped)
		if done != nil {
			done(PushDropped)
		}
		return
	}
	l.out.Reset()
	seq := c.nextPushSeq()
	c.send(seq, m)
	needsAck := protocol.PushNeedsAck(t)
	if needsAck {
		// Tracked before the write: a slow reader closed by the write
		// ends its pending acks as dropped in OnClose.
		l.trackAck(c, seq, t, done)
	}
	c.flushOrClose()
	if needsAck {
		return
	}
	r := PushSent
	if c.closed {
		r = PushDropped
	}
	l.s.m.pushed(t, r)
	if done != nil {
		done(r)
	}
}

// fanoutNow serves one loop's share of a Fanout.
func (l *loop) fanoutNow(f *fanout, targets []pushTarget) {
	w := protocol.NewWriter()
	f.m.Encode(w)
	p := &encodedPush{t: f.m.Type(), body: w.Bytes()}
	n := 0
	for _, tg := range targets {
		c := tg.c
		if !c.serves(tg.sid) {
			l.s.m.pushed(p.t, PushDropped)
			continue
		}
		if c.gc.OutboundBuffered() > FanoutSlowBytes {
			l.s.m.fanoutSlow.Inc()
			l.s.m.pushed(p.t, PushDropped)
			continue
		}
		l.out.Reset()
		c.send(c.nextPushSeq(), p)
		c.flushOrClose()
		if c.closed {
			l.s.m.pushed(p.t, PushDropped)
			continue
		}
		l.s.m.pushed(p.t, PushSent)
		n++
	}
	f.delivered.Add(int64(n))
	if f.loops.Add(-1) == 0 && f.done != nil {
		f.done(int(f.delivered.Load()))
	}
}

// pendingAck is a push waiting for its ack, kept by the loop (not in the
// conn, which stays in its size class).
type pendingAck struct {
	seq      uint16
	typ      byte
	deadline int64 // unix ms
	done     func(PushResult)
}

// ackDue is the loop's expiry queue entry: acks are given up in the order
// they were sent, since they all wait the same time.
type ackDue struct {
	c        *conn
	seq      uint16
	deadline int64
}

// trackAck records a sent push that needs an ack.
func (l *loop) trackAck(c *conn, seq uint16, t byte, done func(PushResult)) {
	if l.acks == nil {
		l.acks = make(map[*conn][]pendingAck)
	}
	list := l.acks[c]
	if len(list) >= l.s.cfg.Server.MaxPendingAcks {
		// A terminal that acks nothing must not grow our memory: the
		// oldest push is given up now rather than at its deadline.
		old := list[0]
		list = append(list[:0], list[1:]...)
		l.endAck(old, PushGivenUp)
	}
	deadline := l.s.nowMs() + l.s.cfg.Server.PushAckTimeout.Milliseconds()
	l.acks[c] = append(list, pendingAck{seq: seq, typ: t, deadline: deadline, done: done})
	l.ackQ = append(l.ackQ, ackDue{c: c, seq: seq, deadline: deadline})
	l.s.m.pendingAcks.Add(1)
	if !l.armed.Load() {
		l.armed.Store(true) // the ticker must visit this loop to expire it
	}
}

// pushAcked matches a terminal's push ack (type t, seq) to its push.
func (l *loop) pushAcked(c *conn, t byte, seq uint16) {
	list := l.acks[c]
	for i, p := range list {
		if p.seq == seq && protocol.Response(p.typ) == t {
			l.removeAck(c, list, i)
			l.endAck(p, PushAcked)
			return
		}
	}
	l.s.m.acksUnmatched.Inc() // late (given up), unknown, or for a push that needs none
}

func (l *loop) removeAck(c *conn, list []pendingAck, i int) {
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(l.acks, c)
		return
	}
	l.acks[c] = list
}

func (l *loop) endAck(p pendingAck, r PushResult) {
	l.s.m.pendingAcks.Add(-1)
	l.s.m.pushed(p.typ, r)
	if p.done != nil {
		p.done(r)
	}
}

// dropAcks ends the pending acks of a connection that closed.
func (l *loop) dropAcks(c *conn) {
	list, ok := l.acks[c]
	if !ok {
		return
	}
	delete(l.acks, c)
	for _, p := range list {
		l.endAck(p, PushDropped)
	}
}

// expireAcks gives up the pushes whose ack deadline has passed. Entries
// of acks already matched or dropped are skipped as they come up.
func (l *loop) expireAcks(now int64) {
	n := 0
	for ; n < len(l.ackQ) && l.ackQ[n].deadline <= now; n++ {
		d := l.ackQ[n]
		list := l.acks[d.c]
		for i, p := range list {
			if p.seq == d.seq && p.deadline == d.deadline {
				l.removeAck(d.c, list, i)
				l.endAck(p, PushGivenUp)
				break
			}
		}
	}
	if n > 0 {
		clear(l.ackQ[:n])
		l.ackQ = l.ackQ[n:]
		if len(l.ackQ) == 0 {
			l.ackQ = nil // let the backing array go after a burst
		}
	}
}

// pushMetrics are the push path's counters.
type pushMetrics struct {
	byType map[byte]*[len(pushResultNames)]*metrics.Counter
}

func newPushMetrics(set *metrics.Set) pushMetrics {
	pm := pushMetrics{byType: make(map[byte]*[len(pushResultNames)]*metrics.Counter)}
	for t := byte(0x40); t <= 0x5F; t++ {
		name := protocol.TypeName(t)
		if name == "unknown" {
			continue
		}
		var cs [len(pushResultNames)]*metrics.Counter
		for r, rn := range pushResultNames {
			cs[r] = set.NewCounter(fmt.Sprintf(`termd_pushes_total{type=%q,result=%q}`, name, rn))
		}
		pm.byType[t] = &cs
	}
	return pm
}

// pushed counts a push's outcome (pushes of types TGP/1 does not define
// are not counted: only features send pushes, and they use defined ones).
func (m *serverMetrics) pushed(t byte, r PushResult) {
	if cs := m.push.byType[t]; cs != nil {
		cs[r].Inc()
	}
}
