package schedule

// The availability planner, nodes as operators see them, and campaign
// progress.

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// History is the fleet's hourly online history (server/presence).
type History interface {
	// Share is the share of ids online at hourOfDayUTC, averaged over
	// the 7 days before nowMs.
	Share(ids []string, hourOfDayUTC int, nowMs int64) float64
}

// SetHistory installs the online history the planner weighs slots with.
func (s *Service) SetHistory(h History) { s.history = h }

// maxPlanSlots bounds a plan's slots.
const maxPlanSlots = 5000

// PlanQuery is what the operator asks the planner.
type PlanQuery struct {
	ReleaseID string
	Models    []string
	Devices   []string
	FromRange string
	Clusters  []string
	FromMs    int64
	ToMs      int64
	// Select are windows the operator is considering: the plan then also
	// says what they would take (api.Plan.Selection).
	Select []api.Window
}

// maxPlanSelect bounds the windows of a plan's selection.
const maxPlanSelect = 1000

// selection sorts and merges windows (adjacent ones join).
func selection(ws []api.Window) ([]api.Window, error) {
	if len(ws) > maxPlanSelect {
		return nil, bad("at most %d windows", maxPlanSelect)
	}
	out := slices.Clone(ws)
	slices.SortFunc(out, func(a, b api.Window) int { return cmp.Compare(a.StartMs, b.StartMs) })
	merged := out[:0]
	for _, w := range out {
		if w.EndMs <= w.StartMs {
			return nil, bad("a window must end after it starts")
		}
		if n := len(merged); n > 0 && w.StartMs <= merged[n-1].EndMs {
			merged[n-1].EndMs = max(merged[n-1].EndMs, w.EndMs)
			continue
		}
		merged = append(merged, w)
	}
	return merged, nil
}

// inside reports whether [start, end) lies wholly inside one of ws
// (sorted, merged), as a slot must lie inside a campaign window.
func inside(ws []api.Window, start, end int64) bool {
	i, _ := slices.BinarySearchFunc(ws, start, func(w api.Window, t int64) int { return cmp.Compare(w.EndMs, t+1) })
	return i < len(ws) && ws[i].StartMs <= start && end <= ws[i].EndMs
}

// Plan answers: which slots of [from, to) have how much free capacity
// per cluster after every reservation of every campaign (from the
// in-memory counters), how many of the targeted terminals each can take
// given how many were online at that hour over the past week, and the
// earliest windows that take them all.
func (s *Service) Plan(_ context.Context, q PlanQuery) (api.Plan, error) {
	rel, ok := s.rels.CampaignRelease(q.ReleaseID)
	if !ok {
		return api.Plan{}, &protocol.Error{Code: protocol.NotFound, Message: "unknown release"}
	}
	now := s.now().UnixMilli()
	if q.FromMs == 0 {
		q.FromMs = now
	}
	if q.ToMs == 0 {
		q.ToMs = q.FromMs + 7*24*time.Hour.Milliseconds()
	}
	step := s.cfg.SlotLength.Milliseconds()
	if q.ToMs <= q.FromMs || (q.ToMs-q.FromMs)/step > maxPlanSlots {
		return api.Plan{}, bad("from must be before to, and the period at most %d slots", maxPlanSlots)
	}
	target, err := newCampaign(storage.Campaign{Models: q.Models, Devices: q.Devices, FromRange: q.FromRange})
	if err != nil {
		return api.Plan{}, bad("%v", err)
	}
	var ids []string
	s.rels.KnownDevices(rel.AppID, func(dev, model, version string) {
		if target.targets(dev, model, version) && s.rels.Newer(rel.ID, version) {
			ids = append(ids, dev)
		}
	})
	// Devices listed by the operator count even when termd has not
	// heard their version yet.
	for _, d := range q.Devices {
		if !slices.Contains(ids, d) {
			ids = append(ids, d)
		}
	}
	plan := api.Plan{ReleaseID: rel.ID, Targeted: len(ids), Slots: []api.PlanSlot{}, Suggested: []api.Window{}}
	var sel *api.PlanSelection
	selRemaining := len(ids)
	if q.Select != nil {
		ws, err := selection(q.Select)
		if err != nil {
			return api.Plan{}, err
		}
		sel = &api.PlanSelection{Windows: ws}
		if sel.Windows == nil {
			sel.Windows = []api.Window{}
		}
		plan.Selection = sel
	}
	shares := map[int]float64{}
	remaining := len(ids)
	var open *api.Window
	s.useMu.RLock()
	defer s.useMu.RUnlock()
	for start := floorDiv(q.FromMs, step) * step; start < q.ToMs; start += step {
		ps := api.PlanSlot{StartMs: start, EndMs: start + step, Free: map[string]int{}, OnlineShare: 1}
		total := 0
		for _, cl := range s.clusters {
			if len(q.Clusters) > 0 && !slices.Contains(q.Clusters, cl.id) {
				continue
			}
			free := 0
			for _, n := range cl.nodes {
				if !n.takes() {
					continue
				}
				u := s.use[slotKey{n.id, n.slotOf(start)}]
				f := n.capacity - u.Count
				if n.capBytes > 0 && rel.Size > 0 {
					f = min(f, int((n.capBytes-u.Bytes)/rel.Size))
				}
				// A node's slot longer than the plan's step is shared
				// by the steps it covers.
				if n.slotMs > step {
					f = f * int(step) / int(n.slotMs)
				}
				free += max(f, 0)
			}
			ps.Free[cl.id] = free
			total += free
		}
		if s.history != nil && len(ids) > 0 {
			h := time.UnixMilli(start).UTC().Hour()
			sh, ok := shares[h]
			if !ok {
				sh = s.history.Share(ids, h, now)
				shares[h] = sh
			}
			ps.OnlineShare = sh
		}
		ps.Takes = min(total, int(math.Round(float64(remaining)*ps.OnlineShare)))
		if start+step <= now {
			ps.Takes = 0
		}
		if sel != nil && start+step > now && inside(sel.Windows, start, start+step) {
			takes := min(total, int(math.Round(float64(selRemaining)*ps.OnlineShare)))
			sel.Slots++
			sel.Free += total
			sel.Covered += takes
			selRemaining -= takes
		}
		if ps.Takes > 0 && remaining > 0 {
			remaining -= ps.Takes
			plan.Covered += ps.Takes
			if open != nil && open.EndMs == start {
				open.EndMs = start + step
			} else {
				plan.Suggested = append(plan.Suggested, api.Window{StartMs: start, EndMs: start + step})
				open = &plan.Suggested[len(plan.Suggested)-1]
			}
		}
		plan.Slots = append(plan.Slots, ps)
	}
	return plan, nil
}

