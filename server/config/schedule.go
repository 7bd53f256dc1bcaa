package config

import (
	"fmt"
	"time"
)

// Schedule configures upgrade scheduling (docs/scheduling.md): download
// nodes grouped in clusters, each with a capacity per time slot.
type Schedule struct {
	// SlotLength is a node's slot length unless the node sets its own.
	// Default 15m.
	SlotLength Duration `toml:"slot_length" comment:"length of a download slot (nodes may set their own)"`
	// Capacity is termd's own node's upgrades per slot when no node is
	// configured. Default 100.
	Capacity int `toml:"capacity" comment:"termd's own download node: upgrades per slot (when no [[schedule.nodes]])"`
	// CheckinGrace: a reservation not checked in this long after its slot
	// started gives its capacity to waiting terminals. Default 5m.
	CheckinGrace Duration `toml:"checkin_grace" comment:"a reservation not checked in this long into its slot gives its capacity back"`
	// DownloadGrace: a PROCEED's download token stays valid this long
	// after the slot's end, for slow links resuming. Default 2h.
	DownloadGrace Duration `toml:"download_grace" comment:"download tokens of a slot stay valid this long after it ends"`
	// DefaultTZ is the fleet's default time zone (IANA name) for
	// campaigns whose daily window is in each device's zone, for devices
	// with no zone registered. Default "UTC".
	DefaultTZ string `toml:"default_tz" comment:"time zone of devices with none registered, for campaigns with tz = \"device\""`
	// Clusters and Nodes describe the download nodes; none = termd's own
	// node in cluster "default", serving every system id.
	Clusters []Cluster `toml:"clusters,omitempty" comment:"clusters of download nodes (placement picks the nearest with room)"`
	Nodes    []Node    `toml:"nodes,omitempty" comment:"download nodes"`
}

// Cluster is a group of download nodes in one place.
type Cluster struct {
	ID     string  `toml:"id"`
	Region string  `toml:"region,omitempty"`
	Lat    float64 `toml:"lat"`
	Lon    float64 `toml:"lon"`
}

// Node is a download node.
type Node struct {
	ID      string `toml:"id"`
	Cluster string `toml:"cluster"`
	// URL is the node's base URL ("" = termd's own download listener).
	URL string `toml:"url,omitempty"`
	// Secret is the HMAC key the node verifies tokens with ("" = termd's
	// download secret, for termd's own node and nodes sharing it).
	Secret string `toml:"secret,omitempty"`
	// SystemIDs the node serves (empty = every system id).
	SystemIDs []string `toml:"system_ids,omitempty"`
	// SlotLength overrides schedule.slot_length.
	SlotLength Duration `toml:"slot_length,omitempty"`
	// Capacity is upgrades per slot; CapacityBytes (0 = no limit) bytes
	// per slot, so one 300 MB image weighs more than a 2 MB config.
	Capacity      int   `toml:"capacity"`
	CapacityBytes int64 `toml:"capacity_bytes,omitempty"`
	// Disabled nodes take nothing; Draining ones take no new reservations
	// (operators can also drain at runtime).
	Disabled bool `toml:"disabled,omitempty"`
	Draining bool `toml:"draining,omitempty"`
}

// DefaultSchedule is [schedule]'s defaults.
func DefaultSchedule() Schedule {
	return Schedule{SlotLength: D(15 * time.Minute), Capacity: 100, CheckinGrace: D(5 * time.Minute), DownloadGrace: D(2 * time.Hour), DefaultTZ: "UTC"}
}

// validate checks [schedule] and adds each problem.
func (s Schedule) validate(add func(string, ...any)) {
	if s.SlotLength.Duration < time.Second {
		add("schedule.slot_length = %s must be at least 1s", s.SlotLength.Duration)
	}
	if s.Capacity < 1 {
		add("schedule.capacity = %d must be at least 1", s.Capacity)
	}
	if _, err := time.LoadLocation(s.DefaultTZ); err != nil {
		add("schedule.default_tz = %q: %v", s.DefaultTZ, err)
	}
	clusters := map[string]bool{}
	for i, c := range s.Clusters {
		if c.ID == "" || clusters[c.ID] {
			add("schedule.clusters[%d]: id %q empty or repeated", i, c.ID)
		}
		clusters[c.ID] = true
		if c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180 {
			add("schedule.clusters[%d] (%s): lat/lon out of range", i, c.ID)
		}
	}
	nodes := map[string]bool{}
	for i, n := range s.Nodes {
		where := fmt.Sprintf("schedule.nodes[%d] (%s)", i, n.ID)
		if n.ID == "" || nodes[n.ID] {
			add("%s: id empty or repeated", where)
		}
		nodes[n.ID] = true
		if !clusters[n.Cluster] {
			add("%s: cluster %q is not in schedule.clusters", where, n.Cluster)
		}
		if n.Capacity < 1 {
			add("%s: capacity must be at least 1", where)
		}
		if n.SlotLength.Duration != 0 && n.SlotLength.Duration < time.Second {
			add("%s: slot_length must be at least 1s", where)
		}
		if n.URL != "" && n.Secret != "" && len(n.Secret) < 16 {
			add("%s: secret must be at least 16 bytes", where)
		}
	}
}
