package server

import (
	"slices"
	"testing"
)

const (
	wheelTestTick int64 = 100                           // ms
	wheelTestBase int64 = 1_000_000_050                 // unix ms, deliberately not on a tick
	wheelRevMs          = wheelSlots * wheelTestTick    // one revolution, ms
	wheelBaseTick       = wheelTestBase / wheelTestTick // the wheel's tick at init
)

// wheelFixture is a wheel plus a record of what fired at which now.
type wheelFixture struct {
	t      *testing.T
	w      *wheel
	now    int64
	fired  map[*conn][]int64 // conn → nows at which it fired
	onFire func(c *conn, now int64)
}

func newWheelFixture(t *testing.T) *wheelFixture {
	f := &wheelFixture{t: t, w: new(wheel), now: wheelTestBase, fired: make(map[*conn][]int64)}
	f.w.init(wheelTestTick, wheelTestBase)
	return f
}

// advance moves the clock to now and returns the conns fired, in order.
func (f *wheelFixture) advance(now int64) []*conn {
	f.t.Helper()
	if now < f.now {
		f.t.Fatalf("clock going back: %d < %d", now, f.now)
	}
	f.now = now
	var got []*conn
	f.w.advance(now, func(c *conn) {
		got = append(got, c)
		f.fired[c] = append(f.fired[c], now)
		if f.onFire != nil {
			f.onFire(c, now)
		}
	})
	return got
}

// walkQuiet advances in steps of step ms up to (and including) end,
// failing if anything fires.
func (f *wheelFixture) walkQuiet(end, step int64) {
	f.t.Helper()
	for now := f.now + step; now < end; now += step {
		if got := f.advance(now); len(got) > 0 {
			f.t.Fatalf("fired at now=%d (base+%d): %d conns", now, now-wheelTestBase, len(got))
		}
	}
	if got := f.advance(end); len(got) > 0 {
		f.t.Fatalf("fired at now=%d (base+%d): %d conns", end, end-wheelTestBase, len(got))
	}
}

// tickWalk advances one tick at a time, on tick boundaries, up to end.
func (f *wheelFixture) tickWalk(end int64) {
	f.t.Helper()
	for now := (f.now/wheelTestTick + 1) * wheelTestTick; now <= end; now += wheelTestTick {
		f.advance(now)
	}
}

// tickAt is the first tick boundary at or after at, ms.
func tickAt(at int64) int64 { return (at + wheelTestTick - 1) / wheelTestTick * wheelTestTick }

func (f *wheelFixture) entries() int {
	n := 0
	for i := range f.w.slots {
		n += len(f.w.slots[i])
	}
	return n
}

// TestWheelFiresAtFirstTickAfterItsTime walks the clock in small steps and
// checks that an entry fires exactly when the first tick at or after its
// time is processed: never before, never twice.
func TestWheelFiresAtFirstTickAfterItsTime(t *testing.T) {
	tick := func(n int64) int64 { return (wheelBaseTick + n) * wheelTestTick } // ms of tick base+n
	tests := []struct {
		name string
		at   int64 // ms
		fire int64 // the now at which it must fire
		step int64 // walk granularity, ms
	}{
		{name: "in the past", at: wheelTestBase - 60_000, fire: tick(1), step: 1},
		{name: "now", at: wheelTestBase, fire: tick(1), step: 1},
		{name: "the current tick's boundary", at: tick(0), fire: tick(1), step: 1},
		{name: "1 ms after now", at: wheelTestBase + 1, fire: tick(1), step: 1},
		{name: "exactly on the next tick", at: tick(1), fire: tick(1), step: 1},
		{name: "1 ms after a tick", at: tick(1) + 1, fire: tick(2), step: 1},
		{name: "1 ms before a tick", at: tick(3) - 1, fire: tick(3), step: 1},
		{name: "last slot of the revolution", at: tick(wheelSlots - 1), fire: tick(wheelSlots - 1), step: 7},
		{name: "exactly one revolution", at: tick(wheelSlots), fire: tick(wheelSlots), step: 7},
		{name: "one revolution and one tick", at: tick(wheelSlots + 1), fire: tick(wheelSlots + 1), step: 7},
		{name: "third round", at: tick(2*wheelSlots+5) - 30, fire: tick(2*wheelSlots + 5), step: 13},
		{name: "tenth round", at: tick(9*wheelSlots + 4095), fire: tick(9*wheelSlots + 4095), step: 97},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			c := &conn{}
			f.w.add(c, tt.at)
			f.walkQuiet(tt.fire-1, tt.step)
			if got := f.advance(tt.fire); !slices.Equal(got, []*conn{c}) {
				t.Fatalf("advance(base+%d) fired %d conns, want the entry", tt.fire-wheelTestBase, len(got))
			}
			// Never again, through several revolutions.
			f.walkQuiet(tt.fire+3*wheelRevMs, 997)
			if f.entries() != 0 {
				t.Fatalf("%d entries left in the wheel", f.entries())
			}
		})
	}
}

