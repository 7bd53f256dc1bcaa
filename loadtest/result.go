package loadtest

import "time"

// Result is what one termload run (or one worker process of it) measured.
// Worker results are merged into one with Merge; reports and plots read
// only this type.
type Result struct {
	Scenario  string    `json:"scenario"`
	Proto     string    `json:"proto"`
	Target    string    `json:"target"`
	Terminals int       `json:"terminals"`
	Procs     int       `json:"procs"`
	Started   time.Time `json:"started"`
	// Duration is the measured phase's length (connect: the ramp's).
	Duration time.Duration `json:"duration_ns"`
	// RampEnd is when the ramp ended (every connect succeeded or failed,
	// or its time ran out): the end of what connect measures, and for the
	// other scenarios the start of the measured phase (idle, heartbeat,
	// mixed, the saturation steps, churn). MeasureEnd is when that phase
	// ended, before any connection was closed; zero for connect. The
	// server is sampled at both moments; Derived takes its CPU windows
	// from them. Both are zero in results saved before they existed: the
	// CPU figures then span the whole run, as they did.
	RampEnd    time.Time `json:"ramp_end,omitzero"`
	MeasureEnd time.Time `json:"measure_end,omitzero"`
	// Counts: "connect_ok", "connect_failed", "sent", "answered",
	// "skipped" (open-loop slots that could not be sent in time),
	// "refused", "reconnects", "takeovers", ... Two, present only when
	// not zero, tell the server figures which work fell outside their
	// windows: "answered_in_ramp" (idle and churn heartbeats answered
	// before the ramp ended) and "connect_ok_after_ramp" (sessions opened
	// after it: churn's reconnects and takeovers).
	Counts map[string]uint64 `json:"counts"`
	// Errors by kind ("dial", "refused:UNAVAILABLE", "timeout", "closed", ...).
	Errors map[string]uint64 `json:"errors"`
	// Latency by message type ("hello", "heartbeat", "upgrade_query", ...),
	// microseconds.
	Latency map[string]*Histogram `json:"latency"`
	// Steps of a -saturate run: offered and achieved rate per step.
	Steps []Step `json:"steps,omitempty"`
	// Knee is the highest offered rate whose achieved/offered ≥ 95 %.
	Knee float64 `json:"knee,omitempty"`
	// Server is the target's process metrics, sampled over the run.
	Server []ServerSample `json:"server,omitempty"`
	// ClientCPU is the load generator's own CPU seconds (all processes).
	ClientCPU float64 `json:"client_cpu_s"`
	// Timeline has one point per second: for plots of latency over time.
	Timeline []Point `json:"timeline,omitempty"`
	// Spans are stretches of the run that a rate is computed over:
	// SpanPlacement, the campaign scenario's first SCHEDULE_REQUEST sent
	// to its last placement answered.
	Spans map[string]Span `json:"spans,omitempty"`
}

// SpanPlacement is the campaign scenario's Span of placements.
const SpanPlacement = "placement"

// Span is N events between First and Last.
type Span struct {
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	N     uint64    `json:"n"`
}

// Rate is N per second of the span; 0 when it has no length.
func (s Span) Rate() float64 {
	if d := s.Last.Sub(s.First).Seconds(); d > 0 {
		return float64(s.N) / d
	}
	return 0
}

// merge widens s to cover o too and adds o's events.
func (s Span) merge(o Span) Span {
	if s.N == 0 {
		return o
	}
	if o.First.Before(s.First) {
		s.First = o.First
	}
	if o.Last.After(s.Last) {
		s.Last = o.Last
	}
	s.N += o.N
	return s
}

// Step is one rate step of a -saturate run.
type Step struct {
	Offered  float64 `json:"offered_per_s"`
	Achieved float64 `json:"achieved_per_s"`
	P99us    int64   `json:"p99_us"`
}

// ServerSample is one scrape of the server's /metrics.
type ServerSample struct {
	At        time.Time `json:"at"`
	RSS       float64   `json:"rss_bytes"`
	CPU       float64   `json:"cpu_s"`
	Connected float64   `json:"connected"` // termd_online, or the generator's count for peers
}

// Point is one second of the run.
type Point struct {
	At        time.Time `json:"at"`
	Connected int       `json:"connected"`
	Sent      uint64    `json:"sent"`
	Answered  uint64    `json:"answered"`
	P50us     int64     `json:"p50_us"`
	P99us     int64     `json:"p99_us"`
	P999us    int64     `json:"p999_us"`
}
