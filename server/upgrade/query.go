package upgrade

// UPGRADE_QUERY: the offer comes from the in-memory index; the writes a
// query causes (the frozen assignment of a first offer, the device's
// version, a REVERTED record) go through the group committer before the
// answer; a last_failure is marked delivered once the answer is written.

import (
	"context"
	"errors"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/storage"
)

// choice is what a query decided from memory.
type choice struct {
	offer      *release
	firstOffer bool // no assignment yet: record one
	capped     bool // an offer was withheld by upgrade.max_attempts
	versionNew bool // the device's version (or model) is news
	reverted   *release
	revertedAt attemptKey
	// withdrawn: set by the commit when the committed rollout state no
	// longer offers the release (read by answer, after the commit).
	withdrawn bool
}

// choose picks the offer: the newest published release of the app newer
// than the installed version that the device is assigned to (frozen) or
// that targets it, skipping releases at the attempt cap.
func (s *Service) choose(deviceID, model string, q *protocol.UpgradeQuery) choice {
	var c choice
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.byApp[q.AppID] {
		if !r.newerThan(q.Version) {
			break // newest first: no later one is newer either
		}
		if st := s.assigned[r.ID][deviceID]; st != nil {
			if st.failures-st.forgiven >= s.cfg.MaxAttempts {
				c.capped = true
				continue
			}
			c.offer = r
			break
		}
		if s.offersNow(r, deviceID, model, q.Version) {
			c.offer, c.firstOffer = r, true
			break
		}
	}
	// Versions are kept only for apps with releases: a terminal cannot
	// fill the store with app ids nobody publishes for.
	if s.apps[q.AppID] {
		v, known := s.vers[devApp{deviceID, q.AppID}]
		c.versionNew = !known || v.version != q.Version || v.model != model
	}
	if k, ok := s.installing[devApp{deviceID, q.AppID}]; ok {
		if r := s.rels[k.release]; r != nil && r.newerThan(q.Version) {
			c.reverted, c.revertedAt = r, k
		}
	}
	return c
}

// governingCampaign returns the campaign that governs the device's
// query, if any, and then drops c's offer: a campaign wins over an offer
// of a release no newer than the campaign's (spec §6.1: the higher
// version wins).
func (s *Service) governingCampaign(c *choice, dev, model, app, version string) *protocol.Campaign {
	camp := s.campaignFor(dev, model, app, version)
	if camp == nil || c.offer != nil && c.offer.newerThan(camp.Version) {
		return nil
	}
	c.offer, c.firstOffer = nil, false
	return camp
}

// mandatory is the offer's mandatory flag: the release's own, or its
// deadline passed.
func (s *Service) mandatory(rel *release) bool { return rel.Mandatory || s.pastDeadline(rel) }

// serveQuery answers UPGRADE_QUERY (spec §6.1).
func (s *Service) serveQuery(req *server.Request, reply func(protocol.Message, error)) {
	q := req.Msg.(*protocol.UpgradeQuery)
	s.m.queries.Inc()
	dev, model := req.DeviceID, req.Model
	c := s.choose(dev, model, q)
	ack := &protocol.UpgradeQueryAck{Campaign: s.governingCampaign(&c, dev, model, q.AppID, q.Version)}
	var failure *storage.UpgradeFailureMark
	if q.Launch {
		// What was written is looked at before the store is read: a
		// delivered mark's commit that lands after this look is seen by
		// the read (the look's entry is removed only once it committed).
		written, _ := s.sent.Load(devApp{dev, q.AppID})
		m, err := s.store.FailureMark(context.Background(), dev, q.AppID)
		switch {
		case err == nil && !m.Delivered && written != m:
			failure = &m
			ack.LastFailure = &protocol.LastFailure{ReleaseID: m.ReleaseID, Version: m.Version, Code: m.Code, Message: m.Message, AtMs: uint64(max(m.AtMs, 0))}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			reply(nil, server.AsError(err))
			return
		}
	}
	if c.offer != nil {
		o, err := s.offerOf(c.offer, dev)
		if err != nil {
			s.log.Warn("offer without a download URL", "release", c.offer.ID, "err", err)
			reply(nil, &protocol.Error{Code: protocol.Unavailable, Message: "download not available", RetryAfterMs: busyRetryMs})
			return
		}
		ack.Offer = o
	}
	answer := func() {
		if c.withdrawn {
			ack.Offer = nil
		}
		var resp protocol.Message = ack
		if failure != nil {
			f := *failure
			resp = &server.Sent{Message: ack, Done: func() { s.delivered(f) }}
		}
		if ack.Offer != nil {
			s.m.offers.Inc()
		}
		// The device now knows what applies to this app (an offer, or
		// that there is none: the release may have been paused).
		s.clearPending(dev, q.AppID)
		if c.capped && ack.Offer == nil {
			s.m.capped.Inc()
		}
		reply(resp, nil)
	}
	if !c.firstOffer && !c.versionNew && c.reverted == nil {
		answer()
		return
	}
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
			return s.applyQuery(tx, &c, dev, model, q, now)
		},
		reply: func(err error) {
			if err != nil {
				reply(nil, err)
				return
			}
			answer()
		},
	})
}