// Nodes lists the download nodes with their current slot's reservations.
func (s *Service) Nodes(context.Context) api.NodeList {
	now := s.now().UnixMilli()
	out := api.NodeList{Nodes: []api.Node{}}
	s.useMu.RLock()
	defer s.useMu.RUnlock()
	for _, n := range s.nodes {
		an := api.Node{ID: n.id, Cluster: n.cl.id, Region: n.cl.region, Lat: n.cl.lat, Lon: n.cl.lon, URL: n.url, Local: n.local,
			SlotS: n.slotMs / 1000, Capacity: n.capacity, CapacityBytes: n.capBytes, Disabled: n.disabled, Draining: n.draining.Load(),
			Reserved: s.use[slotKey{n.id, n.slotOf(now)}].Count, Load: s.liveLoad(n)}
		for id := range n.systemIDs {
			an.SystemIDs = append(an.SystemIDs, id)
		}
		slices.Sort(an.SystemIDs)
		out.Nodes = append(out.Nodes, an)
	}
	return out
}

// Drain stops (or, draining false, resumes) new reservations on a node;
// check-ins of its reservations go to another node of its cluster. The
// change is stored before it is answered.
func (s *Service) Drain(ctx context.Context, id string, draining bool) (api.Node, error) {
	n := s.byNode[id]
	if n == nil {
		return api.Node{}, &protocol.Error{Code: protocol.NotFound, Message: "unknown node"}
	}
	if err := s.store.PutNodeState(ctx, storage.NodeState{NodeID: id, Draining: draining, UpdatedMs: s.now().UnixMilli()}); err != nil {
		return api.Node{}, err
	}
	n.draining.Store(draining || n.cfgDraining)
	for _, an := range s.Nodes(ctx).Nodes {
		if an.ID == id {
			return an, nil
		}
	}
	return api.Node{}, nil
}

// ReportLoad records an external node's live downloads (the placer
// prefers less loaded nodes).
func (s *Service) ReportLoad(_ context.Context, id string, active int64) error {
	n := s.byNode[id]
	if n == nil {
		return &protocol.Error{Code: protocol.NotFound, Message: "unknown node"}
	}
	if active < 0 {
		return bad("active must not be negative")
	}
	n.load.Store(active)
	n.loadAtMs.Store(s.now().UnixMilli())
	return nil
}

