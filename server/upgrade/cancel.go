package upgrade

// Cancel (docs/upgrades.md, "Cancel"): a published or paused release is
// withdrawn for good. Offers stop at once (a cancelled release is not in
// the query index); online assigned devices that have not reached
// INSTALLING get UPGRADE_NOTICE kind 3 (withdrawn) and discard what they
// downloaded; their download tokens for the release's artifact are
// refused by the download node (Revoked). Devices already INSTALLING
// finish, and their reports are accepted as for any release they were
// offered (frozen assignment).

import (
	"context"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// withdrawal is what the download node asks about a cancelled release.
type withdrawal struct {
	app string
	sha [protocol.SHA256Size]byte
	// reached holds the assigned devices whose latest attempt had reached
	// INSTALLING when the release was cancelled (or at the last start):
	// they keep their downloads. Read-only once stored.
	reached map[string]bool
}

// refuseCancelled refuses any change but archiving to a cancelled release.
func refuseCancelled(r *storage.Release) error {
	if r.State == storage.ReleaseCancelled {
		return conflict("release is cancelled, which is final; create a new release to offer this version again")
	}
	return nil
}

// Cancel withdraws a published or paused release. A draft is refused
// (CONFLICT): nobody was offered it, archive it instead.
func (s *Service) Cancel(ctx context.Context, id string) (api.Release, error) {
	return s.change(ctx, id, func(r *storage.Release) error {
		if err := refuseCancelled(r); err != nil {
			return err
		}
		if r.State != storage.ReleasePublished && r.State != storage.ReleasePaused {
			return conflict("release is %s; only a published or paused release can be cancelled (archive a draft)", r.State)
		}
		r.State, r.CancelledMs = storage.ReleaseCancelled, s.now().UnixMilli()
		return nil
	}, func(_, cur *release) {
		// The release is out of the index already: no new offers. The
		// store is read here (operator path, under opMu), never on the loop.
		reached, notify, err := s.progressOf(ctx, cur)
		if err != nil {
			// The state is stored; only the notices and the revocation
			// are lost until the next start rebuilds the revocation.
			s.log.Warn("cancel: reading the release's reports", "release", cur.ID, "err", err)
			return
		}
		s.mu.Lock()
		s.withdrawn[cur.ID] = &withdrawal{app: cur.AppID, sha: cur.sha, reached: reached}
		s.mu.Unlock()
		s.unflag(cur.AppID)
		// Campaign hook (issue 13): campaigns of the release stop
		// answering PROCEED here (UPGRADE_CHECK → EXPIRED, spec §6.2).
		var ids []string
		for _, dev := range notify {
			if s.srv.Presence.Get(dev) != nil {
				ids = append(ids, dev)
			}
		}
		s.m.withdrawnNotices.Add(len(ids))
		s.pushSpread(ids, &protocol.UpgradeNotice{ID: cur.ID, AppID: cur.AppID, Version: cur.Version, Kind: protocol.NoticeWithdrawn})
	})
}

// progressOf reads the release's reports: reached holds the assigned
// devices whose latest attempt reached INSTALLING; notify, the assigned
// devices whose latest attempt is not past DOWNLOADED (or that never
// reported), which are told to discard their download.
func (s *Service) progressOf(ctx context.Context, rel *release) (reached map[string]bool, notify []string, err error) {
	latest := map[string]*storage.UpgradeReport{}
	err = s.store.Reports(ctx, rel.ID, func(r storage.UpgradeReport) error {
		latest[r.DeviceID] = &r // (release, device, attempt) order: the last one is the latest
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	reached = map[string]bool{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for dev := range s.assigned[rel.ID] {
		r := latest[dev]
		switch {
		case r == nil || r.Stage == protocol.StageDownloading || r.Stage == protocol.StageDownloaded:
			notify = append(notify, dev)
		case r.StageMs[protocol.StageInstalling] != 0 || r.Stage == protocol.StageInstalling ||
			r.Stage == protocol.StageSucceeded || r.Stage == protocol.StageRolledBack || r.Stage == storage.StageReverted:
			reached[dev] = true
		}
	}
	return reached, notify, nil
}

// loadCancelled rebuilds the revocation state of the cancelled releases
// at Open.
func (s *Service) loadCancelled(ctx context.Context) error {
	for _, rel := range s.rels {
		if rel.State != storage.ReleaseCancelled {
			continue
		}
		reached, _, err := s.progressOf(ctx, rel)
		if err != nil {
			return err
		}
		s.withdrawn[rel.ID] = &withdrawal{app: rel.AppID, sha: rel.sha, reached: reached}
	}
	return nil
}

// unflag clears UPGRADE_PENDING of app for the devices no published
// release of app applies to any more (the cancelled one may have set it).
func (s *Service) unflag(app string) {
	var devs []string
	s.pendMu.Lock()
	for dev, apps := range s.pending {
		if apps[app] {
			devs = append(devs, dev)
		}
	}
	s.pendMu.Unlock()
	var clear []string
	s.mu.RLock()
	for _, dev := range devs {
		v := s.vers[devApp{dev, app}]
		model := v.model
		if e := s.srv.Presence.Get(dev); e != nil {
			model = e.Model
		}
		applies := false
		for _, r := range s.byApp[app] {
			if s.assigned[r.ID][dev] != nil && r.newerThan(v.version) || s.wantsRelease(r, dev, model, v.version, -1) {
				applies = true
				break
			}
		}
		if !applies {
			clear = append(clear, dev)
		}
	}
	s.mu.RUnlock()
	for _, dev := range clear {
		s.clearPending(dev, app)
	}
}

// Revoked reports whether the download node must refuse a valid token
// of the artifact sha for deviceID: a cancelled release using sha is
// assigned to the device, which had not reached INSTALLING on it, and no
// other release (archived ones aside) that is not cancelled and uses sha
// is assigned to the device. Memory only; O(1) while no release is
// cancelled, else O(cancelled + releases using sha).
func (s *Service) Revoked(sha [32]byte, deviceID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.withdrawn) == 0 {
		return false
	}
	hit := false
	for id, w := range s.withdrawn {
		if w.sha != sha || w.reached[deviceID] || s.assigned[id][deviceID] == nil {
			continue
		}
		if r := s.rels[id]; r == nil || r.State != storage.ReleaseCancelled {
			continue // archived since: archived releases do not count
		}
		if k, ok := s.installing[devApp{deviceID, w.app}]; ok && k.release == id {
			continue // reached INSTALLING after the cancel
		}
		hit = true
		break
	}
	if !hit {
		return false
	}
	for _, r := range s.rels {
		if r.sha == sha && r.State != storage.ReleaseCancelled && r.State != storage.ReleaseArchived && s.assigned[r.ID][deviceID] != nil {
			return false
		}
	}
	return true
}

// withdrawnAttemptLocked reports whether an open attempt belongs to a
// cancelled release and had not reached INSTALLING: the terminal was
// told to discard it, so stuck detection does not record it TIMED_OUT.
// The caller holds s.mu.
func (s *Service) withdrawnAttemptLocked(k attemptKey, o *openAttempt) bool {
	if o.stage >= protocol.StageInstalling {
		return false
	}
	r := s.rels[k.release]
	return r != nil && r.State == storage.ReleaseCancelled
}

// pushSpread pushes notice to ids over upgrade.notice_spread, unless
// the service is closing.
func (s *Service) pushSpread(ids []string, notice *protocol.UpgradeNotice) {
	if len(ids) == 0 {
		return
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return
	}
	s.wg.Add(1)
	go s.spread(ids, notice)
}
