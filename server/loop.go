package server

import (
	"context"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/termd/termd/protocol"
)

// loop is the state one gnet event loop owns: its encoder, decoder and MAC
// scratch (shared by all its connections, since a loop runs one callback
// at a time), its timer wheel, and a queue through which other goroutines
// hand it work. Everything but the queue is touched only on the loop.
type loop struct {
	s     *Server
	el    gnet.EventLoop
	out   *protocol.Writer
	in    *protocol.Reader
	mac   *protocol.MAC
	wheel wheel
	hb    protocol.Heartbeat    // decode scratch for the heartbeat path
	ack   protocol.HeartbeatAck // encode scratch for the heartbeat path

	mu        sync.Mutex
	queue     []func()
	spare     []func()
	scheduled bool
	tickFn    func()
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	l := &loop{
		s: s, el: el,
		out: protocol.NewWriter(), in: protocol.NewReader(nil), mac: protocol.NewMAC(),
	}
	l.wheel.init(s.tickMs, s.nowMs())
	l.tickFn = l.onTick
	return l
}

// post runs fn on the loop. Posting from many workers costs one
// Execute per drained batch, not one per result.
func (l *loop) post(fn func()) {
	l.mu.Lock()
	l.queue = append(l.queue, fn)
	wake := !l.scheduled
	l.scheduled = true
	l.mu.Unlock()
	if wake {
		if err := l.el.Execute(context.Background(), l); err != nil {
			// The engine is shutting down: connections are being closed
			// and nobody will read a late result.
			l.mu.Lock()
			l.queue, l.scheduled = l.queue[:0], false
			l.mu.Unlock()
		}
	}
}

// Run implements gnet.Runnable: it drains the queue on the loop.
func (l *loop) Run(context.Context) error {
	l.mu.Lock()
	q := l.queue
	l.queue = l.spare[:0]
	l.scheduled = false
	l.mu.Unlock()
	for i, fn := range q {
		fn()
		q[i] = nil
	}
	l.spare = q
	return nil
}

// onTick advances the timer wheel; it runs on the loop, posted by the
// server's ticker (gnet's Schedule is unsupported and OnTick runs on its
// own goroutine).
func (l *loop) onTick() {
	now := l.s.nowMs()
	l.wheel.advance(now, func(c *conn) { c.onTimer(now) })
}

// wheelSlots × tick is one revolution; later deadlines wait for their
// round in the same slot.
const wheelSlots = 4096

// wheel is a hashed timer wheel of connections. When a connection's slot
// comes round it is handed to the fire function, which decides from the
// connection's own deadlines whether to act or to add it again later.
// Frames therefore never touch the wheel: they only move the deadline.
// Adding a connection again (e.g. for an earlier deadline) supersedes its
// previous entry, which is dropped when its slot comes round.
type wheel struct {
	tickMs int64
	cur    int64 // last processed tick
	slots  [wheelSlots][]wheelEntry
}

type wheelEntry struct {
	c   *conn
	gen uint32
}

func (w *wheel) init(tickMs, nowMs int64) {
	w.tickMs = tickMs
	w.cur = nowMs / tickMs
}

// add schedules c to be looked at once atMs has passed.
func (w *wheel) add(c *conn, atMs int64) {
	t := (atMs + w.tickMs - 1) / w.tickMs
	if t <= w.cur {
		t = w.cur + 1
	}
	c.wheelAt = t
	c.wheelGen++
	i := t % wheelSlots
	w.slots[i] = append(w.slots[i], wheelEntry{c: c, gen: c.wheelGen})
}

// advance processes every tick up to nowMs.
func (w *wheel) advance(nowMs int64, fire func(*conn)) {
	end := nowMs / w.tickMs
	if end-w.cur > wheelSlots {
		// Far behind (a stalled loop): one revolution visits every slot.
		w.cur = end - wheelSlots
	}
	for w.cur < end {
		w.cur++
		i := w.cur % wheelSlots
		list := w.slots[i]
		w.slots[i] = nil
		var keep []wheelEntry
		for _, e := range list {
			switch {
			case e.c.closed || e.gen != e.c.wheelGen:
				// closed, or superseded by a later add
			case e.c.wheelAt > w.cur:
				keep = append(keep, e) // a later round
			default:
				fire(e.c)
			}
		}
		clear(list)
		if len(keep) > 0 {
			w.slots[i] = append(w.slots[i], keep...)
		}
	}
}
