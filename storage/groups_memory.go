package storage

// This file is Memory's Groups: maps under Memory.mu.

import (
	"context"
	"slices"
	"sort"
)

type memGroups struct {
	groups map[string]Group
	devs   map[string]DeviceGroups
	idem   map[idemMemKey]GroupIdem
}

type idemMemKey struct {
	dev string
	rid uint64
}

func (m *Memory) groupState() *memGroups {
	if m.grp == nil {
		m.grp = &memGroups{groups: map[string]Group{}, devs: map[string]DeviceGroups{}, idem: map[idemMemKey]GroupIdem{}}
	}
	return m.grp
}

// ApplyGroups applies w atomically.
func (m *Memory) ApplyGroups(ctx context.Context, w GroupWrite) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkGroupWrite(w); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	s := m.groupState()
	for _, g := range w.PutGroups {
		g.Allow = slices.Clone(g.Allow)
		g.Filter = cloneFilter(g.Filter)
		s.groups[g.ID] = g
	}
	for _, id := range w.DeleteGroups {
		delete(s.groups, id)
	}
	for _, d := range w.Devices {
		s.devs[d.DeviceID] = cloneDeviceGroups(d)
	}
	for _, e := range w.Idem {
		e.Members = slices.Clone(e.Members)
		s.idem[idemMemKey{e.DeviceID, e.RequestID}] = e
	}
	return nil
}

// LoadGroups returns copies of every group (id order) and device record.
func (m *Memory) LoadGroups(ctx context.Context) ([]Group, []DeviceGroups, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, nil, ErrClosed
	}
	s := m.groupState2()
	var gs []Group
	for _, g := range s.groups {
		g.Allow = slices.Clone(g.Allow)
		g.Filter = cloneFilter(g.Filter)
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
	var ds []DeviceGroups
	for _, d := range s.devs {
		ds = append(ds, cloneDeviceGroups(d))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].DeviceID < ds[j].DeviceID })
	return gs, ds, ctx.Err()
}

// groupState2 is groupState for readers: an empty state when none exists.
func (m *Memory) groupState2() *memGroups {
	if m.grp == nil {
		return &memGroups{}
	}
	return m.grp
}

// LoadGroupIdem returns the remembered answers at or after sinceMs.
func (m *Memory) LoadGroupIdem(ctx context.Context, sinceMs int64) ([]GroupIdem, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []GroupIdem
	for _, e := range m.groupState2().idem {
		if e.AtMs >= sinceMs {
			e.Members = slices.Clone(e.Members)
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DeviceID != out[j].DeviceID {
			return out[i].DeviceID < out[j].DeviceID
		}
		return out[i].RequestID < out[j].RequestID
	})
	return out, ctx.Err()
}

// PruneGroupIdem deletes the answers older than beforeMs.
func (m *Memory) PruneGroupIdem(ctx context.Context, beforeMs int64) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for k, e := range m.groupState().idem {
		if e.AtMs < beforeMs {
			delete(m.grp.idem, k)
			n++
		}
	}
	return n, ctx.Err()
}

func cloneFilter(f *GroupFilter) *GroupFilter {
	if f == nil {
		return nil
	}
	return &GroupFilter{Devices: slices.Clone(f.Devices), Models: slices.Clone(f.Models), FW: slices.Clone(f.FW)}
}
