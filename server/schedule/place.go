package schedule

// The group committer, SCHEDULE_REQUEST (placement) and UPGRADE_CHECK
// (check-in). Every change to reservations and slot uses is a job; the
// committer takes the jobs waiting, applies them in one transaction on
// its own copy of the slot uses (it is their only writer), commits, and
// only then publishes the new uses and answers.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/termd/termd/server/groupcommit"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/storage"
)

// job is one unit of the group commit.
type job struct {
	apply func(tx storage.ScheduleTx, b *batch) (after func(), err error)
	reply func(err error)
}

// batch is one transaction's changes over the committed slot uses.
type batch struct {
	s     *Service
	now   int64
	uses  map[slotKey]storage.SlotUse
	holds map[string]*holdInfo // nil value: no longer holding
	// nextFree is nextFreeMs for this batch, once a refusal needed it
	// (0: not yet): one scan of the holdings per batch, not per refusal.
	nextFree int64
}

// useOf is the slot's use as this batch sees it.
func (b *batch) useOf(k slotKey) storage.SlotUse {
	if u, ok := b.uses[k]; ok {
		return u
	}
	if u, ok := b.s.use[k]; ok { // the committer is use's only writer
		return u
	}
	return storage.SlotUse{Node: k.node, Slot: k.slot}
}

// take adds a reservation of bytes to the slot, in tx and the batch.
func (b *batch) take(tx storage.ScheduleTx, k slotKey, bytes int64) error {
	u := b.useOf(k)
	u.Count++
	u.Bytes += bytes
	b.uses[k] = u
	return tx.PutSlotUse(&u)
}

// give releases a reservation's capacity, in tx and the batch.
func (b *batch) give(tx storage.ScheduleTx, r *storage.Reservation) error {
	if !r.Holds() {
		return nil
	}
	k := slotKey{r.NodeID, r.Slot}
	u := b.useOf(k)
	u.Count = max(u.Count-1, 0)
	u.Bytes = max(u.Bytes-r.Bytes, 0)
	b.uses[k] = u
	b.holds[r.ID] = nil
	return tx.PutSlotUse(&u)
}

func (s *Service) submit(j *job) {
	select {
	case <-s.stop:
		j.reply(&protocol.Error{Code: protocol.Unavailable, Message: "stopping", RetryAfterMs: busyRetryMs})
		return
	default:
	}
	select {
	case s.jobs <- j:
	default:
		s.m.busy.Inc()
		j.reply(&protocol.Error{Code: protocol.Unavailable, Message: "scheduling busy", RetryAfterMs: busyRetryMs})
	}
}

// committer commits the waiting jobs in groups until Close, then drains
// what is queued (bounded by closeTimeout).
func (s *Service) committer() {
	defer s.wg.Done()
	defer close(s.stopped)
	groupcommit.Run(s.jobs, s.stop, commitBatch, closeTimeout, s.commit)
}

// commit applies jobs in one transaction; if it fails, each job alone.
func (s *Service) commit(jobs []*job) {
	b := &batch{s: s, now: s.now().UnixMilli(), uses: map[slotKey]storage.SlotUse{}, holds: map[string]*holdInfo{}}
	afters := make([]func(), len(jobs))
	errs := make([]error, len(jobs))
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	start := time.Now()
	err := s.store.UpdateSchedule(ctx, func(tx storage.ScheduleTx) error {
		for i, j := range jobs {
			// A refusal (a *protocol.Error) is the job's answer; what it
			// wrote before refusing (giving back a reservation whose slot
			// is over) is a valid change and is committed with the rest.
			after, err := j.apply(tx, b)
			var pe *protocol.Error
			if err != nil && errors.As(err, &pe) {
				errs[i] = err
				continue
			}
			if err != nil {
				return err
			}
			afters[i] = after
		}
		return nil
	})
	if err != nil && len(jobs) > 1 {
		for _, j := range jobs {
			s.commit([]*job{j})
		}
		return
	}
	s.m.commitBatch.Update(float64(len(jobs)))
	s.m.commitSeconds.UpdateDuration(start)
	if err == nil {
		s.useMu.Lock()
		for k, u := range b.uses {
			if u.Count == 0 && u.Bytes == 0 {
				delete(s.use, k)
			} else {
				s.use[k] = u
			}
		}
		s.useMu.Unlock()
		for id, h := range b.holds {
			if h == nil {
				delete(s.holding, id)
			} else {
				s.holding[id] = *h
			}
		}
	} else {
		s.log.Warn("schedule commit failed", "jobs", len(jobs), "err", err)
	}
	for i, j := range jobs {
		if err == nil && errs[i] == nil && afters[i] != nil {
			afters[i]()
		}
		if j.reply != nil {
			switch {
			case err != nil:
				j.reply(server.AsError(err))
			default:
				j.reply(errs[i])
			}
		}
	}
}

