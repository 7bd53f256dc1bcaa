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
		if r.progress != nil {
			r.progress(Progress{
				At: now, Phase: phase, Connected: pt.Connected, Sent: pt.Sent, Answered: pt.Answered,
				Errors: errs, Skipped: skipped, P99us: pt.P99us,
			})
		}
	}
}

// collect fills the result from the stopped engine.
func (r *runner) collect() {
	res, e := r.res, r.e
	e.dial.addTo(res)
	if e.dialLat.Count() > 0 {
		res.Latency["dial"] = e.dialLat
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
	r.mu.Lock()
	res.Timeline = r.timeline
	r.mu.Unlock()
	if r.sampler != nil {
		res.Server = mergeSamples(r.sampler.Samples(), r.extra)
	}
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

// sample takes one extra server sample now (ramp end, run end).
func (r *runner) sample(ctx context.Context) {
	if r.sampler == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), firstSampleWait)
	defer cancel()
	if s, err := r.sampler.Once(sctx); err == nil {
		r.extra = append(r.extra, s)
	}
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
