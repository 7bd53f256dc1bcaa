package schedule

// Operators' extras: registered device locations, and re-opening a
// campaign's stragglers.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// locations are the operators' registered device locations.
type locations struct {
	mu sync.RWMutex
	m  map[string]devPlace
}

// devPlace is what operators registered of a device: a location and/or
// a time zone.
type devPlace struct {
	loc    location
	hasLoc bool
	tz     string
}

func (l *locations) get(dev string) (location, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	p, ok := l.m[dev]
	return p.loc, ok && p.hasLoc
}

// zoneOf is the device's registered zone, or def.
func (l *locations) zoneOf(dev, def string) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if p, ok := l.m[dev]; ok && p.tz != "" {
		return p.tz
	}
	return def
}

// DeviceSchedule is what scheduling holds for dev: its registered
// location and zone, and its latest reservation in each campaign not
// cancelled (one point read per campaign).
func (s *Service) DeviceSchedule(ctx context.Context, dev string) (api.DeviceSchedule, error) {
	out := api.DeviceSchedule{DeviceID: dev, DefaultTZ: s.cfg.DefaultTZ, Reservations: []api.DeviceReservation{}}
	s.locs.mu.RLock()
	if p, ok := s.locs.m[dev]; ok {
		out.HasLocation, out.TZ = p.hasLoc, p.tz
		if p.hasLoc {
			out.Lat, out.Lon = p.loc.lat, p.loc.lon
		}
	}
	s.locs.mu.RUnlock()
	s.mu.RLock()
	ids := make([]string, 0, len(s.camps))
	for id, c := range s.camps {
		if c.State != storage.CampaignCancelled {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	slices.Sort(ids)
	for _, id := range ids {
		r, found, err := s.store.DeviceReservation(ctx, id, dev)
		if err != nil {
			return api.DeviceSchedule{}, err
		}
		if found {
			out.Reservations = append(out.Reservations, api.DeviceReservation{CampaignID: r.CampaignID, ReleaseID: r.ReleaseID,
				NodeID: r.NodeID, Cluster: r.Cluster, SlotStartMs: r.SlotStartMs, SlotEndMs: r.SlotEndMs,
				State: r.State, CheckedInMs: r.CheckedInMs, UpdatedMs: r.UpdatedMs})
		}
	}
	return out, nil
}

// SetLocation registers (or, clear, removes) a device's location, used
// when its SCHEDULE_REQUEST carries no coordinates; stored before it is
// answered.
func (s *Service) SetLocation(ctx context.Context, dev string, lat, lon float64, clear bool) error {
	return s.setPlace(ctx, dev, func(p *devPlace) { p.loc, p.hasLoc = location{lat, lon}, !clear }, clear)
}

// SetZone registers (or, tz "", removes) a device's time zone, for
// campaigns whose daily window is in each device's zone.
func (s *Service) SetZone(ctx context.Context, dev, tz string) error {
	if tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return bad("tz %q: %v", tz, err)
		}
	}
	return s.setPlace(ctx, dev, func(p *devPlace) { p.tz = tz }, false)
}

// setPlace changes what is registered of a device, stores it (removing
// the record when nothing is left), then swaps it in.
func (s *Service) setPlace(ctx context.Context, dev string, fn func(p *devPlace), clearLoc bool) error {
	s.locs.mu.Lock()
	defer s.locs.mu.Unlock()
	p := s.locs.m[dev]
	if clearLoc {
		p.loc, p.hasLoc = location{}, false
	} else {
		fn(&p)
	}
	rec := storage.DeviceLocation{DeviceID: dev, Lat: p.loc.lat, Lon: p.loc.lon, NoLoc: !p.hasLoc, TZ: p.tz, UpdatedMs: s.now().UnixMilli()}
	empty := !p.hasLoc && p.tz == ""
	err := s.store.PutDeviceLocation(ctx, rec, empty)
	if errors.Is(err, storage.ErrInvalid) {
		return bad("%v", err)
	}
	if err != nil {
		return err
	}
	if empty {
		delete(s.locs.m, dev)
	} else {
		s.locs.m[dev] = p
	}
	return nil
}

func (s *Service) loadLocations(ctx context.Context) error {
	s.locs.m = map[string]devPlace{}
	return s.store.DeviceLocations(ctx, func(l storage.DeviceLocation) error {
		s.locs.m[l.DeviceID] = devPlace{loc: location{l.Lat, l.Lon}, hasLoc: !l.NoLoc, tz: l.TZ}
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
