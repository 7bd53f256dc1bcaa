package control

import (
	"slices"
	"sync"

	"github.com/termd/termd/protocol"
)

// answer is what a CONTROL request was answered: a message (CONTROL_ACK
// or its TIMEOUT form) or a refusal.
type answer struct {
	msg protocol.Message
	err *protocol.Error
}

// idemKey identifies an idempotent request (spec §5).
type idemKey struct {
	device string
	id     uint64
}

// idemEntry is one remembered request_id: what it asked, and the outcome
// of the operation it started once done is closed. A repeat waits on done
// while the operation runs.
type idemEntry struct {
	service, op string
	args        []string
	at          int64 // unix ms of the first request
	done        chan struct{}
	ans         answer         // set before done is closed
	waiters     []func(answer) // repeats to answer on completion; guarded by the cache's mu
}

func (e *idemEntry) same(service, op string, args []string) bool {
	return e.service == service && e.op == op && slices.Equal(e.args, args)
}

// idemCache remembers request_ids for a window, in arrival order, so the
// oldest expire first in O(1). It is bounded: past max entries a request
// is run without being remembered in memory (its audit record still
// answers a repeat once the operation has finished).
type idemCache struct {
	mu     sync.Mutex
	m      map[idemKey]*idemEntry
	fifo   []idemKey
	head   int
	window int64 // ms
	max    int
}

func newIdemCache(windowMs int64, max int) *idemCache {
	return &idemCache{m: make(map[idemKey]*idemEntry), window: windowMs, max: max}
}

// claim looks key up at now. It returns the entry a repeat must follow
// (repeat true), or a new pending entry the caller owns and must complete
// (repeat false; nil when the cache is full). conflict reports a repeat
// that asks for something else.
func (c *idemCache) claim(key idemKey, service, op string, args []string, now int64) (e *idemEntry, repeat, conflict bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.m[key]; ok {
		return e, true, !e.same(service, op, args)
	}
	if len(c.m) >= c.max {
		return nil, false, false
	}
	e = &idemEntry{service: service, op: op, args: slices.Clone(args), at: now, done: make(chan struct{})}
	c.m[key] = e
	c.fifo = append(c.fifo, key)
	return e, false, false
}

// complete records the outcome of e's operation and answers its repeats.
func (c *idemCache) complete(e *idemEntry, a answer) {
	if e == nil {
		return
	}
	c.mu.Lock()
	e.ans = a
	close(e.done)
	ws := e.waiters
	e.waiters = nil
	c.mu.Unlock()
	for _, w := range ws {
		w(a)
	}
}

// onDone registers fn to be called with e's outcome and reports true, or
// reports false if e is already complete (read e.ans then).
func (c *idemCache) onDone(e *idemEntry, fn func(answer)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-e.done:
		return false
	default:
	}
	e.waiters = append(e.waiters, fn)
	return true
}

// expire drops entries older than the window; c.mu is held. An entry
// still pending is kept until it completes, so a repeat can still join it.
func (c *idemCache) expire(now int64) {
	for c.head < len(c.fifo) {
		k := c.fifo[c.head]
		e := c.m[k]
		if e != nil {
			if now-e.at < c.window {
				break
			}
			select {
			case <-e.done:
			default:
				return // pending: wait for it
			}
			delete(c.m, k)
		}
		c.fifo[c.head] = idemKey{}
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.fifo) {
		c.fifo = append(c.fifo[:0], c.fifo[c.head:]...)
		c.head = 0
	}
}

// len is the number of remembered requests.
func (c *idemCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
