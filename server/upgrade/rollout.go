package upgrade

// Phased rollouts (docs/upgrades.md, "Phases"). A phased release offers
// itself to the devices of its phases up to the current one. Each phase
// counts its distinct devices — offered while it was current — and how
// many of them last succeeded or failed; the counts, the pause and the
// advance change in the same group-commit transaction as the report or
// first offer that moved them, on the committer goroutine, which is the
// only writer of rollout states. So the conditions are evaluated on
// exactly the committed counts, one report at a time: the rollout never
// advances past a phase whose error condition held, and never pauses on
// a count it did not reach.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/storage"
)

// Phase defaults (docs/upgrades.md): a cautious fleet's 1 % → 10 % →
// 100 %, each soaking an hour, advancing at 95 % successes and pausing
// above 5 % failures once it has 20 devices.
var (
	DefaultPhasePercents = []int{1, 10, 100}
	DefaultPhase         = storage.Phase{SoakMs: time.Hour.Milliseconds(), SuccessPct: 95, ErrorPct: 5, MinDevices: 20}
)

// phaseSet is a phase's device list as a set (nil for a percent phase).
type phaseSet map[string]bool

// phaseOf returns the first phase up to upTo whose devices include dev.
func (r *release) phaseOf(dev string, upTo int) (int, bool) {
	for i := 0; i <= upTo && i < len(r.Phases); i++ {
		p := r.Phases[i]
		if p.Percent > 0 && inRollout(r.ID, dev, p.Percent) || r.phaseSets[i][dev] ||
			p.Group != "" && r.inGroup != nil && r.inGroup(p.Group, dev) {
			return i, true
		}
	}
	return 0, false
}

// rolloutLocked returns the release's rollout state in memory (a fresh
// one when none was committed yet). The caller holds s.mu.
func (s *Service) rolloutLocked(r *release) *storage.RolloutState {
	if st := s.rollouts[r.ID]; st != nil {
		return st
	}
	return freshRollout(r)
}

func freshRollout(r *release) *storage.RolloutState {
	return &storage.RolloutState{ReleaseID: r.ID, Counts: make([]storage.PhaseCounts, len(r.Phases))}
}

// offersNow reports whether the release offers itself to a device it has
// not been offered to yet. The caller holds s.mu.
func (s *Service) offersNow(r *release, dev, model, version string) bool {
	if len(r.Phases) == 0 {
		return r.targets(dev, model, version, r.RolloutPct)
	}
	st := s.rolloutLocked(r)
	if st.Paused || !r.targets(dev, model, version, 100) {
		return false
	}
	_, ok := r.phaseOf(dev, st.Phase)
	return ok
}

// txRollout reads the release's rollout state inside tx.
func txRollout(tx storage.UpgradeTx, r *release) (*storage.RolloutState, error) {
	st, found, err := tx.Rollout(r.ID)
	if err != nil {
		return nil, err
	}
	if !found {
		return freshRollout(r), nil
	}
	return &st, nil
}

// rolloutChange is what a committed rollout transition leaves to do.
type rolloutChange struct {
	rel      *release
	st       storage.RolloutState
	event    string // "paused", "advanced", "waiting_approval", "completed", or "" (counts only)
	oldPhase int
}

// evaluate applies the conditions to st at now and returns the
// transition it made ("" for none). The error condition is looked at in
// every phase up to the current one (a late ROLLED_BACK of an earlier
// phase's device counts too); the current phase advances only while the
// release is published (an operator's release pause holds the phases).
func (s *Service) evaluate(r *release, st *storage.RolloutState, now int64) string {
	if st.Paused || st.Completed || len(r.Phases) == 0 {
		return ""
	}
	for i := 0; i <= st.Phase; i++ {
		p, c := r.Phases[i], st.Counts[i]
		denom := max(c.Devices, len(p.Devices))
		if denom >= p.MinDevices && denom > 0 && c.Failed*100 > p.ErrorPct*denom && c.Failed > c.Accepted {
			st.Paused, st.PausedMs = true, now
			st.PauseReason = fmt.Sprintf("phase %d: %d of %d devices failed, above %d%%", i+1, c.Failed, denom, p.ErrorPct)
			return "paused"
		}
	}
	if st.WaitingApproval || !s.isPublished(r.ID) {
		return ""
	}
	p, c := r.Phases[st.Phase], st.Counts[st.Phase]
	denom := max(c.Devices, len(p.Devices))
	started := st.PhaseStartedMs
	if started == 0 {
		started = r.PublishedMs
	}
	if now-started < p.SoakMs || denom < max(p.MinDevices, 1) || c.Succeeded*100 < p.SuccessPct*denom {
		return ""
	}
	switch {
	case st.Phase == len(r.Phases)-1:
		st.Completed = true
		return "completed"
	case p.Approval:
		st.WaitingApproval = true
		return "waiting_approval"
	}
	st.Phase++
	st.PhaseStartedMs = now
	return "advanced"
}

