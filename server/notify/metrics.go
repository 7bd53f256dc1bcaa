package notify

import (
	"context"
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/storage"
)

// notifyMetrics is the notifier's metric set. Channels are bounded by
// the configuration, so they may be labels.
type notifyMetrics struct {
	set      *metrics.Set
	enqueued *metrics.Counter
	pruned   *metrics.Counter
	mu       sync.Mutex
	counts   map[string]storage.OutboxCount
}

// results an attempt may have.
var results = []string{"delivered", "retry", "given_up"}

func newMetrics(n *Notifier) *notifyMetrics {
	m := &notifyMetrics{set: metrics.NewSet(), counts: map[string]storage.OutboxCount{}}
	m.enqueued = m.set.NewCounter("termd_notify_enqueued_total")
	m.pruned = m.set.NewCounter("termd_notify_pruned_total")
	for _, ch := range n.channels {
		for _, r := range results {
			m.set.NewCounter(fmt.Sprintf(`termd_notify_deliveries_total{channel=%q,result=%q}`, ch, r))
		}
		m.set.NewGauge(fmt.Sprintf(`termd_notify_outbox_pending{channel=%q}`, ch), func() float64 { return float64(m.count(ch).Pending) })
		m.set.NewGauge(fmt.Sprintf(`termd_notify_outbox_failed{channel=%q}`, ch), func() float64 { return float64(m.count(ch).Failed) })
	}
	return m
}

func (m *notifyMetrics) attempt(ch, result string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_notify_deliveries_total{channel=%q,result=%q}`, ch, result)).Inc()
}

func (m *notifyMetrics) count(ch string) storage.OutboxCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[ch]
}

// refresh re-reads the outbox depth (a key-only scan of its indexes).
func (m *notifyMetrics) refresh(ctx context.Context, s storage.Outbox) {
	c, err := s.OutboxCounts(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	m.counts = c
	m.mu.Unlock()
}

// Metrics is the notifier's metric set.
func (n *Notifier) Metrics() *metrics.Set { return n.m.set }
