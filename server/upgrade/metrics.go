package upgrade

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/storage"
)

// upMetrics are the upgrade metrics (docs/operations.md, "Metrics").
type upMetrics struct {
	set           *metrics.Set
	queries       *metrics.Counter
	offers        *metrics.Counter
	capped        *metrics.Counter
	assigned      *metrics.Counter
	lastFailures  *metrics.Counter
	reports       *metrics.Counter
	stages        [storage.StageCount]*metrics.Counter
	failures      *metrics.Counter
	busy          *metrics.Counter
	noticesSent   *metrics.Counter
	noticesAcked  *metrics.Counter
	commitBatch   *metrics.Histogram
	commitSeconds *metrics.Histogram
	commitErrors  *metrics.Counter
	// withdrawnNotices and deadlineNotices count the UPGRADE_NOTICEs
	// queued by cancel (kind 3) and by a deadline passing (kind 1).
	withdrawnNotices *metrics.Counter
	deadlineNotices  *metrics.Counter
}

// rolloutEvent counts a phased rollout's transition.
func (m *upMetrics) rolloutEvent(ev string) {
	m.set.GetOrCreateCounter(`termd_upgrade_rollout_transitions_total{event="` + ev + `"}`).Inc()
}

func newMetrics(s *Service) *upMetrics {
	set := metrics.NewSet()
	m := &upMetrics{
		set:           set,
		queries:       set.NewCounter("termd_upgrade_queries_total"),
		offers:        set.NewCounter("termd_upgrade_offers_total"),
		capped:        set.NewCounter("termd_upgrade_offers_capped_total"),
		assigned:      set.NewCounter("termd_upgrade_assignments_total"),
		lastFailures:  set.NewCounter("termd_upgrade_last_failures_delivered_total"),
		reports:       set.NewCounter("termd_upgrade_reports_total"),
		failures:      set.NewCounter("termd_upgrade_failures_total"),
		busy:          set.NewCounter("termd_upgrade_busy_total"),
		noticesSent:   set.NewCounter("termd_upgrade_notices_sent_total"),
		noticesAcked:  set.NewCounter("termd_upgrade_notices_acked_total"),
		commitBatch:   set.NewHistogram("termd_upgrade_commit_batch_size"),
		commitSeconds: set.NewHistogram("termd_upgrade_commit_duration_seconds"),
		commitErrors:  set.NewCounter("termd_upgrade_commit_errors_total"),
	}
	m.withdrawnNotices = set.NewCounter("termd_upgrade_withdrawn_notices_total")
	m.deadlineNotices = set.NewCounter("termd_upgrade_deadline_notices_total")
	for st := 1; st < storage.StageCount; st++ {
		m.stages[st] = set.NewCounter(`termd_upgrade_stages_total{stage="` + stageName(uint8(st)) + `"}`)
	}
	set.NewGauge("termd_upgrade_releases_published", func() float64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		n := 0
		for _, rs := range s.byApp {
			n += len(rs)
		}
		return float64(n)
	})
	set.NewGauge("termd_upgrade_attempts_open", func() float64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return float64(len(s.open))
	})
	set.NewGauge("termd_upgrade_commit_queue", func() float64 { return float64(len(s.jobs)) })
	set.RegisterMetricsWriter(s.writeRolloutMetrics)
	return m
}

// stage counts a record that reached stage.
func (m *upMetrics) stage(st uint8) {
	if int(st) < len(m.stages) && m.stages[st] != nil {
		m.stages[st].Inc()
	}
}

// Metrics is the upgrade metric set.
func (s *Service) Metrics() *metrics.Set { return s.m.set }
