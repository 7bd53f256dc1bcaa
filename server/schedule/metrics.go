package schedule

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"
)

type metricsSet struct {
	set                        *metrics.Set
	requests, busy, lapsed     *metrics.Counter
	notices                    *metrics.Counter
	commitBatch, commitSeconds *metrics.Histogram
}

func newMetrics(s *Service) *metricsSet {
	set := metrics.NewSet()
	m := &metricsSet{
		set:           set,
		requests:      set.NewCounter("termd_schedule_requests_total"),
		busy:          set.NewCounter("termd_schedule_busy_total"),
		lapsed:        set.NewCounter("termd_schedule_lapsed_total"),
		notices:       set.NewCounter("termd_schedule_notices_total"),
		commitBatch:   set.NewHistogram("termd_schedule_commit_batch_size"),
		commitSeconds: set.NewHistogram("termd_schedule_commit_duration_seconds"),
	}
	set.NewGauge("termd_schedule_reservations_holding", func() float64 {
		s.useMu.RLock()
		defer s.useMu.RUnlock()
		n := 0
		for _, u := range s.use {
			n += u.Count
		}
		return float64(n)
	})
	set.NewGauge("termd_schedule_commit_queue", func() float64 { return float64(len(s.jobs)) })
	set.RegisterMetricsWriter(s.writeSlotMetrics)
	return m
}

// placed counts a SCHEDULE_REQUEST's outcome: placed, full, not_targeted,
// phase, refused.
func (m *metricsSet) placed(result string) {
	m.set.GetOrCreateCounter(`termd_schedule_placements_total{result="` + result + `"}`).Inc()
}

// checked counts an UPGRADE_CHECK's decision (or refused).
func (m *metricsSet) checked(decision string) {
	m.set.GetOrCreateCounter(`termd_schedule_checkins_total{decision="` + decision + `"}`).Inc()
}

// writeSlotMetrics writes each cluster's utilisation of its current
// slots: reserved and capacity summed over its nodes.
func (s *Service) writeSlotMetrics(w io.Writer) {
	now := s.now().UnixMilli()
	s.useMu.RLock()
	defer s.useMu.RUnlock()
	for _, cl := range s.clusters {
		used, capacity := 0, 0
		for _, n := range cl.nodes {
			if n.disabled {
				continue
			}
			used += s.use[slotKey{n.id, n.slotOf(now)}].Count
			capacity += n.capacity
		}
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`termd_schedule_slot_reserved{cluster=%q}`, cl.id), uint64(used))
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`termd_schedule_slot_capacity{cluster=%q}`, cl.id), uint64(capacity))
	}
}