// TestWheelFarEntryAcrossLargeAdvances: a far entry waits for its round
// even when advance covers exactly a whole revolution at a time.
func TestWheelFarEntryAcrossLargeAdvances(t *testing.T) {
	tests := []struct {
		name  string
		jump  int64 // ms per advance
		round int64 // the entry's round
	}{
		{name: "one revolution per advance", jump: wheelRevMs, round: 3},
		{name: "half a revolution per advance", jump: wheelRevMs / 2, round: 2},
		{name: "a revolution less a tick per advance", jump: wheelRevMs - wheelTestTick, round: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			c := &conn{}
			at := (wheelBaseTick+tt.round*wheelSlots+17)*wheelTestTick - 1
			f.w.add(c, at)
			for now := f.now + tt.jump; ; now += tt.jump {
				got := f.advance(now)
				if now < at {
					if len(got) != 0 {
						t.Fatalf("fired at base+%d, before its time base+%d", now-wheelTestBase, at-wheelTestBase)
					}
					continue
				}
				if len(got) != 1 || got[0] != c {
					t.Fatalf("advance(base+%d) fired %d conns; the entry was due at base+%d", now-wheelTestBase, len(got), at-wheelTestBase)
				}
				break
			}
		})
	}
}

func TestWheelReAddSupersedes(t *testing.T) {
	tests := []struct {
		name string
		ats  []int64 // successive adds, ms after base
		fire int64   // the one time it fires, ms after base
	}{
		{name: "earlier", ats: []int64{1000, 500}, fire: 500},
		{name: "later", ats: []int64{500, 1000}, fire: 1000},
		{name: "same time", ats: []int64{500, 500, 500}, fire: 500},
		{name: "same tick", ats: []int64{480, 451}, fire: 500},
		{name: "earlier by a revolution, same slot", ats: []int64{wheelRevMs + 500, 500}, fire: 500},
		{name: "later by a revolution, same slot", ats: []int64{500, wheelRevMs + 500}, fire: wheelRevMs + 500},
		{name: "back and forth", ats: []int64{3000, 200, 5000, 1000}, fire: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			c := &conn{}
			for _, at := range tt.ats {
				f.w.add(c, wheelTestBase+at)
			}
			fireNow := tickAt(wheelTestBase + tt.fire)
			f.walkQuiet(fireNow-1, 11)
			if got := f.advance(fireNow); !slices.Equal(got, []*conn{c}) {
				t.Fatalf("advance(base+%d) fired %d conns, want the entry", fireNow-wheelTestBase, len(got))
			}
			f.walkQuiet(fireNow+2*wheelRevMs, 50)
			if n := len(f.fired[c]); n != 1 {
				t.Fatalf("fired %d times, want once", n)
			}
			// Stale entries were dropped when their slots came round.
			if f.entries() != 0 {
				t.Fatalf("%d entries left in the wheel", f.entries())
			}
		})
	}
}

func TestWheelClosedNeverFires(t *testing.T) {
	tests := []struct {
		name    string
		at      int64 // ms after base
		closeAt int64 // close when the clock reaches this, ms after base
	}{
		{name: "closed before its slot", at: 500, closeAt: 0},
		{name: "closed just before its tick", at: 500, closeAt: 499},
		{name: "closed while waiting for a later round", at: 2*wheelRevMs + 300, closeAt: wheelRevMs + 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			c, other := &conn{}, &conn{}
			f.w.add(c, wheelTestBase+tt.at)
			f.w.add(other, wheelTestBase+tt.at) // same slot, stays open
			if tt.closeAt > 0 {
				f.walkQuiet(wheelTestBase+tt.closeAt, 37)
			}
			c.closed = true
			end := wheelTestBase + tt.at + 3*wheelRevMs
			for now := f.now + 41; now <= end; now += 41 {
				f.advance(now)
			}
			if len(f.fired[c]) != 0 {
				t.Fatalf("closed conn fired at %v", f.fired[c])
			}
			if len(f.fired[other]) != 1 {
				t.Fatalf("open conn in the same slot fired %d times, want 1", len(f.fired[other]))
			}
			if f.entries() != 0 {
				t.Fatalf("%d entries left in the wheel", f.entries())
			}
		})
	}
}

