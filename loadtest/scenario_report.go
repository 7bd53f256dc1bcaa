package loadtest

import (
	"context"
	"time"
)

// report prints progress and records the timeline once a second.
func (r *runner) report(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastAnswered uint64
	win := NewHistogram()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var sent, answered, errs, skipped uint64
		win.Reset()
		for _, l := range r.e.loopList() {
			sent += l.ctr.sent.Load()
			answered += l.ctr.answered.Load()
			errs += l.ctr.errors.Load()
			skipped += l.ctr.skippedLate.Load() + l.ctr.skippedBusy.Load()
			l.win.drainInto(win)
		}
		errs += r.e.dial.errors.Load()
		now := time.Now()
		pt := Point{
			At: now, Connected: int(r.e.connected.Load()),
			Sent: sent - lastSent, Answered: answered - lastAnswered,
			P50us: win.Quantile(50), P99us: win.Quantile(99), P999us: win.Quantile(99.9),
		}
		lastSent, lastAnswered = sent, answered
		r.mu.Lock()
		r.timeline = append(r.timeline, pt)
		phase := r.phase
		r.mu.Unlock()
		r.emit(Progress{
			At: now, Phase: phase, Connected: pt.Connected, Sent: pt.Sent, Answered: pt.Answered,
			Errors: errs, Skipped: skipped, P99us: pt.P99us,
		})
	}
}

// collect fills the result from the stopped engine.
func (r *runner) collect() {
	res, e := r.res, r.e
	e.dial.addTo(res)
	if e.dialLat.Count() > 0 {
		res.Latency["dial"] = e.dialLat
	}
	if e.camp != nil && r.cfg.Scenario == ScenarioCampaign {
		e.camp.CampaignTally(res)
	}
	lag := NewHistogram()
	for _, l := range e.loopList() {
		l.ctr.addTo(res)
		lag.Merge(l.lag)
		for k, h := range l.lat {
			if res.Latency[k] == nil {
				res.Latency[k] = NewHistogram()
			}
			res.Latency[k].Merge(h)
		}
	}
	if lag.Count() > 0 {
		res.Latency["send_lag"] = lag
	}
	if !res.RampEnd.IsZero() {
		// What the server figures' windows leave out (see Result.Counts).
		if r.rampAnswered > 0 {
			res.Counts["answered_in_ramp"] = r.rampAnswered
		}
		if n := res.Counts["connect_ok"]; n > r.rampConnects {
			res.Counts["connect_ok_after_ramp"] = n - r.rampConnects
		}
	}
	r.mu.Lock()
	res.Timeline = r.timeline
	extra := r.extra
	r.mu.Unlock()
	if r.sampler != nil {
		res.Server = mergeSamples(r.sampler.Samples(), extra)
	}
}

// emit passes p to the progress function, if any, one call at a time.
func (r *runner) emit(p Progress) {
	if r.progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.progress(p)
}

// startSampler starts sampling the server, if the run has a metrics URL
// or pid, and waits for the baseline sample (taken before any connect).
// The returned function stops it.
func (r *runner) startSampler(ctx context.Context) (stop func()) {
	cfg := r.cfg
	if cfg.NoSampler || (cfg.Metrics == "" && cfg.ServerPID <= 0) {
		return func() {}
	}
	r.sampler = NewSampler(cfg.Metrics, cfg.ServerPID, sampleEvery)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.sampler.Run(sctx)
	}()
	deadline := time.Now().Add(firstSampleWait)
	for len(r.sampler.Samples()) == 0 && time.Now().Before(deadline) {
		sleepCtx(ctx, settlePoll)
	}
	return func() {
		cancel()
		<-done
	}
}

// Marks: the moments of a run the server is sampled at for the CPU
// windows (Result.RampEnd, Result.MeasureEnd). A worker, which leaves
// sampling to its parent, reports them as Progress.Mark.
const (
	MarkRampEnd    = "ramp_end"
	MarkMeasureEnd = "measure_end"
)

// mark notes that the run reached mark now and returns the moment: it
// takes a server sample stamped with it. A run without a sampler of its
// own (a worker) reports the mark to progress instead, and if it is
// about to close its connections (the measured phase's end, connect's
// ramp's end) it first holds still for markHold, so that the parent's
// sample is in before the teardown starts. (At a ramp's end it goes on
// at once: the parent samples when the last worker's ramp ends, and a
// few milliseconds of requests before that sample are noise, while a
// hold would put idle time into the measured phase.)
func (r *runner) mark(ctx context.Context, mark string) time.Time {
	at := r.sample(ctx)
	if r.cfg.NoSampler && r.progress != nil {
		r.mu.Lock()
		phase := r.phase
		r.mu.Unlock()
		r.emit(Progress{At: at, Phase: phase, Mark: mark})
		if mark == MarkMeasureEnd || r.cfg.Scenario == ScenarioConnect {
			sleepCtx(ctx, markHold)
		}
	}
	return at
}

// sample takes one extra server sample now (at a mark, at the run's end)
// and returns the moment, which is also the sample's time stamp: the run
// does nothing else until the sample is in, so the server's reading,
// however slow the scrape, holds nothing of what comes next. Safe for
// concurrent use.
func (r *runner) sample(ctx context.Context) time.Time {
	at := time.Now()
	if r.sampler == nil {
		return at
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), firstSampleWait)
	defer cancel()
	if s, err := r.sampler.Once(sctx); err == nil {
		s.At = at
		r.mu.Lock()
		r.extra = append(r.extra, s)
		r.mu.Unlock()
	}
	return at
}

// mergeSamples merges two time-ordered sample lists.
func mergeSamples(a, b []ServerSample) []ServerSample {
	out := make([]ServerSample, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && !a[0].At.After(b[0].At)) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
