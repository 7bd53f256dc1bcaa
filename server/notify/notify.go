// Package notify tells operators about upgrade failures: every failure
// is committed to the durable outbox (storage.Outbox) before the report
// that caused it is acknowledged, and delivered at least once to each
// channel (webhooks, email, the admin event stream) with retries and
// bounded exponential backoff that survive restarts. Failures of one
// release within notify.digest_window become one digest per channel.
//
// Digests and at-least-once: a channel's loop claims the pending
// failures of one release into a batch whose id (the delivery id) is
// committed before anything is sent; the batch is retried with the same
// members and id until the channel takes it, and all its members are then
// marked delivered in one transaction. A crash between sending and
// marking means the same digest, with the same X-Termd-Delivery id, is
// sent again: receivers de-duplicate on that id.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/termd/termd/server/internal/lifecycle"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// Event kinds (Event.Kind).
const (
	KindUpgradeFailed     = "upgrade_failed"
	KindUpgradeRolledBack = "upgrade_rolled_back"
	KindUpgradeTimedOut   = "upgrade_timed_out"
	KindUpgradeReverted   = "upgrade_reverted"
	KindRolloutPaused     = "rollout_paused"
	// KindDeliveryFailed: a channel gave up a delivery after
	// notify.max_age; told on the other channels.
	KindDeliveryFailed = "notify_delivery_failed"
)

// Channel names in the outbox and in metrics.
const (
	ChannelEvent   = "event"
	ChannelSMTP    = "smtp"
	webhookChannel = "webhook:" // + the webhook's name
)

// Loop tuning.
const (
	// storeRetry is how long a channel loop waits after a store error
	// (disk full, closed) before trying again.
	storeRetry = time.Second
	// pruneEvery is how often delivered and given-up entries past
	// notify.retention are deleted.
	pruneEvery = time.Hour
	// countEvery is how often the outbox depth gauges are refreshed.
	countEvery = 10 * time.Second
	// idleWait bounds a loop's sleep when nothing is pending, so a
	// missed wake-up costs at most this much delay.
	idleWait = time.Minute
)

// Event is one thing operators must hear about.
type Event struct {
	// ID is the stable de-duplication key, e.g.
	// "report/<release>/<device>/<attempt>/<stage>".
	ID string `json:"id"`
	// Kind is one of the Kind constants.
	Kind        string `json:"kind"`
	ReleaseID   string `json:"release_id,omitempty"`
	AppID       string `json:"app_id,omitempty"`
	Version     string `json:"version,omitempty"`
	FromVersion string `json:"from_version,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
	Model       string `json:"model,omitempty"`
	Attempt     uint32 `json:"attempt,omitempty"`
	Stage       uint8  `json:"stage,omitempty"`
	Code        uint64 `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	AtMs        int64  `json:"at_ms"`
}

