package schedule

// Campaigns: the operators' side (create, publish, pause, resume,
// cancel, list, show), targeting, and the UPGRADE_QUERY hook.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// campaign is a stored campaign with its targets as sets.
type campaign struct {
	storage.Campaign
	models  map[string]bool // nil: every model
	devices map[string]bool // nil: every device
	// inGroups reports membership of one of Groups (set by the service).
	inGroups func(groups []string, dev string) bool
	// zoned caches a device-zone campaign's windows per zone.
	zoneMu sync.Mutex
	zoned  map[string][]storage.Window
}

// windowsFor is the campaign's windows for a device in zone tz: its
// windows, or, when its daily window is in each device's zone, that
// window on its dates in tz.
func (c *campaign) windowsFor(tz string) []storage.Window {
	if !c.DeviceTZ {
		return c.Windows
	}
	c.zoneMu.Lock()
	defer c.zoneMu.Unlock()
	if ws, ok := c.zoned[tz]; ok {
		return ws
	}
	ws, err := windowsOf(api.CampaignCreate{Daily: c.Daily, Dates: c.Dates, TZ: tz})
	if err != nil {
		ws = c.Windows // a zone that no longer loads: the default zone's
	}
	if c.zoned == nil {
		c.zoned = map[string][]storage.Window{}
	}
	c.zoned[tz] = ws
	return ws
}

func newCampaign(c storage.Campaign) (*campaign, error) {
	pc := &campaign{Campaign: c}
	if _, err := upgrade.InRange(c.FromRange, "1.0.0"); err != nil {
		return nil, err
	}
	if len(c.Models) > 0 {
		pc.models = map[string]bool{}
		for _, m := range c.Models {
			pc.models[m] = true
		}
	}
	if len(c.Devices) > 0 {
		pc.devices = map[string]bool{}
		for _, d := range c.Devices {
			pc.devices[d] = true
		}
	}
	return pc, nil
}

// targets reports whether the campaign targets a device of model running
// version (the release's newer-than check is the caller's).
func (c *campaign) targets(dev, model, version string) bool {
	if c.models != nil && !c.models[model] || c.devices != nil && !c.devices[dev] {
		return false
	}
	if len(c.Groups) > 0 && (c.inGroups == nil || !c.inGroups(c.Groups, dev)) {
		return false
	}
	ok, _ := upgrade.InRange(c.FromRange, version)
	return ok
}

// active: published or paused, and not over.
func (c *campaign) active(nowMs int64) bool {
	return (c.State == storage.CampaignPublished || c.State == storage.CampaignPaused) && nowMs < c.EndMs()
}

// nextWindow is the first of windows not over at nowMs.
func nextWindow(windows []storage.Window, nowMs int64) (storage.Window, bool) {
	for _, w := range windows {
		if w.EndMs > nowMs {
			return w, true
		}
	}
	return storage.Window{}, false
}

// CampaignFor implements upgrade.Campaigns: the active campaign of app
// that targets the device and whose release is newer than its version.
func (s *Service) CampaignFor(dev, model, app, version string) *protocol.Campaign {
	now := s.now().UnixMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.camps {
		if c.AppID != app || !c.active(now) || !c.targets(dev, model, version) || !s.rels.Newer(c.ReleaseID, version) {
			continue
		}
		w, _ := nextWindow(c.windowsFor(s.locs.zoneOf(dev, s.cfg.DefaultTZ)), now)
		return &protocol.Campaign{CampaignID: c.ID, Version: c.Version, WindowStartMs: uint64(w.StartMs), WindowEndMs: uint64(w.EndMs), ReleaseID: c.ReleaseID}
	}
	return nil
}

func bad(format string, a ...any) error {
	return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &protocol.Error{Code: protocol.Conflict, Message: fmt.Sprintf(format, a...)}
}

var errNoCampaign = &protocol.Error{Code: protocol.NotFound, Message: "unknown campaign"}

