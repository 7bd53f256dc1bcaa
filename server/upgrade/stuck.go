package upgrade

// Stuck and bricked terminals report nothing, so termd looks for them:
// an attempt that stays in a stage past its upgrade.stage_timeout_*, or
// stays offline past upgrade.offline_timeout after INSTALLING, gets a
// synthetic TIMED_OUT record (REVERTED is found by the query path).

import (
	"fmt"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/storage"
)

// openAttempt is an unfinished attempt as the sweep sees it.
type openAttempt struct {
	stage   uint8
	sinceMs int64 // when the attempt entered stage (unix ms)
	// offlineSinceMs is when a sweep first found the device offline in
	// INSTALLING (0 = online at the last sweep).
	offlineSinceMs int64
}

// stageTimeout is the configured limit of stage.
func (s *Service) stageTimeout(stage uint8) time.Duration {
	switch stage {
	case protocol.StageDownloading:
		return s.cfg.StageTimeoutDownloading.Duration
	case protocol.StageDownloaded:
		return s.cfg.StageTimeoutDownloaded.Duration
	default:
		return s.cfg.StageTimeoutInstalling.Duration
	}
}

func (s *Service) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
			s.tickRollouts()
		}
	}
}

// stuck is an attempt the sweep found overdue.
type stuck struct {
	key     attemptKey
	stage   uint8
	message string
}

// sweep records TIMED_OUT for the overdue attempts.
func (s *Service) sweep() {
	now := s.now().UnixMilli()
	offline := s.cfg.OfflineTimeout.Milliseconds()
	var due []stuck
	s.mu.Lock()
	for k, o := range s.open {
		if s.withdrawnAttemptLocked(k, o) {
			delete(s.open, k) // told to discard: it reports nothing more
			continue
		}
		limit := s.stageTimeout(o.stage)
		if now-o.sinceMs >= limit.Milliseconds() {
			due = append(due, stuck{k, o.stage, fmt.Sprintf("no report for %s in %s", limit, stageName(o.stage))})
			continue
		}
		if o.stage != protocol.StageInstalling {
			continue
		}
		switch {
		case s.srv.Presence.Get(k.device) != nil:
			o.offlineSinceMs = 0
		case o.offlineSinceMs == 0:
			o.offlineSinceMs = now
		case now-o.offlineSinceMs >= offline:
			due = append(due, stuck{k, o.stage, fmt.Sprintf("offline for %s after INSTALLING", s.cfg.OfflineTimeout.Duration)})
		}
	}
	rels := make([]*release, len(due))
	for i, d := range due {
		rels[i] = s.rels[d.key.release]
	}
	s.mu.Unlock()
	for i, d := range due {
		if rels[i] == nil {
			continue
		}
		u := &update{rel: rels[i], device: d.key.device, attempt: d.key.attempt, stage: storage.StageTimedOut,
			message: d.message, onlyFrom: d.stage}
		s.submit(&job{apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) { return s.merge(tx, u, now) }})
	}
}
