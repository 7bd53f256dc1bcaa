package upgrade

// Rollout status, the operators' retry and per-device history.

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// maxGroupDevices bounds the devices listed per failure group (the count
// is exact).
const maxGroupDevices = 100

type failureKey struct {
	stage       uint8
	code        uint64
	model, from string
}

// Status summarises a release's rollout from its reports: each device
// counts once, by its latest attempt.
func (s *Service) Status(ctx context.Context, id string) (api.ReleaseStatus, error) {
	rel, err := s.Release(ctx, id)
	if err != nil {
		return api.ReleaseStatus{}, err
	}
	st := api.ReleaseStatus{Release: rel, Stages: map[string]int{}, Failures: []api.FailureGroup{}}
	// The assignments (assigned, at the cap) are counted while the
	// reports are read: two independent scans of the release's keys, so
	// the status takes the longer of them rather than their sum.
	type counted struct{ assigned, atCap int }
	assignments := make(chan error, 1)
	var ac counted
	go func() {
		assignments <- s.store.Assignments(ctx, id, func(a storage.UpgradeAssignment) error {
			ac.assigned++
			if a.Failures-a.Forgiven >= s.cfg.MaxAttempts {
				ac.atCap++
			}
			return nil
		})
	}()
	// Reports come in (release, device, attempt) order, so a device's
	// latest attempt is the last of its run: each is counted when the
	// next device's run starts, with no map of the release's devices.
	groups := map[failureKey]*api.FailureGroup{}
	count := func(r *storage.UpgradeReport) {
		st.Stages[stageName(r.Stage)]++
		switch {
		case r.Stage == protocol.StageSucceeded:
			st.Succeeded++
		case r.Failed():
			st.Failed++
			k := failureKey{r.Stage, r.Code, r.Model, r.FromVersion}
			g := groups[k]
			if g == nil {
				g = &api.FailureGroup{Stage: stageName(r.Stage), Code: r.Code, Model: r.Model, FromVersion: r.FromVersion, Devices: []string{}}
				groups[k] = g
			}
			g.Count++
			if len(g.Devices) < maxGroupDevices {
				g.Devices = append(g.Devices, r.DeviceID)
			}
		}
	}
	var cur storage.UpgradeReport
	have := false
	err = s.store.Reports(ctx, id, func(r storage.UpgradeReport) error {
		switch {
		case !have:
			cur, have = r, true
		case r.DeviceID != cur.DeviceID:
			count(&cur)
			cur = r
		case r.Attempt > cur.Attempt:
			cur = r
		}
		return nil
	})
	if aerr := <-assignments; err == nil {
		err = aerr
	}
	if err != nil {
		return st, err
	}
	if have {
		count(&cur)
	}
	st.Assigned, st.AtCap = ac.assigned, ac.atCap
	if n := st.Succeeded + st.Failed; n > 0 {
		st.FailureRate = float64(st.Failed) / float64(n)
	}
	for _, g := range groups {
		slices.Sort(g.Devices)
		st.Failures = append(st.Failures, *g)
	}
	slices.SortFunc(st.Failures, func(a, b api.FailureGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Model, b.Model), cmp.Compare(a.FromVersion, b.FromVersion))
	})
	return st, nil
}

