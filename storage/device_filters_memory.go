package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// PutDeviceFilter implements DeviceFilters.
func (m *Memory) PutDeviceFilter(ctx context.Context, f DeviceFilter) (DeviceFilter, bool, error) {
	if err := checkDeviceFilter(&f); err != nil {
		return DeviceFilter{}, false, err
	}
	if err := m.lock(); err != nil {
		return DeviceFilter{}, false, err
	}
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return DeviceFilter{}, false, err
	}
	old, found := m.dfs[f.Name]
	if !found && len(m.dfs) >= MaxDeviceFilters {
		return DeviceFilter{}, false, fmt.Errorf("storage: put device filter: %w: %d saved filters kept at most", ErrTooMany, MaxDeviceFilters)
	}
	if m.dfs == nil {
		m.dfs = map[string]DeviceFilter{}
	}
	f = mergeDeviceFilter(f, old, found)
	m.dfs[f.Name] = f
	return f, !found, nil
}

// DeleteDeviceFilter implements DeviceFilters.
func (m *Memory) DeleteDeviceFilter(ctx context.Context, name string) error {
	if err := CheckDeviceFilterName(name); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := m.dfs[name]; !ok {
		return fmt.Errorf("storage: delete device filter: %w", ErrNotFound)
	}
	delete(m.dfs, name)
	return nil
}

// DeviceFilter implements DeviceFilters.
func (m *Memory) DeviceFilter(ctx context.Context, name string) (DeviceFilter, error) {
	if err := CheckDeviceFilterName(name); err != nil {
		return DeviceFilter{}, err
	}
	if err := m.rlock(); err != nil {
		return DeviceFilter{}, err
	}
	defer m.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return DeviceFilter{}, err
	}
	f, ok := m.dfs[name]
	if !ok {
		return DeviceFilter{}, ErrNotFound
	}
	return f, nil
}

// ListDeviceFilters implements DeviceFilters.
func (m *Memory) ListDeviceFilters(ctx context.Context) ([]DeviceFilter, error) {
	if err := m.rlock(); err != nil {
		return nil, err
	}
	out := make([]DeviceFilter, 0, len(m.dfs))
	for _, f := range m.dfs {
		out = append(out, f)
	}
	m.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DeviceFilter) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