// serveSchedule answers SCHEDULE_REQUEST (spec §6.2).
func (s *Service) serveSchedule(req *server.Request, reply func(protocol.Message, error)) {
	q := req.Msg.(*protocol.ScheduleRequest)
	s.m.requests.Inc()
	dev, model := req.DeviceID, req.Model
	c, err := s.usable(q.CampaignID)
	if err != nil {
		s.m.placed("refused")
		reply(nil, err)
		return
	}
	if !c.targets(dev, model, q.Version) {
		s.m.placed("not_targeted")
		reply(nil, &protocol.Error{Code: protocol.NotFound, Message: "device is not in the campaign"})
		return
	}
	if !s.rels.Newer(c.ReleaseID, q.Version) {
		s.m.placed("not_targeted")
		reply(nil, &protocol.Error{Code: protocol.NotFound, Message: "the device already runs the campaign's version or newer"})
		return
	}
	if !s.rels.PhaseAllows(c.ReleaseID, dev) {
		s.m.placed("phase")
		reply(nil, &protocol.Error{Code: protocol.Unavailable, Message: "the release's phased rollout has not reached this device", RetryAfterMs: jitter(15 * 60 * 1000)})
		return
	}
	var loc *location
	if q.HasLoc {
		loc = &location{q.Lat, q.Lon}
	} else if l, ok := s.locs.get(dev); ok {
		loc = &l // the operators' registered location
	} else if e := s.srv.Presence.Get(dev); e != nil {
		if l, ok := attrsLocation(e.Attrs); ok {
			loc = &l // last resort: HELLO attrs, not covered by the MAC
		}
	}
	rel, _ := s.rels.CampaignRelease(c.ReleaseID)
	// The frozen assignment first (the device's reports are accepted
	// from then on), then the reservation; neither blocks a worker.
	s.rels.AssignAsync(c.ReleaseID, dev, q.Version, model, func(err error) {
		if err != nil {
			s.m.placed("refused")
			reply(nil, err)
			return
		}
		var ack *protocol.ScheduleAck
		s.submit(&job{
			apply: func(tx storage.ScheduleTx, b *batch) (func(), error) {
				var err error
				ack, err = s.place(tx, b, c.ID, dev, q.Version, q.SystemID, loc, rel.Size)
				return nil, err
			},
			reply: func(err error) {
				if err != nil {
					if pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code == protocol.Unavailable {
						s.m.placed("full")
					}
					reply(nil, err)
					return
				}
				s.m.placed("placed")
				reply(ack, nil)
			},
		})
	})
}

// usable returns the campaign if placements and check-ins may use it:
// NOT_FOUND (unknown or draft), EXPIRED (cancelled, over, or its release
// cancelled), UNAVAILABLE (paused) otherwise.
func (s *Service) usable(id string) (*campaign, error) {
	s.mu.RLock()
	c := s.camps[id]
	s.mu.RUnlock()
	now := s.now().UnixMilli()
	switch {
	case c == nil || c.State == storage.CampaignDraft:
		return nil, errNoCampaign
	case c.State == storage.CampaignCancelled || now >= c.EndMs() || s.rels.Cancelled(c.ReleaseID):
		return nil, &protocol.Error{Code: protocol.Expired, Message: "the campaign is over or cancelled"}
	case c.State == storage.CampaignPaused:
		return nil, &protocol.Error{Code: protocol.Unavailable, Message: "the campaign is paused", RetryAfterMs: jitter(10 * 60 * 1000)}
	}
	return c, nil
}

// jitter spreads a retry delay over [ms/2, ms) so refused terminals do
// not come back in step.
func jitter(ms int64) uint64 { return uint64(ms/2 + mrand.Int64N(max(ms/2, 1))) }

