package upgrade

// UPGRADE_REPORT and the group committer: every write a terminal's
// request causes (reports, first offers, versions, delivered marks) is a
// job; the committer takes the jobs that are waiting, up to
// upgrade.commit_batch, applies them in one storage transaction, enqueues
// the failures' notifications, and only then answers them.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/termd/termd/server/groupcommit"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/storage"
)

// job is one unit of the group commit. apply runs inside the
// transaction and reads through tx (which sees the batch's earlier
// writes); it returns what to do once the commit is durable: update
// memory and collect notifications. reply, if set, answers the terminal.
type job struct {
	apply func(tx storage.UpgradeTx, now int64) (*outcome, error)
	reply func(err error)
}

// outcome is what a committed job leaves to do.
type outcome struct {
	after  func()                  // update in-memory state (committer goroutine, before replies)
	notify []storage.UpgradeReport // failure records to enqueue before the reply
}

// stageRank orders stages for the state machine: a record never moves to
// a lower rank. The synthetic TIMED_OUT and REVERTED rank above the
// in-progress stages and below what the terminal itself reports last, so
// a late real outcome replaces termd's guess. ROLLED_BACK ranks above
// SUCCEEDED (spec §6.1: it takes the device out of the successes).
var stageRank = [storage.StageCount]int{
	protocol.StageDownloading: 1, protocol.StageDownloaded: 2, protocol.StageInstalling: 3,
	storage.StageTimedOut: 4, storage.StageReverted: 4,
	protocol.StageSucceeded: 5, protocol.StageFailed: 6, protocol.StageRolledBack: 7,
}

// MaxAttemptNumber is the highest attempt a report may carry: each
// attempt is a record, so a terminal counting without end cannot grow
// the store without end (a real one stops at upgrade.max_attempts).
const MaxAttemptNumber = 1000

// maxSupersede bounds how many earlier attempts a report's attempt
// clears from stuck detection (terminals count attempts from 1; a
// hostile attempt number must not make a long loop).
const maxSupersede = 16

// isOpen reports whether an attempt in stage may still get stuck.
func isOpen(stage uint8) bool { return stage >= 1 && stage <= protocol.StageInstalling }

// stageNames are the stages' names in the admin API and events.
var stageNames = [storage.StageCount]string{"", "downloading", "downloaded", "installing", "succeeded", "failed", "rolled_back", "timed_out", "reverted"}

func stageName(st uint8) string {
	if int(st) < len(stageNames) {
		return stageNames[st]
	}
	return fmt.Sprint(st)
}

// update is one report to merge: from the terminal or synthetic.
type update struct {
	rel      *release
	device   string
	model    string
	attempt  uint64
	stage    uint8
	progress uint8
	code     uint64
	message  string
	// onlyFrom, for a synthetic update, is the stage the record must
	// still be in (else the terminal reported meanwhile and it is dropped).
	onlyFrom uint8
}

