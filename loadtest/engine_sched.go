package loadtest

import "math"

// The open-loop schedule. Every terminal has intended send times
// due, due+period, due+2·period, ... fixed in advance, whatever the
// server does. Latency is measured from the intended time, so a server
// that stalls cannot hide behind coordinated omission (a closed-loop
// generator would simply send less and measure only the fast answers).
// A slot that cannot be sent in time is skipped and counted, never sent
// late in a burst: either the terminal's previous requests are still
// unanswered (up to the pipeline limit), or the engine itself is late by
// more than half a period (an overloaded generator, or a loop blocked).

// slotOutcome is what a terminal does at one of its slots.
type slotOutcome struct {
	// send: send one request with intended time intended.
	send     bool
	intended int64
	// skippedLate counts slots skipped because the engine was more than
	// half a period late; skippedBusy a slot skipped because `limit`
	// requests were still outstanding.
	skippedLate uint64
	skippedBusy uint64
	// next is the terminal's next intended time.
	next int64
}

// planSlot decides what a terminal whose next intended time is due does
// at time now (now ≥ due; all in ns on one clock), given its outstanding
// requests and the pipeline limit. It skips in O(1) however late the
// engine is.
func planSlot(now, due, period int64, outstanding, limit int) slotOutcome {
	var o slotOutcome
	half := period / 2
	if late := now - due; late > half {
		// Slots due+j·period for j < ⌈(late−half)/period⌉ are all more than
		// half a period late.
		n := (late-half-1)/period + 1
		o.skippedLate = uint64(n)
		due += n * period
	}
	if due > now {
		o.next = due
		return o
	}
	if outstanding >= limit {
		o.skippedBusy = 1
		o.next = due + period
		return o
	}
	o.send, o.intended, o.next = true, due, due+period
	return o
}

// phaseOf spreads terminal i's slots uniformly over a period: the
// fractional parts of i·φ (the golden ratio) are evenly distributed for
// any number of terminals, so a fleet that connects in order does not
// beat in step.
func phaseOf(i int) float64 {
	_, f := math.Modf(float64(i) * 0.6180339887498949)
	return f
}

// firstSlot is the first intended time at or after now of a schedule
// whose slots are start + (k + phase)·period, k ≥ 0.
func firstSlot(now, start, period int64, phase float64) int64 {
	off := int64(phase * float64(period))
	if now <= start+off {
		return start + off
	}
	k := (now - start - off + period - 1) / period
	return start + k*period + off
}

// termHeap is a loop's terminals ordered by their next due time: the
// next slot, or the HELLO deadline of a terminal still connecting.
// Hand-written rather than container/heap so pushes and pops neither box
// nor allocate.
type termHeap []*termConn

func (h termHeap) less(i, j int) bool { return h[i].due < h[j].due }

func (h termHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}

func (h *termHeap) push(tc *termConn) {
	tc.hidx = int32(len(*h))
	*h = append(*h, tc)
	h.up(len(*h) - 1)
}

// remove takes tc out of the heap, if it is in.
func (h *termHeap) remove(tc *termConn) {
	i := int(tc.hidx)
	if i < 0 {
		return
	}
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	tc.hidx = -1
	if i != n {
		h.fix(i)
	}
}

// fix restores the order after the due time of the entry at i changed.
func (h termHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// init orders the whole heap (after every due time changed).
func (h termHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h termHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h termHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
