// Package gctune adapts the garbage collector's percentage to the load.
//
// A node at rest holds long-lived session state and allocates almost
// nothing, so a low GOGC (server.gc_percent, 25) keeps its RSS close to
// the live heap. A burst of work (a launch-query storm, thousands of
// upgrade reports a second) allocates tens of MB a second; at 25 % of a
// small live heap the collector then runs several times a second, and
// each cycle's marking takes a share of the two cores and assists from
// the goroutines that allocate, which is where latency tails come from.
//
// Once per period the tuner sets the percentage from the bytes allocated
// in the period: headroom for one period's allocations, so the collector
// runs about once a period, between Base and Max. At rest that is Base;
// going down is by halves. Whenever the node comes to rest (Base wanted,
// sessions not growing) after a period that was not — the first period
// after start, the end of a connect storm, the end of a burst — the
// pages the collector freed go back to the OS at once
// (debug.FreeOSMemory) rather than at the background scavenger's pace: a
// fresh node then starts from the same RSS every time, and a storm's
// garbage does not linger in RSS for seconds after it. While terminals connect (the session count grows), the
// heap gains state, not garbage, and the percentage stays at Base, whose
// target grows with the live heap anyway: the node's peak RSS in a
// connect storm is what it was without the tuner.
package gctune

import (
	"context"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Config is the tuner's bounds.
type Config struct {
	// Base is the percentage at rest (server.gc_percent).
	Base int
	// Max is the highest percentage under load (server.gc_percent_max);
	// Max <= Base turns the tuner off.
	Max int
	// Sessions, when set, counts the node's sessions: a period in which
	// they grew (terminals connecting) keeps Base.
	Sessions func() int64
	// Period is how often the allocation rate is looked at. Default 1s.
	Period time.Duration
}

// Tuner sets the GC percentage from the cycle rate.
type Tuner struct {
	cfg     Config
	percent atomic.Int64
	raises  *metrics.Counter
	mset    *metrics.Set
	sample  []rtmetrics.Sample
	allocs  uint64 // bytes allocated so far, at the last step
	live    uint64 // live heap at the last step
	conns   int64  // sessions at the last step
	resting bool   // the last step wanted Base with sessions not growing
	returns *metrics.Counter
}

// New returns a tuner and sets the percentage to Base.
func New(cfg Config) *Tuner {
	if cfg.Period <= 0 {
		cfg.Period = time.Second
	}
	t := &Tuner{cfg: cfg, sample: []rtmetrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}, mset: metrics.NewSet()}
	t.raises = t.mset.NewCounter("termd_gc_percent_raises_total")
	t.returns = t.mset.NewCounter("termd_gc_returns_total")
	t.mset.NewGauge("termd_gc_percent", func() float64 { return float64(t.Percent()) })
	t.set(cfg.Base)
	t.allocs, t.live = t.read()
	t.conns = t.sessions()
	return t
}

// Percent is the percentage in force.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Returns is how many times the tuner handed freed pages back to the OS
// on coming to rest.
func (t *Tuner) Returns() uint64 { return t.returns.Get() }

// Raises counts the periods that raised the percentage.
func (t *Tuner) Raises() uint64 { return t.raises.Get() }

// Metrics are termd_gc_percent (in force) and
// termd_gc_percent_raises_total.
func (t *Tuner) Metrics() *metrics.Set { return t.mset }

// Run adjusts the percentage every period until ctx ends, then restores
// Base.
func (t *Tuner) Run(ctx context.Context) {
	defer t.set(t.cfg.Base)
	if t.cfg.Max <= t.cfg.Base {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(t.cfg.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.step()
		}
	}
}

// step sets the percentage for the allocation rate of the last period:
// enough headroom above the live heap for one period's allocations, so
// the collector runs about once a period, within [Base, Max]. A period
// in which sessions grew keeps Base; lowering is by halves at most, and
// reaching Base returns the burst's pages to the OS.
func (t *Tuner) step() {
	allocs, live := t.read()
	conns := t.sessions()
	rate, grew := allocs-t.allocs, conns > t.conns+t.conns/growth+minGrowth
	t.allocs, t.live, t.conns = allocs, live, conns
	p := t.Percent()
	want := t.cfg.Base
	if !grew && live > 0 {
		want = int(min(uint64(t.cfg.Max), max(uint64(t.cfg.Base), rate*100/live)))
	}
	switch {
	case want > p:
		t.raises.Inc()
		t.set(want)
	case want < p:
		t.set(max(want, p/2))
	}
	rest := !grew && want == t.cfg.Base && t.Percent() == t.cfg.Base
	if rest && !t.resting {
		// Come to rest: collect now and hand the freed pages back to the
		// OS, rather than leaving them to the background scavenger.
		t.returns.Inc()
		debug.FreeOSMemory()
	}
	t.resting = rest
}

func (t *Tuner) set(p int) {
	t.percent.Store(int64(p))
	debug.SetGCPercent(p)
}

// read returns the bytes allocated so far and the live heap at the last
// GC cycle.
func (t *Tuner) read() (allocs, live uint64) {
	rtmetrics.Read(t.sample)
	return t.sample[0].Value.Uint64(), t.sample[1].Value.Uint64()
}

// sessions is Config.Sessions(), or 0.
func (t *Tuner) sessions() int64 {
	if t.cfg.Sessions == nil {
		return 0
	}
	return t.cfg.Sessions()
}

// Sessions that grew by more than 1/growth plus minGrowth over a period
// are terminals connecting: their state, not garbage, is what the heap
// gains.
const (
	growth    = 100
	minGrowth = 16
)
