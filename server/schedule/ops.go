package schedule

// Operators' extras: registered device locations, and re-opening a
// campaign's stragglers.

import (
	"context"
	"errors"
	"sync"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// locations are the operators' registered device locations.
type locations struct {
	mu sync.RWMutex
	m  map[string]location
}

func (l *locations) get(dev string) (location, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	loc, ok := l.m[dev]
	return loc, ok
}

// SetLocation registers (or, clear, removes) a device's location, used
// when its SCHEDULE_REQUEST carries no coordinates; stored before it is
// answered.
func (s *Service) SetLocation(ctx context.Context, dev string, lat, lon float64, clear bool) error {
	err := s.store.PutDeviceLocation(ctx, storage.DeviceLocation{DeviceID: dev, Lat: lat, Lon: lon, UpdatedMs: s.now().UnixMilli()}, clear)
	if errors.Is(err, storage.ErrInvalid) {
		return bad("%v", err)
	}
	if err != nil {
		return err
	}
	s.locs.mu.Lock()
	if clear {
		delete(s.locs.m, dev)
	} else {
		s.locs.m[dev] = location{lat, lon}
	}
	s.locs.mu.Unlock()
	return nil
}

func (s *Service) loadLocations(ctx context.Context) error {
	s.locs.m = map[string]location{}
	return s.store.DeviceLocations(ctx, func(l storage.DeviceLocation) error {
		s.locs.m[l.DeviceID] = location{l.Lat, l.Lon}
		return nil
	})
}

// Retry re-opens a campaign's stragglers: devices whose reservation was
// missed or lapsed (missed), whose upgrade of the release failed (failed:
// their failures are forgiven, as release retry does), and targeted
// devices termd knows that never got a reservation (unreached). Each is
// told again: UPGRADE_PENDING, and UPGRADE_NOTICE kind 2 when online. It
// returns how many devices were re-opened.
func (s *Service) Retry(ctx context.Context, id string, in api.CampaignRetry) (int, error) {
	s.mu.RLock()
	c := s.camps[id]
	s.mu.RUnlock()
	if c == nil {
		return 0, errNoCampaign
	}
	if !in.Missed && !in.Failed && !in.Unreached {
		return 0, bad("give missed, failed and/or unreached")
	}
	if c.State != storage.CampaignPublished {
		return 0, conflict("campaign is %s; only a published campaign's devices can be re-opened", c.State)
	}
	stages, err := s.rels.LatestStages(ctx, c.ReleaseID)
	if err != nil {
		return 0, err
	}
	placed := map[string]bool{}
	devs := map[string]bool{}
	err = s.store.Reservations(ctx, id, func(r storage.Reservation) error {
		placed[r.DeviceID] = true
		if in.Missed && (r.State == storage.ResvMissed || r.State == storage.ResvLapsed) {
			devs[r.DeviceID] = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if in.Failed {
		for dev, st := range stages {
			switch st {
			case "failed", "rolled_back", "timed_out", "reverted":
				if placed[dev] {
					if _, err := s.rels.Retry(ctx, c.ReleaseID, api.Retry{Device: dev}); err != nil {
						return 0, err
					}
					devs[dev] = true
				}
			}
		}
	}
	if in.Unreached {
		s.rels.KnownDevices(c.AppID, func(dev, model, version string) {
			if !placed[dev] && c.targets(dev, model, version) && s.rels.Newer(c.ReleaseID, version) {
				devs[dev] = true
			}
		})
	}
	var online []string
	for dev := range devs {
		s.rels.MarkPending(dev, c.AppID)
		if s.srv.Presence.Get(dev) != nil {
			online = append(online, dev)
		}
	}
	s.rels.Spread(online, &protocol.UpgradeNotice{ID: c.ID, AppID: c.AppID, Version: c.Version, Kind: protocol.NoticeCampaign})
	return len(devs), nil
}
