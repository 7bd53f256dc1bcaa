package upgrade

// Deadlines (docs/upgrades.md, "Deadlines"): from a release's deadline
// on, its offers carry mandatory = true. When the deadline passes while
// the release is published, deadlineLoop (one goroutine with one timer
// set to the nearest deadline, woken when a release changes) sets
// UPGRADE_PENDING again for the devices the release still applies to
// and pushes them UPGRADE_NOTICE kind 1 through the notice spread. A
// release published or resumed after its deadline is announced by the
// publication itself, so the deadline adds no second notice.

import (
	"context"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

// maxDeadlineWait bounds one sleep of deadlineLoop, so a wall-clock
// step (NTP) delays a deadline's notices at most this long.
const maxDeadlineWait = time.Minute

// maxDeadlineMs bounds a deadline (unix ms of 9999-12-31): anything
// later is a unit mistake (seconds or µs instead of ms).
const maxDeadlineMs = 253402214400000

// checkDeadline checks a deadline given by an operator (0 = none). A
// deadline already past is allowed: the release is mandatory at once.
func checkDeadline(ms int64) error {
	if ms < 0 || ms > maxDeadlineMs {
		return bad("deadline_ms must be unix milliseconds between 0 (none) and %d", int64(maxDeadlineMs))
	}
	return nil
}

// pastDeadline reports whether rel's deadline has come.
func (s *Service) pastDeadline(rel *release) bool {
	return rel.DeadlineMs != 0 && s.now().UnixMilli() >= rel.DeadlineMs
}

// SetDeadline sets (ms > 0) or clears (0) the deadline of a draft,
// published or paused release.
func (s *Service) SetDeadline(ctx context.Context, id string, ms int64) (api.Release, error) {
	if err := checkDeadline(ms); err != nil {
		return api.Release{}, err
	}
	return s.change(ctx, id, func(r *storage.Release) error {
		if err := refuseCancelled(r); err != nil {
			return err
		}
		if r.State == storage.ReleaseArchived {
			return conflict("release is archived")
		}
		r.DeadlineMs = ms
		return nil
	}, nil)
}

// deadlineChangedLocked runs in change with s.mu held: a release that
// becomes published at or after its deadline was just announced, so its
// deadline counts as fired; deadlineLoop re-reads the deadlines.
func (s *Service) deadlineChangedLocked(old, cur *release) {
	if cur.State == storage.ReleasePublished && old.State != storage.ReleasePublished && s.pastDeadline(cur) {
		s.fired[cur.ID] = cur.DeadlineMs
	}
	select {
	case s.deadlineKick <- struct{}{}:
	default:
	}
}

// deadlineLoop fires the deadlines of published releases as they pass.
// Those already past at start are not fired: Start has set
// UPGRADE_PENDING for every device a published release applies to, and
// no device is online yet.
func (s *Service) deadlineLoop() {
	defer s.wg.Done()
	now := s.now().UnixMilli()
	s.mu.Lock()
	for id, r := range s.rels {
		if r.State == storage.ReleasePublished && r.DeadlineMs != 0 && r.DeadlineMs <= now {
			s.fired[id] = r.DeadlineMs
		}
	}
	s.mu.Unlock()
	t := time.NewTimer(maxDeadlineWait)
	defer t.Stop()
	for {
		t.Reset(s.fireDeadlines())
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.deadlineKick:
		}
	}
}

// fireDeadlines forces the releases whose deadline passed and returns
// how long to wait for the next one.
func (s *Service) fireDeadlines() time.Duration {
	now := s.now().UnixMilli()
	wait := maxDeadlineWait
	var due []*release
	s.mu.Lock()
	for id, r := range s.rels {
		if r.State != storage.ReleasePublished || r.DeadlineMs == 0 || s.fired[id] == r.DeadlineMs {
			continue
		}
		if r.DeadlineMs <= now {
			s.fired[id] = r.DeadlineMs
			due = append(due, r)
			continue
		}
		wait = min(wait, time.Duration(r.DeadlineMs-now)*time.Millisecond)
	}
	s.mu.Unlock()
	for _, r := range due {
		s.force(r)
	}
	return wait
}

// force tells the devices rel still applies to that it became
// mandatory: targeted (at its rollout) or assigned, below the attempt
// cap, and on an older version (so not succeeded).
func (s *Service) force(rel *release) {
	var ids []string
	s.mu.RLock()
	applies := func(dev, model, version string) bool {
		if st := s.assigned[rel.ID][dev]; st != nil {
			return st.failures-st.forgiven < s.cfg.MaxAttempts && rel.newerThan(version)
		}
		return s.wantsRelease(rel, dev, model, version, -1)
	}
	for k, v := range s.vers {
		if k.app == rel.AppID && applies(k.device, v.model, v.version) {
			s.setPending(k.device, rel.AppID)
		}
	}
	s.srv.Presence.Each(func(e *presence.Entry) bool {
		if applies(e.DeviceID, e.Model, s.vers[devApp{e.DeviceID, rel.AppID}].version) {
			ids = append(ids, e.DeviceID)
			s.setPending(e.DeviceID, rel.AppID)
		}
		return true
	})
	s.mu.RUnlock()
	s.m.deadlineNotices.Add(len(ids))
	s.pushSpread(ids, &protocol.UpgradeNotice{ID: rel.ID, AppID: rel.AppID, Version: rel.Version, Kind: protocol.NoticeRelease})
}