// isPublished reports whether the release is published now.
func (s *Service) isPublished(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[id]
	return r != nil && r.State == storage.ReleasePublished
}

// countOffer counts a first offer in the current phase inside tx and
// returns the phase, or false when the committed state no longer offers
// the release to the device (paused, or not in a phase up to the current
// one): the query then answers without the offer.
func (s *Service) countOffer(tx storage.UpgradeTx, r *release, dev string, now int64) (int, *rolloutChange, bool, error) {
	st, err := txRollout(tx, r)
	if err != nil {
		return 0, nil, false, err
	}
	if _, in := r.phaseOf(dev, st.Phase); st.Paused || !in {
		return 0, nil, false, nil
	}
	st.Counts[st.Phase].Devices++
	ch := &rolloutChange{rel: r, oldPhase: st.Phase}
	ch.event = s.evaluate(r, st, now)
	st.UpdatedMs = now
	if err := tx.PutRollout(st); err != nil {
		return 0, nil, false, err
	}
	ch.st = *st
	return ch.oldPhase, ch, true, nil
}

// outcomeOf is the outcome a phase counts for a record in stage.
func outcomeOf(stage uint8) uint8 {
	switch {
	case stage == protocol.StageSucceeded:
		return storage.OutcomeSucceeded
	case storage.StageFailed(stage):
		return storage.OutcomeFailed
	}
	return storage.OutcomeOpen
}

// countOutcome moves the device's outcome in its phase's counts inside
// tx when its latest attempt's outcome changed; a is updated in place
// (the caller stores it). It returns the change, or nil.
func (s *Service) countOutcome(tx storage.UpgradeTx, r *release, a *storage.UpgradeAssignment, attempt uint64, stage uint8, now int64) (*rolloutChange, bool, error) {
	if len(r.Phases) == 0 || attempt < a.OutcomeAttempt || a.Phase >= len(r.Phases) {
		return nil, false, nil
	}
	o := outcomeOf(stage)
	if o == a.Outcome && attempt == a.OutcomeAttempt {
		return nil, false, nil
	}
	st, err := txRollout(tx, r)
	if err != nil {
		return nil, false, err
	}
	c := &st.Counts[a.Phase]
	switch a.Outcome {
	case storage.OutcomeSucceeded:
		c.Succeeded--
	case storage.OutcomeFailed:
		c.Failed--
	}
	switch o {
	case storage.OutcomeSucceeded:
		c.Succeeded++
	case storage.OutcomeFailed:
		c.Failed++
	}
	c.Accepted = min(c.Accepted, c.Failed)
	a.Outcome, a.OutcomeAttempt = o, attempt
	ch := &rolloutChange{rel: r, oldPhase: st.Phase}
	ch.event = s.evaluate(r, st, now)
	st.UpdatedMs = now
	if err := tx.PutRollout(st); err != nil {
		return nil, false, err
	}
	ch.st = *st
	return ch, true, nil
}

