package groups

import (
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
)

// syncer pushes GROUP_SYNC to online devices whose memberships an
// operator changed, at most rate per second: one operation that changes
// thousands of members is spread over seconds instead of bursting every
// loop at once. A device queued twice is pushed once, with its state at
// push time; a device offline then is skipped (its next session's
// heartbeat flags GROUP_STALE).
type syncer struct {
	s      *Service
	rate   int
	mu     sync.Mutex
	queued map[string]struct{}
	order  []string
	wake   chan struct{}
}

func newSyncer(s *Service, rate int) *syncer {
	return &syncer{s: s, rate: rate, queued: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// add queues devices for a GROUP_SYNC.
func (y *syncer) add(ids ...string) {
	y.mu.Lock()
	for _, id := range ids {
		if _, ok := y.queued[id]; !ok {
			y.queued[id] = struct{}{}
			y.order = append(y.order, id)
		}
	}
	y.mu.Unlock()
	select {
	case y.wake <- struct{}{}:
	default:
	}
}

// Pending is how many devices wait for their GROUP_SYNC.
func (y *syncer) Pending() int {
	y.mu.Lock()
	defer y.mu.Unlock()
	return len(y.order)
}

const syncTick = 100 * time.Millisecond

func (y *syncer) run(stop <-chan struct{}) {
	per := max(1, y.rate/int(time.Second/syncTick))
	for {
		y.mu.Lock()
		n := min(per, len(y.order))
		batch := y.order[:n:n]
		y.order = y.order[n:]
		for _, id := range batch {
			delete(y.queued, id)
		}
		more := len(y.order) > 0
		y.mu.Unlock()
		for _, id := range batch {
			y.push(id)
		}
		var wait <-chan time.Time
		if more {
			wait = time.After(syncTick)
		}
		select {
		case <-stop:
			return
		case <-y.wake:
			if more {
				<-time.After(syncTick) // keep the pace while a burst drains
			}
		case <-wait:
		}
	}
}

func (y *syncer) push(id string) {
	s := y.s
	if s.srv == nil {
		return
	}
	s.mu.RLock()
	d := s.devs[id]
	m := &protocol.GroupSync{Groups: memberships(d)}
	if d != nil {
		m.GroupVersion = d.Version
	}
	s.mu.RUnlock()
	ok, err := s.srv.Push(id, m, func(r server.PushResult) { s.m.synced(r.String()) })
	if err == nil && !ok {
		s.m.synced("offline")
	}
}
