package loadtest

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Engine defaults and bounds.
const (
	// tickInterval is the ticker's resolution: a loop with slots due is
	// ticked at most this often (in practice every ~1.1 ms: Go's timers
	// sleep in whole milliseconds). A tick sends the slots due before the
	// next tick, up to tickInterval early, so the tick's granularity does
	// not show up as latency: an answer is timed from the intended time or
	// the actual send, whichever is earlier: from the send for an early
	// one, from the intended time for a late one (a busy generator: that
	// delay is counted, and also shows in Latency["send_lag"]).
	tickInterval = time.Millisecond
	// tickLead is how far ahead of its intended time a slot may be sent.
	tickLead = int64(tickInterval)
	// maxTickSleep bounds the ticker's sleep when no loop has anything due
	// sooner (an idle fleet): waking every millisecond for nothing costs a
	// fifth of a core in context switches.
	maxTickSleep = 50 * time.Millisecond
	// maxPipeline is TGP's bound on outstanding requests per connection.
	maxPipeline = 16
	// loopReadBuffer is each event loop's read buffer. The server sends
	// at most 4 KiB frames and a terminal's answers are small.
	loopReadBuffer = 16 << 10
	// connWriteBuffer bounds a connection's outbound ring buffer.
	connWriteBuffer = 4 << 10
	// maxDialers bounds the dialing goroutines whatever -concurrency is:
	// a dial on loopback takes microseconds, the HELLO round trip is what
	// keeps connects in flight, and that is bounded by the semaphore.
	maxDialers = 256
)

// Terminal connection states.
const (
	stHello  uint8 = iota // HELLO sent, waiting for HELLO_OK
	stLive                // session up
	stClosed              // OnClose ran
)

// scheduleMode says where a terminal's slots come from.
type scheduleMode uint8

const (
	// schedNone: no requests (connect).
	schedNone scheduleMode = iota
	// schedFixed: every terminal at start + (k + phase)·period.
	schedFixed
	// schedServer: each terminal at the interval its server announced
	// (idle, churn); the first slot in [0.5, 1.0]·interval after HELLO_OK,
	// as the spec asks of terminals.
	schedServer
)

// schedule is the current request schedule; scenarios replace it (a
// saturation step) and each loop re-plans its terminals at its next tick.
type schedule struct {
	gen    uint32
	mode   scheduleMode
	start  int64 // engine ns
	period int64 // ns (schedFixed)
	limit  int   // outstanding requests per terminal
}

// engineConfig is what the engine needs of a scenario's configuration.
type engineConfig struct {
	Target       string
	Src          *SourceAddrs
	Concurrency  int
	DialTimeout  time.Duration
	HelloTimeout time.Duration
	AckTimeout   time.Duration
	// Pipeline sizes each terminal's table of outstanding requests.
	Pipeline int
	// Loops is the number of event loops; 0 is one per CPU.
	Loops int
	// Mix, if set, picks each slot's request kind (mixed scenario).
	Mix *Mix
	// Upgrade, if set, makes each slot the terminal's next upgrade step
	// (upgrade scenario).
	Upgrade *UpgradePlan
	// Campaign makes each slot the terminal's next campaign step, a
	// heartbeat, or nothing (campaign scenario; see campaign.go).
	Campaign bool
	// DefaultInterval is the schedServer period when the server
	// announces none (MQTT).
	DefaultInterval time.Duration
}

// dialJob asks the dialers to connect terminal idx.
type dialJob struct {
	idx      int
	takeover bool // the terminal's current session stays up until replaced
}