// TestWheelAddDuringFire re-adds from inside the fire callback, as
// conn.onTimer does when its deadline moved.
func TestWheelAddDuringFire(t *testing.T) {
	tests := []struct {
		name  string
		delay int64 // re-add at now+delay ms
		times int   // re-add this many times
	}{
		{name: "next tick", delay: wheelTestTick, times: 5},
		{name: "in the past (next tick)", delay: -10_000, times: 5},
		{name: "a few ticks later", delay: 7*wheelTestTick + 1, times: 4},
		{name: "same slot one revolution later", delay: wheelRevMs, times: 3},
		{name: "same slot two revolutions later", delay: 2 * wheelRevMs, times: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			c := &conn{}
			left := tt.times
			var want []int64
			f.onFire = func(fc *conn, now int64) {
				if fc != c || left == 0 {
					return
				}
				left--
				at := now + tt.delay
				f.w.add(c, at)
				next := max((at+wheelTestTick-1)/wheelTestTick, now/wheelTestTick+1) * wheelTestTick
				want = append(want, next)
			}
			first := (wheelBaseTick + 10) * wheelTestTick
			f.w.add(c, first)
			want = append(want, first)
			f.tickWalk(first + int64(tt.times+1)*max(tt.delay, wheelTestTick) + wheelRevMs)
			if !slices.Equal(f.fired[c], want) {
				t.Fatalf("fired at %v, want %v", rel(f.fired[c]), rel(want))
			}
		})
	}
}

// TestWheelAddOthersDuringFire: the callback supersedes a conn that is
// later in the same slot's list, and adds a new conn to the slot being
// processed (one revolution on) while that slot also keeps an entry for a
// later round: neither may be lost.
func TestWheelAddOthersDuringFire(t *testing.T) {
	f := newWheelFixture(t)
	a, b, newcomer, far := &conn{}, &conn{}, &conn{}, &conn{}
	at := (wheelBaseTick + 5) * wheelTestTick
	f.w.add(a, at)
	f.w.add(b, at)
	f.w.add(far, at+2*wheelRevMs) // same slot, kept for a later round
	f.onFire = func(c *conn, now int64) {
		if c == a && now == at {
			f.w.add(b, at+3*wheelTestTick)   // b moves later
			f.w.add(newcomer, at+wheelRevMs) // the same slot index, next round
		}
	}
	f.tickWalk(at + 3*wheelRevMs)
	want := map[*conn][]int64{
		a:        {at},
		b:        {at + 3*wheelTestTick},
		newcomer: {at + wheelRevMs},
		far:      {at + 2*wheelRevMs},
	}
	for c, w := range want {
		if !slices.Equal(f.fired[c], w) {
			t.Errorf("fired at %v, want %v", rel(f.fired[c]), rel(w))
		}
	}
}