// Progress is a campaign's reservations by cluster, node and slot, with
// the outcomes of the devices' upgrades.
func (s *Service) Progress(ctx context.Context, id string) (api.CampaignProgress, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return api.CampaignProgress{}, err
	}
	// The targeted terminals termd knows, from the in-memory version
	// index (as retry --unreached finds them), gathered while the
	// reservations are read: those without one are not reached yet.
	targeted := make(chan []string, 1)
	go func() {
		var ids []string
		s.mu.RLock()
		pc := s.camps[id]
		s.mu.RUnlock()
		if pc != nil {
			s.rels.KnownDevices(c.AppID, func(dev, model, version string) {
				if pc.targets(dev, model, version) && s.rels.Newer(c.ReleaseID, version) {
					ids = append(ids, dev)
				}
			})
		}
		targeted <- ids
	}()
	// The release's reports (for each device's latest stage) are read
	// while the reservations are: two scans of the store at once.
	type stagesOf struct {
		m   map[string]string
		err error
	}
	stagesc := make(chan stagesOf, 1)
	go func() {
		m, err := s.rels.LatestStages(ctx, c.ReleaseID)
		stagesc <- stagesOf{m, err}
	}()
	// resv is what the counts need of a reservation.
	type resv struct {
		dev, node, cluster, state string
		startMs                   int64
	}
	var resvs []resv
	err = s.store.Reservations(ctx, id, func(r storage.Reservation) error {
		resvs = append(resvs, resv{r.DeviceID, r.NodeID, r.Cluster, r.State, r.SlotStartMs})
		return nil
	})
	st := <-stagesc
	if err == nil {
		err = st.err
	}
	if err != nil {
		return api.CampaignProgress{}, err
	}
	type key struct {
		node  string
		start int64
	}
	rows := map[key]*api.SlotProgress{}
	out := api.CampaignProgress{Campaign: c, Slots: []api.SlotProgress{}, UnreachedSample: []string{}}
	dueBefore := s.now().UnixMilli() - s.cfg.CheckinGrace.Milliseconds()
	placed := make(map[string]bool, len(resvs))
	for _, r := range resvs {
		placed[r.dev] = true
		k := key{r.node, r.startMs}
		row := rows[k]
		if row == nil {
			row = &api.SlotProgress{Cluster: r.cluster, Node: r.node, StartMs: r.startMs}
			rows[k] = row
		}
		for _, p := range []*api.SlotProgress{row, &out.Totals} {
			count(p, r.state, r.startMs, st.m[r.dev], dueBefore)
		}
	}
	for _, r := range rows {
		out.Slots = append(out.Slots, *r)
	}
	slices.SortFunc(out.Slots, func(a, b api.SlotProgress) int {
		return cmp.Or(cmp.Compare(a.StartMs, b.StartMs), cmp.Compare(a.Node, b.Node))
	})
	if out.Totals.Due > 0 {
		out.NoShowRate = float64(out.Totals.NoShow) / float64(out.Totals.Due)
	}
	var sample []string
	for _, dev := range <-targeted {
		if !placed[dev] {
			out.Unreached++
			sample = keepFirst(sample, dev, unreachedSample)
		}
	}
	out.UnreachedSample = append(out.UnreachedSample, sample...)
	return out, nil
}

// unreachedSample bounds the unreached terminals a progress names.
const unreachedSample = 20

// keepFirst adds id to the sorted list ids, keeping its first n.
func keepFirst(ids []string, id string, n int) []string {
	i, _ := slices.BinarySearch(ids, id)
	if i >= n {
		return ids
	}
	ids = slices.Insert(ids, i, id)
	return ids[:min(len(ids), n)]
}

// count adds a reservation to a progress row; reservations whose slot
// started before dueBefore are past their check-in grace (due).
func count(p *api.SlotProgress, state string, slotStartMs int64, stage string, dueBefore int64) {
	p.Reserved++
	switch state {
	case storage.ResvCheckedIn:
		p.Proceeded++
		p.CheckedIn++
	case storage.ResvMissed:
		p.Missed++
		p.NoShow++
	case storage.ResvUpToDate:
		p.UpToDate++
		p.CheckedIn++
	case storage.ResvLapsed:
		p.Lapsed++
		p.NoShow++
	}
	if slotStartMs <= dueBefore || state == storage.ResvMissed || state == storage.ResvLapsed {
		p.Due++
	}
	switch stage {
	case "succeeded":
		p.Succeeded++
	case "failed", "rolled_back", "timed_out", "reverted":
		p.Failed++
	}
}
