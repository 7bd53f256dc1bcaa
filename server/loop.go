package server

import (
	"context"
	"sync"
	"sync/atomic"

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
	hello protocol.Hello        // decode scratch for HELLO
	ack   protocol.HeartbeatAck // encode scratch for the heartbeat path

	strs map[string]string // interned firmware versions and models

	// Pushes waiting for their ack, by connection (only connections with
	// one outstanding appear), and their expiry queue in send order.
	acks map[*conn][]pendingAck
	ackQ []ackDue

	// The connections before HELLO_OK, oldest first (prehello.go), and
	// how many, for other loops choosing whom to evict from.
	preHead, preTail *conn
	preN             atomic.Int32
	evictFn          func()
	peek             []byte // scratch for helloWaiting

	// tickDone mirrors wheel.cur and armed whether the wheel holds
	// entries, for the ticker goroutine: it posts a tick only to a loop
	// that has entries and that traffic has not advanced lately.
	tickDone atomic.Int64
	armed    atomic.Bool

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
	l.evictFn = func() { l.evictOldest() }
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
func (l *loop) onTick() { l.advance(l.s.nowMs(), nil) }

// advance fires the wheel's due entries. A connection in the middle of
// its own callback (busy) is not fired now but looked at next tick: its
// callback is about to return an action of its own.
func (l *loop) advance(now int64, busy *conn) {
	l.wheel.advance(now, func(c *conn) {
		if c == busy {
			l.schedule(c, now+l.wheel.tickMs)
			return
		}
		c.onTimer(now)
	})
	l.expireAcks(now)
	l.tickDone.Store(l.wheel.cur)
	l.armed.Store(l.wheel.n > 0 || len(l.ackQ) > 0)
}

// maybeAdvance advances the wheel from a traffic callback when a tick is
// due, so a busy loop needs no wake-ups from the ticker.
func (l *loop) maybeAdvance(busy *conn, now int64) {
	if now/l.wheel.tickMs > l.wheel.cur {
		l.advance(now, busy)
	}
}

// needsTick reports, from the ticker goroutine, whether the loop should
// be woken for tick t: it has entries and traffic has not advanced it to
// t yet.
func (l *loop) needsTick(t int64) bool {
	return l.armed.Load() && l.tickDone.Load() < t
}

// schedule puts c on the wheel for atMs (see wheel.add), on the loop.
func (l *loop) schedule(c *conn, atMs int64) {
	l.wheel.add(c, atMs)
	if !l.armed.Load() {
		l.armed.Store(true)
	}
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
	n      int   // entries held, superseded ones included
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
	w.n++
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
		w.n -= len(list)
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
			w.n += len(keep)
		}
	}
}

// maxInterned bounds a loop's table of interned strings.
const maxInterned = 1024

// intern returns a shared copy of v. A fleet reports few distinct
// firmware versions and models, so sessions share one copy per loop
// instead of holding their own; past maxInterned distinct values (a
// fleet reporting nonsense) new ones are kept as they are.
func (l *loop) intern(v string) string {
	if p, ok := l.strs[v]; ok {
		return p
	}
	if len(l.strs) < maxInterned {
		if l.strs == nil {
			l.strs = make(map[string]string)
		}
		l.strs[v] = v
	}
	return v
}
