package upgrade

// UPGRADE_NOTICE and UPGRADE_PENDING: publishing or resuming a release,
// or growing its rollout, tells the devices it newly targets. Online ones
// get a notice, spread over upgrade.notice_spread so the download node is
// not stormed; every known one (online or not) gets the heartbeat flag,
// which the tracker keeps for sessions that start later.

import (
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/presence"
)

// wantsRelease reports whether rel should be announced to a device of
// model running version: targeted at the release's rollout, not at
// oldPct (-1: no earlier rollout), and the release is newer.
//
// For a phased release oldPct is the phase before (-1: none): the device
// is wanted when the rollout offers the release to it now and its phase
// is past oldPct. The caller holds s.mu.
func (s *Service) wantsRelease(r *release, dev, model, version string, oldPct int) bool {
	if !r.newerThan(version) {
		return false
	}
	if len(r.Phases) > 0 {
		if !s.offersNow(r, dev, model, version) {
			return false
		}
		_, before := r.phaseOf(dev, oldPct)
		return oldPct < 0 || !before
	}
	if !r.targets(dev, model, version, r.RolloutPct) {
		return false
	}
	return oldPct < 0 || !inRollout(r.ID, dev, oldPct)
}

// announcePhase flags and notifies the devices a phase advance added.
func (s *Service) announcePhase(rel *release, oldPhase int) { s.announce(rel, oldPhase) }

// announce flags and notifies the devices rel newly targets.
func (s *Service) announce(rel *release, oldPct int) {
	var ids []string
	s.mu.RLock()
	s.flagPendingLocked(rel, oldPct)
	s.srv.Presence.Each(func(e *presence.Entry) bool {
		v := s.vers[devApp{e.DeviceID, rel.AppID}]
		if s.wantsRelease(rel, e.DeviceID, e.Model, v.version, oldPct) {
			ids = append(ids, e.DeviceID)
			s.setPending(e.DeviceID, rel.AppID)
		}
		return true
	})
	s.mu.RUnlock()
	if len(ids) == 0 {
		return
	}
	notice := &protocol.UpgradeNotice{ID: rel.ID, AppID: rel.AppID, Version: rel.Version, Kind: protocol.NoticeRelease}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return
	}
	s.wg.Add(1)
	go s.spread(ids, notice)
}

// setPending records that an offer of app waits for the device and sets
// its UPGRADE_PENDING flag.
func (s *Service) setPending(dev, app string) {
	s.pendMu.Lock()
	apps := s.pending[dev]
	if apps == nil {
		apps = map[string]bool{}
		s.pending[dev] = apps
	}
	apps[app] = true
	s.pendMu.Unlock()
	s.srv.Presence.SetFlags(dev, uint32(protocol.FlagUpgradePending), 0)
}

// clearPending records that the device asked about app; the flag clears
// once no app of the device has an offer waiting.
func (s *Service) clearPending(dev, app string) {
	s.pendMu.Lock()
	apps := s.pending[dev]
	if apps == nil {
		s.pendMu.Unlock()
		return
	}
	delete(apps, app)
	empty := len(apps) == 0
	if empty {
		delete(s.pending, dev)
	}
	s.pendMu.Unlock()
	if empty {
		s.srv.Presence.SetFlags(dev, 0, uint32(protocol.FlagUpgradePending))
	}
}

// flagPendingLocked sets UPGRADE_PENDING for the known devices rel newly
// targets. The caller holds s.mu for reading.
func (s *Service) flagPendingLocked(rel *release, oldPct int) {
	for k, v := range s.vers {
		if k.app == rel.AppID && s.wantsRelease(rel, k.device, v.model, v.version, oldPct) {
			s.setPending(k.device, rel.AppID)
		}
	}
}

// spread pushes notice to ids evenly over notice_spread.
func (s *Service) spread(ids []string, notice *protocol.UpgradeNotice) {
	defer s.wg.Done()
	step := s.cfg.NoticeSpread.Duration / time.Duration(len(ids))
	var t *time.Timer
	for i, id := range ids {
		if i > 0 && step > 0 {
			if t == nil {
				t = time.NewTimer(step)
				defer t.Stop()
			} else {
				t.Reset(step)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
		sent, err := s.srv.Push(id, notice, func(r server.PushResult) {
			if r == server.PushAcked {
				s.m.noticesAcked.Inc()
			}
		})
		if err == nil && sent {
			s.m.noticesSent.Inc()
		}
	}
}
