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
	key         idemKey
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

// claimResult is what claim found.
type claimResult int

const (
	claimNew      claimResult = iota // a new entry the caller owns
	claimRepeat                      // a repeat of a remembered request
	claimConflict                    // the request_id is remembered for another request
	claimFull                        // the device's quota or the whole cache is full
)

// idemCache remembers request_ids for a window, in arrival order, so the
// oldest expire first in O(1). It is bounded in all (max) and per device
// (perDevice), so one terminal cannot push out the others' entries; a
// request_id that cannot be remembered is refused by the caller, never
// run unprotected.
type idemCache struct {
	mu        sync.Mutex
	m         map[idemKey]*idemEntry
	perDev    map[string]int
	fifo      []*idemEntry
	head      int
	window    int64 // ms
	max       int
	perDevice int
}

func newIdemCache(windowMs int64, max, perDevice int) *idemCache {
	return &idemCache{m: make(map[idemKey]*idemEntry), perDev: make(map[string]int), window: windowMs, max: max, perDevice: perDevice}
}

// claim looks key up at now. It returns the entry a repeat must follow
// (claimRepeat), or a new pending entry the caller owns and must complete
// or release (claimNew); claimConflict for a repeat that asks for
// something else; claimFull when the key cannot be remembered, with the
// ms until the oldest entry expires.
func (c *idemCache) claim(key idemKey, service, op string, args []string, now int64) (e *idemEntry, res claimResult, retryMs int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.m[key]; ok {
		if !e.same(service, op, args) {
			return e, claimConflict, 0
		}
		return e, claimRepeat, 0
	}
	// Slots are counted in the fifo, released entries included, so a
	// device that keeps being refused cannot grow it past its quota.
	if len(c.fifo)-c.head >= c.max || c.perDev[key.device] >= c.perDevice {
		retryMs = c.window
		if c.head < len(c.fifo) {
			retryMs = c.fifo[c.head].at + c.window - now
		}
		return nil, claimFull, retryMs
	}
	e = &idemEntry{key: key, service: service, op: op, args: slices.Clone(args), at: now, done: make(chan struct{})}
	c.m[key] = e
	c.perDev[key.device]++
	c.fifo = append(c.fifo, e)
	return e, claimNew, 0
}

// complete records the outcome of e's operation and answers its repeats.
func (c *idemCache) complete(e *idemEntry, a answer) {
	c.finish(e, a, false)
}

// release answers e's repeats with a and forgets e at once: its request
// was refused without running (busy, shutting down), so a retry with the
// same request_id must be free to run.
func (c *idemCache) release(e *idemEntry, a answer) {
	c.finish(e, a, true)
}

func (c *idemCache) finish(e *idemEntry, a answer, forget bool) {
	if e == nil {
		return
	}
	c.mu.Lock()
	e.ans = a
	close(e.done)
	ws := e.waiters
	e.waiters = nil
	if forget && c.m[e.key] == e {
		delete(c.m, e.key) // its slot is held until it expires
	}
	c.mu.Unlock()
	for _, w := range ws {
		w(a)
	}
}

// drop forgets expired e and frees its slot; c.mu is held.
func (c *idemCache) drop(e *idemEntry) {
	if c.m[e.key] == e {
		delete(c.m, e.key)
	}
	if c.perDev[e.key.device]--; c.perDev[e.key.device] <= 0 {
		delete(c.perDev, e.key.device)
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
		e := c.fifo[c.head]
		if now-e.at < c.window {
			break
		}
		select {
		case <-e.done:
		default:
			return // pending: wait for it
		}
		c.drop(e)
		c.fifo[c.head] = nil
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
