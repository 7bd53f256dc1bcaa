package storage

// Memory's Schedules: maps under their own mutex; UpdateSchedule stages
// writes and applies them only when fn succeeds.

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

type slotKeyM struct {
	node string
	slot int64
}

type memSchedules struct {
	mu    sync.Mutex
	camps map[string]Campaign
	resv  map[string]Reservation
	devs  map[upPair]string // (campaign, device) → reservation id
	slots map[slotKeyM]SlotUse
	nodes map[string]NodeState
	locs  map[string]DeviceLocation
}

func (m *memSchedules) init() {
	if m.camps == nil {
		m.camps, m.resv, m.devs = map[string]Campaign{}, map[string]Reservation{}, map[upPair]string{}
		m.slots, m.nodes, m.locs = map[slotKeyM]SlotUse{}, map[string]NodeState{}, map[string]DeviceLocation{}
	}
}

// withSchedules runs fn on the schedule maps, made if there are none yet,
// under their lock, once the store is open and ctx alive. Every call that
// writes them, and DeviceReservation, starts so.
func (m *Memory) withSchedules(ctx context.Context, fn func(s *memSchedules) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	m.sch.mu.Lock()
	defer m.sch.mu.Unlock()
	m.sch.init()
	return fn(&m.sch)
}

// PutCampaign stores a copy of c.
func (m *Memory) PutCampaign(ctx context.Context, c Campaign) error {
	if err := checkCampaign(&c); err != nil {
		return err
	}
	return m.withSchedules(ctx, func(s *memSchedules) error {
		s.camps[c.ID] = cloneCampaign(c)
		return nil
	})
}

// ListCampaigns returns every campaign in id order.
func (m *Memory) ListCampaigns(ctx context.Context) ([]Campaign, error) {
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(&m.sch.mu, &m.sch.camps, nil, cloneCampaign,
		func(a, b Campaign) int { return cmp.Compare(a.ID, b.ID) }), nil
}

type memScheduleTx struct {
	s     *memSchedules
	resv  map[string]Reservation
	devs  map[upPair]string
	slots map[slotKeyM]SlotUse
}

// UpdateSchedule runs fn with staged writes and applies them when fn succeeds.
func (m *Memory) UpdateSchedule(ctx context.Context, fn func(tx ScheduleTx) error) error {
	return m.withSchedules(ctx, func(s *memSchedules) error {
		tx := &memScheduleTx{s: s, resv: map[string]Reservation{}, devs: map[upPair]string{}, slots: map[slotKeyM]SlotUse{}}
		if err := fn(tx); err != nil {
			return err
		}
		for k, v := range tx.resv {
			s.resv[k] = v
		}
		for k, v := range tx.devs {
			s.devs[k] = v
		}
		for k, v := range tx.slots {
			if v.Count == 0 && v.Bytes == 0 {
				delete(s.slots, k)
			} else {
				s.slots[k] = v
			}
		}
		return nil
	})
}

func (t *memScheduleTx) Reservation(id string) (Reservation, bool, error) {
	if r, ok := t.resv[id]; ok {
		return r, true, nil
	}
	r, ok := t.s.resv[id]
	return r, ok, nil
}

func (t *memScheduleTx) DeviceReservation(campaign, device string) (Reservation, bool, error) {
	k := upPair{campaign, device}
	id, ok := t.devs[k]
	if !ok {
		if id, ok = t.s.devs[k]; !ok {
			return Reservation{}, false, nil
		}
	}
	return t.Reservation(id)
}

func (t *memScheduleTx) PutReservation(r *Reservation) error {
	if err := checkReservation(r); err != nil {
		return err
	}
	t.resv[r.ID] = *r
	t.devs[upPair{r.CampaignID, r.DeviceID}] = r.ID
	return nil
}