// merge applies u to the attempt's record inside tx: the state machine
// of docs/upgrades.md ("Reports").
func (s *Service) merge(tx storage.UpgradeTx, u *update, now int64) (*outcome, error) {
	a, assigned, err := tx.Assignment(u.rel.ID, u.device)
	if err != nil {
		return nil, err
	}
	if !assigned {
		return nil, &protocol.Error{Code: protocol.Forbidden, Message: "release was never offered to this device"}
	}
	cur, found, err := tx.Report(u.rel.ID, u.device, u.attempt)
	if err != nil {
		return nil, err
	}
	if u.onlyFrom != 0 && (!found || cur.Stage != u.onlyFrom) {
		return &outcome{}, nil
	}
	if !found {
		cur = storage.UpgradeReport{
			ReleaseID: u.rel.ID, DeviceID: u.device, Attempt: u.attempt, AppID: u.rel.AppID,
			Version: u.rel.Version, FromVersion: a.FromVersion, Model: u.model,
		}
	}
	prev := cur.Stage
	switch {
	case found && u.stage == prev && u.stage != protocol.StageDownloading:
		return &outcome{}, nil // a repeat: acknowledged without a second record
	case found && u.stage == prev: // DOWNLOADING repeats update progress in place
		if cur.Progress == u.progress {
			return &outcome{}, nil
		}
		cur.Progress = u.progress
	case stageRank[u.stage] < stageRank[prev]:
		// Out of order: stored (its time), but the state stays.
		if cur.StageMs[u.stage] != 0 {
			return &outcome{}, nil
		}
		cur.StageMs[u.stage] = now
	default:
		cur.Stage, cur.Progress, cur.Code, cur.Message = u.stage, u.progress, u.code, u.message
	}
	if cur.StageMs[u.stage] == 0 {
		cur.StageMs[u.stage] = now
	}
	cur.UpdatedMs = now
	moved := cur.Stage != prev || !found
	newFailure := moved && storage.StageFailed(cur.Stage) && !storage.StageFailed(prev)
	if newFailure {
		cur.Enqueued = false
		a.Failures++
	}
	var roll *rolloutChange
	counted := false
	if moved {
		if roll, counted, err = s.countOutcome(tx, u.rel, &a, u.attempt, cur.Stage, now); err != nil {
			return nil, err
		}
	}
	if newFailure || counted {
		if err := tx.PutAssignment(&a); err != nil {
			return nil, err
		}
	}
	if err := tx.PutReport(&cur); err != nil {
		return nil, err
	}
	if err := s.mergeSideRecords(tx, &cur, u, moved, newFailure, now); err != nil {
		return nil, err
	}
	out := &outcome{}
	if newFailure {
		out.notify = []storage.UpgradeReport{cur}
	}
	rec, failures := cur, a.Failures
	out.after = func() {
		s.afterReport(&rec, prev, moved, failures)
		if roll != nil {
			s.applied(roll)
		}
	}
	return out, nil
}

// mergeSideRecords keeps the failure mark and the app version in step
// with a report that changed state.
func (s *Service) mergeSideRecords(tx storage.UpgradeTx, cur *storage.UpgradeReport, u *update, moved, newFailure bool, now int64) error {
	if !moved {
		return nil
	}
	mark, marked, err := tx.FailureMark(cur.DeviceID, cur.AppID)
	if err != nil {
		return err
	}
	switch {
	case newFailure || (storage.StageFailed(cur.Stage) && marked && mark.ReleaseID == cur.ReleaseID && mark.Attempt == cur.Attempt):
		m := storage.UpgradeFailureMark{
			DeviceID: cur.DeviceID, AppID: cur.AppID, ReleaseID: cur.ReleaseID, Version: cur.Version,
			Attempt: cur.Attempt, Code: cur.Code, Message: cur.Message, AtMs: now,
		}
		if err := tx.PutFailureMark(&m); err != nil {
			return err
		}
	case marked && !storage.StageFailed(cur.Stage) && (mark.ReleaseID != cur.ReleaseID || mark.Attempt != cur.Attempt):
		// The device's latest report for the app is no longer a failure.
		if err := tx.DeleteFailureMark(cur.DeviceID, cur.AppID); err != nil {
			return err
		}
	}
	var v string
	switch cur.Stage {
	case protocol.StageSucceeded:
		v = cur.Version
	case protocol.StageRolledBack:
		v = cur.FromVersion
	default:
		return nil
	}
	return tx.PutAppVersion(&storage.AppVersion{DeviceID: cur.DeviceID, AppID: cur.AppID, Version: v, Model: u.model, AtMs: now})
}