// engine drives terminals over one gnet client: event loops own the
// connections, a ticker goroutine hands each loop its due slots, and a
// bounded pool of dialers opens sockets from chosen source addresses.
type engine struct {
	gnet.BuiltinEventEngine

	cfg   engineConfig
	proto Proto
	req   Requester  // nil if proto cannot send mixed requests
	up    Upgrader   // nil if proto cannot run the upgrade scenario
	camp  Campaigner // nil if proto cannot run the campaign scenario
	scr   Scratcher  // nil if proto keeps no per-loop scratch
	ids   []string   // device ids by terminal index
	base  time.Time  // the engine clock's zero

	cli   *gnet.Client
	loops sync.Map // gnet.EventLoop → *loop
	lmu   sync.Mutex
	list  atomic.Pointer[[]*loop]

	sched    atomic.Pointer[schedule]
	tickAt   atomic.Int64               // engine ns the ticker next wakes at
	nudge    chan struct{}              // wakes the ticker early (capacity 1)
	live     []atomic.Pointer[termConn] // each terminal's live session
	sem      chan struct{}              // connects in flight (dial + HELLO)
	jobs     chan dialJob
	stopping atomic.Bool

	dial      counters // the dialers' tallies
	connected atomic.Int64
	settled   atomic.Int64 // connect attempts that ended (session up or failed)
	dialLat   *Histogram
	dialWG    sync.WaitGroup
	tickWG    sync.WaitGroup
	cancel    context.CancelFunc
}

// termConn is one terminal connection's engine state; a Term plus what
// the open-loop schedule needs. Touched only on its event loop, except
// gc and reconnect (read by the churn driver after the session is
// published in engine.live).
type termConn struct {
	t         Term
	l         *loop
	gc        gnet.Conn
	dialAt    int64 // engine ns the dial started
	due       int64 // heap key: next slot, or the HELLO deadline
	period    int64 // schedServer period
	hidx      int32 // heap index, -1 when not in the heap
	state     uint8
	npend     uint8
	nextSeq   uint16
	closing   bool        // the engine closed it, or the server said why
	reconnect atomic.Bool // churn: dial this terminal again once closed
	pend      []pending
}

// pending is one outstanding request.
type pending struct {
	at   int64 // engine ns its latency counts from (see tickLead); 0 = free
	seq  uint16
	kind uint8
}

// loop is one event loop's state: the Proto scratch, the heap of its
// terminals' due times, its tallies and latency histograms.
type loop struct {
	e       *engine
	el      gnet.EventLoop
	scratch any
	out     []byte
	heap    termHeap
	rng     *rand.Rand
	queued  atomic.Bool
	// gen is the schedule generation the loop planned for; wakeAt the
	// earliest due time in its heap (engine ns). The ticker reads both.
	gen    atomic.Uint32
	wakeAt atomic.Int64

	ctr counters
	// lat is written on the loop and read only after the loops stopped.
	lat map[string]*Histogram
	// win (this second) and step (this saturation step) are drained by
	// other goroutines.
	win  *Histogram
	step *Histogram
	// lag is how late requests went out after their intended time: the
	// generator's own share of the measured latency.
	lag *Histogram
}

func newEngine(cfg engineConfig, proto Proto, ids []string) *engine {
	if cfg.Pipeline < 1 {
		cfg.Pipeline = 1
	}
	cfg.Pipeline = min(cfg.Pipeline, maxPipeline)
	cfg.Concurrency = max(cfg.Concurrency, 1)
	e := &engine{
		cfg: cfg, proto: proto, ids: ids, base: time.Now(),
		live:    make([]atomic.Pointer[termConn], len(ids)),
		sem:     make(chan struct{}, cfg.Concurrency),
		jobs:    make(chan dialJob, 2*len(ids)+64),
		dialLat: NewHistogram(),
		nudge:   make(chan struct{}, 1),
	}
	e.req, _ = proto.(Requester)
	e.up, _ = proto.(Upgrader)
	e.camp, _ = proto.(Campaigner)
	e.scr, _ = proto.(Scratcher)
	e.sched.Store(&schedule{mode: schedNone, limit: 1})
	empty := []*loop{}
	e.list.Store(&empty)
	return e
}

// now is the engine clock: monotonic nanoseconds since the engine began.
func (e *engine) now() int64 { return int64(time.Since(e.base)) }

// start runs the event loops, the ticker and the dialers until stop.
func (e *engine) start(ctx context.Context) error {
	opts := []gnet.Option{
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReadBufferCap(loopReadBuffer),
		gnet.WithWriteBufferCap(connWriteBuffer),
		gnet.WithLogger(quietLogger{}),
	}
	if e.cfg.Loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(e.cfg.Loops))
	} else {
		opts = append(opts, gnet.WithMulticore(true))
	}
	cli, err := gnet.NewClient(e, opts...)
	if err != nil {
		return err
	}
	if err := cli.Start(); err != nil {
		return err
	}
	e.cli = cli
	ctx, e.cancel = context.WithCancel(ctx)
	e.tickWG.Add(1)
	go e.ticker(ctx)
	for range min(e.cfg.Concurrency, maxDialers) {
		e.dialWG.Add(1)
		go e.dialer(ctx)
	}
	return nil
}

