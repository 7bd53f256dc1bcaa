package groups

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// groupMetrics are the feature's metrics (docs/groups.md).
type groupMetrics struct {
	set            *metrics.Set
	repeats        *metrics.Counter
	delivered      *metrics.Counter
	fanoutSize     *metrics.Histogram
	fanoutDuration *metrics.Histogram
}

func newMetrics(s *Service) *groupMetrics {
	set := metrics.NewSet()
	m := &groupMetrics{
		set:            set,
		repeats:        set.NewCounter("termd_group_change_repeats_total"),
		delivered:      set.NewCounter("termd_group_messages_delivered_total"),
		fanoutSize:     set.NewHistogram("termd_group_fanout_size"),
		fanoutDuration: set.NewHistogram("termd_group_fanout_duration_seconds"),
	}
	set.NewGauge("termd_groups", func() float64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return float64(len(s.groups))
	})
	set.NewGauge("termd_group_sync_pending", func() float64 { return float64(s.syncer.Pending()) })
	return m
}

// change counts a GROUP_CHANGE or operator change by op and result.
func (m *groupMetrics) change(op, result string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_group_changes_total{op=%q,result=%q}`, op, result)).Inc()
}

func (m *groupMetrics) auth(result string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_group_auth_total{result=%q}`, result)).Inc()
}

func (m *groupMetrics) send(result string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_group_sends_total{result=%q}`, result)).Inc()
}

func (m *groupMetrics) synced(result string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_group_syncs_total{result=%q}`, result)).Inc()
}

// Metrics is the groups metric set.
func (s *Service) Metrics() *metrics.Set { return s.m.set }