func (t *memScheduleTx) SlotUse(node string, slot int64) (SlotUse, error) {
	k := slotKeyM{node, slot}
	if u, ok := t.slots[k]; ok {
		return u, nil
	}
	if u, ok := t.s.slots[k]; ok {
		return u, nil
	}
	return SlotUse{Node: node, Slot: slot}, nil
}

func (t *memScheduleTx) PutSlotUse(u *SlotUse) error {
	if err := checkUpgradeID("node id", u.Node); err != nil {
		return err
	}
	if u.Count < 0 || u.Bytes < 0 {
		return ErrInvalid
	}
	t.slots[slotKeyM{u.Node, u.Slot}] = *u
	return nil
}

// DeviceReservation implements Schedules.
func (m *Memory) DeviceReservation(ctx context.Context, campaign, device string) (r Reservation, found bool, err error) {
	err = m.withSchedules(ctx, func(s *memSchedules) error {
		// A transaction with nothing of its own reads the store as it is.
		r, found, err = (&memScheduleTx{s: s}).DeviceReservation(campaign, device)
		return err
	})
	return r, found, err
}

// Reservations calls fn for the campaign's reservations ("" = all) in
// (campaign, device) order.
func (m *Memory) Reservations(ctx context.Context, campaign string, fn func(r Reservation) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	m.sch.mu.Lock()
	var rs []Reservation
	if campaign == "" {
		// every reservation, also those a newer one of the device replaced
		for _, r := range m.sch.resv {
			rs = append(rs, r)
		}
	} else {
		for k, id := range m.sch.devs {
			if k.a == campaign {
				rs = append(rs, m.sch.resv[id])
			}
		}
	}
	m.sch.mu.Unlock()
	slices.SortFunc(rs, func(a, b Reservation) int {
		if c := cmp.Compare(a.CampaignID, b.CampaignID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.DeviceID, b.DeviceID); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return callEach(rs, fn)
}

// SlotUses calls fn for every stored slot use in (node, slot) order.
func (m *Memory) SlotUses(ctx context.Context, fn func(u SlotUse) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	us := sortedValues(&m.sch.mu, &m.sch.slots, nil, nil, func(a, b SlotUse) int {
		if c := cmp.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(a.Slot, b.Slot)
	})
	return callEach(us, fn)
}

// DeleteSlotUses deletes the node's slot uses before slot.
func (m *Memory) DeleteSlotUses(ctx context.Context, node string, before int64) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	m.sch.mu.Lock()
	defer m.sch.mu.Unlock()
	for k := range m.sch.slots {
		if k.node == node && k.slot < before {
			delete(m.sch.slots, k)
		}
	}
	return nil
}

// PutNodeState stores an operator's node state.
func (m *Memory) PutNodeState(ctx context.Context, s NodeState) error {
	if err := checkUpgradeID("node id", s.NodeID); err != nil {
		return err
	}
	return m.withSchedules(ctx, func(sch *memSchedules) error {
		sch.nodes[s.NodeID] = s
		return nil
	})
}

// NodeStates returns every stored node state in node order.
func (m *Memory) NodeStates(ctx context.Context) ([]NodeState, error) {
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(&m.sch.mu, &m.sch.nodes, nil, nil,
		func(a, b NodeState) int { return cmp.Compare(a.NodeID, b.NodeID) }), nil
}

// PutDeviceLocation stores or removes a device's registered location.
func (m *Memory) PutDeviceLocation(ctx context.Context, l DeviceLocation, remove bool) error {
	if err := checkLocation(&l); err != nil {
		return err
	}
	return m.withSchedules(ctx, func(s *memSchedules) error {
		if remove {
			delete(s.locs, l.DeviceID)
		} else {
			s.locs[l.DeviceID] = l
		}
		return nil
	})
}

// DeviceLocations calls fn for every registered location, in device order.
func (m *Memory) DeviceLocations(ctx context.Context, fn func(l DeviceLocation) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	ls := sortedValues(&m.sch.mu, &m.sch.locs, nil, nil,
		func(a, b DeviceLocation) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
	return callEach(ls, fn)
}
