package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Scenario names.
const (
	ScenarioConnect   = "connect"
	ScenarioIdle      = "idle"
	ScenarioHeartbeat = "heartbeat"
	ScenarioMixed     = "mixed"
	ScenarioChurn     = "churn"
	// ScenarioUpgrade: UpgradeShare % of the terminals do a launch
	// UPGRADE_QUERY and report an upgrade of the offered release stage by
	// stage (FailShare % of them end FAILED), one request per slot, while
	// the others heartbeat (see upgrade.go).
	ScenarioUpgrade = "upgrade"
	// ScenarioCampaign: every terminal does a launch UPGRADE_QUERY, asks
	// for placement in the campaign it names (SCHEDULE_REQUEST), heartbeats
	// until its slot, and checks in (UPGRADE_CHECK); see campaign.go. The
	// run ends when every terminal ended its campaign, or after -duration.
	ScenarioCampaign = "campaign"
)

// Scenario bounds and defaults.
const (
	// MaxTerminalsPerProc: a process may hold 20000 file descriptors;
	// this leaves room for the rest. Use -procs for more.
	MaxTerminalsPerProc = 19500
	// kneeRatio is achieved/offered below which a saturation step no
	// longer keeps up.
	kneeRatio = 0.95
	// maxRatePerTerminal bounds -rate and -max-rate (per terminal per
	// second): far above any server's per-connection frame limit, low
	// enough to catch a total rate given by mistake.
	maxRatePerTerminal = 1000
	// maxSteps bounds a -saturate run's steps.
	maxSteps = 64
	// settlePoll is how often a ramp checks whether every connect ended.
	settlePoll = 10 * time.Millisecond
	// campaignPoll is how often the campaign scenario checks whether
	// every terminal is done.
	campaignPoll = 100 * time.Millisecond
	// churnTick is how often the churn driver catches up with its rate.
	churnTick = 5 * time.Millisecond
	// maxChurnBurst bounds the churn events one driver tick performs.
	maxChurnBurst = 1000
	// replaceWindow and replacesPerWindow: termd allows 5 replacements of
	// a device's session in 10 minutes; churn stays at 4 per id.
	replaceWindow     = 10 * time.Minute
	replacesPerWindow = 4
	// idDigits: device ids are PREFIX + index, zero-padded to this many digits.
	idDigits = 7
	// defaultInterval is the idle/churn heartbeat interval when the
	// protocol announces none (MQTT).
	defaultInterval = 30 * time.Second
	// timeoutSlack is what the default -timeout adds to the run's own
	// length, for the ramp and the report.
	timeoutSlack = 2 * time.Minute
	// fdReserve is the file descriptors a process keeps for other uses
	// (event loop pollers, the sampler's HTTP connection, stdio).
	fdReserve = 64
	// sampleEvery is the server sampler's period.
	sampleEvery = time.Second
	// firstSampleWait bounds the wait for the baseline sample.
	firstSampleWait = 3 * time.Second
	// markHold is how long a worker holds still after reporting a mark
	// (Progress.Mark) before it closes its connections: time for the
	// parent to sample the server first.
	markHold = 200 * time.Millisecond
)

// errStopped is returned with the partial result of a run whose context
// ended (interrupted, or -timeout).
var errStopped = errors.New("loadtest: stopped")

// newProto returns the protocol driver of cfg.
func newProto(cfg *Config) Proto {
	if cfg.Proto == "mqtt" {
		return NewMQTT()
	}
	return NewTGP(cfg.Secret)
}

// Run runs one scenario in this process and returns what it measured.
// progress, if not nil, is called once a second. The run ends after its
// duration, or at cfg.Timeout, or when ctx ends (then the partial result
// is returned with ctx's error).
func Run(ctx context.Context, cfg Config, progress func(Progress)) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkFDs(cfg.N, cfg.Concurrency); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	src, err := ParseSource(cfg.Src, cfg.Target)
	if err != nil {
		return nil, err
	}
	var mix *Mix
	if cfg.Scenario == ScenarioMixed {
		if mix, err = ParseMix(cfg.Mix); err != nil {
			return nil, err
		}
	}
	ids := make([]string, cfg.N)
	for i := range ids {
		ids[i] = deviceID(cfg.IDPrefix, cfg.IDOffset+i)
	}
	pipeline := 1
	if cfg.Saturate || cfg.Scenario == ScenarioMixed {
		pipeline = cfg.Pipeline
	}
	if cfg.Scenario == ScenarioCampaign {
		pipeline = 2 // a heartbeat may go while a step waits for its answer
	}
	var plan *UpgradePlan
	if cfg.Scenario == ScenarioUpgrade {
		plan = &UpgradePlan{SharePct: cfg.UpgradeShare, FailPct: cfg.FailShare}
	}
	proto := newProto(&cfg)
	if cfg.Scenario == ScenarioCampaign {
		plan := &CampaignPlan{SystemID: cfg.SystemID, HBEvery: cfg.CampaignHB, Download: cfg.CampaignDownload,
			SharePct: cfg.CampaignShare, Offset: cfg.IDOffset}
		if err := plan.ParseBox(cfg.CampaignBox); err != nil {
			return nil, err
		}
		c, ok := proto.(Campaigner)
		if !ok {
			return nil, fmt.Errorf("-scenario campaign: %s cannot run it", proto.Name())
		}
		c.SetCampaign(plan)
	}
	r := &runner{cfg: cfg, progress: progress}
	r.e = newEngine(engineConfig{
		Target: cfg.Target, Src: src, Concurrency: cfg.Concurrency,
		DialTimeout: cfg.DialTimeout, HelloTimeout: cfg.HelloTimeout, AckTimeout: cfg.AckTimeout,
		Pipeline: pipeline, Loops: cfg.Loops, Mix: mix, Upgrade: plan, Campaign: cfg.Scenario == ScenarioCampaign,
		DefaultInterval: defaultInterval,
	}, proto, ids)
	r.res = &Result{
		Scenario: cfg.Scenario, Proto: cfg.Proto, Target: cfg.Target, Terminals: cfg.N, Procs: 1,
		Counts: map[string]uint64{}, Errors: map[string]uint64{}, Latency: map[string]*Histogram{},
	}
	return r.run(ctx)
}

