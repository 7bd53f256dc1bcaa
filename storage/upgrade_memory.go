package storage

// This file is Memory's Upgrades: maps under their own mutex (upgrade
// calls never take Memory.mu, so they do not wait on registry writes).
// UpdateUpgrades stages writes and applies them only when fn succeeds.

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

type upPair struct{ a, b string }

type upReportKeyM struct {
	release, device string
	attempt         uint64
}

// memUpgrades is Memory's upgrade state; the zero value is ready.
type memUpgrades struct {
	mu       sync.RWMutex
	releases map[string]Release
	assigns  map[upPair]UpgradeAssignment // (release, device)
	reports  map[upReportKeyM]UpgradeReport
	marks    map[upPair]UpgradeFailureMark // (device, app)
	versions map[upPair]AppVersion         // (device, app)
	rollouts map[string]RolloutState
}

func (u *memUpgrades) init() {
	if u.releases == nil {
		u.releases = map[string]Release{}
		u.assigns = map[upPair]UpgradeAssignment{}
		u.reports = map[upReportKeyM]UpgradeReport{}
		u.marks = map[upPair]UpgradeFailureMark{}
		u.versions = map[upPair]AppVersion{}
		u.rollouts = map[string]RolloutState{}
	}
}

func cloneRelease(r Release) Release {
	r.Models = slices.Clone(r.Models)
	r.Devices = slices.Clone(r.Devices)
	r.Groups = slices.Clone(r.Groups)
	r.Sig = slices.Clone(r.Sig)
	r.Phases = slices.Clone(r.Phases)
	for i := range r.Phases {
		r.Phases[i].Devices = slices.Clone(r.Phases[i].Devices)
	}
	return r
}

// upReady checks the store is open and ctx alive.
func (m *Memory) upReady(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.rlock(); err != nil {
		return err
	}
	m.mu.RUnlock()
	return nil
}

// sortedValues copies out the values of *m whose key keep accepts (nil
// keep: every value), each through clone (nil clone: as stored), while mu
// is held, and sorts the copy by compare once mu is released, so neither
// the sort nor a caller's callbacks hold the store's lock. m is a pointer
// because the map itself is read under mu too: init sets it under the
// write lock. The slice is empty, not nil, when nothing matches.
func sortedValues[K comparable, V any](mu sync.Locker, m *map[K]V, keep func(K) bool, clone func(V) V, compare func(a, b V) int) []V {
	mu.Lock()
	n := 0
	if keep == nil {
		n = len(*m)
	}
	out := make([]V, 0, n)
	for k, v := range *m {
		if keep != nil && !keep(k) {
			continue
		}
		if clone != nil {
			v = clone(v)
		}
		out = append(out, v)
	}
	mu.Unlock()
	slices.SortFunc(out, compare)
	return out
}

// lookup returns (*m)[k], read under mu, or the zero value and
// ErrNotFound. Assignment and FailureMark are this one lookup on two maps.
func lookup[K comparable, V any](mu sync.Locker, m *map[K]V, k K) (V, error) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := (*m)[k]
	if !ok {
		return v, ErrNotFound
	}
	return v, nil
}