// windowsOf reads the operator's windows: absolute ones, or a daily
// "HH:MM-HH:MM" on dates in a time zone (DST through the tz database).
func windowsOf(in api.CampaignCreate) ([]storage.Window, error) {
	var ws []storage.Window
	for _, w := range in.Windows {
		ws = append(ws, storage.Window{StartMs: w.StartMs, EndMs: w.EndMs})
	}
	if in.Daily != "" {
		loc := time.UTC
		if in.TZ != "" {
			l, err := time.LoadLocation(in.TZ)
			if err != nil {
				return nil, bad("tz %q: %v", in.TZ, err)
			}
			loc = l
		}
		from, to, ok := strings.Cut(in.Daily, "-")
		if !ok {
			return nil, bad(`daily must be "HH:MM-HH:MM"`)
		}
		if len(in.Dates) == 0 {
			return nil, bad("daily windows need dates")
		}
		for _, d := range in.Dates {
			day, err := time.ParseInLocation("2006-01-02", d, loc)
			if err != nil {
				return nil, bad("date %q: want YYYY-MM-DD", d)
			}
			start, err := atClock(day, from, loc)
			if err != nil {
				return nil, err
			}
			end, err := atClock(day, to, loc)
			if err != nil {
				return nil, err
			}
			if !end.After(start) {
				end = end.AddDate(0, 0, 1) // 22:00-02:00 ends the next day
				end, _ = atClock(end, to, loc)
			}
			ws = append(ws, storage.Window{StartMs: start.UnixMilli(), EndMs: end.UnixMilli()})
		}
	}
	if len(ws) == 0 {
		return nil, bad("give windows, or daily with dates")
	}
	slices.SortFunc(ws, func(a, b storage.Window) int { return cmp.Compare(a.StartMs, b.StartMs) })
	for i, w := range ws {
		if w.EndMs <= w.StartMs {
			return nil, bad("window %d ends before it starts", i+1)
		}
		if i > 0 && w.StartMs < ws[i-1].EndMs {
			return nil, bad("windows %d and %d overlap", i, i+1)
		}
	}
	return ws, nil
}

// atClock is day's date at "HH:MM" in loc.
func atClock(day time.Time, hhmm string, loc *time.Location) (time.Time, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(hhmm))
	if err != nil {
		return time.Time{}, bad("time %q: want HH:MM", hhmm)
	}
	y, m, d := day.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, loc), nil
}

