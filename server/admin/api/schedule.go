package api

// Upgrade scheduling (docs/scheduling.md, docs/admin-api.md "Scheduling").

// Window is a campaign window, unix ms.
type Window struct {
	StartMs int64 `json:"start_ms"`
	EndMs   int64 `json:"end_ms"`
}

// CampaignCreate is POST /v1/campaigns' body. Windows are absolute, or
// daily: Daily "HH:MM-HH:MM" on each of Dates (YYYY-MM-DD) in TZ.
type CampaignCreate struct {
	ReleaseID     string   `json:"release_id"`
	Models        []string `json:"models,omitempty"`
	Devices       []string `json:"devices,omitempty"`
	FromRange     string   `json:"from_range,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Windows       []Window `json:"windows,omitempty"`
	Daily         string   `json:"daily,omitempty"`
	Dates         []string `json:"dates,omitempty"`
	TZ            string   `json:"tz,omitempty"`
	MaxDistanceKm float64  `json:"max_distance_km,omitempty"`
	Clusters      []string `json:"clusters,omitempty"`
}

// Campaign is a campaign as operators see it.
type Campaign struct {
	ID            string   `json:"id"`
	ReleaseID     string   `json:"release_id"`
	AppID         string   `json:"app_id"`
	Version       string   `json:"version"`
	Models        []string `json:"models,omitempty"`
	Devices       []string `json:"devices,omitempty"`
	FromRange     string   `json:"from_range,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Windows       []Window `json:"windows"`
	TZ            string   `json:"tz,omitempty"`
	MaxDistanceKm float64  `json:"max_distance_km,omitempty"`
	Clusters      []string `json:"clusters,omitempty"`
	State         string   `json:"state"`
	EndMs         int64    `json:"end_ms"`
	CreatedMs     int64    `json:"created_ms"`
	PublishedMs   int64    `json:"published_ms,omitempty"`
	UpdatedMs     int64    `json:"updated_ms"`
}

// CampaignList is GET /v1/campaigns.
type CampaignList struct {
	Campaigns []Campaign `json:"campaigns"`
}

// Node is a download node (GET /v1/nodes).
type Node struct {
	ID            string   `json:"id"`
	Cluster       string   `json:"cluster"`
	Region        string   `json:"region,omitempty"`
	Lat           float64  `json:"lat"`
	Lon           float64  `json:"lon"`
	URL           string   `json:"url"`
	Local         bool     `json:"local,omitempty"`
	SystemIDs     []string `json:"system_ids,omitempty"`
	SlotS         int64    `json:"slot_s"`
	Capacity      int      `json:"capacity"`
	CapacityBytes int64    `json:"capacity_bytes,omitempty"`
	Disabled      bool     `json:"disabled,omitempty"`
	Draining      bool     `json:"draining,omitempty"`
	// Reserved is the reservations the node holds in its current slot;
	// Load the live downloads it reported (external nodes).
	Reserved int   `json:"reserved"`
	Load     int64 `json:"load,omitempty"`
}

// NodeList is GET /v1/nodes.
type NodeList struct {
	Nodes []Node `json:"nodes"`
}

// NodeLoad is POST /v1/nodes/{id}/load's body.
type NodeLoad struct {
	Active int64 `json:"active"`
}

// PlanSlot is one slot of the plan: free capacity per cluster.
type PlanSlot struct {
	StartMs int64          `json:"start_ms"`
	EndMs   int64          `json:"end_ms"`
	Free    map[string]int `json:"free"`
	// OnlineShare is the share of the targeted terminals online at this
	// hour of day over the past 7 days (1 when no history is kept).
	OnlineShare float64 `json:"online_share"`
	// Takes is how many targeted terminals the slot can take: the free
	// capacity, as far as the online share says they will show up.
	Takes int `json:"takes"`
}

// Plan is GET /v1/plan.
type Plan struct {
	ReleaseID string     `json:"release_id"`
	Targeted  int        `json:"targeted"`
	Slots     []PlanSlot `json:"slots"`
	// Suggested are windows, earliest first, whose slots take every
	// targeted terminal (greedy earliest fit); Covered how many they take.
	Suggested []Window `json:"suggested"`
	Covered   int      `json:"covered"`
	// Selection is the plan of the windows the operator selected
	// (GET /v1/plan's window parameters); nil when none were given.
	Selection *PlanSelection `json:"selection,omitempty"`
}