// stop ends the run: dialers and the ticker first (a dialer waiting in
// Enroll needs the loops), then the loops, which close every connection.
// Tallies are final once it returns.
func (e *engine) stop() {
	e.stopping.Store(true)
	e.cancel()
	e.dialWG.Wait()
	e.tickWG.Wait()
	_ = e.cli.Stop()
}

// setSchedule replaces the request schedule.
func (e *engine) setSchedule(mode scheduleMode, start int64, period time.Duration, limit int) {
	old := e.sched.Load()
	e.sched.Store(&schedule{gen: old.gen + 1, mode: mode, start: start, period: int64(period), limit: max(1, min(limit, e.cfg.Pipeline))})
	e.wakeTicker()
}

// connect queues connects for terminals [from, to).
func (e *engine) connect(from, to int) {
	for i := from; i < to; i++ {
		e.enqueue(dialJob{idx: i})
	}
}

// enqueue hands a job to the dialers without blocking; the queue holds
// two per terminal, more than a run can have waiting.
func (e *engine) enqueue(j dialJob) bool {
	select {
	case e.jobs <- j:
		return true
	default:
		e.dial.fail("dial_queue_full")
		return false
	}
}

// dialer connects queued terminals, holding a semaphore slot from the
// dial until the HELLO's outcome.
func (e *engine) dialer(ctx context.Context) {
	defer e.dialWG.Done()
	for {
		var j dialJob
		select {
		case <-ctx.Done():
			return
		case j = <-e.jobs:
		}
		select {
		case <-ctx.Done():
			return
		case e.sem <- struct{}{}:
		}
		e.dialOne(ctx, j)
	}
}

func (e *engine) dialOne(ctx context.Context, j dialJob) {
	tc := &termConn{t: Term{Index: j.idx, ID: e.ids[j.idx]}, hidx: -1, pend: make([]pending, e.cfg.Pipeline)}
	tc.dialAt = e.now()
	d := net.Dialer{Timeout: e.cfg.DialTimeout}
	if a := e.cfg.Src.Next(); a != nil {
		d.LocalAddr = a
	}
	nc, err := d.DialContext(ctx, "tcp", e.cfg.Target)
	if err != nil {
		<-e.sem
		if ctx.Err() == nil {
			e.dial.fail("dial")
			e.dial.count("connect_failed", 1)
			e.settled.Add(1)
		}
		return
	}
	e.dialLat.Record((e.now() - tc.dialAt) / 1e3)
	if j.takeover {
		e.dial.count("takeovers", 1)
	}
	// OnOpen runs on the chosen loop before EnrollContext returns and
	// sends the HELLO; from then on the loop owns tc.
	if _, err := e.cli.EnrollContext(nc, tc); err != nil {
		<-e.sem
		if !e.stopping.Load() {
			e.dial.fail("enroll")
			e.dial.count("connect_failed", 1)
			e.settled.Add(1)
		}
	}
}

// ticker posts a tick to each loop that has something due (or a new
// schedule to plan), at most every tickInterval, and otherwise sleeps
// until the earliest due time, up to maxTickSleep; a loop that lowers
// its earliest due time below the ticker's next wake nudges it. A loop
// that has not run its previous tick yet is not posted again.
func (e *engine) ticker(ctx context.Context) {
	defer e.tickWG.Done()
	t := time.NewTimer(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.nudge:
		}
		now := e.now()
		gen := e.sched.Load().gen
		next := now + int64(maxTickSleep)
		for _, l := range *e.list.Load() {
			w := l.wakeAt.Load()
			if w <= now+tickLead || l.gen.Load() != gen {
				if l.queued.CompareAndSwap(false, true) {
					if err := l.el.Execute(ctx, l); err != nil {
						l.queued.Store(false)
					}
				}
				w = now + int64(tickInterval)
			}
			next = min(next, w)
		}
		next = max(next, now+int64(tickInterval))
		e.tickAt.Store(next)
		t.Reset(time.Duration(next - now))
	}
}