// place finds and reserves the device's slot inside the transaction: the
// same reservation again while its slot has not ended, else the nearest
// cluster with room, its node with the earliest free slot (ties: less
// loaded, then configuration order).
func (s *Service) place(tx storage.ScheduleTx, b *batch, campID, dev, version, systemID string, loc *location, size int64) (*protocol.ScheduleAck, error) {
	c, err := s.usable(campID) // again: a cancel may have committed since
	if err != nil {
		return nil, err
	}
	old, found, err := tx.DeviceReservation(campID, dev)
	if err != nil {
		return nil, err
	}
	if found && old.Holds() && old.SlotEndMs > b.now {
		return ackOf(&old, s.byNode[old.NodeID]), nil
	}
	if found && old.Holds() { // its slot is over: give it back before taking another
		if err := b.give(tx, &old); err != nil {
			return nil, err
		}
		old.State, old.UpdatedMs = storage.ResvReleased, b.now
		if err := tx.PutReservation(&old); err != nil {
			return nil, err
		}
	}
	windows := c.windowsFor(s.locs.zoneOf(dev, s.cfg.DefaultTZ))
	for _, cl := range s.clustersFor(c, systemID, loc) {
		var best *node
		var bestSlot int64
		var bestLoad float64
		for _, n := range cl.nodes {
			if !n.takes() || !n.serves(systemID) {
				continue
			}
			slot, ok := b.earliestFree(n, windows, size)
			if !ok {
				continue
			}
			u := b.useOf(slotKey{n.id, slot})
			load := float64(u.Count+int(s.liveLoad(n))) / float64(n.capacity)
			if best == nil || n.slotStart(slot) < best.slotStart(bestSlot) || n.slotStart(slot) == best.slotStart(bestSlot) && load < bestLoad {
				best, bestSlot, bestLoad = n, slot, load
			}
		}
		if best == nil {
			continue
		}
		var idb [8]byte
		_, _ = rand.Read(idb[:])
		r := storage.Reservation{
			ID: "v-" + hex.EncodeToString(idb[:]), CampaignID: campID, DeviceID: dev, ReleaseID: c.ReleaseID, NodeID: best.id,
			Cluster: cl.id, Slot: bestSlot, SlotStartMs: best.slotStart(bestSlot), SlotEndMs: best.slotStart(bestSlot + 1),
			Bytes: size, FromVersion: version, SystemID: systemID, State: storage.ResvReserved, CreatedMs: b.now, UpdatedMs: b.now,
		}
		if err := b.take(tx, slotKey{best.id, bestSlot}, size); err != nil {
			return nil, err
		}
		if err := tx.PutReservation(&r); err != nil {
			return nil, err
		}
		b.holds[r.ID] = &holdInfo{campaign: campID, node: best.id, slot: bestSlot, bytes: size, startMs: r.SlotStartMs, endMs: r.SlotEndMs}
		return ackOf(&r, best), nil
	}
	if b.nextFree == 0 {
		b.nextFree = s.nextFreeMs(b.now)
	}
	return nil, &protocol.Error{Code: protocol.Unavailable, Message: "no download capacity left in the campaign's windows", RetryAfterMs: jitter(b.nextFree)}
}

// earliestFree is the node's earliest slot inside one of the windows (the
// campaign's, for the device's zone), not over by more than half, with room for one more
// reservation of size bytes.
func (b *batch) earliestFree(n *node, windows []storage.Window, size int64) (int64, bool) {
	for _, w := range windows {
		if w.EndMs <= b.now {
			continue
		}
		slot := n.slotOf(max(w.StartMs, b.now))
		if n.slotStart(slot) < w.StartMs {
			slot++
		}
		if n.slotStart(slot) < b.now && n.slotStart(slot+1)-b.now < n.slotMs/2 {
			slot++ // less than half of the current slot is left
		}
		for ; n.slotStart(slot+1) <= w.EndMs; slot++ {
			u := b.useOf(slotKey{n.id, slot})
			if u.Count < n.capacity && (n.capBytes == 0 || u.Bytes+size <= n.capBytes) {
				return slot, true
			}
		}
	}
	return 0, false
}

// nextFreeMs is when capacity may next free up: the earliest check-in
// grace of a reservation not checked in yet, else one slot length.
func (s *Service) nextFreeMs(nowMs int64) int64 {
	next := s.cfg.SlotLength.Milliseconds()
	grace := s.cfg.CheckinGrace.Milliseconds()
	for _, h := range s.holding {
		if !h.checkedIn {
			next = min(next, max(h.startMs+grace-nowMs, 1000))
		}
	}
	return min(max(next, 1000), time.Hour.Milliseconds())
}

func ackOf(r *storage.Reservation, n *node) *protocol.ScheduleAck {
	ack := &protocol.ScheduleAck{ReservationID: r.ID, NodeID: r.NodeID, SlotStartMs: uint64(r.SlotStartMs), SlotEndMs: uint64(r.SlotEndMs), ReleaseID: r.ReleaseID}
	if n != nil {
		ack.URL = n.url
	}
	return ack
}

// serveCheck answers UPGRADE_CHECK (spec §6.2).
func (s *Service) serveCheck(req *server.Request, reply func(protocol.Message, error)) {
	q := req.Msg.(*protocol.UpgradeCheck)
	dev := req.DeviceID
	var ack protocol.UpgradeCheckAck
	s.submit(&job{
		apply: func(tx storage.ScheduleTx, b *batch) (func(), error) {
			return nil, s.check(tx, b, dev, q, &ack)
		},
		reply: func(err error) {
			if err != nil {
				s.m.checked("refused")
				reply(nil, err)
				return
			}
			s.m.checked(decisionName(ack.Decision))
			reply(&ack, nil)
		},
	})
}

