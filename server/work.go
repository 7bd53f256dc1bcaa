package server

import (
	"context"
	"sync"
)

// workers is the bounded pool that runs domain work off the event loops.
// Work is queued per class (a feature's routes share one class), and a
// class may hold at most its share of the workers and of the queue, so
// one slow feature (a sick store, a slow SMTP server) cannot starve the
// others: its requests wait or are refused while the rest keep flowing.
// Free workers take classes round-robin. A full queue is reported to the
// caller, who answers UNAVAILABLE rather than letting a loop wait.
type workers struct {
	mu      sync.Mutex
	cond    *sync.Cond
	classes []*workClass
	byName  map[string]*workClass
	next    int // round-robin start
	queued  int // queued requests, all classes
	closed  bool

	n, queue, share int // pool size, total queue bound, per-class share (%)

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// workClass is one class's queue and limits.
type workClass struct {
	name       string
	q          []func(context.Context)
	head       int
	running    int
	maxRunning int
	maxQueued  int
}

func (c *workClass) len() int { return len(c.q) - c.head }

func newWorkers(n, queue, sharePct int) *workers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workers{byName: make(map[string]*workClass), n: n, queue: queue, share: sharePct, ctx: ctx, stop: cancel}
	w.cond = sync.NewCond(&w.mu)
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.run()
	}
	return w
}

// class returns the class named name, creating it with the pool's share.
func (w *workers) class(name string) *workClass {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.byName[name]; c != nil {
		return c
	}
	c := &workClass{
		name:       name,
		maxRunning: max(1, w.n*w.share/100),
		maxQueued:  max(1, w.queue*w.share/100),
	}
	w.byName[name] = c
	w.classes = append(w.classes, c)
	return c
}

func (w *workers) run() {
	defer w.wg.Done()
	w.mu.Lock()
	for {
		c, fn := w.take()
		if fn == nil {
			if w.closed && w.queued == 0 {
				w.cond.Broadcast() // let the other workers see it too
				w.mu.Unlock()
				return
			}
			w.cond.Wait()
			continue
		}
		w.mu.Unlock()
		fn(w.ctx)
		w.mu.Lock()
		c.running--
		// A class at its cap may have work waiting for this slot.
		w.cond.Signal()
	}
}

// take pops the next runnable request, round-robin over the classes, or
// returns nil. Called with mu held.
func (w *workers) take() (*workClass, func(context.Context)) {
	for i := range w.classes {
		c := w.classes[(w.next+i)%len(w.classes)]
		if c.len() == 0 || c.running >= c.maxRunning {
			continue
		}
		fn := c.q[c.head]
		c.q[c.head] = nil
		c.head++
		if c.head == len(c.q) {
			c.q, c.head = c.q[:0], 0
		}
		c.running++
		w.queued--
		w.next = (w.next + i + 1) % len(w.classes)
		return c, fn
	}
	return nil, nil
}

// submit queues fn in class c and reports false when c's share of the
// queue, or the whole queue, is full, or the pool is closed.
func (w *workers) submit(c *workClass, fn func(context.Context)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || c.len() >= c.maxQueued || w.queued >= w.queue {
		return false
	}
	c.q = append(c.q, fn)
	w.queued++
	w.cond.Signal()
	return true
}

// close finishes queued work, then stops the pool.
func (w *workers) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
	w.stop()
}

// depth is the number of queued requests.
func (w *workers) depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// load reports a class's queued and running requests.
func (w *workers) load(c *workClass) (queued, running int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return c.len(), c.running
}
