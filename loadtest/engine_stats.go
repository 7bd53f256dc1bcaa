package loadtest

import (
	"sync"
	"sync/atomic"
)

// counters are one event loop's (or the dialers') tallies. The hot ones
// are atomics, read every second by the progress reporter; labelled ones
// are in maps behind a mutex only the owner and the final collection
// take, so the two never contend in practice.
type counters struct {
	sent        atomic.Uint64
	answered    atomic.Uint64
	refusals    atomic.Uint64 // answers with a status other than OK
	skippedLate atomic.Uint64
	skippedBusy atomic.Uint64
	errors      atomic.Uint64

	mu      sync.Mutex
	counts  map[string]uint64
	errs    map[string]uint64
	answers map[answerKey]uint64
}

// answerKey labels an answer by request kind and status without building
// a string per answer.
type answerKey struct {
	kind   uint8
	status string
}

func (c *counters) count(name string, n uint64) {
	c.mu.Lock()
	if c.counts == nil {
		c.counts = make(map[string]uint64)
	}
	c.counts[name] += n
	c.mu.Unlock()
}

// fail counts one error of kind `name`.
func (c *counters) fail(name string) {
	c.errors.Add(1)
	c.mu.Lock()
	if c.errs == nil {
		c.errs = make(map[string]uint64)
	}
	c.errs[name]++
	c.mu.Unlock()
}

func (c *counters) answer(kind uint8, status string) {
	if status == "" {
		status = "OK"
	}
	c.mu.Lock()
	if c.answers == nil {
		c.answers = make(map[answerKey]uint64)
	}
	c.answers[answerKey{kind, status}]++
	c.mu.Unlock()
}

// addTo adds c's tallies into a Result's maps.
func (c *counters) addTo(r *Result) {
	add := func(k string, v uint64) {
		if v != 0 {
			r.Counts[k] += v
		}
	}
	add("sent", c.sent.Load())
	add("answered", c.answered.Load())
	late, busy := c.skippedLate.Load(), c.skippedBusy.Load()
	add("skipped", late+busy)
	add("skipped_late", late)
	add("skipped_unanswered", busy)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.counts {
		add(k, v)
	}
	for k, v := range c.errs {
		r.Errors[k] += v
	}
	for k, v := range c.answers {
		add("answered:"+mixKinds[k.kind]+":"+k.status, v)
	}
}

// drainInto moves h's values into dst and empties h under h's lock, so
// nothing recorded meanwhile is lost (a per-second window).
func (h *Histogram) drainInto(dst *Histogram) {
	h.mu.Lock()
	dst.mu.Lock()
	dst.h.Merge(h.h)
	dst.mu.Unlock()
	h.h.Reset()
	h.mu.Unlock()
}
