package schedule

// The sweep: reservations not checked in within schedule.checkin_grace
// after their slot started give their capacity to waiting terminals
// (lapsed); reservations whose slot ended stop being watched; slot uses of
// past slots are deleted. It runs through the committer like any change.

import (
	"context"
	"time"

	"github.com/termd/termd/storage"
)

func (s *Service) sweepLoop() {
	defer s.wg.Done()
	every := min(max(s.cfg.CheckinGrace.Duration/4, 100*time.Millisecond), sweepEvery)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep submits one sweep job and waits for it.
func (s *Service) sweep() {
	done := make(chan error, 1)
	var past map[string]int64 // node → first slot still current
	s.submit(&job{
		apply: func(tx storage.ScheduleTx, b *batch) (func(), error) {
			grace := s.cfg.CheckinGrace.Milliseconds()
			for id, h := range s.holding {
				switch {
				case h.endMs <= b.now:
					b.holds[id] = nil // over: nothing to give back that matters
				case !h.checkedIn && b.now >= h.startMs+grace:
					r, found, err := tx.Reservation(id)
					if err != nil {
						return nil, err
					}
					if !found || !r.Holds() {
						b.holds[id] = nil
						continue
					}
					if err := s.settle(tx, b, &r, storage.ResvLapsed); err != nil {
						return nil, err
					}
					s.m.lapsed.Inc()
				}
			}
			past = map[string]int64{}
			for _, n := range s.nodes {
				past[n.id] = n.slotOf(b.now)
			}
			return nil, nil
		},
		reply: func(err error) { done <- err },
	})
	if err := <-done; err != nil {
		s.log.Warn("schedule sweep", "err", err)
		return
	}
	// Past slots: nothing reserves in them any more.
	for node, first := range past {
		if err := s.store.DeleteSlotUses(context.Background(), node, first); err != nil {
			s.log.Warn("schedule: delete past slot uses", "node", node, "err", err)
		}
	}
	s.useMu.Lock()
	for k := range s.use {
		if first, ok := past[k.node]; ok && k.slot < first {
			delete(s.use, k)
		}
	}
	s.useMu.Unlock()
}

// releaseCampaign gives back the capacity of a cancelled campaign's
// reservations, through the committer.
func (s *Service) releaseCampaign(id string) {
	done := make(chan error, 1)
	s.submit(&job{
		apply: func(tx storage.ScheduleTx, b *batch) (func(), error) {
			for rid, h := range s.holding {
				if h.campaign != id {
					continue
				}
				r, found, err := tx.Reservation(rid)
				if err != nil {
					return nil, err
				}
				if found {
					if err := s.settle(tx, b, &r, storage.ResvReleased); err != nil {
						return nil, err
					}
				}
			}
			return nil, nil
		},
		reply: func(err error) { done <- err },
	})
	if err := <-done; err != nil {
		s.log.Warn("schedule: release a cancelled campaign's reservations", "campaign", id, "err", err)
	}
}
