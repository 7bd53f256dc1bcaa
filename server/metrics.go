package server

import (
	"fmt"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
)

// HELLO failure reasons, as metric labels.
const (
	helloBadRequest   = "bad_request"
	helloExpired      = "expired"
	helloBadMAC       = "bad_mac"
	helloReplay       = "replay"
	helloBlocked      = "blocked"
	helloDuplicate    = "duplicate"
	helloServerFull   = "server_full"
	helloSourceRate   = "source_rate"
	helloNoncesFull   = "nonce_cache_full"
	helloTimeout      = "timeout"
	helloBadChallenge = "bad_challenge"
	helloNotHello     = "not_hello"
)

var helloReasons = []string{
	helloBadRequest, helloExpired, helloBadMAC, helloReplay, helloBlocked, helloDuplicate,
	helloServerFull, helloSourceRate, helloNoncesFull, helloTimeout, helloBadChallenge, helloNotHello,
}

// Decode error kinds, as metric labels.
const (
	decBadMagic      = "bad_magic"
	decEmpty         = "empty"
	decTooLarge      = "too_large"
	decNotArray      = "not_array"
	decBadField      = "bad_field"
	decBadTag        = "bad_tag"
	decForbiddenType = "forbidden_type"
	decUnknownType   = "unknown_type"
	decSeqReuse      = "seq_reuse"
)

var decodeKinds = []string{decBadMagic, decEmpty, decTooLarge, decNotArray, decBadField, decBadTag, decForbiddenType, decUnknownType, decSeqReuse}

// serverMetrics is the TGP layer's metric set. Counters are looked up
// once here, never by name on a hot path; no label ever holds a device id.
type serverMetrics struct {
	set           *metrics.Set
	accepted      *metrics.Counter
	refused       map[string]*metrics.Counter
	helloOK       *metrics.Counter
	helloEvicted  *metrics.Counter
	helloFailed   map[string]*metrics.Counter
	heartbeats    *metrics.Counter
	framesIn      [256]*metrics.Counter
	framesOut     [256]*metrics.Counter
	bytesIn       *metrics.Counter
	bytesOut      *metrics.Counter
	decodeErrors  map[string]*metrics.Counter
	rateLimited   *metrics.Counter
	workRejected  *metrics.Counter
	writesRefused *metrics.Counter
	push          pushMetrics
	pendingAcks   atomic.Int64
	acksUnmatched *metrics.Counter
	// fanoutSlow counts fan-out pushes skipped for a member with more
	// than FanoutSlowBytes unsent (spec §7).
	fanoutSlow *metrics.Counter
}

func newServerMetrics(s *Server) *serverMetrics {
	set := metrics.NewSet()
	m := &serverMetrics{
		set:           set,
		accepted:      set.NewCounter("termd_connections_accepted_total"),
		refused:       map[string]*metrics.Counter{},
		helloOK:       set.NewCounter("termd_hello_ok_total"),
		helloEvicted:  set.NewCounter("termd_hello_evicted_total"),
		helloFailed:   map[string]*metrics.Counter{},
		heartbeats:    set.NewCounter("termd_heartbeats_total"),
		bytesIn:       set.NewCounter("termd_bytes_in_total"),
		bytesOut:      set.NewCounter("termd_bytes_out_total"),
		decodeErrors:  map[string]*metrics.Counter{},
		rateLimited:   set.NewCounter("termd_rate_limited_total"),
		workRejected:  set.NewCounter("termd_work_rejected_total"),
		writesRefused: set.NewCounter("termd_requests_refused_disk_full_total"),
		push:          newPushMetrics(set),
		acksUnmatched: set.NewCounter("termd_push_acks_unmatched_total"),
		fanoutSlow:    set.NewCounter("termd_fanout_skipped_slow_total"),
	}
	set.NewGauge("termd_push_acks_pending", func() float64 { return float64(m.pendingAcks.Load()) })
	for _, r := range refusedReasons {
		m.refused[r] = set.NewCounter(fmt.Sprintf(`termd_connections_refused_total{reason=%q}`, r))
	}
	for _, r := range helloReasons {
		m.helloFailed[r] = set.NewCounter(fmt.Sprintf(`termd_hello_failed_total{reason=%q}`, r))
	}
	for _, k := range decodeKinds {
		m.decodeErrors[k] = set.NewCounter(fmt.Sprintf(`termd_decode_errors_total{kind=%q}`, k))
	}
	// One counter per known frame type; all unknown types share one.
	unknownIn := set.NewCounter(`termd_frames_in_total{type="unknown"}`)
	unknownOut := set.NewCounter(`termd_frames_out_total{type="unknown"}`)
	for t := 0; t < 256; t++ {
		m.framesIn[t], m.framesOut[t] = unknownIn, unknownOut
		name := protocol.TypeName(byte(t))
		if name == "unknown" {
			continue
		}
		if protocol.IsRequest(byte(t)) || protocol.IsPushAck(byte(t)) {
			m.framesIn[t] = set.NewCounter(fmt.Sprintf(`termd_frames_in_total{type=%q}`, name))
		} else {
			m.framesOut[t] = set.NewCounter(fmt.Sprintf(`termd_frames_out_total{type=%q}`, name))
		}
	}
	set.NewGauge("termd_connections_current", func() float64 { return float64(s.conns.Load()) })
	set.NewGauge("termd_connections_pending_hello", func() float64 { return float64(s.pending.Load()) })
	set.NewGauge("termd_nonce_cache_entries", func() float64 { return float64(s.nonces.Len()) })
	set.NewGauge("termd_work_queue_depth", func() float64 { return float64(s.work.depth()) })
	set.NewGauge("termd_events_dropped_total", func() float64 { return float64(s.Bus.Dropped()) })
	set.NewGauge("termd_event_subscribers", func() float64 { return float64(s.Bus.Subscribers()) })
	return m
}

// workClass registers the gauges of a worker-pool class (once).
func (m *serverMetrics) workClass(w *workers, c *workClass) {
	m.set.GetOrCreateGauge(fmt.Sprintf(`termd_work_queued{class=%q}`, c.name), func() float64 {
		q, _ := w.load(c)
		return float64(q)
	})
	m.set.GetOrCreateGauge(fmt.Sprintf(`termd_work_running{class=%q}`, c.name), func() float64 {
		_, r := w.load(c)
		return float64(r)
	})
}

func (m *serverMetrics) helloFail(reason string) { m.helloFailed[reason].Inc() }

func (m *serverMetrics) decodeError(kind string) { m.decodeErrors[kind].Inc() }