// PlanSelection is what a set of windows would take: the plan's slots
// that lie wholly inside one of them, taken greedily in time order as
// the plan's own takes are, but starting again from every targeted
// terminal.
type PlanSelection struct {
	// Windows are the selected windows, sorted and merged.
	Windows []Window `json:"windows"`
	// Slots is how many of the plan's slots lie inside them (past slots
	// excluded); Free their free capacity over the clusters asked.
	Slots int `json:"slots"`
	Free  int `json:"free"`
	// Covered is how many targeted terminals those slots take, as far as
	// the online share says they will show up.
	Covered int `json:"covered"`
}

// SlotProgress is a campaign's progress in one (cluster, node, slot).
type SlotProgress struct {
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	StartMs  int64  `json:"start_ms"`
	Reserved int    `json:"reserved"`
	// CheckedIn counts the terminals that checked in inside their slot:
	// told PROCEED, or already up to date.
	CheckedIn int `json:"checked_in"`
	Proceeded int `json:"proceeded"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Missed    int `json:"missed"`
	UpToDate  int `json:"up_to_date"`
	Lapsed    int `json:"lapsed"`
	// Due counts the reservations whose check-in grace is over (their
	// terminal should have checked in by now); NoShow those of them that
	// did not check in inside their slot (lapsed or missed).
	Due    int `json:"due"`
	NoShow int `json:"no_show"`
}

// CampaignRetry is POST /v1/campaigns/{id}/retry's body.
type CampaignRetry struct {
	Missed    bool `json:"missed,omitempty"`
	Failed    bool `json:"failed,omitempty"`
	Unreached bool `json:"unreached,omitempty"`
}

// Zone is PUT /v1/devices/{id}/zone's body: an IANA zone, "" removes it.
type Zone struct {
	TZ string `json:"tz"`
}

// Location is PUT /v1/devices/{id}/location's body.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// CampaignProgress is GET /v1/campaigns/{id}/progress.
type CampaignProgress struct {
	Campaign Campaign       `json:"campaign"`
	Totals   SlotProgress   `json:"totals"`
	Slots    []SlotProgress `json:"slots"`
	// NoShowRate is Totals.NoShow / Totals.Due (0 while nothing is due).
	NoShowRate float64 `json:"no_show_rate"`
	// Unreached counts the targeted terminals termd knows (their version
	// of the app is older than the release's) that have no reservation
	// in the campaign; UnreachedSample names the first of them in id
	// order (at most 20).
	Unreached       int      `json:"unreached"`
	UnreachedSample []string `json:"unreached_sample"`
}

// DeviceSchedule is GET /v1/devices/{id}/schedule: what scheduling holds
// for one device — its registered location and zone, and its latest
// reservation in each campaign that is not cancelled.
type DeviceSchedule struct {
	DeviceID string `json:"device_id"`
	// Lat and Lon are the registered location (HasLocation false: none;
	// placement then uses the request's coordinates or HELLO attrs).
	HasLocation bool    `json:"has_location"`
	Lat         float64 `json:"lat,omitempty"`
	Lon         float64 `json:"lon,omitempty"`
	// TZ is the registered zone ("": the fleet default, DefaultTZ).
	TZ           string              `json:"tz,omitempty"`
	DefaultTZ    string              `json:"default_tz"`
	Reservations []DeviceReservation `json:"reservations"`
}

// DeviceReservation is a device's latest reservation in one campaign.
type DeviceReservation struct {
	CampaignID  string `json:"campaign_id"`
	ReleaseID   string `json:"release_id"`
	NodeID      string `json:"node_id"`
	Cluster     string `json:"cluster"`
	SlotStartMs int64  `json:"slot_start_ms"`
	SlotEndMs   int64  `json:"slot_end_ms"`
	State       string `json:"state"`
	CheckedInMs int64  `json:"checked_in_ms,omitempty"`
	UpdatedMs   int64  `json:"updated_ms"`
}