// applied records a committed rollout change in memory, then announces,
// publishes and notifies it. It runs on the committer after the commit.
func (s *Service) applied(ch *rolloutChange) {
	st := ch.st.Clone()
	s.mu.Lock()
	s.rollouts[ch.rel.ID] = &st
	cur := s.rels[ch.rel.ID]
	s.mu.Unlock()
	if ch.event == "" {
		return
	}
	s.m.rolloutEvent(ch.event)
	s.publish(events.Event{Kind: events.KindRollout, Release: ch.rel.ID, State: ch.event, Reason: st.PauseReason})
	s.log.Info("rollout "+ch.event, "release", ch.rel.ID, "phase", st.Phase+1, "reason", st.PauseReason)
	switch ch.event {
	case "advanced":
		if cur != nil && cur.State == storage.ReleasePublished {
			s.announcePhase(cur, ch.oldPhase)
		}
	case "resumed":
		if cur != nil && cur.State == storage.ReleasePublished {
			s.announce(cur, -1)
		}
	case "paused":
		if s.notifier != nil && st.PauseReason != "" {
			e := notify.Event{ID: fmt.Sprintf("rollout/%s/paused/%d", ch.rel.ID, st.PausedMs), Kind: notify.KindRolloutPaused,
				ReleaseID: ch.rel.ID, AppID: ch.rel.AppID, Version: ch.rel.Version, Message: st.PauseReason, AtMs: st.PausedMs}
			ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
			if err := s.notifier.Enqueue(ctx, e); err != nil {
				s.log.Warn("rollout pause notification not enqueued", "release", ch.rel.ID, "err", err)
			}
			cancel()
		}
	}
}

// tickRollouts is the committer job that advances phases whose soak
// passed without a report to move them.
func (s *Service) tickRollouts() {
	s.mu.RLock()
	var rels []*release
	for _, rs := range s.byApp {
		for _, r := range rs {
			if len(r.Phases) > 0 {
				if st := s.rolloutLocked(r); !st.Paused && !st.Completed && !st.WaitingApproval {
					rels = append(rels, r)
				}
			}
		}
	}
	s.mu.RUnlock()
	if len(rels) == 0 {
		return
	}
	s.submit(&job{apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
		var chs []*rolloutChange
		for _, r := range rels {
			st, err := txRollout(tx, r)
			if err != nil {
				return nil, err
			}
			old := st.Phase
			if ev := s.evaluate(r, st, now); ev != "" {
				st.UpdatedMs = now
				if err := tx.PutRollout(st); err != nil {
					return nil, err
				}
				chs = append(chs, &rolloutChange{rel: r, st: *st, event: ev, oldPhase: old})
			}
		}
		return &outcome{after: func() {
			for _, ch := range chs {
				s.applied(ch)
			}
		}}, nil
	}})
}

// operate runs an operator's rollout change through the committer (so it
// is ordered with the reports) and waits for its commit.
func (s *Service) operate(ctx context.Context, id string, fn func(r *release, st *storage.RolloutState, now int64) (string, error)) (*storage.RolloutState, error) {
	s.mu.RLock()
	r := s.rels[id]
	s.mu.RUnlock()
	if r == nil {
		return nil, errNoRelease
	}
	if len(r.Phases) == 0 {
		return nil, conflict("release has no phases: its rollout is the percentage (termctl release rollout)")
	}
	done := make(chan error, 1)
	var res storage.RolloutState
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
			st, err := txRollout(tx, r)
			if err != nil {
				return nil, err
			}
			old := st.Phase
			ev, err := fn(r, st, now)
			if err != nil {
				return nil, err
			}
			if next := s.evaluate(r, st, now); next != "" {
				ev = next
			}
			st.UpdatedMs = now
			if err := tx.PutRollout(st); err != nil {
				return nil, err
			}
			res = st.Clone()
			ch := &rolloutChange{rel: r, st: *st, event: ev, oldPhase: old}
			return &outcome{after: func() { s.applied(ch) }}, nil
		},
		reply: func(err error) { done <- err },
	})
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return &res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// operated runs operate and returns the rollout's status after it.
func (s *Service) operated(ctx context.Context, id string, fn func(r *release, st *storage.RolloutState, now int64) (string, error)) (api.RolloutStatus, error) {
	if _, err := s.operate(ctx, id, fn); err != nil {
		return api.RolloutStatus{}, err
	}
	return s.RolloutStatus(ctx, id)
}