// runner is one Run in progress.
type runner struct {
	cfg      Config
	e        *engine
	res      *Result
	progress func(Progress)
	sampler  *Sampler
	// rampConnects and rampAnswered are the tallies at the ramp's end.
	rampConnects, rampAnswered uint64

	mu       sync.Mutex
	phase    string
	timeline []Point
	extra    []ServerSample // samples taken at the marks and at the run's end

	progressMu sync.Mutex // one progress call at a time (report, mark)
}

func (r *runner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	cpu0 := SelfCPUSeconds()
	stopSampler := r.startSampler(ctx)
	r.res.Started = time.Now()
	if err := r.e.start(ctx); err != nil {
		stopSampler()
		return nil, err
	}
	reportCtx, stopReport := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.report(reportCtx) })

	err := r.scenario(ctx)

	stopReport()
	wg.Wait()
	r.e.stop()
	r.sample(ctx) // after the teardown: the whole run's CPU
	stopSampler()
	r.collect()
	r.res.ClientCPU = SelfCPUSeconds() - cpu0
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", errStopped, context.Cause(ctx))
	}
	return r.res, err
}

// scenario runs the scenario's phases. It marks the ramp's end and the
// measured phase's end (Result.RampEnd, MeasureEnd), each with a server
// sample taken before the run goes on: heartbeat and mixed requests (and
// the saturation steps) start after the first, and the second is taken
// once the phase stopped sending and before anything is closed.
func (r *runner) scenario(ctx context.Context) error {
	e, cfg := r.e, r.cfg
	switch cfg.Scenario {
	case ScenarioConnect:
		r.setPhase("connect")
		rampEnd := time.Now().Add(cfg.Duration)
		if cfg.Duration <= 0 {
			rampEnd = time.Now().Add(cfg.Timeout)
		}
		took := r.ramp(ctx, rampEnd)
		r.rampConnects, r.rampAnswered = r.tally()
		r.res.RampEnd = r.mark(ctx, MarkRampEnd)
		r.res.Duration = took
		if s := took.Seconds(); s > 0 {
			r.res.Counts["connects_per_s"] = uint64(math.Round(float64(e.connected.Load()) / s))
		}
		if cfg.Settle > 0 && ctx.Err() == nil {
			r.setPhase("settle")
			sleepCtx(ctx, cfg.Settle)
			r.res.MeasureEnd = r.mark(ctx, MarkMeasureEnd)
		}
		return nil
	case ScenarioIdle, ScenarioChurn:
		e.setSchedule(schedServer, 0, 0, 1)
	}
	r.setPhase("ramp")
	r.ramp(ctx, time.Now().Add(cfg.Timeout))
	r.rampConnects, r.rampAnswered = r.tally()
	r.res.RampEnd = r.mark(ctx, MarkRampEnd)
	if ctx.Err() != nil {
		return nil
	}
	start := time.Now()
	switch cfg.Scenario {
	case ScenarioIdle:
		r.setPhase("idle")
		sleepCtx(ctx, cfg.Duration)
	case ScenarioChurn:
		r.setPhase("churn")
		r.churn(ctx, cfg.Duration)
		r.setPhase("settle")
		r.drain(ctx, time.Now().Add(cfg.HelloTimeout))
	case ScenarioCampaign:
		r.setPhase(cfg.Scenario)
		e.setSchedule(schedFixed, e.now(), periodOf(cfg.Rate), 2)
		r.campaign(ctx, time.Now().Add(cfg.Duration))
	default: // heartbeat, mixed, upgrade
		if cfg.Saturate {
			r.saturate(ctx)
			break
		}
		r.setPhase(cfg.Scenario)
		e.setSchedule(schedFixed, e.now(), periodOf(cfg.Rate), cfg.Pipeline)
		sleepCtx(ctx, cfg.Duration)
	}
	// The phase is over: no more requests (those in flight are still
	// answered and counted), nothing closed yet.
	e.setSchedule(schedNone, 0, 0, 1)
	r.res.Duration = time.Since(start)
	r.res.MeasureEnd = r.mark(ctx, MarkMeasureEnd)
	return nil
}

