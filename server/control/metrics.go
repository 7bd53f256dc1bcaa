package control

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// unknownLabel stands for a service id or op that is not configured:
// terminals choose service ids, so only configured ones become labels.
const unknownLabel = "_unknown"

// ctlMetrics is the control subsystem's metric set. Service ids are
// bounded by the configuration, so they may be labels.
type ctlMetrics struct {
	set         *metrics.Set
	known       map[string]bool
	auditErrors *metrics.Counter
	// coalesced counts refusals folded into an earlier audit record,
	// pruned audit records deleted by retention or the cap, and
	// requestIDsFull requests refused because their request_id could not
	// be remembered.
	coalesced      *metrics.Counter
	pruned         *metrics.Counter
	requestIDsFull *metrics.Counter
}

func newMetrics(ids []string, c *Controller) *ctlMetrics {
	m := &ctlMetrics{set: metrics.NewSet(), known: make(map[string]bool)}
	for _, id := range ids {
		m.known[id] = true
	}
	m.auditErrors = m.set.NewCounter("termd_control_audit_errors_total")
	m.coalesced = m.set.NewCounter("termd_control_audit_coalesced_total")
	m.pruned = m.set.NewCounter("termd_control_audit_pruned_total")
	m.requestIDsFull = m.set.NewCounter("termd_control_request_ids_full_total")
	// Read from the supervisor at scrape time: nothing to keep in step.
	m.set.NewGauge("termd_services_running", func() float64 {
		if c.sup == nil {
			return 0
		}
		n := 0
		for _, st := range c.sup.Services() {
			if st.Kind == config.KindDaemon && st.State == protocol.StateRunning {
				n++
			}
		}
		return float64(n)
	})
	m.set.NewGauge("termd_control_request_ids", func() float64 { return float64(c.idem.len()) })
	return m
}

// observe counts one answered request and its duration.
func (m *ctlMetrics) observe(service, op string, status uint8, d time.Duration) {
	if !m.known[service] {
		service = unknownLabel
	}
	if !slices.Contains(config.AllOps, op) {
		op = unknownLabel
	}
	result := strings.ToLower(protocol.Code(status).String())
	m.set.GetOrCreateCounter(fmt.Sprintf(`termd_control_requests_total{service=%q,op=%q,result=%q}`, service, op, result)).Inc()
	m.set.GetOrCreateHistogram(fmt.Sprintf(`termd_control_duration_seconds{service=%q,op=%q}`, service, op)).Update(d.Seconds())
}