// afterReport updates memory once a report record is committed.
func (s *Service) afterReport(r *storage.UpgradeReport, prev uint8, moved bool, failures int) {
	if !moved {
		return
	}
	k := attemptKey{r.ReleaseID, r.DeviceID, r.Attempt}
	s.mu.Lock()
	if isOpen(r.Stage) {
		s.open[k] = &openAttempt{stage: r.Stage, sinceMs: r.UpdatedMs}
	} else {
		delete(s.open, k)
	}
	// A later attempt supersedes the earlier ones: they are no longer
	// watched, or a stale one would time out into a failure (and become
	// the last_failure) while the new attempt goes on.
	for a := k.attempt - 1; a > 0 && k.attempt-a <= maxSupersede; a-- {
		delete(s.open, attemptKey{k.release, k.device, a})
	}
	da := devApp{r.DeviceID, r.AppID}
	if r.Stage == protocol.StageInstalling {
		s.installing[da] = k
	} else if s.installing[da] == k {
		delete(s.installing, da)
	}
	if devs := s.assigned[r.ReleaseID]; devs != nil {
		if st := devs[r.DeviceID]; st != nil {
			st.failures = failures
		}
	}
	switch r.Stage {
	case protocol.StageSucceeded:
		s.vers[devApp{r.DeviceID, r.AppID}] = verInfo{r.Version, r.Model}
	case protocol.StageRolledBack:
		s.vers[devApp{r.DeviceID, r.AppID}] = verInfo{r.FromVersion, r.Model}
	}
	s.mu.Unlock()
	s.m.stage(r.Stage)
	s.publish(events.Event{Kind: events.KindUpgrade, DeviceID: r.DeviceID, Release: r.ReleaseID, Stage: stageName(r.Stage), Reason: r.Message})
}

// serveReport checks an UPGRADE_REPORT against memory and hands it to
// the committer; the answer follows the commit.
func (s *Service) serveReport(req *server.Request, reply func(protocol.Message, error)) {
	q := req.Msg.(*protocol.UpgradeReport)
	s.m.reports.Inc()
	if q.Attempt > MaxAttemptNumber {
		reply(nil, &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf("attempt: out of range (at most %d)", MaxAttemptNumber)})
		return
	}
	s.mu.RLock()
	rel := s.rels[q.ReleaseID]
	assigned := rel != nil && s.assigned[rel.ID][req.DeviceID] != nil
	s.mu.RUnlock()
	switch {
	case rel == nil:
		reply(nil, &protocol.Error{Code: protocol.NotFound, Message: "unknown release"})
		return
	case !assigned:
		// Archived releases keep no assignments in memory: ask the store.
		if _, err := s.store.Assignment(context.Background(), rel.ID, req.DeviceID); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				err = &protocol.Error{Code: protocol.Forbidden, Message: "release was never offered to this device"}
			}
			reply(nil, err)
			return
		}
	}
	u := &update{rel: rel, device: req.DeviceID, model: req.Model, attempt: q.Attempt, stage: q.Stage,
		progress: q.Progress, code: q.Code, message: q.Message}
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) { return s.merge(tx, u, now) },
		reply: func(err error) {
			if err != nil {
				reply(nil, err)
				return
			}
			reply(&protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)}, nil)
		},
	})
}

// submit queues j for the committer, or answers UNAVAILABLE when the
// queue is full or the service is stopping.
func (s *Service) submit(j *job) {
	select {
	case <-s.stop:
		if j.reply != nil {
			j.reply(&protocol.Error{Code: protocol.Unavailable, Message: "stopping", RetryAfterMs: busyRetryMs})
		}
		return
	default:
	}
	select {
	case s.jobs <- j:
	default:
		s.m.busy.Inc()
		if j.reply != nil {
			j.reply(&protocol.Error{Code: protocol.Unavailable, Message: "upgrade reports busy", RetryAfterMs: busyRetryMs})
		}
	}
}

// committer commits the waiting jobs in groups until Close, then drains
// what is queued (bounded by closeTimeout).
func (s *Service) committer() {
	defer s.wg.Done()
	defer close(s.stopped)
	groupcommit.Run(s.jobs, s.stop, s.cfg.CommitBatch, closeTimeout, s.commit)
}