// campaign waits until every terminal ended its campaign, or none is
// connected any more (the server went away: termload does not
// reconnect), or until `until`.
func (r *runner) campaign(ctx context.Context, until time.Time) {
	if r.e.camp == nil {
		return
	}
	for r.e.camp.CampaignDone() < int64(len(r.e.ids)) && r.e.connected.Load() > 0 && time.Now().Before(until) {
		if !sleepCtx(ctx, campaignPoll) {
			return
		}
	}
}

// tally is the sessions opened and the requests answered so far.
func (r *runner) tally() (connects, answered uint64) {
	for _, l := range r.e.loopList() {
		answered += l.ctr.answered.Load()
		l.ctr.mu.Lock()
		connects += l.ctr.counts["connect_ok"]
		l.ctr.mu.Unlock()
	}
	return connects, answered
}

// periodOf is the slot period of rate requests per second.
func periodOf(rate float64) time.Duration {
	return max(time.Duration(float64(time.Second)/rate), time.Microsecond)
}

// ramp connects every terminal and waits until each attempt has ended
// (session up or failed) or until `until`; it returns how long it took.
func (r *runner) ramp(ctx context.Context, until time.Time) time.Duration {
	e := r.e
	start := time.Now()
	e.connect(0, len(e.ids))
	for e.settled.Load() < int64(len(e.ids)) && time.Now().Before(until) {
		if !sleepCtx(ctx, settlePoll) {
			break
		}
	}
	took := time.Since(start)
	if left := int64(len(e.ids)) - e.settled.Load(); left > 0 {
		e.dial.count("connect_incomplete", uint64(left))
	}
	return took
}

// saturate raises the offered rate step by step until the server no
// longer keeps up, and records the knee.
func (r *runner) saturate(ctx context.Context) {
	e, cfg := r.e, r.cfg
	rate := cfg.Rate
	for step := 0; step < maxSteps && ctx.Err() == nil; step++ {
		terms := float64(e.connected.Load())
		if terms == 0 {
			return
		}
		offered := rate * terms
		r.setPhase(fmt.Sprintf("step %d: %.0f/s", step+1, offered))
		a0 := r.answeredOK()
		stepHist := NewHistogram()
		for _, l := range e.loopList() {
			l.step.drainInto(NewHistogram()) // forget the previous step's
		}
		e.setSchedule(schedFixed, e.now(), periodOf(rate), cfg.Pipeline)
		t0 := time.Now()
		sleepCtx(ctx, cfg.StepDuration)
		secs := time.Since(t0).Seconds()
		achieved := float64(r.answeredOK()-a0) / secs
		for _, l := range e.loopList() {
			l.step.drainInto(stepHist)
		}
		r.res.Steps = append(r.res.Steps, Step{Offered: offered, Achieved: achieved, P99us: stepHist.Quantile(99)})
		if achieved/offered < kneeRatio || ctx.Err() != nil {
			break
		}
		r.res.Knee = offered
		if rate*cfg.StepFactor > cfg.MaxRate {
			break
		}
		rate *= cfg.StepFactor
	}
}

// churn disconnects and reconnects terminals, and takes over some, at
// cfg.Rate events per second, device ids round-robin.
func (r *runner) churn(ctx context.Context, d time.Duration) {
	e, cfg := r.e, r.cfg
	t := time.NewTicker(churnTick)
	defer t.Stop()
	start := time.Now()
	end := start.Add(d)
	var events, next int
	var share float64
	n := len(e.ids)
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		due := int(now.Sub(start).Seconds()*cfg.Rate) - events
		for i := 0; i < min(due, maxChurnBurst); i++ {
			events++
			idx := next
			next = (next + 1) % n
			tc := e.live[idx].Load()
			if tc == nil {
				e.dial.count("churn_skipped_not_live", 1)
				continue
			}
			share += cfg.TakeoverShare
			if share >= 1 {
				share--
				e.enqueue(dialJob{idx: idx, takeover: true})
				continue
			}
			e.dial.count("disconnects", 1)
			tc.reconnect.Store(true)
			_ = tc.gc.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// answeredOK is the answers with status OK counted so far.
func (r *runner) answeredOK() uint64 {
	var n uint64
	for _, l := range r.e.loopList() {
		n += l.ctr.answered.Load() - l.ctr.refusals.Load()
	}
	return n
}

// drain waits until no connect is queued or in flight, or until `until`:
// the end of churn, so the last takeovers are seen through.
func (r *runner) drain(ctx context.Context, until time.Time) {
	for (len(r.e.jobs) > 0 || len(r.e.sem) > 0) && time.Now().Before(until) {
		if !sleepCtx(ctx, settlePoll) {
			return
		}
	}
}

// sleepCtx sleeps for d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
