package schedule

// Download nodes and clusters: configuration, runtime state (draining,
// live load), slot arithmetic and great-circle distance.

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/download"
)

// localNode is the id of termd's own download node when none is configured.
const (
	localNode    = "termd"
	localCluster = "default"
)

type cluster struct {
	id, region string
	lat, lon   float64
	nodes      []*node
}

type node struct {
	id, url   string
	secret    []byte
	cl        *cluster
	local     bool // termd's own listener (URLUntil)
	systemIDs map[string]bool
	slotMs    int64
	capacity  int
	capBytes  int64
	disabled  bool
	// cfgDraining is the config's; draining the effective (config or
	// operator); load the live downloads an external node reported.
	cfgDraining bool
	draining    atomic.Bool
	load        atomic.Int64
	loadAtMs    atomic.Int64
}

// serves reports whether the node serves systemID.
func (n *node) serves(systemID string) bool { return n.systemIDs == nil || n.systemIDs[systemID] }

// liveLoad is the node's live downloads: termd's own node's in-flight
// downloads, or what an external node last reported.
func (s *Service) liveLoad(n *node) int64 {
	if n.local && s.dl != nil {
		return s.dl.InFlight()
	}
	return n.load.Load()
}

// takes reports whether the node takes new reservations.
func (n *node) takes() bool { return !n.disabled && !n.draining.Load() }

// slotOf is the slot index containing t (unix ms); slots are aligned to
// the Unix epoch, so every node of a slot length agrees on them.
func (n *node) slotOf(ms int64) int64 { return floorDiv(ms, n.slotMs) }

func (n *node) slotStart(slot int64) int64 { return slot * n.slotMs }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// buildNodes makes the nodes from [schedule]; none configured: termd's
// own node in cluster "default", serving every system id.
func (s *Service) buildNodes(localURL string) {
	s.byNode = map[string]*node{}
	slot := s.cfg.SlotLength.Duration
	if len(s.cfg.Nodes) == 0 {
		c := &cluster{id: localCluster}
		n := &node{id: localNode, url: localURL, local: true, cl: c, slotMs: slot.Milliseconds(), capacity: s.cfg.Capacity}
		c.nodes = []*node{n}
		s.clusters, s.nodes, s.byNode[n.id] = []*cluster{c}, []*node{n}, n
		return
	}
	byCluster := map[string]*cluster{}
	for _, c := range s.cfg.Clusters {
		cl := &cluster{id: c.ID, region: c.Region, lat: c.Lat, lon: c.Lon}
		byCluster[c.ID] = cl
		s.clusters = append(s.clusters, cl)
	}
	for _, nc := range s.cfg.Nodes {
		n := nodeOf(nc, slot, byCluster[nc.Cluster], localURL, s.dlSecret)
		n.cl.nodes = append(n.cl.nodes, n)
		s.nodes = append(s.nodes, n)
		s.byNode[n.id] = n
	}
}

func nodeOf(nc config.Node, slot time.Duration, cl *cluster, localURL string, dlSecret []byte) *node {
	if nc.SlotLength.Duration > 0 {
		slot = nc.SlotLength.Duration
	}
	n := &node{id: nc.ID, url: nc.URL, cl: cl, slotMs: slot.Milliseconds(), capacity: nc.Capacity, capBytes: nc.CapacityBytes,
		disabled: nc.Disabled, cfgDraining: nc.Draining, secret: []byte(nc.Secret)}
	if n.url == "" {
		n.url, n.local = localURL, true
	}
	if len(n.secret) == 0 {
		n.secret = dlSecret
	}
	if len(nc.SystemIDs) > 0 {
		n.systemIDs = map[string]bool{}
		for _, id := range nc.SystemIDs {
			n.systemIDs[id] = true
		}
	}
	n.draining.Store(nc.Draining)
	return n
}

// downloadURL is the URL and token of the artifact on node n for a
// device, valid until exp.
func (s *Service) downloadURL(n *node, sha [32]byte, device string, exp time.Time) (string, string) {
	if n.local && s.dl != nil {
		return s.dl.URLUntil(sha, device, exp)
	}
	if n.url == "" {
		return "", ""
	}
	return download.SignURL(n.url, n.secret, sha, device, exp)
}

// earthKm is the mean Earth radius.
const earthKm = 6371.0

// distanceKm is the great-circle (haversine) distance.
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	r := math.Pi / 180
	dlat, dlon := (lat2-lat1)*r, (lon2-lon1)*r
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*r)*math.Cos(lat2*r)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// clustersFor orders the clusters a placement may use: those with a node
// that serves systemID and takes reservations, allowed by the campaign,
// within its maximum distance; nearest first when the location is known
// (else in configuration order).
func (s *Service) clustersFor(c *campaign, systemID string, loc *location) []*cluster {
	type cand struct {
		cl *cluster
		km float64
	}
	var out []cand
	for _, cl := range s.clusters {
		if len(c.Clusters) > 0 && !slices.Contains(c.Clusters, cl.id) {
			continue
		}
		ok := false
		for _, n := range cl.nodes {
			if n.takes() && n.serves(systemID) {
				ok = true
				break
			}
		}
		if !ok {
			continue
		}
		km := 0.0
		if loc != nil {
			km = distanceKm(loc.lat, loc.lon, cl.lat, cl.lon)
			if c.MaxDistanceKm > 0 && km > c.MaxDistanceKm {
				continue
			}
		}
		out = append(out, cand{cl, km})
	}
	slices.SortStableFunc(out, func(a, b cand) int {
		switch {
		case a.km < b.km:
			return -1
		case a.km > b.km:
			return 1
		}
		return 0
	})
	cls := make([]*cluster, len(out))
	for i, c := range out {
		cls[i] = c.cl
	}
	return cls
}

type location struct{ lat, lon float64 }
