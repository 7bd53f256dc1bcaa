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
// The tuner looks once per period at how many cycles ran: more than one
// and it raises the percentage in proportion (so about one cycle runs per
// period), up to Max; none and it halves it, down to Base. The heap grows
// only while the node is busy and returns to Base's headroom at rest.
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
	// Period is how often cycles are counted. Default 1s.
	Period time.Duration
}

// Tuner sets the GC percentage from the cycle rate.
type Tuner struct {
	cfg     Config
	percent atomic.Int64
	raises  *metrics.Counter
	mset    *metrics.Set
	sample  []rtmetrics.Sample
	last    uint64
}

// New returns a tuner and sets the percentage to Base.
func New(cfg Config) *Tuner {
	if cfg.Period <= 0 {
		cfg.Period = time.Second
	}
	t := &Tuner{cfg: cfg, sample: []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}, mset: metrics.NewSet()}
	t.raises = t.mset.NewCounter("termd_gc_percent_raises_total")
	t.mset.NewGauge("termd_gc_percent", func() float64 { return float64(t.Percent()) })
	t.set(cfg.Base)
	t.last = t.cycles()
	return t
}

// Percent is the percentage in force.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

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

// step looks at the cycles since the last step and moves the percentage.
func (t *Tuner) step() {
	now := t.cycles()
	n := int(now - t.last)
	t.last = now
	p := t.Percent()
	switch {
	case n > 1 && p < t.cfg.Max:
		t.raises.Inc()
		t.set(min(t.cfg.Max, p*n))
	case n == 0 && p > t.cfg.Base:
		t.set(max(t.cfg.Base, p/2))
	}
}

func (t *Tuner) set(p int) {
	t.percent.Store(int64(p))
	debug.SetGCPercent(p)
}

func (t *Tuner) cycles() uint64 {
	rtmetrics.Read(t.sample)
	return t.sample[0].Value.Uint64()
}