// RolloutPause pauses a phased rollout: no device gets a first offer.
func (s *Service) RolloutPause(ctx context.Context, id string) (api.RolloutStatus, error) {
	return s.operated(ctx, id, func(_ *release, st *storage.RolloutState, now int64) (string, error) {
		if st.Paused {
			return "", conflict("rollout is already paused")
		}
		st.Paused, st.PausedMs, st.PauseReason = true, now, api.PausedByOperator
		return "paused", nil
	})
}

// RolloutResume resumes a paused rollout. The failures so far are
// accepted: it pauses again only on a further failure while above an
// error condition (or on one after retried devices brought the count
// down: the accepted count never exceeds the failures).
func (s *Service) RolloutResume(ctx context.Context, id string) (api.RolloutStatus, error) {
	return s.operated(ctx, id, func(_ *release, st *storage.RolloutState, _ int64) (string, error) {
		if !st.Paused {
			return "", conflict("rollout is not paused")
		}
		st.Paused, st.PauseReason, st.PausedMs = false, "", 0
		for i := 0; i <= st.Phase; i++ {
			st.Counts[i].Accepted = st.Counts[i].Failed
		}
		return "resumed", nil
	})
}

// RolloutApprove moves a rollout waiting for approval to its next phase.
func (s *Service) RolloutApprove(ctx context.Context, id string) (api.RolloutStatus, error) {
	return s.operated(ctx, id, func(r *release, st *storage.RolloutState, now int64) (string, error) {
		if st.Paused {
			return "", conflict("rollout is paused: resume it first (its failures are then accepted)")
		}
		if !st.WaitingApproval {
			return "", conflict("rollout is not waiting for approval")
		}
		st.WaitingApproval = false
		st.Phase++
		st.PhaseStartedMs = now
		return "advanced", nil
	})
}

// Rollout returns a release's phases and rollout state.
func (s *Service) Rollout(_ context.Context, id string) (*release, storage.RolloutState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[id]
	if r == nil {
		return nil, storage.RolloutState{}, errNoRelease
	}
	return r, s.rolloutLocked(r).Clone(), nil
}

// writeRolloutMetrics writes, for every published or paused phased
// release, its current phase and each phase's device counts:
// termd_rollout_phase{release} and
// termd_rollout_devices{release,phase,outcome} (offered, succeeded,
// failed), and termd_rollout_paused{release}. Release ids are bounded by
// the operators, not by the fleet.
func (s *Service) writeRolloutMetrics(w io.Writer) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.rels))
	for id, r := range s.rels {
		if len(r.Phases) > 0 && (r.State == storage.ReleasePublished || r.State == storage.ReleasePaused) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := s.rolloutLocked(s.rels[id])
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`termd_rollout_phase{release=%q}`, id), uint64(st.Phase+1))
		paused := uint64(0)
		if st.Paused {
			paused = 1
		}
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`termd_rollout_paused{release=%q}`, id), paused)
		for i, c := range st.Counts {
			for _, v := range []struct {
				outcome string
				n       int
			}{{"offered", c.Devices}, {"succeeded", c.Succeeded}, {"failed", c.Failed}} {
				metrics.WriteGaugeUint64(w, fmt.Sprintf(`termd_rollout_devices{release=%q,phase="%d",outcome=%q}`, id, i+1, v.outcome), uint64(max(v.n, 0)))
			}
		}
	}
}