var errNoReservation = &protocol.Error{Code: protocol.NotFound, Message: "unknown or released reservation"}

// check decides a check-in inside the transaction.
func (s *Service) check(tx storage.ScheduleTx, b *batch, dev string, q *protocol.UpgradeCheck, ack *protocol.UpgradeCheckAck) error {
	r, found, err := tx.Reservation(q.ReservationID)
	if err != nil {
		return err
	}
	if !found || r.DeviceID != dev {
		return errNoReservation
	}
	if _, err := s.usable(r.CampaignID); err != nil {
		return err
	}
	switch r.State {
	case storage.ResvReserved, storage.ResvCheckedIn:
	case storage.ResvLapsed:
		*ack = protocol.UpgradeCheckAck{Decision: protocol.DecisionMissed}
		return nil
	default:
		return errNoReservation
	}
	rel, ok := s.rels.CampaignRelease(r.ReleaseID)
	if !ok {
		return errNoReservation
	}
	now := b.now
	switch {
	case !s.rels.Newer(r.ReleaseID, q.Version):
		*ack = protocol.UpgradeCheckAck{Decision: protocol.DecisionUpToDate}
		return s.settle(tx, b, &r, storage.ResvUpToDate)
	case now < r.SlotStartMs:
		*ack = protocol.UpgradeCheckAck{Decision: protocol.DecisionTooEarly, WaitMs: uint64(r.SlotStartMs - now)}
		return nil
	case now >= r.SlotEndMs:
		*ack = protocol.UpgradeCheckAck{Decision: protocol.DecisionMissed}
		return s.settle(tx, b, &r, storage.ResvMissed)
	}
	n := s.proceedNode(&r)
	if n == nil {
		return &protocol.Error{Code: protocol.Unavailable, Message: "no healthy download node in the cluster", RetryAfterMs: jitter(60 * 1000)}
	}
	exp := time.UnixMilli(r.SlotEndMs).Add(s.cfg.DownloadGrace.Duration)
	// Nodes serve artifacts by sha256; termd's own node only what was
	// uploaded to it, so a release of an external URL is fetched from
	// there when the reserved node is termd's own.
	url, tok := rel.URL, ""
	if !n.local || rel.URL == "" {
		url, tok = s.downloadURL(n, rel.SHA256, dev, exp)
	}
	if url == "" {
		return &protocol.Error{Code: protocol.Unavailable, Message: "the download node has no URL", RetryAfterMs: jitter(60 * 1000)}
	}
	*ack = protocol.UpgradeCheckAck{Decision: protocol.DecisionProceed, URL: url, SHA256: rel.SHA256[:], Size: uint64(max(rel.Size, 0)), Token: tok, ReleaseSig: rel.Sig}
	if r.State == storage.ResvReserved {
		r.State, r.CheckedInMs, r.UpdatedMs = storage.ResvCheckedIn, now, now
		if err := tx.PutReservation(&r); err != nil {
			return err
		}
		h := holdInfo{campaign: r.CampaignID, node: r.NodeID, slot: r.Slot, bytes: r.Bytes, startMs: r.SlotStartMs, endMs: r.SlotEndMs, checkedIn: true}
		b.holds[r.ID] = &h
	}
	return nil
}

// proceedNode is the reservation's node, or, when it is draining,
// disabled or no longer configured, another node of its cluster that
// serves the device.
func (s *Service) proceedNode(r *storage.Reservation) *node {
	n := s.byNode[r.NodeID]
	if n != nil && !n.disabled && !n.draining.Load() {
		return n
	}
	for _, cl := range s.clusters {
		if cl.id != r.Cluster {
			continue
		}
		for _, o := range cl.nodes {
			if o.takes() && o.serves(r.SystemID) {
				return o
			}
		}
	}
	return nil
}

// settle ends a reservation in state, giving its capacity back.
func (s *Service) settle(tx storage.ScheduleTx, b *batch, r *storage.Reservation, state string) error {
	if err := b.give(tx, r); err != nil {
		return err
	}
	r.State, r.UpdatedMs = state, b.now
	return tx.PutReservation(r)
}

func decisionName(d uint8) string {
	switch d {
	case protocol.DecisionProceed:
		return "proceed"
	case protocol.DecisionUpToDate:
		return "up_to_date"
	case protocol.DecisionTooEarly:
		return "too_early"
	case protocol.DecisionMissed:
		return "missed"
	}
	return fmt.Sprint(d)
}
