package loadtest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func TestPlanSlot(t *testing.T) {
	const period = 100 * ms
	for _, tc := range []struct {
		name             string
		now, due         int64
		outstanding, lim int
		want             slotOutcome
	}{
		{"on time", 1000 * ms, 1000 * ms, 0, 1, slotOutcome{send: true, intended: 1000 * ms, next: 1100 * ms}},
		{"a little late keeps the intended time", 1030 * ms, 1000 * ms, 0, 1, slotOutcome{send: true, intended: 1000 * ms, next: 1100 * ms}},
		{"exactly half late is still sent", 1050 * ms, 1000 * ms, 0, 1, slotOutcome{send: true, intended: 1000 * ms, next: 1100 * ms}},
		{"more than half late is skipped", 1051 * ms, 1000 * ms, 0, 1, slotOutcome{skippedLate: 1, next: 1100 * ms}},
		{"late by slots: skip them, send the one in time", 1320 * ms, 1000 * ms, 0, 1,
			slotOutcome{skippedLate: 3, send: true, intended: 1300 * ms, next: 1400 * ms}},
		{"late by slots: skip them, wait for the next", 1370 * ms, 1000 * ms, 0, 1,
			slotOutcome{skippedLate: 4, next: 1400 * ms}},
		{"unanswered: skip", 1000 * ms, 1000 * ms, 1, 1, slotOutcome{skippedBusy: 1, next: 1100 * ms}},
		{"pipeline room: send", 1000 * ms, 1000 * ms, 3, 4, slotOutcome{send: true, intended: 1000 * ms, next: 1100 * ms}},
		{"pipeline full: skip", 1000 * ms, 1000 * ms, 4, 4, slotOutcome{skippedBusy: 1, next: 1100 * ms}},
		{"late and busy", 1220 * ms, 1000 * ms, 1, 1, slotOutcome{skippedLate: 2, skippedBusy: 1, next: 1300 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planSlot(tc.now, tc.due, period, tc.outstanding, tc.lim); got != tc.want {
				t.Errorf("planSlot = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// fakeTerminal runs one terminal's open-loop schedule against a fake
// clock: ticks every tick (none while the engine is "stalled"), a server
// that answers each request after `latency` unless it is "stalled".
type fakeTerminal struct {
	period, tick, latency int64
	limit                 int
	serverStall           [2]int64 // [from, to): requests sent then are never answered
	engineStall           [2]int64 // [from, to): no ticks

	sent, answered, late, busy uint64
	sends                      []int64 // when each request went out
	latencies                  []int64 // answer time − intended time
}

func (f *fakeTerminal) run(until int64) {
	type req struct{ intended, answerAt int64 }
	var out []req
	due := f.period / 2
	for now := int64(0); now < until; now += f.tick {
		// Answers that arrived by now.
		keep := out[:0]
		for _, r := range out {
			if r.answerAt >= 0 && r.answerAt <= now {
				f.answered++
				f.latencies = append(f.latencies, r.answerAt-r.intended)
				continue
			}
			keep = append(keep, r)
		}
		out = keep
		if now >= f.engineStall[0] && now < f.engineStall[1] {
			continue
		}
		for due <= now {
			o := planSlot(now, due, f.period, len(out), f.limit)
			f.late += o.skippedLate
			f.busy += o.skippedBusy
			due = o.next
			if o.send {
				f.sent++
				f.sends = append(f.sends, now)
				ans := now + f.latency
				if now >= f.serverStall[0] && now < f.serverStall[1] {
					ans = -1
				}
				out = append(out, req{o.intended, ans})
			}
		}
	}
}

func TestOpenLoopPromptServer(t *testing.T) {
	f := &fakeTerminal{period: 100 * ms, tick: ms, latency: 3 * ms, limit: 1}
	f.run(2000 * ms)
	if f.sent != 20 || f.late+f.busy != 0 {
		t.Errorf("sent %d, skipped late %d busy %d; want 20 and none", f.sent, f.late, f.busy)
	}
}

func TestOpenLoopStalledServerSkipsNeverBursts(t *testing.T) {
	// The server stops answering at 1 s and comes back at 2 s (answers
	// to requests sent from then on).
	f := &fakeTerminal{period: 100 * ms, tick: ms, latency: 3 * ms, limit: 1, serverStall: [2]int64{1000 * ms, 2000 * ms}}
	f.run(3000 * ms)
	// Slots at 50, 150, ... ms: 10 before the stall, one sent into it
	// (never answered), and every later slot is skipped: the terminal's
	// previous heartbeat is still unanswered. Nothing is sent late.
	if f.sent != 11 || f.busy != 19 || f.late != 0 {
		t.Errorf("sent %d, busy %d, late %d; want 11, 19, 0", f.sent, f.busy, f.late)
	}
	for i := 1; i < len(f.sends); i++ {
		if gap := f.sends[i] - f.sends[i-1]; gap < 100*ms {
			t.Fatalf("requests %d and %d only %dms apart: a burst", i-1, i, gap/ms)
		}
	}
}

func TestOpenLoopStalledEngineSkipsLateSlots(t *testing.T) {
	// The generator itself stalls for 1 s: the slots it missed by more
	// than half a period are skipped, counted, and not made up for.
	f := &fakeTerminal{period: 100 * ms, tick: ms, latency: 3 * ms, limit: 1, engineStall: [2]int64{500 * ms, 1520 * ms}}
	f.run(2000 * ms)
	// Slots 550..1450 (10) are more than 50 ms late at 1520; 1550 on is
	// on time: 5 + 5 sent.
	if f.late != 10 || f.sent != 10 || f.busy != 0 {
		t.Errorf("late %d, sent %d, busy %d; want 10, 10, 0", f.late, f.sent, f.busy)
	}
	if f.sent+f.late != 20 {
		t.Errorf("every slot is sent or counted: %d + %d != 20", f.sent, f.late)
	}
}

func TestOpenLoopLatencyFromIntendedTime(t *testing.T) {
	// An engine that ticks coarsely sends a little late; latency still
	// counts from the intended time, so the delay is not hidden.
	f := &fakeTerminal{period: 100 * ms, tick: 30 * ms, latency: 2 * ms, limit: 1}
	f.run(1000 * ms)
	for _, l := range f.latencies {
		if l < 2*ms || l > 2*ms+30*ms {
			t.Fatalf("latency %dms outside [2, 32] ms", l/ms)
		}
	}
	if slices.Max(f.latencies) <= 2*ms {
		t.Error("the engine's own lateness does not show in the latency")
	}
}

func TestOpenLoopPipeline(t *testing.T) {
	// A slow server (250 ms per answer) at 10/s: with 4 in flight every
	// slot is sent; with 1, two of three are skipped.
	f := &fakeTerminal{period: 100 * ms, tick: ms, latency: 250 * ms, limit: 4}
	f.run(2000 * ms)
	if f.busy != 0 || f.sent != 20 {
		t.Errorf("pipeline 4: sent %d busy %d", f.sent, f.busy)
	}
	f = &fakeTerminal{period: 100 * ms, tick: ms, latency: 250 * ms, limit: 1}
	f.run(2000 * ms)
	if f.sent != 7 || f.busy != 13 {
		t.Errorf("pipeline 1: sent %d busy %d, want 7 and 13", f.sent, f.busy)
	}
}

func TestFirstSlotAndPhase(t *testing.T) {
	const period = 100 * ms
	if got := firstSlot(0, 1000*ms, period, 0.25); got != 1025*ms {
		t.Errorf("before start: %d", got/ms)
	}
	if got := firstSlot(1130*ms, 1000*ms, period, 0.25); got != 1225*ms {
		t.Errorf("between slots: %d", got/ms)
	}
	if got := firstSlot(1125*ms, 1000*ms, period, 0.25); got != 1125*ms {
		t.Errorf("on a slot: %d", got/ms)
	}
	// Phases of any fleet size spread evenly: no tenth of the period
	// holds much more than a tenth of the terminals.
	for _, n := range []int{10, 100, 1000} {
		var bins [10]int
		for i := range n {
			p := phaseOf(i)
			if p < 0 || p >= 1 {
				t.Fatalf("phase %v", p)
			}
			bins[int(p*10)]++
		}
		for b, c := range bins {
			if c > n/10+2 {
				t.Errorf("n=%d: bin %d holds %d", n, b, c)
			}
		}
	}
}

func TestTermHeap(t *testing.T) {
	var h termHeap
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*termConn
	for range 200 {
		tc := &termConn{due: rng.Int64N(1000), hidx: -1}
		all = append(all, tc)
		h.push(tc)
	}
	// Remove some from the middle, change others.
	for i := 0; i < 200; i += 7 {
		h.remove(all[i])
		if all[i].hidx != -1 {
			t.Fatal("removed entry keeps an index")
		}
	}
	for i := 1; i < 200; i += 11 {
		if all[i].hidx >= 0 {
			all[i].due = rng.Int64N(1000)
			h.fix(int(all[i].hidx))
		}
	}
	for i, tc := range h {
		if int(tc.hidx) != i {
			t.Fatalf("entry %d has index %d", i, tc.hidx)
		}
	}
	last := int64(-1)
	for len(h) > 0 {
		top := h[0]
		if top.due < last {
			t.Fatalf("out of order: %d after %d", top.due, last)
		}
		last = top.due
		h.remove(top)
	}
}

func TestMix(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != DefaultMix {
		t.Errorf("String() = %q", m.String())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var got [numKinds]int
	const draws = 100000
	for range draws {
		got[m.pick(rng.Uint32())]++
	}
	want := map[int]float64{kindHeartbeat: 0.70, kindUpgradeQuery: 0.15, kindControl: 0.10, kindGroupList: 0.05}
	for k, c := range got {
		share := float64(c) / draws
		if d := share - want[k]; d < -0.01 || d > 0.01 {
			t.Errorf("%s: share %.3f, want %.2f", mixKinds[k], share, want[k])
		}
	}
	for _, bad := range []string{"", "heartbeat=0", "beat=5", "heartbeat", "control=-1"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q): no error", bad)
		}
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		spec, target string
		n            int
		first, last  string
	}{
		{"auto", "127.0.0.1:7000", 49, "127.0.0.2", "127.0.0.50"},
		{"auto", "localhost:7000", 49, "127.0.0.2", "127.0.0.50"},
		{"auto", "10.0.0.5:7000", 0, "", ""},
		{"auto", "[::1]:7000", 0, "", ""},
		{"off", "127.0.0.1:7000", 0, "", ""},
		{"127.0.0.2-127.0.0.4", "127.0.0.1:7000", 3, "127.0.0.2", "127.0.0.4"},
		{"127.0.0.2-9", "127.0.0.1:7000", 8, "127.0.0.2", "127.0.0.9"},
		{"10.1.0.255-10.1.1.1", "10.1.0.1:7000", 3, "10.1.0.255", "10.1.1.1"},
	} {
		s, err := ParseSource(tc.spec, tc.target)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if s.Len() != tc.n {
			t.Errorf("%s %s: %d addresses, want %d", tc.spec, tc.target, s.Len(), tc.n)
			continue
		}
		if tc.n == 0 {
			if s.Next() != nil {
				t.Errorf("%s: Next() != nil", tc.spec)
			}
			continue
		}
		if got := s.Next().IP.String(); got != tc.first {
			t.Errorf("%s: first %s", tc.spec, got)
		}
		for range tc.n - 2 {
			s.Next()
		}
		if got := s.Next().IP.String(); got != tc.last {
			t.Errorf("%s: last %s", tc.spec, got)
		}
		if got := s.Next().IP.String(); got != tc.first {
			t.Errorf("%s: round robin back to %s", tc.spec, got)
		}
	}
	for _, bad := range []string{"on", "127.0.0.9-127.0.0.2", "::1-::2", "1.2.3.4-x", "10.0.0.0-10.2.0.0"} {
		if _, err := ParseSource(bad, "127.0.0.1:1"); err == nil {
			t.Errorf("ParseSource(%q): no error", bad)
		}
	}
}