// TestWheelStall: after a long stall (the loop did not tick), one advance
// fires everything due exactly once and keeps what is not due yet.
func TestWheelStall(t *testing.T) {
	tests := []struct {
		name  string
		stall int64 // ms the loop did not tick
	}{
		{name: "less than a revolution", stall: wheelRevMs / 3},
		{name: "exactly a revolution", stall: wheelRevMs},
		{name: "a revolution and a tick", stall: wheelRevMs + wheelTestTick},
		{name: "many revolutions", stall: 7*wheelRevMs + 1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWheelFixture(t)
			stallEnd := wheelTestBase + tt.stall
			var due, later []*conn
			var laterAt []int64
			// Deadlines every 97 ms (so every tick has some) from now to
			// well past the stall: every slot, several rounds.
			for at := wheelTestBase; at <= stallEnd+2*wheelRevMs; at += 97 {
				c := &conn{}
				f.w.add(c, at)
				// Due at stallEnd iff its tick is processed by advance(stallEnd).
				if max((at+wheelTestTick-1)/wheelTestTick, wheelBaseTick+1) <= stallEnd/wheelTestTick {
					due = append(due, c)
				} else {
					later = append(later, c)
					laterAt = append(laterAt, at)
				}
			}
			closed := &conn{closed: true}
			f.w.add(closed, wheelTestBase+10)
			// Conns fired during the stall re-add themselves in the future
			// (as onTimer does for a moved deadline); those must not fire
			// again in this advance.
			reAdded := make(map[*conn]bool)
			f.onFire = func(c *conn, now int64) {
				if len(reAdded) < 3 && !reAdded[c] && slices.Contains(due, c) {
					reAdded[c] = true
					f.w.add(c, now+50*wheelTestTick)
				}
			}
			got := f.advance(stallEnd)
			if len(got) != len(due) {
				t.Fatalf("stall fired %d conns, want %d", len(got), len(due))
			}
			for _, c := range due {
				if n := len(f.fired[c]); n != 1 {
					t.Fatalf("a due conn fired %d times", n)
				}
			}
			// Afterwards, each later conn fires exactly at its tick.
			f.tickWalk(stallEnd + 3*wheelRevMs)
			for i, c := range later {
				want := []int64{tickAt(laterAt[i])}
				if !slices.Equal(f.fired[c], want) {
					t.Fatalf("conn due at base+%d fired at %v, want %v", laterAt[i]-wheelTestBase, rel(f.fired[c]), rel(want))
				}
			}
			for c := range reAdded {
				if want := []int64{stallEnd, tickAt(stallEnd + 50*wheelTestTick)}; !slices.Equal(f.fired[c], want) {
					t.Fatalf("re-added conn fired at %v", rel(f.fired[c]))
				}
			}
			if len(f.fired[closed]) != 0 {
				t.Fatal("closed conn fired")
			}
			if f.entries() != 0 {
				t.Fatalf("%d entries left in the wheel", f.entries())
			}
		})
	}
}

// rel shows nows relative to the fixture's base.
func rel(nows []int64) []int64 {
	out := make([]int64, len(nows))
	for i, n := range nows {
		out[i] = n - wheelTestBase
	}
	return out
}

// The wheel's entry count, which tells the ticker whether a loop needs
// waking, matches the entries it holds through adds, supersedes, closes
// and advances.
func TestWheelCountsEntries(t *testing.T) {
	f := newWheelFixture(t)
	conns := make([]*conn, 50)
	for i := range conns {
		conns[i] = &conn{}
	}
	f.onFire = func(c *conn, now int64) {
		if now%3 == 0 {
			f.w.add(c, now+wheelTestTick*int64(1+now%7)) // re-arm some
		}
	}
	for step := range int64(400) {
		c := conns[step%int64(len(conns))]
		switch step % 5 {
		case 0, 1, 2:
			f.w.add(c, f.now+wheelTestTick*(step%40))
		case 3:
			c.closed = !c.closed
		}
		f.advance(f.now + 37)
		if f.w.n != f.entries() {
			t.Fatalf("step %d: n = %d, wheel holds %d", step, f.w.n, f.entries())
		}
	}
}

// A loop asks the ticker for a tick only while it holds timers and
// traffic has not advanced it to the current tick.
func TestLoopTickGating(t *testing.T) {
	l := &loop{}
	l.wheel.init(wheelTestTick, wheelTestBase)
	tick := wheelBaseTick + 1
	if l.needsTick(tick) {
		t.Fatal("an empty loop asks for ticks")
	}
	c := &conn{}
	l.schedule(c, wheelTestBase+5*wheelTestTick)
	if !l.needsTick(tick) {
		t.Fatal("a loop with a timer does not ask for a tick")
	}
	l.advance(tick*wheelTestTick, nil) // as traffic would, in tick
	if l.needsTick(tick) {
		t.Fatal("a loop that traffic advanced to this tick asks again")
	}
	if !l.needsTick(tick + 1) {
		t.Fatal("a loop with a timer skips the next tick")
	}
	c.closed = true // its entry is dropped when its slot comes round
	l.advance((tick+6)*wheelTestTick, nil)
	if l.needsTick(tick + 7) {
		t.Fatal("a loop whose timers are gone still asks for ticks")
	}
}