// CreateCampaign stores a draft campaign of a published release.
func (s *Service) CreateCampaign(ctx context.Context, in api.CampaignCreate) (api.Campaign, error) {
	rel, ok := s.rels.CampaignRelease(in.ReleaseID)
	if !ok {
		return api.Campaign{}, &protocol.Error{Code: protocol.NotFound, Message: "unknown release"}
	}
	if rel.State == storage.ReleaseCancelled || rel.State == storage.ReleaseArchived {
		return api.Campaign{}, conflict("release is %s", rel.State)
	}
	deviceTZ := in.TZ == "device"
	var lastEnd int64
	if deviceTZ {
		if in.Daily == "" || len(in.Windows) > 0 {
			return api.Campaign{}, bad(`tz "device" needs a daily window with dates, and no absolute windows`)
		}
		// The latest zone on Earth (UTC-12) ends the campaign.
		late, err := windowsOf(api.CampaignCreate{Daily: in.Daily, Dates: in.Dates, TZ: "Etc/GMT+12"})
		if err != nil {
			return api.Campaign{}, err
		}
		lastEnd = late[len(late)-1].EndMs
		in.TZ = s.cfg.DefaultTZ // the windows shown are the fleet default zone's
	}
	ws, err := windowsOf(in)
	if err != nil {
		return api.Campaign{}, err
	}
	if _, err := upgrade.InRange(in.FromRange, "1.0.0"); err != nil {
		return api.Campaign{}, bad("%v", err)
	}
	if err := s.rels.CheckGroups(in.Groups); err != nil {
		return api.Campaign{}, err
	}
	for _, cl := range in.Clusters {
		if !slices.ContainsFunc(s.clusters, func(c *cluster) bool { return c.id == cl }) {
			return api.Campaign{}, bad("unknown cluster %q", cl)
		}
	}
	if in.MaxDistanceKm < 0 {
		return api.Campaign{}, bad("max_distance_km must not be negative")
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	now := s.now().UnixMilli()
	c := storage.Campaign{
		ID: "c-" + hex.EncodeToString(idb[:]), ReleaseID: rel.ID, AppID: rel.AppID, Version: rel.Version,
		Models: slices.Clone(in.Models), Devices: slices.Clone(in.Devices), FromRange: in.FromRange, Groups: slices.Clone(in.Groups), Windows: ws, TZ: in.TZ,
		MaxDistanceKm: in.MaxDistanceKm, Clusters: slices.Clone(in.Clusters), State: storage.CampaignDraft, CreatedMs: now, UpdatedMs: now,
	}
	if deviceTZ {
		c.DeviceTZ, c.Daily, c.Dates, c.LastEndMs, c.TZ = true, in.Daily, slices.Clone(in.Dates), lastEnd, "device"
	}
	if c.EndMs() <= now {
		return api.Campaign{}, bad("every window is over")
	}
	pc, err := newCampaign(c)
	if err != nil {
		return api.Campaign{}, bad("%v", err)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.store.PutCampaign(ctx, c); err != nil {
		return api.Campaign{}, err
	}
	pc.inGroups = s.rels.InAnyGroup
	s.mu.Lock()
	s.camps[c.ID] = pc
	s.mu.Unlock()
	s.publish(events.Event{Kind: events.KindCampaign, Release: c.ReleaseID, State: c.State, Reason: c.ID})
	return toAPI(c), nil
}

// change applies fn to a copy of the campaign, stores it, swaps it in
// and runs after.
func (s *Service) change(ctx context.Context, id string, fn func(c *storage.Campaign) error, after func(c *campaign)) (api.Campaign, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.RLock()
	old := s.camps[id]
	s.mu.RUnlock()
	if old == nil {
		return api.Campaign{}, errNoCampaign
	}
	c := storage.Campaign(old.Campaign)
	c.Windows, c.Dates = slices.Clone(c.Windows), slices.Clone(c.Dates)
	if err := fn(&c); err != nil {
		return api.Campaign{}, err
	}
	c.UpdatedMs = s.now().UnixMilli()
	pc, err := newCampaign(c)
	if err != nil {
		return api.Campaign{}, err
	}
	if err := s.store.PutCampaign(ctx, c); err != nil {
		return api.Campaign{}, err
	}
	pc.inGroups = s.rels.InAnyGroup
	s.mu.Lock()
	s.camps[id] = pc
	s.mu.Unlock()
	s.publish(events.Event{Kind: events.KindCampaign, Release: c.ReleaseID, State: c.State, Reason: c.ID})
	if after != nil {
		after(pc)
	}
	return toAPI(c), nil
}

// overlaps reports whether two campaigns may target one device: same
// app, and their model and device targets intersect (an empty list is
// every one); when one targets groups (whose members change), whether a
// device termd knows is targeted by both now.
func (s *Service) overlaps(a, b *campaign) bool {
	if a.AppID != b.AppID {
		return false
	}
	if len(a.Groups) > 0 || len(b.Groups) > 0 {
		both := false
		s.rels.KnownDevices(a.AppID, func(dev, model, version string) {
			both = both || a.targets(dev, model, version) && b.targets(dev, model, version)
		})
		return both
	}
	inter := func(x, y map[string]bool) bool {
		if x == nil || y == nil {
			return true
		}
		for k := range x {
			if y[k] {
				return true
			}
		}
		return false
	}
	return inter(a.models, b.models) && inter(a.devices, b.devices)
}

// Publish makes a draft campaign active and announces it: online
// targets get UPGRADE_NOTICE kind 2, known ones UPGRADE_PENDING.
func (s *Service) Publish(ctx context.Context, id string) (api.Campaign, error) {
	return s.change(ctx, id, func(c *storage.Campaign) error {
		if c.State != storage.CampaignDraft {
			return conflict("campaign is %s; only a draft can be published (paused ones are resumed)", c.State)
		}
		now := s.now().UnixMilli()
		if c.EndMs() <= now {
			return conflict("every window of the campaign is over")
		}
		if rel, ok := s.rels.CampaignRelease(c.ReleaseID); !ok || rel.State != storage.ReleasePublished {
			return conflict("its release is not published")
		}
		me, _ := newCampaign(*c)
		me.inGroups = s.rels.InAnyGroup
		s.mu.RLock()
		defer s.mu.RUnlock()
		for _, o := range s.camps {
			if o.ID != c.ID && o.active(now) && s.overlaps(me, o) {
				return conflict("campaign %s of app %s targets some of the same devices; at most one campaign per device and app", o.ID, o.AppID)
			}
		}
		c.State, c.PublishedMs = storage.CampaignPublished, now
		return nil
	}, s.announce)
}

// Pause stops placements and check-ins (UNAVAILABLE until resumed).
func (s *Service) Pause(ctx context.Context, id string) (api.Campaign, error) {
	return s.change(ctx, id, func(c *storage.Campaign) error {
		if c.State != storage.CampaignPublished {
			return conflict("campaign is %s; only a published campaign can be paused", c.State)
		}
		c.State = storage.CampaignPaused
		return nil
	}, nil)
}

// Resume resumes a paused campaign and announces it again.
func (s *Service) Resume(ctx context.Context, id string) (api.Campaign, error) {
	return s.change(ctx, id, func(c *storage.Campaign) error {
		if c.State != storage.CampaignPaused {
			return conflict("campaign is %s; only a paused campaign can be resumed", c.State)
		}
		c.State = storage.CampaignPublished
		return nil
	}, s.announce)
}

// Cancel ends a campaign for good: placements and check-ins answer
// EXPIRED, online targets get UPGRADE_NOTICE kind 3, and the capacity its
// reservations held is given back.
func (s *Service) Cancel(ctx context.Context, id string) (api.Campaign, error) {
	return s.change(ctx, id, func(c *storage.Campaign) error {
		if c.State == storage.CampaignCancelled {
			return conflict("campaign is already cancelled")
		}
		c.State = storage.CampaignCancelled
		return nil
	}, func(c *campaign) {
		s.releaseCampaign(c.ID)
		s.notify(c, protocol.NoticeWithdrawn)
	})
}

// Campaigns lists every campaign.
func (s *Service) Campaigns(context.Context) []api.Campaign {
	s.mu.RLock()
	out := make([]api.Campaign, 0, len(s.camps))
	for _, c := range s.camps {
		out = append(out, toAPI(c.Campaign))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b api.Campaign) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Campaign returns one campaign.
func (s *Service) Campaign(_ context.Context, id string) (api.Campaign, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.camps[id]
	if c == nil {
		return api.Campaign{}, errNoCampaign
	}
	return toAPI(c.Campaign), nil
}

func toAPI(c storage.Campaign) api.Campaign {
	out := api.Campaign{ID: c.ID, ReleaseID: c.ReleaseID, AppID: c.AppID, Version: c.Version, Models: c.Models, Devices: c.Devices, Groups: c.Groups,
		FromRange: c.FromRange, TZ: c.TZ, MaxDistanceKm: c.MaxDistanceKm, Clusters: c.Clusters, State: c.State, EndMs: c.EndMs(),
		CreatedMs: c.CreatedMs, PublishedMs: c.PublishedMs, UpdatedMs: c.UpdatedMs}
	for _, w := range c.Windows {
		out.Windows = append(out.Windows, api.Window{StartMs: w.StartMs, EndMs: w.EndMs})
	}
	return out
}

// announce tells a published campaign's targets (kind 2).
func (s *Service) announce(c *campaign) {
	if c.State == storage.CampaignPublished {
		s.notify(c, protocol.NoticeCampaign)
	}
}

// notify pushes a notice of kind to the campaign's online targets whose
// version is older than the release (spread over upgrade.notice_spread),
// and (kind 2) sets UPGRADE_PENDING for its known targets.
func (s *Service) notify(c *campaign, kind uint8) {
	var online []string
	s.rels.KnownDevices(c.AppID, func(dev, model, version string) {
		if !c.targets(dev, model, version) || !s.rels.Newer(c.ReleaseID, version) {
			return
		}
		if kind == protocol.NoticeCampaign {
			s.rels.MarkPending(dev, c.AppID)
		}
		if s.srv.Presence.Get(dev) != nil {
			online = append(online, dev)
		}
	})
	s.m.notices.Add(len(online))
	s.rels.Spread(online, &protocol.UpgradeNotice{ID: c.ID, AppID: c.AppID, Version: c.Version, Kind: kind})
}

// GroupReferences names the active campaigns that target group, for the
// groups feature's delete check.
func (s *Service) GroupReferences(group string) []string {
	now := s.now().UnixMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, c := range s.camps {
		if (c.active(now) || c.State == storage.CampaignDraft) && slices.Contains(c.Groups, group) {
			out = append(out, "campaign "+id)
		}
	}
	slices.Sort(out)
	return out
}