// Retry clears devices for new attempts at a release: one device
// (Device), every device whose latest attempt failed or that is at the
// attempt cap (Failed), or every device whose latest attempt timed out or
// reverted (TimedOut). Their failures are forgiven (the cap counts from
// here; the terminal's own attempt numbers go on), and in a phased
// rollout they leave their phase's failures: the phase counts their next
// attempt. It runs through the committer, ordered with the reports.
func (s *Service) Retry(ctx context.Context, id string, in api.Retry) (int, error) {
	s.mu.RLock()
	rel := s.rels[id]
	s.mu.RUnlock()
	if rel == nil {
		return 0, errNoRelease
	}
	n := 0
	if in.Device != "" {
		n++
	}
	if in.Failed {
		n++
	}
	if in.TimedOut {
		n++
	}
	if n != 1 {
		return 0, bad("give one of device, failed or timed_out")
	}
	var devs []string
	switch {
	case in.Device != "":
		if _, err := s.store.Assignment(ctx, id, in.Device); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return 0, &protocol.Error{Code: protocol.NotFound, Message: "release was never offered to that device"}
			}
			return 0, err
		}
		devs = []string{in.Device}
	default:
		latest := map[string]uint8{}
		err := s.store.Reports(ctx, id, func(r storage.UpgradeReport) error {
			latest[r.DeviceID] = r.Stage // (release, device, attempt) order: the last is the latest attempt
			return nil
		})
		if err != nil {
			return 0, err
		}
		err = s.store.Assignments(ctx, id, func(a storage.UpgradeAssignment) error {
			st := latest[a.DeviceID]
			switch {
			case in.TimedOut && (st == storage.StageTimedOut || st == storage.StageReverted):
			case in.Failed && (storage.StageFailed(st) || a.Failures-a.Forgiven >= s.cfg.MaxAttempts):
			default:
				return nil
			}
			devs = append(devs, a.DeviceID)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	forgiven := map[string]int{}
	done := make(chan error, 1)
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
			clear(forgiven)
			var roll *storage.RolloutState
			for _, d := range devs {
				a, found, err := tx.Assignment(id, d)
				if err != nil {
					return nil, err
				}
				if !found {
					continue
				}
				a.Forgiven = a.Failures
				forgiven[d] = a.Failures
				if len(rel.Phases) > 0 && a.Outcome == storage.OutcomeFailed && a.Phase < len(rel.Phases) {
					if roll == nil {
						if roll, err = txRollout(tx, rel); err != nil {
							return nil, err
						}
					}
					c := &roll.Counts[a.Phase]
					c.Failed--
					c.Accepted = min(c.Accepted, c.Failed)
					a.Outcome = storage.OutcomeOpen
				}
				if err := tx.PutAssignment(&a); err != nil {
					return nil, err
				}
			}
			var ch *rolloutChange
			if roll != nil {
				ch = &rolloutChange{rel: rel, oldPhase: roll.Phase}
				ch.event = s.evaluate(rel, roll, now)
				roll.UpdatedMs = now
				if err := tx.PutRollout(roll); err != nil {
					return nil, err
				}
				ch.st = *roll
			}
			return &outcome{after: func() {
				s.mu.Lock()
				for d, n := range forgiven {
					if st := s.assigned[id][d]; st != nil {
						st.forgiven = n
					}
				}
				s.mu.Unlock()
				if ch != nil {
					s.applied(ch)
				}
			}}, nil
		},
		reply: func(err error) { done <- err },
	})
	select {
	case err := <-done:
		if err != nil {
			return 0, err
		}
		return len(forgiven), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// DeviceUpgrades is a device's app versions and upgrade history.
func (s *Service) DeviceUpgrades(ctx context.Context, deviceID string) (api.DeviceUpgrades, error) {
	out := api.DeviceUpgrades{Apps: []api.AppVersion{}, Attempts: []api.UpgradeAttempt{}, Next: []api.NextOffer{}}
	vs, err := s.store.AppVersions(ctx, deviceID)
	if err != nil {
		return out, err
	}
	for _, v := range vs {
		out.Apps = append(out.Apps, api.AppVersion{AppID: v.AppID, Version: v.Version, AtMs: v.AtMs})
		out.Next = append(out.Next, s.nextOffer(deviceID, v.Model, v.AppID, v.Version))
	}
	rs, err := s.store.DeviceReports(ctx, deviceID)
	if err != nil {
		return out, err
	}
	for _, r := range rs {
		at := api.UpgradeAttempt{
			ReleaseID: r.ReleaseID, AppID: r.AppID, Version: r.Version, FromVersion: r.FromVersion, Attempt: r.Attempt,
			Stage: stageName(r.Stage), Progress: r.Progress, Code: r.Code, Message: r.Message,
			StageMs: map[string]int64{}, UpdatedMs: r.UpdatedMs,
		}
		for st, ms := range r.StageMs {
			if ms != 0 {
				at.StageMs[stageName(uint8(st))] = ms
			}
		}
		out.Attempts = append(out.Attempts, at)
	}
	return out, nil
}

// nextOffer is what an UPGRADE_QUERY of the device with version of app
// would be answered now, decided from memory as serveQuery decides it
// (choose, then a governing campaign), without writing anything.
func (s *Service) nextOffer(dev, model, app, version string) api.NextOffer {
	n := api.NextOffer{AppID: app, Version: version}
	c := s.choose(dev, model, &protocol.UpgradeQuery{AppID: app, Version: version})
	n.Capped = c.capped && c.offer == nil
	if camp := s.governingCampaign(&c, dev, model, app, version); camp != nil {
		n.CampaignID = camp.CampaignID
		return n
	}
	if r := c.offer; r != nil {
		n.ReleaseID, n.ReleaseVersion, n.Assigned, n.Mandatory = r.ID, r.Version, !c.firstOffer, s.mandatory(r)
	}
	return n
}

// StageOffered is DeviceStages' stage of a device offered the release
// that has not reported on it yet.
const StageOffered = "offered"

// DeviceStages maps every device offered release id to the stage of its
// latest attempt (StageOffered before any report): the rollout state the
// device search filters on. One scan of the release's assignments and
// reports.
func (s *Service) DeviceStages(ctx context.Context, id string) (map[string]string, error) {
	if _, err := s.Release(ctx, id); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if err := s.store.Assignments(ctx, id, func(a storage.UpgradeAssignment) error {
		out[a.DeviceID] = StageOffered
		return nil
	}); err != nil {
		return nil, err
	}
	latest := map[string]uint64{}
	err := s.store.Reports(ctx, id, func(r storage.UpgradeReport) error {
		if cur, ok := latest[r.DeviceID]; !ok || r.Attempt >= cur {
			latest[r.DeviceID] = r.Attempt
			out[r.DeviceID] = stageName(r.Stage)
		}
		return nil
	})
	return out, err
}