// applyQuery writes a query's records inside the group commit.
func (s *Service) applyQuery(tx storage.UpgradeTx, c *choice, dev, model string, q *protocol.UpgradeQuery, now int64) (*outcome, error) {
	var afters []func()
	var notify []storage.UpgradeReport
	if c.reverted != nil {
		u := &update{rel: c.reverted, device: dev, model: model, attempt: c.revertedAt.attempt, stage: storage.StageReverted,
			message: "queried with version " + q.Version + " after INSTALLING", onlyFrom: protocol.StageInstalling}
		o, err := s.merge(tx, u, now)
		if err != nil {
			return nil, err
		}
		if o.after != nil {
			afters = append(afters, o.after)
		}
		notify = o.notify
	}
	if c.firstOffer {
		rel := c.offer
		if _, found, err := tx.Assignment(rel.ID, dev); err != nil {
			return nil, err
		} else if !found {
			a := storage.UpgradeAssignment{ReleaseID: rel.ID, DeviceID: dev, AppID: rel.AppID, FromVersion: q.Version, Model: model, AtMs: now}
			if len(rel.Phases) > 0 {
				phase, ch, ok, err := s.countOffer(tx, rel, dev, now)
				if err != nil {
					return nil, err
				}
				// Not ok: the rollout paused (or the device's phase is
				// not reached) since the query looked: no offer.
				c.withdrawn = !ok
				if ok {
					a.Phase = phase
					afters = append(afters, func() { s.applied(ch) })
				}
			}
			if !c.withdrawn {
				if err := tx.PutAssignment(&a); err != nil {
					return nil, err
				}
			}
		}
		if !c.withdrawn {
			afters = append(afters, func() {
				s.mu.Lock()
				if devs := s.assigned[rel.ID]; devs != nil && devs[dev] == nil {
					devs[dev] = &assignState{}
					s.m.assigned.Inc()
				}
				s.mu.Unlock()
			})
		}
	}
	if c.versionNew {
		if err := tx.PutAppVersion(&storage.AppVersion{DeviceID: dev, AppID: q.AppID, Version: q.Version, Model: model, AtMs: now}); err != nil {
			return nil, err
		}
		afters = append(afters, func() {
			s.mu.Lock()
			s.vers[devApp{dev, q.AppID}] = verInfo{q.Version, model}
			s.mu.Unlock()
		})
	}
	return s.queryOutcome(afters, notify), nil
}

func (s *Service) queryOutcome(afters []func(), notify []storage.UpgradeReport) *outcome {
	return &outcome{notify: notify, after: func() {
		for _, f := range afters {
			f()
		}
	}}
}

// offerOf builds the offer of rel for a device.
func (s *Service) offerOf(rel *release, dev string) (*protocol.Offer, error) {
	o := &protocol.Offer{
		ReleaseID: rel.ID, Version: rel.Version, SHA256: rel.sha, Size: uint64(max(rel.Size, 0)),
		Mandatory: s.mandatory(rel), Notes: rel.Notes, ReleaseSig: rel.Sig,
	}
	switch {
	case rel.URL != "" && s.artifacts != nil:
		u, err := s.artifacts.ShortURL(rel.URL)
		if err != nil {
			return nil, err
		}
		o.URL = u
	case rel.URL != "":
		o.URL = rel.URL // checked at creation to fit the spec's 256 bytes
	case s.artifacts != nil:
		o.URL = s.artifacts.URL(rel.sha, dev)
	default:
		return nil, errors.New("release has no URL and no artifact store is configured")
	}
	return o, nil
}

// delivered marks a last_failure delivered; it runs on the connection's
// loop once the answer carrying it was written, so it only queues a job.
// A launch query the terminal sends as soon as it has read the answer is
// served after this ran (same loop, later frame) but may read the store
// before the job commits: until the job is answered, the mark is held in
// sent and such a query does not return it again. The job marks only
// this very mark: a new outcome written meanwhile (ROLLED_BACK after
// FAILED, another attempt) was not written to the terminal.
func (s *Service) delivered(f storage.UpgradeFailureMark) {
	key := devApp{f.DeviceID, f.AppID}
	s.sent.Store(key, f)
	s.submit(&job{apply: func(tx storage.UpgradeTx, _ int64) (*outcome, error) {
		m, found, err := tx.FailureMark(f.DeviceID, f.AppID)
		if err != nil || !found || m != f {
			return &outcome{}, err
		}
		m.Delivered = true
		return &outcome{after: s.m.lastFailures.Inc}, tx.PutFailureMark(&m)
	}, reply: func(error) {
		// Committed: the store says delivered to every later read.
		// Not committed: the next launch gets it again (at least once).
		s.sent.CompareAndDelete(key, f)
	}})
}

// Assign places a device in a release without a query offering it (the
// scheduling feature's campaigns): from then on its reports for the
// release are accepted, as after a first offer (frozen assignment). It
// returns once the assignment is durable.
func (s *Service) Assign(ctx context.Context, releaseID, deviceID, fromVersion, model string) error {
	s.mu.RLock()
	rel := s.rels[releaseID]
	s.mu.RUnlock()
	if rel == nil {
		return errNoRelease
	}
	c := &choice{offer: rel, firstOffer: true}
	q := &protocol.UpgradeQuery{AppID: rel.AppID, Version: fromVersion}
	done := make(chan error, 1)
	s.submit(&job{
		apply: func(tx storage.UpgradeTx, now int64) (*outcome, error) {
			return s.applyQuery(tx, c, deviceID, model, q, now)
		},
		reply: func(err error) { done <- err },
	})
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
