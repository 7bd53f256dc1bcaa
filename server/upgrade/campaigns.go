package upgrade

// Hooks for scheduled campaigns (server/schedule, spec §6.2): a campaign
// that governs a device's upgrade is answered in UPGRADE_QUERY_ACK's
// campaign field instead of an offer; placing a device in a campaign
// assigns it to the release (its reports are accepted); a phased
// release's campaign devices wait for their phase.

import (
	"context"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/storage"
)

// Campaigns tells the release service which campaign governs a device.
type Campaigns interface {
	// CampaignFor returns the campaign that governs (device, app) for a
	// device of model running version, or nil.
	CampaignFor(deviceID, model, appID, version string) *protocol.Campaign
}

// SetCampaigns installs the scheduling service's hook (before Start).
func (s *Service) SetCampaigns(c Campaigns) {
	s.mu.Lock()
	s.campaigns = c
	s.mu.Unlock()
}

// campaignFor asks the hook, if any.
func (s *Service) campaignFor(dev, model, app, version string) *protocol.Campaign {
	s.mu.RLock()
	c := s.campaigns
	s.mu.RUnlock()
	if c == nil {
		return nil
	}
	return c.CampaignFor(dev, model, app, version)
}

// CampaignRelease is what scheduling needs of a release.
type CampaignRelease struct {
	ID, AppID, Version, URL string
	SHA256                  [protocol.SHA256Size]byte
	Size                    int64
	Sig                     []byte
	State                   string
}

// CampaignRelease returns the release's fields, or false.
func (s *Service) CampaignRelease(id string) (CampaignRelease, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[id]
	if r == nil {
		return CampaignRelease{}, false
	}
	return CampaignRelease{ID: r.ID, AppID: r.AppID, Version: r.Version, URL: r.URL, SHA256: r.sha, Size: r.Size, Sig: r.Sig, State: r.State}, true
}

// Newer reports whether the release is newer than the installed version.
func (s *Service) Newer(releaseID, installed string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[releaseID]
	return r != nil && r.newerThan(installed)
}

// PhaseAllows reports whether a phased release's rollout lets the device
// be placed now (a release without phases always does): not paused, and
// the device in a phase up to the current one.
func (s *Service) PhaseAllows(releaseID, deviceID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[releaseID]
	if r == nil || len(r.Phases) == 0 {
		return r != nil
	}
	st := s.rolloutLocked(r)
	if st.Paused {
		return false
	}
	_, ok := r.phaseOf(deviceID, st.Phase)
	return ok
}

// MarkPending sets UPGRADE_PENDING for the device's app until its next
// query (a campaign published for it).
func (s *Service) MarkPending(deviceID, appID string) { s.setPending(deviceID, appID) }

// KnownDevices calls fn with every device whose version of app termd
// knows (from queries and reports), with its model and version.
func (s *Service) KnownDevices(appID string, fn func(device, model, version string)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, v := range s.vers {
		if k.app == appID {
			fn(k.device, v.model, v.version)
		}
	}
}

// InRange reports whether version satisfies a from-range ("" = any).
func InRange(fromRange, version string) (bool, error) {
	cs, err := parseRange(fromRange)
	if err != nil {
		return false, err
	}
	return cs == nil || inRange(cs, version), nil
}

// Cancelled reports whether the release is cancelled.
func (s *Service) Cancelled(releaseID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[releaseID]
	return r != nil && r.State == storage.ReleaseCancelled
}

// Spread pushes notice to ids over upgrade.notice_spread, as release
// notices are (a campaign's publication or cancel).
func (s *Service) Spread(ids []string, notice *protocol.UpgradeNotice) { s.pushSpread(ids, notice) }

// AssignAsync records, through the group committer, that the device was
// placed in a campaign of the release (a frozen assignment: its reports
// are accepted), then calls done; at once when it is already assigned.
// It never blocks the caller.
func (s *Service) AssignAsync(releaseID, deviceID, fromVersion, model string, done func(error)) {
	s.mu.RLock()
	rel := s.rels[releaseID]
	assigned := rel != nil && s.assigned[releaseID][deviceID] != nil
	s.mu.RUnlock()
	switch {
	case rel == nil:
		done(errNoRelease)
		return
	case assigned:
		done(nil)
		return
	}
	c := &choice{offer: rel, firstOffer: true}
	q := &protocol.UpgradeQuery{AppID: rel.AppID, Version: fromVersion}
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
			o, err := s.applyQuery(tx, c, deviceID, model, q, now)
			if err == nil && c.withdrawn {
				return nil, &protocol.Error{Code: protocol.Unavailable, Message: "the release's rollout has not reached this device's phase", RetryAfterMs: busyRetryMs * 60}
			}
			return o, err
		},
		reply: done,
	})
}

// LatestStages returns, per device, the stage name of its latest attempt
// at the release (for campaign progress).
func (s *Service) LatestStages(ctx context.Context, releaseID string) (map[string]string, error) {
	out := map[string]string{}
	err := s.store.Reports(ctx, releaseID, func(r storage.UpgradeReport) error {
		out[r.DeviceID] = stageName(r.Stage) // (release, device, attempt) order: the last is the latest
		return nil
	})
	return out, err
}

// CheckGroups validates groups named as campaign targets, as for
// releases: operator-only groups only.
func (s *Service) CheckGroups(gs []string) error { return s.checkGroups(gs) }

// InAnyGroup reports whether the device is a member of one of groups now.
func (s *Service) InAnyGroup(groups []string, deviceID string) bool {
	if s.groups == nil {
		return false
	}
	for _, g := range groups {
		if s.groups.IsMember(g, deviceID) {
			return true
		}
	}
	return false
}
