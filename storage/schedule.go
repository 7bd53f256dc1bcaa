package storage

// This file is the scheduling store's contract (spec §6.2, docs/scheduling.md):
// campaigns, reservations of download slots, the per-(node, slot) use
// counters they hold, and operators' node states (draining). Reservations
// and the counters change only together, inside UpdateSchedule, so the
// counters are never out of step with the reservations across a crash.
// Badger (schedule_badger.go) and Memory (schedule_memory.go) implement it
// under one contract suite; a store shared by several termd nodes can
// implement it later.

import (
	"context"
	"fmt"
	"slices"
)

// Campaign states: draft → published ⇄ paused → cancelled (final).
const (
	CampaignDraft     = "draft"
	CampaignPublished = "published"
	CampaignPaused    = "paused"
	CampaignCancelled = "cancelled"
)

// Window is a period in which a campaign's devices may download.
type Window struct {
	StartMs int64 `json:"start_ms"`
	EndMs   int64 `json:"end_ms"`
}

// Campaign is a scheduled rollout of a release (spec §6.2).
type Campaign struct {
	ID        string `json:"id"`
	ReleaseID string `json:"release_id"`
	AppID     string `json:"app_id"`
	Version   string `json:"version"`
	// Targets: an empty list does not restrict; FromRange restricts the
	// installed version.
	Models    []string `json:"models,omitempty"`
	Devices   []string `json:"devices,omitempty"`
	FromRange string   `json:"from_range,omitempty"`
	// Groups: the device must be a member of one (operator-only groups).
	Groups []string `json:"groups,omitempty"`
	// Windows are absolute, in start order, not overlapping.
	Windows []Window `json:"windows"`
	// TZ is the zone the operator gave daily windows in ("" = UTC).
	TZ string `json:"tz,omitempty"`
	// DeviceTZ: the daily window Daily on Dates is in each device's own
	// zone; Windows are then the fleet default zone's (for display) and
	// LastEndMs the end of the last window in the latest zone on Earth.
	DeviceTZ  bool     `json:"device_tz,omitempty"`
	Daily     string   `json:"daily,omitempty"`
	Dates     []string `json:"dates,omitempty"`
	LastEndMs int64    `json:"last_end_ms,omitempty"`
	// Placement limits: MaxDistanceKm (0 = none) and Clusters (empty =
	// any) for data residency.
	MaxDistanceKm float64  `json:"max_distance_km,omitempty"`
	Clusters      []string `json:"clusters,omitempty"`
	State         string   `json:"state"`
	CreatedMs     int64    `json:"created_ms"`
	PublishedMs   int64    `json:"published_ms,omitempty"`
	UpdatedMs     int64    `json:"updated_ms"`
}

// EndMs is the end of the campaign's last window.
func (c *Campaign) EndMs() int64 {
	if c.LastEndMs > 0 {
		return c.LastEndMs
	}
	if len(c.Windows) == 0 {
		return 0
	}
	return c.Windows[len(c.Windows)-1].EndMs
}

// Reservation states.
const (
	ResvReserved  = "reserved"   // holds capacity in its slot
	ResvCheckedIn = "proceeded"  // checked in inside the slot and told PROCEED
	ResvLapsed    = "lapsed"     // not checked in within the grace: capacity given back
	ResvReleased  = "released"   // up to date, missed, or the campaign ended
	ResvMissed    = "missed"     // checked in after the slot
	ResvUpToDate  = "up_to_date" // checked in already current
)

// Reservation is one device's download slot in a campaign.
type Reservation struct {
	ID          string `json:"id"`
	CampaignID  string `json:"campaign_id"`
	DeviceID    string `json:"device_id"`
	ReleaseID   string `json:"release_id"`
	NodeID      string `json:"node_id"`
	Cluster     string `json:"cluster"`
	Slot        int64  `json:"slot"` // the node's slot index
	SlotStartMs int64  `json:"slot_start_ms"`
	SlotEndMs   int64  `json:"slot_end_ms"`
	Bytes       int64  `json:"bytes,omitempty"`
	FromVersion string `json:"from_version,omitempty"`
	SystemID    string `json:"system_id,omitempty"`
	State       string `json:"state"`
	CreatedMs   int64  `json:"created_ms"`
	CheckedInMs int64  `json:"checked_in_ms,omitempty"`
	UpdatedMs   int64  `json:"updated_ms"`
}

// Holds reports whether the reservation holds capacity in its slot.
func (r *Reservation) Holds() bool { return r.State == ResvReserved || r.State == ResvCheckedIn }

// SlotUse is what a node's slot holds: reservations and their bytes.
type SlotUse struct {
	Node  string `json:"node"`
	Slot  int64  `json:"slot"`
	Count int    `json:"count"`
	Bytes int64  `json:"bytes"`
}

// NodeState is an operator's durable change to a download node.
type NodeState struct {
	NodeID    string `json:"node_id"`
	Draining  bool   `json:"draining"`
	UpdatedMs int64  `json:"updated_ms"`
}

