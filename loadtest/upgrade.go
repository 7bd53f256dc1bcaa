package loadtest

// The upgrade scenario's terminal side: each upgrading terminal sends,
// one per slot and each after the previous was answered, a launch
// UPGRADE_QUERY and then UPGRADE_REPORTs of the offered release —
// DOWNLOADING at 0, 50 and 100 %, DOWNLOADED, INSTALLING, then SUCCEEDED
// or FAILED — and heartbeats the rest of the time. The release must be
// published on the server for app tgpAppID (model tgpModel) before the
// run (docs/performance.md).

import (
	"github.com/termd/termd/protocol"
)

// UpgradePlan is the upgrade scenario's shares, in percent.
type UpgradePlan struct {
	SharePct, FailPct int
}

// Upgrader is implemented by protocols that can run the upgrade scenario.
type Upgrader interface {
	// NextKind is the kind of terminal t's next request: its next upgrade
	// step, or a heartbeat (not upgrading, waiting for an answer, done).
	NextKind(t *Term, plan *UpgradePlan) uint8
}

// Upgrade steps after the query: stepReports reports, then done.
const (
	stepQuery   = 0
	stepReports = 6
	stepDone    = stepReports + 1
	// failSpread scatters the failing terminals over the indices (a prime).
	failSpread = 7919
	// loadFailCode is the code of the scenario's FAILED reports.
	loadFailCode = 1
)

// upState is one session's progress through the scenario.
type upState struct {
	init, active, fail, waiting bool
	step                        uint8
	release                     string
}

// upSteps are the reports after the query: stage and progress.
var upSteps = [stepReports]struct{ stage, progress uint8 }{
	{protocol.StageDownloading, 0}, {protocol.StageDownloading, 50}, {protocol.StageDownloading, 100},
	{protocol.StageDownloaded, 100}, {protocol.StageInstalling, 100}, {protocol.StageSucceeded, 100},
}

// NextKind implements Upgrader.
func (p *tgpProto) NextKind(t *Term, plan *UpgradePlan) uint8 {
	s, ok := t.State.(*tgpSession)
	if !ok || !s.live {
		return kindHeartbeat
	}
	u := &s.up
	if !u.init {
		u.init = true
		u.active = t.Index%100 < plan.SharePct
		u.fail = (t.Index*failSpread)%100 < plan.FailPct
	}
	switch {
	case !u.active || u.waiting || u.step >= stepDone:
		return kindHeartbeat
	case u.step == stepQuery:
		return kindUpgradeQuery
	}
	return kindUpgradeReport
}

// upgradeRequest encodes the session's next upgrade request (kind
// KindUpgradeQuery or KindUpgradeReport); false when it has none.
func (p *tgpProto) upgradeRequest(sc *tgpScratch, s *tgpSession, kind string) (protocol.Message, bool) {
	u := &s.up
	switch {
	case kind == KindUpgradeQuery && u.active && u.step == stepQuery:
		sc.uqLaunch = protocol.UpgradeQuery{AppID: tgpAppID, Version: tgpVersion, Launch: true}
		u.waiting = true
		return &sc.uqLaunch, true
	case kind == KindUpgradeReport && u.active && u.release != "" && u.step > stepQuery && u.step < stepDone:
		st := upSteps[u.step-1]
		sc.rep = protocol.UpgradeReport{ReleaseID: u.release, Attempt: 1, Stage: st.stage, Progress: st.progress}
		if u.fail && st.stage == protocol.StageSucceeded {
			sc.rep.Stage, sc.rep.Code, sc.rep.Message = protocol.StageFailed, loadFailCode, "termload: simulated failure"
		}
		u.waiting = true
		return &sc.rep, true
	}
	return nil, false
}

// upgradeAnswered moves the session on after an answer to its query or
// report: the next step after an OK, the same one again after a refusal
// (UNAVAILABLE under load), done when the query offered nothing.
func (s *tgpSession) upgradeAnswered(query bool, status protocol.Code, offer *protocol.Offer) {
	u := &s.up
	if !u.waiting {
		return // the mixed scenario's query
	}
	u.waiting = false
	switch {
	case status != protocol.OK:
	case query && offer == nil:
		u.step = stepDone
	case query:
		if u.release != offer.ReleaseID {
			u.release = offer.ReleaseID
		}
		u.step++
	default:
		u.step++
	}
}