// callEach calls fn with each of vs in order and stops at its first error.
func callEach[V any](vs []V, fn func(V) error) error {
	for _, v := range vs {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// PutRelease stores a copy of r.
func (m *Memory) PutRelease(ctx context.Context, r Release) error {
	if err := checkRelease(&r); err != nil {
		return err
	}
	if err := m.upReady(ctx); err != nil {
		return err
	}
	u := &m.up
	u.mu.Lock()
	defer u.mu.Unlock()
	u.init()
	u.releases[r.ID] = cloneRelease(r)
	return nil
}

// GetRelease returns the release or ErrNotFound.
func (m *Memory) GetRelease(ctx context.Context, id string) (Release, error) {
	if err := m.upReady(ctx); err != nil {
		return Release{}, err
	}
	u := &m.up
	u.mu.RLock()
	defer u.mu.RUnlock()
	r, ok := u.releases[id]
	if !ok {
		return Release{}, ErrNotFound
	}
	return cloneRelease(r), nil
}

// ListReleases returns every release in id order.
func (m *Memory) ListReleases(ctx context.Context) ([]Release, error) {
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(m.up.mu.RLocker(), &m.up.releases, nil, cloneRelease,
		func(a, b Release) int { return cmp.Compare(a.ID, b.ID) }), nil
}

// memUpgradeTx stages a transaction's writes over the committed state.
type memUpgradeTx struct {
	u        *memUpgrades
	assigns  map[upPair]UpgradeAssignment
	reports  map[upReportKeyM]UpgradeReport
	marks    map[upPair]*UpgradeFailureMark // nil = deleted
	versions map[upPair]AppVersion
	rollouts map[string]RolloutState
}

// UpdateUpgrades runs fn with staged writes and applies them when fn succeeds.
func (m *Memory) UpdateUpgrades(ctx context.Context, fn func(tx UpgradeTx) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	u := &m.up
	u.mu.Lock()
	defer u.mu.Unlock()
	u.init()
	tx := &memUpgradeTx{u: u, assigns: map[upPair]UpgradeAssignment{}, reports: map[upReportKeyM]UpgradeReport{},
		marks: map[upPair]*UpgradeFailureMark{}, versions: map[upPair]AppVersion{}, rollouts: map[string]RolloutState{}}
	if err := fn(tx); err != nil {
		return err
	}
	for k, v := range tx.assigns {
		u.assigns[k] = v
	}
	for k, v := range tx.reports {
		u.reports[k] = v
	}
	for k, v := range tx.marks {
		if v == nil {
			delete(u.marks, k)
		} else {
			u.marks[k] = *v
		}
	}
	for k, v := range tx.versions {
		u.versions[k] = v
	}
	for k, v := range tx.rollouts {
		u.rollouts[k] = v
	}
	return nil
}

func (t *memUpgradeTx) Report(release, device string, attempt uint64) (UpgradeReport, bool, error) {
	k := upReportKeyM{release, device, attempt}
	if r, ok := t.reports[k]; ok {
		return r, true, nil
	}
	r, ok := t.u.reports[k]
	return r, ok, nil
}

func (t *memUpgradeTx) PutReport(r *UpgradeReport) error {
	if err := checkReport(r); err != nil {
		return err
	}
	t.reports[upReportKeyM{r.ReleaseID, r.DeviceID, r.Attempt}] = *r
	return nil
}

func (t *memUpgradeTx) Assignment(release, device string) (UpgradeAssignment, bool, error) {
	k := upPair{release, device}
	if a, ok := t.assigns[k]; ok {
		return a, true, nil
	}
	a, ok := t.u.assigns[k]
	return a, ok, nil
}

func (t *memUpgradeTx) PutAssignment(a *UpgradeAssignment) error {
	if err := checkPair(a.ReleaseID, "release id", a.DeviceID, "device id"); err != nil {
		return err
	}
	t.assigns[upPair{a.ReleaseID, a.DeviceID}] = *a
	return nil
}

func (t *memUpgradeTx) FailureMark(device, app string) (UpgradeFailureMark, bool, error) {
	k := upPair{device, app}
	if m, ok := t.marks[k]; ok {
		if m == nil {
			return UpgradeFailureMark{}, false, nil
		}
		return *m, true, nil
	}
	m, ok := t.u.marks[k]
	return m, ok, nil
}

func (t *memUpgradeTx) PutFailureMark(m *UpgradeFailureMark) error {
	if err := checkPair(m.DeviceID, "device id", m.AppID, "app id"); err != nil {
		return err
	}
	c := *m
	t.marks[upPair{m.DeviceID, m.AppID}] = &c
	return nil
}

func (t *memUpgradeTx) DeleteFailureMark(device, app string) error {
	t.marks[upPair{device, app}] = nil
	return nil
}

func (t *memUpgradeTx) PutAppVersion(v *AppVersion) error {
	if err := checkPair(v.DeviceID, "device id", v.AppID, "app id"); err != nil {
		return err
	}
	t.versions[upPair{v.DeviceID, v.AppID}] = *v
	return nil
}

// Assignment returns the device's assignment to the release or ErrNotFound.
func (m *Memory) Assignment(ctx context.Context, release, device string) (UpgradeAssignment, error) {
	if err := m.upReady(ctx); err != nil {
		return UpgradeAssignment{}, err
	}
	return lookup(m.up.mu.RLocker(), &m.up.assigns, upPair{release, device})
}

// Assignments calls fn for the release's assignments in device order.
func (m *Memory) Assignments(ctx context.Context, release string, fn func(a UpgradeAssignment) error) error {
	if err := checkUpgradeID("release id", release); err != nil {
		return err
	}
	if err := m.upReady(ctx); err != nil {
		return err
	}
	as := sortedValues(m.up.mu.RLocker(), &m.up.assigns, func(k upPair) bool { return k.a == release }, nil,
		func(x, y UpgradeAssignment) int { return cmp.Compare(x.DeviceID, y.DeviceID) })
	return callEach(as, fn)
}

func compareReports(x, y UpgradeReport) int {
	return cmp.Or(cmp.Compare(x.ReleaseID, y.ReleaseID), cmp.Compare(x.DeviceID, y.DeviceID), cmp.Compare(x.Attempt, y.Attempt))
}

// Reports calls fn for the reports of a release ("" = all).
func (m *Memory) Reports(ctx context.Context, release string, fn func(r UpgradeReport) error) error {
	if err := m.upReady(ctx); err != nil {
		return err
	}
	rs := sortedValues(m.up.mu.RLocker(), &m.up.reports,
		func(k upReportKeyM) bool { return release == "" || k.release == release }, nil, compareReports)
	return callEach(rs, fn)
}

// DeviceReports returns the device's reports in (release, attempt) order.
func (m *Memory) DeviceReports(ctx context.Context, device string) ([]UpgradeReport, error) {
	if err := checkUpgradeID("device id", device); err != nil {
		return nil, err
	}
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(m.up.mu.RLocker(), &m.up.reports,
		func(k upReportKeyM) bool { return k.device == device }, nil, compareReports), nil
}

// FailureMark returns the device's failure mark for the app or ErrNotFound.
func (m *Memory) FailureMark(ctx context.Context, device, app string) (UpgradeFailureMark, error) {
	if err := m.upReady(ctx); err != nil {
		return UpgradeFailureMark{}, err
	}
	return lookup(m.up.mu.RLocker(), &m.up.marks, upPair{device, app})
}

// AppVersions returns the device's known app versions ("" = all devices').
func (m *Memory) AppVersions(ctx context.Context, device string) ([]AppVersion, error) {
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(m.up.mu.RLocker(), &m.up.versions, func(k upPair) bool { return device == "" || k.a == device }, nil,
		func(x, y AppVersion) int {
			return cmp.Or(cmp.Compare(x.DeviceID, y.DeviceID), cmp.Compare(x.AppID, y.AppID))
		}), nil
}

func (t *memUpgradeTx) Rollout(release string) (RolloutState, bool, error) {
	if s, ok := t.rollouts[release]; ok {
		return s.Clone(), true, nil
	}
	s, ok := t.u.rollouts[release]
	return s.Clone(), ok, nil
}

func (t *memUpgradeTx) PutRollout(s *RolloutState) error {
	if err := checkRollout(s); err != nil {
		return err
	}
	t.rollouts[s.ReleaseID] = s.Clone()
	return nil
}

// Rollouts returns every rollout state in release id order.
func (m *Memory) Rollouts(ctx context.Context) ([]RolloutState, error) {
	if err := m.upReady(ctx); err != nil {
		return nil, err
	}
	return sortedValues(m.up.mu.RLocker(), &m.up.rollouts, nil, RolloutState.Clone,
		func(a, b RolloutState) int { return cmp.Compare(a.ReleaseID, b.ReleaseID) }), nil
}