// DeviceLocation is a device's position as an operator registered it:
// placement uses it when a SCHEDULE_REQUEST carries no coordinates.
type DeviceLocation struct {
	DeviceID string  `json:"device_id"`
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	// NoLoc: only the zone is registered.
	NoLoc bool `json:"no_loc,omitempty"`
	// TZ is the device's time zone (IANA name, "" = the fleet default),
	// for campaigns whose daily window is in each device's zone.
	TZ        string `json:"tz,omitempty"`
	UpdatedMs int64  `json:"updated_ms"`
}

// ScheduleTx reads and writes scheduling records in one transaction;
// reads see the transaction's own writes.
type ScheduleTx interface {
	Reservation(id string) (Reservation, bool, error)
	// DeviceReservation is the device's latest reservation in the campaign.
	DeviceReservation(campaignID, deviceID string) (Reservation, bool, error)
	PutReservation(r *Reservation) error
	SlotUse(node string, slot int64) (SlotUse, error)
	PutSlotUse(u *SlotUse) error
}

// Schedules is the durable scheduling store.
type Schedules interface {
	PutCampaign(ctx context.Context, c Campaign) error
	ListCampaigns(ctx context.Context) ([]Campaign, error)
	// UpdateSchedule runs fn in one transaction, durable before return;
	// an error from fn writes nothing.
	UpdateSchedule(ctx context.Context, fn func(tx ScheduleTx) error) error
	// Reservations calls fn, for a campaign, with each device's latest
	// reservation in device order; for "" with every reservation, in no
	// particular order.
	Reservations(ctx context.Context, campaignID string, fn func(r Reservation) error) error
	// DeviceReservation is the device's latest reservation in the
	// campaign, read outside any transaction (operators' views).
	DeviceReservation(ctx context.Context, campaignID, deviceID string) (Reservation, bool, error)
	// SlotUses calls fn for every stored slot use, in (node, slot) order.
	SlotUses(ctx context.Context, fn func(u SlotUse) error) error
	// DeleteSlotUses deletes the node's slot uses before slot.
	DeleteSlotUses(ctx context.Context, node string, before int64) error
	PutNodeState(ctx context.Context, s NodeState) error
	NodeStates(ctx context.Context) ([]NodeState, error)
	// PutDeviceLocation stores (or, with Delete, removes) a device's
	// registered location, durable before return.
	PutDeviceLocation(ctx context.Context, l DeviceLocation, remove bool) error
	// DeviceLocations calls fn for every registered location.
	DeviceLocations(ctx context.Context, fn func(l DeviceLocation) error) error
}

// maxCampaignWindows bounds a campaign's windows.
const maxCampaignWindows = 1000

func checkCampaign(c *Campaign) error {
	if err := checkUpgradeID("campaign id", c.ID); err != nil {
		return err
	}
	if err := checkUpgradeID("release id", c.ReleaseID); err != nil {
		return err
	}
	switch c.State {
	case CampaignDraft, CampaignPublished, CampaignPaused, CampaignCancelled:
	default:
		return fmt.Errorf("%w: campaign state %q", ErrInvalid, c.State)
	}
	if len(c.Windows) == 0 || len(c.Windows) > maxCampaignWindows {
		return fmt.Errorf("%w: %d windows (1-%d)", ErrInvalid, len(c.Windows), maxCampaignWindows)
	}
	for i, w := range c.Windows {
		if w.EndMs <= w.StartMs || i > 0 && w.StartMs < c.Windows[i-1].EndMs {
			return fmt.Errorf("%w: window %d is empty or overlaps the one before", ErrInvalid, i+1)
		}
	}
	if len(c.Models)+len(c.Devices) > maxReleaseTargets {
		return fmt.Errorf("%w: campaign targets over %d", ErrInvalid, maxReleaseTargets)
	}
	return nil
}

func checkReservation(r *Reservation) error {
	if err := checkUpgradeID("reservation id", r.ID); err != nil {
		return err
	}
	if err := checkPair(r.CampaignID, "campaign id", r.DeviceID, "device id"); err != nil {
		return err
	}
	return checkUpgradeID("node id", r.NodeID)
}

func cloneCampaign(c Campaign) Campaign {
	c.Models, c.Devices, c.Clusters, c.Groups = slices.Clone(c.Models), slices.Clone(c.Devices), slices.Clone(c.Clusters), slices.Clone(c.Groups)
	c.Windows, c.Dates = slices.Clone(c.Windows), slices.Clone(c.Dates)
	return c
}

func checkLocation(l *DeviceLocation) error {
	if err := checkUpgradeID("device id", l.DeviceID); err != nil {
		return err
	}
	if len(l.TZ) > 64 {
		return fmt.Errorf("%w: time zone name over 64 bytes", ErrInvalid)
	}
	if l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180 || l.Lat != l.Lat || l.Lon != l.Lon {
		return fmt.Errorf("%w: location out of range", ErrInvalid)
	}
	return nil
}
