package server

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
)

// Offline reasons (spec §4 plus termd's own).
const (
	ReasonClosed        = "closed"
	ReasonBye           = "bye"
	ReasonTimeout       = "timeout"
	ReasonBadTag        = "bad_tag"
	ReasonShutdown      = "shutdown"
	ReasonDisconnected  = "disconnected"
	ReasonBlocked       = "blocked"
	ReasonRestart       = "restart"
	ReasonSlowReader    = "slow_reader"
	ReasonProtocolError = "protocol_error"
	// reasonReplaced marks a session a newer one took over: not offline.
	reasonReplaced = "replaced"
)

var offlineReasons = []string{
	ReasonClosed, ReasonBye, ReasonTimeout, ReasonBadTag, ReasonShutdown,
	ReasonDisconnected, ReasonBlocked, ReasonRestart, ReasonSlowReader, ReasonProtocolError,
}

// connReasons are the values a conn's reason indexes; 0 is none yet.
var connReasons = [...]string{
	"", ReasonClosed, ReasonBye, ReasonTimeout, ReasonBadTag, ReasonShutdown,
	ReasonDisconnected, ReasonBlocked, ReasonRestart, ReasonSlowReader, ReasonProtocolError, reasonReplaced,
}

// reasonCode is name's index in connReasons (ReasonClosed's if unknown).
func reasonCode(name string) uint8 {
	for i, r := range connReasons {
		if r == name {
			return uint8(i)
		}
	}
	return 1
}

// HELLO failure reasons, as metric labels.
const (
	helloBadRequest   = "bad_request"
	helloExpired      = "expired"
	helloBadMAC       = "bad_mac"
	helloReplay       = "replay"
	helloBlocked      = "blocked"
	helloDuplicate    = "duplicate"
	helloServerFull   = "server_full"
	helloPendingFull  = "pending_full"
	helloNoncesFull   = "nonce_cache_full"
	helloTimeout      = "timeout"
	helloBadChallenge = "bad_challenge"
	helloNotHello     = "not_hello"
)

var helloReasons = []string{
	helloBadRequest, helloExpired, helloBadMAC, helloReplay, helloBlocked, helloDuplicate,
	helloServerFull, helloPendingFull, helloNoncesFull, helloTimeout, helloBadChallenge, helloNotHello,
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
	helloFailed   map[string]*metrics.Counter
	heartbeats    *metrics.Counter
	framesIn      [256]*metrics.Counter
	framesOut     [256]*metrics.Counter
	bytesIn       *metrics.Counter
	bytesOut      *metrics.Counter
	decodeErrors  map[string]*metrics.Counter
	offline       map[string]*metrics.Counter
	replaced      *metrics.Counter
	rateLimited   *metrics.Counter
	workRejected  *metrics.Counter
	flushDuration *metrics.Histogram
	flushErrors   *metrics.Counter
}

func newServerMetrics(s *Server) *serverMetrics {
	set := metrics.NewSet()
	m := &serverMetrics{
		set:           set,
		accepted:      set.NewCounter("termd_connections_accepted_total"),
		refused:       map[string]*metrics.Counter{},
		helloOK:       set.NewCounter("termd_hello_ok_total"),
		helloFailed:   map[string]*metrics.Counter{},
		heartbeats:    set.NewCounter("termd_heartbeats_total"),
		bytesIn:       set.NewCounter("termd_bytes_in_total"),
		bytesOut:      set.NewCounter("termd_bytes_out_total"),
		decodeErrors:  map[string]*metrics.Counter{},
		offline:       map[string]*metrics.Counter{},
		replaced:      set.NewCounter("termd_sessions_replaced_total"),
		rateLimited:   set.NewCounter("termd_rate_limited_total"),
		workRejected:  set.NewCounter("termd_work_rejected_total"),
		flushDuration: set.NewHistogram("termd_writebehind_flush_duration_seconds"),
		flushErrors:   set.NewCounter("termd_writebehind_flush_errors_total"),
	}
	for _, r := range []string{"max_connections", "shutdown"} {
		m.refused[r] = set.NewCounter(fmt.Sprintf(`termd_connections_refused_total{reason=%q}`, r))
	}
	for _, r := range helloReasons {
		m.helloFailed[r] = set.NewCounter(fmt.Sprintf(`termd_hello_failed_total{reason=%q}`, r))
	}
	for _, k := range decodeKinds {
		m.decodeErrors[k] = set.NewCounter(fmt.Sprintf(`termd_decode_errors_total{kind=%q}`, k))
	}
	for _, r := range offlineReasons {
		m.offline[r] = set.NewCounter(fmt.Sprintf(`termd_offline_total{reason=%q}`, r))
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
	set.NewGauge("termd_online", func() float64 { return float64(s.Presence.Online()) })
	set.NewGauge("termd_nonce_cache_entries", func() float64 { return float64(s.nonces.Len()) })
	set.NewGauge("termd_work_queue_depth", func() float64 { return float64(s.work.depth()) })
	set.NewGauge("termd_writebehind_pending", func() float64 { return float64(s.writer.Pending()) })
	set.NewGauge("termd_events_dropped_total", func() float64 { return float64(s.Bus.Dropped()) })
	set.NewGauge("termd_event_subscribers", func() float64 { return float64(s.Bus.Subscribers()) })
	return m
}

func (m *serverMetrics) helloFail(reason string) { m.helloFailed[reason].Inc() }

func (m *serverMetrics) decodeError(kind string) { m.decodeErrors[kind].Inc() }