// Options configures Open.
type Options struct {
	Config config.Notify
	Store  storage.Outbox
	// Bus receives the upgrade_failure digests (nil: no event channel).
	Bus *events.Bus
	Log *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// sender delivers one digest on one channel.
type sender interface {
	send(ctx context.Context, d *events.FailureDigest) error
}

// Notifier owns the outbox's delivery loops.
type Notifier struct {
	cfg      config.Notify
	store    storage.Outbox
	log      *slog.Logger
	now      func() time.Time
	channels []string // sorted
	senders  map[string]sender
	wake     map[string]chan struct{}
	m        *notifyMetrics

	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	started bool
}

// Open builds the channels of cfg. Nothing is sent before Start.
func Open(opt Options) (*Notifier, error) {
	if opt.Store == nil {
		return nil, errors.New("notify: no store")
	}
	n := &Notifier{
		cfg: withDefaults(opt.Config), store: opt.Store, log: opt.Log, now: opt.Now,
		senders: map[string]sender{}, wake: map[string]chan struct{}{}, stop: make(chan struct{}),
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("component", "notify")
	if n.now == nil {
		n.now = time.Now
	}
	timeout := n.cfg.Timeout.Duration
	for _, w := range opt.Config.Webhooks {
		n.senders[webhookChannel+w.Name] = newWebhook(w, timeout)
	}
	if opt.Config.SMTP.Host != "" {
		s, err := newEmail(opt.Config.SMTP, timeout)
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		n.senders[ChannelSMTP] = s
	}
	if opt.Config.Events && opt.Bus != nil {
		n.senders[ChannelEvent] = busSender{opt.Bus, n.now}
	}
	for ch := range n.senders {
		n.channels = append(n.channels, ch)
		n.wake[ch] = make(chan struct{}, 1)
	}
	slices.Sort(n.channels)
	n.m = newMetrics(n)
	return n, nil
}

// withDefaults fills durations left zero (a Config not made from
// config.Defaults), so a zero backoff cannot spin a loop.
func withDefaults(c config.Notify) config.Notify {
	orDefault := func(d *config.Duration, def time.Duration) {
		if d.Duration <= 0 {
			d.Duration = def
		}
	}
	c.DigestWindow.Duration = max(c.DigestWindow.Duration, 0)
	orDefault(&c.MinBackoff, config.DefaultMinBackoff)
	orDefault(&c.MaxBackoff, config.DefaultMaxBackoff)
	c.MaxBackoff.Duration = max(c.MaxBackoff.Duration, c.MinBackoff.Duration)
	orDefault(&c.MaxAge, config.DefaultNotifyMaxAge)
	orDefault(&c.Retention, config.DefaultNotifyKeep)
	orDefault(&c.Timeout, config.DefaultNotifyTimout)
	return c
}

// Channels are the configured channels' names.
func (n *Notifier) Channels() []string { return slices.Clone(n.channels) }

// Enqueue commits e to the outbox before it returns (durable: survives
// kill -9); an ID already in the outbox is not enqueued twice. Safe from
// any goroutine. With no channel configured it stores nothing.
func (n *Notifier) Enqueue(ctx context.Context, e Event) error {
	return n.enqueue(ctx, e, n.channels)
}

// enqueue stores e for channels.
func (n *Notifier) enqueue(ctx context.Context, e Event, channels []string) error {
	if len(channels) == 0 {
		return nil
	}
	if e.ID == "" || e.Kind == "" {
		return fmt.Errorf("notify: event without id or kind: %+v", e)
	}
	now := n.now()
	if e.AtMs == 0 {
		e.AtMs = now.UnixMilli()
	}
	payload, err := json.Marshal(&e)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	entry := storage.OutboxEntry{ID: e.ID, Group: e.ReleaseID, Kind: e.Kind, At: now.UnixMilli(), Channels: channels, Payload: payload}
	added, err := n.store.EnqueueOutbox(ctx, entry, now.Add(n.cfg.DigestWindow.Duration).UnixMilli())
	if err != nil {
		return fmt.Errorf("notify: enqueue %q: %w", e.ID, err)
	}
	if added {
		n.m.enqueued.Inc()
		for _, ch := range channels {
			select {
			case n.wake[ch] <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Start starts one delivery loop per channel (pending deliveries of an
// earlier run first) and the pruning of old entries.
func (n *Notifier) Start() {
	if n.started {
		return
	}
	n.started = true
	for _, ch := range n.channels {
		n.wg.Add(1)
		go n.run(ch)
	}
	n.warnOrphans()
	n.wg.Add(1)
	go n.housekeep()
}

// warnOrphans logs deliveries pending on channels no longer configured
// (a webhook renamed or removed): nothing delivers them until the channel
// is configured again; termctl outbox lists them.
func (n *Notifier) warnOrphans() {
	ctx, cancel := context.WithTimeout(context.Background(), storeRetry*10)
	defer cancel()
	counts, err := n.store.OutboxCounts(ctx)
	if err != nil {
		return
	}
	for ch, c := range counts {
		if c.Pending > 0 && n.senders[ch] == nil {
			n.log.Warn("notifications pending for a channel that is not configured; configure it again to deliver them", "channel", ch, "pending", c.Pending)
		}
	}
}

// Close stops the loops, waiting for attempts in flight until ctx ends.
// Deliveries not made stay pending for the next start.
func (n *Notifier) Close(ctx context.Context) error {
	n.once.Do(func() { close(n.stop) })
	if err := lifecycle.Wait(ctx, &n.wg); err != nil {
		return fmt.Errorf("notify: close: %w", err)
	}
	return nil
}

// loopContext is a context cancelled when the notifier stops.
func (n *Notifier) loopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-n.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

// sleep waits d, a wake-up of ch or the stop; false on stop.
func (n *Notifier) sleep(ch string, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-n.stop:
		return false
	case <-n.wake[ch]:
		return true
	case <-t.C:
		return true
	}
}

// run is channel ch's delivery loop: claim the first due batch, send it,
// settle it, and sleep until the next one is due.
func (n *Notifier) run(ch string) {
	defer n.wg.Done()
	ctx, cancel := n.loopContext()
	defer cancel()
	for ctx.Err() == nil {
		now := n.now()
		c, ok, err := n.store.ClaimOutbox(ctx, ch, now.UnixMilli(), storage.MaxOutboxBatch)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("outbox claim failed", "channel", ch, "err", err)
			}
			if !n.sleep(ch, storeRetry) {
				return
			}
			continue
		}
		if !ok {
			wait := idleWait
			if at, ok, err := n.store.NextOutbox(ctx, ch); err == nil && ok {
				wait = min(wait, time.Duration(at-now.UnixMilli())*time.Millisecond)
			}
			if !n.sleep(ch, wait) {
				return
			}
			continue
		}
		n.deliver(ctx, ch, c)
	}
}

// deliver sends one claimed batch and records the outcome.
func (n *Notifier) deliver(ctx context.Context, ch string, c storage.OutboxClaim) {
	d := buildDigest(c)
	actx, cancel := context.WithTimeout(ctx, n.cfg.Timeout.Duration)
	err := n.senders[ch].send(actx, d)
	cancel()
	if ctx.Err() != nil {
		return // stopping: the batch stays pending as it was
	}
	now := n.now()
	r := storage.OutboxResult{At: now.UnixMilli(), Delivered: err == nil}
	result := "delivered"
	if err != nil {
		r.Error = err.Error()
		oldest := c.Deliveries[0].CreatedAt
		for _, dl := range c.Deliveries {
			oldest = min(oldest, dl.CreatedAt)
		}
		if now.Sub(time.UnixMilli(oldest)) >= n.cfg.MaxAge.Duration {
			result = "given_up"
			n.log.Error("notification given up", "channel", ch, "delivery", c.Batch, "failures", len(c.Entries), "attempts", c.Deliveries[0].Attempts+1, "err", err)
		} else {
			result = "retry"
			r.NextAt = now.Add(n.backoff(c.Deliveries[0].Attempts)).UnixMilli()
			n.log.Warn("notification failed; will retry", "channel", ch, "delivery", c.Batch, "next", time.UnixMilli(r.NextAt), "err", err)
		}
	}
	n.m.attempt(ch, result)
	for {
		_, serr := n.store.SettleOutbox(ctx, ch, c.Batch, r)
		if serr == nil {
			break
		}
		// Not settled: the batch would be sent again (at-least-once);
		// keep trying unless stopping.
		n.log.Warn("outbox settle failed", "channel", ch, "delivery", c.Batch, "err", serr)
		if !n.sleep(ch, storeRetry) {
			return
		}
	}
	if result == "given_up" {
		n.tellGivenUp(ctx, ch, c, err)
	}
}

// backoff is the delay after attempts+1 failed attempts: min_backoff
// doubled per earlier attempt, at most max_backoff.
func (n *Notifier) backoff(attempts uint32) time.Duration {
	d := n.cfg.MinBackoff.Duration
	for range min(attempts, 32) {
		if d >= n.cfg.MaxBackoff.Duration {
			break
		}
		d *= 2
	}
	return min(d, n.cfg.MaxBackoff.Duration)
}

// tellGivenUp tells the other channels that ch gave up a delivery — a
// delivery problem is itself something operators must hear about — unless
// the delivery was itself such a notice (no cascade).
func (n *Notifier) tellGivenUp(ctx context.Context, ch string, c storage.OutboxClaim, err error) {
	for _, e := range c.Entries {
		if e.Kind == KindDeliveryFailed {
			return
		}
	}
	others := slices.DeleteFunc(slices.Clone(n.channels), func(s string) bool { return s == ch })
	ev := Event{
		ID: "delivery/" + ch + "/" + c.Batch, Kind: KindDeliveryFailed,
		Message: fmt.Sprintf("%s gave up delivery %s of %d notification(s) after %s: %v", ch, c.Batch, len(c.Entries), n.cfg.MaxAge.Duration, err),
	}
	if c.Entries[0].Group != "" {
		ev.ReleaseID = c.Entries[0].Group
	}
	if eerr := n.enqueue(ctx, ev, others); eerr != nil {
		n.log.Error("could not enqueue the delivery problem", "channel", ch, "err", eerr)
	}
}

// housekeep prunes old entries and refreshes the depth gauges.
func (n *Notifier) housekeep() {
	defer n.wg.Done()
	ctx, cancel := n.loopContext()
	defer cancel()
	n.m.refresh(ctx, n.store)
	count := time.NewTicker(countEvery)
	defer count.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-count.C:
			n.m.refresh(ctx, n.store)
		case <-prune.C:
			before := n.now().Add(-n.cfg.Retention.Duration).UnixMilli()
			if k, err := n.store.PruneOutbox(ctx, before); err != nil {
				n.log.Warn("outbox prune failed", "err", err)
			} else if k > 0 {
				n.m.pruned.Add(k)
			}
		}
	}
}

// busSender publishes digests on the event bus. Publishing never fails:
// the stream is live-only, so a digest published while no dashboard
// listens is not re-sent (the outbox records it delivered).
type busSender struct {
	bus *events.Bus
	now func() time.Time
}

func (b busSender) send(_ context.Context, d *events.FailureDigest) error {
	b.bus.Publish(events.Event{Kind: events.KindUpgradeFailure, At: b.now().UnixMilli(), Digest: d})
	return nil
}