// phasesOf checks an operator's phases and fills the defaults.
func phasesOf(in []api.Phase) ([]storage.Phase, error) {
	if len(in) > maxPhases {
		return nil, bad("at most %d phases", maxPhases)
	}
	var out []storage.Phase
	last := 0
	for i, p := range in {
		n := i + 1
		switch {
		case btoi(p.Percent > 0)+btoi(len(p.Devices) > 0)+btoi(p.Group != "") != 1:
			return nil, bad("phase %d: give a percent, a device list or a group", n)
		case p.Percent < 0 || p.Percent > 100:
			return nil, bad("phase %d: percent must be 1-100", n)
		case p.Percent > 0 && p.Percent < last:
			return nil, bad("phase %d: percents are cumulative and must not decrease", n)
		case p.SoakS != nil && *p.SoakS < 0 || p.SuccessPct < 0 || p.SuccessPct > 100 || p.ErrorPct < 0 || p.ErrorPct > 100 || p.MinDevices < 0:
			return nil, bad("phase %d: soak_s, success_pct, error_pct or min_devices out of range", n)
		}
		for _, d := range p.Devices {
			if err := checkWireID("device", d); err != nil {
				return nil, err
			}
		}
		last = max(last, p.Percent)
		sp := storage.Phase{Percent: p.Percent, Devices: slices.Clone(p.Devices), Group: p.Group, SoakMs: DefaultPhase.SoakMs,
			SuccessPct: p.SuccessPct, ErrorPct: p.ErrorPct, MinDevices: p.MinDevices, Approval: p.Approval}
		if p.SoakS != nil {
			sp.SoakMs = *p.SoakS * 1000
		}
		if p.SuccessPct == 0 {
			sp.SuccessPct = DefaultPhase.SuccessPct
		}
		if p.ErrorPct == 0 {
			sp.ErrorPct = DefaultPhase.ErrorPct
		}
		if p.MinDevices == 0 {
			sp.MinDevices = min(DefaultPhase.MinDevices, max(len(p.Devices), 1))
			if p.Percent > 0 || p.Group != "" {
				sp.MinDevices = DefaultPhase.MinDevices
			}
		}
		out = append(out, sp)
	}
	if len(out) > 0 && out[len(out)-1].Percent != 100 {
		return nil, bad("the last phase must be 100 percent (every targeted device)")
	}
	return out, nil
}

// maxPhases bounds a release's phases (as storage does).
const maxPhases = 16

func phasesToAPI(ps []storage.Phase) []api.Phase {
	var out []api.Phase
	for _, p := range ps {
		soak := p.SoakMs / 1000
		out = append(out, api.Phase{Percent: p.Percent, Devices: p.Devices, Group: p.Group, SoakS: &soak, SuccessPct: p.SuccessPct,
			ErrorPct: p.ErrorPct, MinDevices: p.MinDevices, Approval: p.Approval})
	}
	return out
}

// RolloutStatus is a phased release's rollout with its counts and funnel.
func (s *Service) RolloutStatus(ctx context.Context, id string) (api.RolloutStatus, error) {
	return s.rolloutStatus(ctx, id, nil)
}

// rolloutStatus is RolloutStatus with the funnel taken from status when
// the caller already has the release's status (nil: read it).
func (s *Service) rolloutStatus(ctx context.Context, id string, status *api.ReleaseStatus) (api.RolloutStatus, error) {
	r, st, err := s.Rollout(ctx, id)
	if err != nil {
		return api.RolloutStatus{}, err
	}
	if len(r.Phases) == 0 {
		return api.RolloutStatus{}, conflict("release has no phases")
	}
	out := api.RolloutStatus{ReleaseID: id, State: "running", PauseReason: st.PauseReason, PausedMs: st.PausedMs, Phase: st.Phase + 1,
		PhaseStartedMs: st.PhaseStartedMs, Funnel: map[string]int{}}
	switch {
	case st.Paused:
		out.State = "paused"
	case st.Completed:
		out.State = "completed"
	case st.WaitingApproval:
		out.State = "waiting_approval"
	}
	if out.PhaseStartedMs == 0 {
		out.PhaseStartedMs = r.PublishedMs
	}
	for i, p := range phasesToAPI(r.Phases) {
		c := st.Counts[i]
		ps := api.PhaseStatus{Phase: p, Offered: c.Devices, Succeeded: c.Succeeded, Failed: c.Failed, Accepted: c.Accepted, State: "pending"}
		switch {
		case i < st.Phase || st.Completed:
			ps.State = "done"
		case i == st.Phase:
			ps.State = "current"
		}
		out.Phases = append(out.Phases, ps)
	}
	if status == nil {
		st, err := s.Status(ctx, id)
		if err != nil {
			return api.RolloutStatus{}, err
		}
		status = &st
	}
	for k, v := range status.Stages {
		out.Funnel[k] = v
	}
	return out, nil
}