// commit applies batch in one transaction. If the transaction fails,
// each job is committed alone, so one bad job does not fail the others.
func (s *Service) commit(batch []*job) {
	outs := make([]*outcome, len(batch))
	errs := make([]error, len(batch))
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	now := s.now().UnixMilli()
	start := time.Now()
	err := s.store.UpdateUpgrades(ctx, func(tx storage.UpgradeTx) error {
		for i, j := range batch {
			o, err := j.apply(tx, now)
			if err != nil {
				var pe *protocol.Error
				if errors.As(err, &pe) && len(batch) > 1 {
					// A refusal writes nothing: the others go on.
					errs[i] = err
					continue
				}
				return err
			}
			outs[i] = o
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, j := range batch {
			s.commit([]*job{j})
		}
		return
	}
	s.m.commitBatch.Update(float64(len(batch)))
	s.m.commitSeconds.UpdateDuration(start)
	if err != nil {
		s.m.commitErrors.Inc()
		s.log.Warn("upgrade commit failed", "jobs", len(batch), "err", err)
	}
	for i, j := range batch {
		if err == nil && errs[i] == nil && outs[i] != nil {
			if outs[i].after != nil {
				outs[i].after()
			}
			for _, r := range outs[i].notify {
				s.m.failures.Inc()
				s.enqueue(r)
			}
		}
		if j.reply != nil {
			if err != nil {
				j.reply(server.AsError(err))
			} else {
				j.reply(errs[i])
			}
		}
	}
}

// enqueue hands a failure record to the Notifier, durable before the
// report is answered, then marks the record enqueued (lost marks only
// repeat an idempotent Enqueue after a restart).
func (s *Service) enqueue(r storage.UpgradeReport) {
	if s.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
	defer cancel()
	if err := s.notifier.Enqueue(ctx, failureEvent(&r)); err != nil {
		s.log.Warn("failure notification not enqueued; retried at the next start", "release", r.ReleaseID, "device", r.DeviceID, "err", err)
		return
	}
	key := attemptKey{r.ReleaseID, r.DeviceID, r.Attempt}
	stage := r.Stage
	s.submit(&job{apply: func(tx storage.UpgradeTx, _ int64) (*outcome, error) {
		cur, found, err := tx.Report(key.release, key.device, key.attempt)
		if err != nil || !found || cur.Stage != stage || cur.Enqueued {
			return &outcome{}, err
		}
		cur.Enqueued = true
		return &outcome{}, tx.PutReport(&cur)
	}})
}

// failureKinds names each failure stage's event kind.
var failureKinds = map[uint8]string{
	protocol.StageFailed: "upgrade_failed", protocol.StageRolledBack: "upgrade_rolled_back",
	storage.StageTimedOut: "upgrade_timed_out", storage.StageReverted: "upgrade_reverted",
}

func failureEvent(r *storage.UpgradeReport) notify.Event {
	return notify.Event{
		ID:        fmt.Sprintf("report/%s/%s/%d/%d", r.ReleaseID, r.DeviceID, r.Attempt, r.Stage),
		Kind:      failureKinds[r.Stage],
		ReleaseID: r.ReleaseID, AppID: r.AppID, Version: r.Version, FromVersion: r.FromVersion,
		DeviceID: r.DeviceID, Model: r.Model, Attempt: uint32(min(r.Attempt, 1<<32-1)), Stage: r.Stage,
		Code: r.Code, Message: r.Message, AtMs: r.StageMs[r.Stage],
	}
}

// reenqueue enqueues the failure records a crash left unmarked.
func (s *Service) reenqueue() {
	if s.notifier == nil {
		return
	}
	var due []storage.UpgradeReport
	err := s.store.Reports(context.Background(), "", func(r storage.UpgradeReport) error {
		if r.Failed() && !r.Enqueued {
			due = append(due, r)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("scan for unnotified failures", "err", err)
		return
	}
	for _, r := range due {
		select {
		case <-s.stop:
			return
		default:
		}
		s.enqueue(r)
	}
}