// wakeTicker makes the ticker look at the loops now.
func (e *engine) wakeTicker() {
	select {
	case e.nudge <- struct{}{}:
	default:
	}
}

// loopOf returns the state of gnet loop el, creating it on first use.
func (e *engine) loopOf(el gnet.EventLoop) *loop {
	if v, ok := e.loops.Load(el); ok {
		return v.(*loop)
	}
	e.lmu.Lock()
	defer e.lmu.Unlock()
	if v, ok := e.loops.Load(el); ok {
		return v.(*loop)
	}
	l := &loop{
		e: e, el: el, out: make([]byte, 0, 512),
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		lat: make(map[string]*Histogram), win: NewHistogram(), step: NewHistogram(), lag: NewHistogram(),
	}
	l.gen.Store(^uint32(0)) // plan at the first tick
	if e.scr != nil {
		l.scratch = e.scr.NewScratch()
	}
	e.loops.Store(el, l)
	list := append(append([]*loop(nil), *e.list.Load()...), l)
	e.list.Store(&list)
	e.wakeTicker() // the new loop plans its schedule at once
	return l
}

// loopList is the loops that have had a connection so far.
func (e *engine) loopList() []*loop { return *e.list.Load() }

// OnOpen implements gnet.EventHandler: the terminal sends its HELLO and
// waits for the answer until its HELLO deadline.
func (e *engine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	tc, ok := c.Context().(*termConn)
	if !ok {
		return nil, gnet.Close
	}
	l := e.loopOf(c.EventLoop())
	tc.l, tc.gc, tc.t.Scratch = l, c, l.scratch
	tc.state = stHello
	l.out = e.proto.Open(&tc.t, time.Now(), l.out[:0])
	tc.due = tc.dialAt + int64(e.cfg.HelloTimeout)
	l.heap.push(tc)
	l.rearm()
	return l.out, gnet.None
}

// OnTraffic implements gnet.EventHandler: every whole message in the
// inbound buffer goes through Proto.Read; nothing is kept past the call.
func (e *engine) OnTraffic(c gnet.Conn) gnet.Action {
	tc, ok := c.Context().(*termConn)
	if !ok || tc.state == stClosed {
		return gnet.Close
	}
	buf, _ := c.Peek(-1)
	used := 0
	action := gnet.None
	for used < len(buf) && action == gnet.None {
		n, ev, err := e.proto.Read(&tc.t, buf[used:])
		used += n
		if err != nil {
			tc.l.ctr.fail("protocol")
			tc.closing = true
			action = gnet.Close
			break
		}
		if n == 0 {
			break
		}
		action = tc.l.event(tc, ev)
	}
	_, _ = c.Discard(used)
	return action
}

// OnClose implements gnet.EventHandler.
func (e *engine) OnClose(c gnet.Conn, _ error) gnet.Action {
	tc, ok := c.Context().(*termConn)
	if !ok || tc.state == stClosed {
		return gnet.None
	}
	l := tc.l
	l.heap.remove(tc)
	was := tc.state
	tc.state = stClosed
	stopping := e.stopping.Load()
	switch was {
	case stHello:
		<-e.sem
		if !stopping {
			if !tc.closing {
				l.ctr.fail("closed_before_hello_ok")
			}
			l.ctr.count("connect_failed", 1)
			e.settled.Add(1)
		}
	case stLive:
		e.connected.Add(-1)
		e.live[tc.t.Index].CompareAndSwap(tc, nil)
		if !stopping && !tc.closing && !tc.reconnect.Load() {
			l.ctr.fail("closed_by_server")
		}
	}
	if tc.npend > 0 {
		if stopping {
			l.ctr.count("in_flight_at_end", uint64(tc.npend))
		} else {
			l.ctr.count("unanswered", uint64(tc.npend))
		}
	}
	if tc.reconnect.Load() && !stopping {
		l.ctr.count("reconnects", 1)
		e.enqueue(dialJob{idx: tc.t.Index})
	}
	return gnet.None
}

// quietLogger drops gnet's own logging: the run's errors are counted,
// and thousands of connections closing at the end would flood stderr.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(string, ...any) {}
