// Package events is termd's event bus: every kind of event operators and
// features follow (presence transitions, service state changes, and the
// upgrade, campaign and group events of the features built on it) flows
// through one Bus to the admin event stream and other subscribers, without
// ever blocking the event loops and workers that publish.
package events

import (
	"sync"
	"sync/atomic"

	"github.com/termd/termd/server/admin/api"
)

// Kind is the kind of an event; it names the SSE event of /v1/events.
type Kind string

// Event kinds. A feature adds its kinds here, with the fields it fills,
// so docs/admin-api.md can list every event in one place.
const (
	KindOnline   Kind = "online"
	KindOffline  Kind = "offline"
	KindReplaced Kind = "replaced"
	// KindDuplicate: a device id started a duplicate-device cool-down
	// (spec §3.4): two terminals probably share it.
	KindDuplicate Kind = "duplicate"
	// KindService: a service termd runs changed state (docs/services.md).
	KindService Kind = "service"
	// KindStorage: durable writes stopped (State "writes_refused": free
	// disk space fell below storage.min_free_mb) or resumed ("writable").
	KindStorage Kind = "storage"
	// KindUpgradeFailure: a digest of upgrade failures of one release
	// (docs/upgrades.md, "Notifications"); Digest is set.
	KindUpgradeFailure Kind = "upgrade_failure"
	// KindRelease: a release changed state or rollout (Release, State;
	// docs/upgrades.md).
	KindRelease Kind = "release"
	// KindRollout: a phased rollout paused, resumed, advanced, waits for
	// approval or completed (Release, State = that word; Reason why it
	// paused).
	KindRollout Kind = "rollout"
	// KindCampaign: a scheduled campaign was created or changed state
	// (Release, State; Reason holds the campaign id).
	KindCampaign Kind = "campaign"
	// KindUpgrade: a device's upgrade attempt reached a new stage
	// (DeviceID, Release, Stage; Reason holds the failure message).
	KindUpgrade Kind = "upgrade"
)

// Event is one event. Kind says which fields are set: presence events
// carry the device, session, reason and remote address; service events
// the service, its state, pid and exit code.
type Event struct {
	Kind      Kind   `json:"kind"`
	DeviceID  string `json:"device_id,omitempty"`
	SessionID uint64 `json:"session_id"`
	At        int64  `json:"at_ms"`
	Reason    string `json:"reason,omitempty"`
	Remote    string `json:"remote,omitempty"`
	// Service events: the service, its new state, pid and exit code.
	Service  string `json:"service,omitempty"`
	State    string `json:"state,omitempty"`
	PID      int    `json:"pid,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// Digest is the upgrade_failure digest.
	Digest *FailureDigest `json:"digest,omitempty"`
	// Release and upgrade events: the release and the attempt's stage.
	Release string `json:"release_id,omitempty"`
	Stage   string `json:"stage,omitempty"`
}

// FailureDigest is what operators are told about upgrade failures of one
// release within one digest window (the webhook body and the email carry
// the same digest); FailureItem is one failure in it. They are the admin
// API's types: the event stream sends them as they are.
type (
	FailureDigest = api.FailureDigest
	FailureItem   = api.FailureItem
)

// MaxDigestItems bounds the failures a digest lists one by one, so a
// digest of thousands stays a readable message of bounded size.
const MaxDigestItems = 50

// Bus fans events out to subscribers. Publish never blocks: a
// subscriber whose queue is full loses the event and the loss is counted,
// because an event loop must not wait on a slow HTTP client.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
}

// NewBus returns a Bus with no subscribers.
func NewBus() *Bus { return &Bus{subs: make(map[*Subscription]struct{})} }

// Subscription receives events on C until Close.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *Bus
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe returns a subscription with a queue of size events.
func (b *Bus) Subscribe(size int) *Subscription {
	c := make(chan Event, size)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Dropped is how many events this subscriber lost.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.c)
	})
}

// Publish delivers ev to every subscriber that has room.
func (b *Bus) Publish(ev Event) {
	b.mu.RLock()
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
	b.mu.RUnlock()
}

// Dropped is the number of events lost by all subscribers.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Subscribers is the number of live subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}
