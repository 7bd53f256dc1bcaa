package presence

// Reason is why a session ended (spec §4 plus termd's own). It is one
// byte so a connection can carry it; String is the name stored in the
// registry, sent in events and used as a metric label.
type Reason uint8

// Offline reasons. ReasonNone is "not decided yet": a session that ends
// without one ended with ReasonClosed.
const (
	ReasonNone Reason = iota
	// ReasonClosed: the connection closed.
	ReasonClosed
	// ReasonBye: the terminal sent BYE.
	ReasonBye
	// ReasonTimeout: no valid frame for miss_factor × hb_interval_s.
	ReasonTimeout
	// ReasonBadTag: a frame's tag did not verify.
	ReasonBadTag
	// ReasonShutdown: termd stopped.
	ReasonShutdown
	// ReasonDisconnected: an operator disconnected the device.
	ReasonDisconnected
	// ReasonBlocked: an operator blocked the device.
	ReasonBlocked
	// ReasonRestart: the session was live when termd crashed; recorded at
	// the next start, at the last alive mark.
	ReasonRestart
	// ReasonSlowReader: the terminal did not read what termd sent.
	ReasonSlowReader
	// ReasonProtocolError: the terminal broke the protocol (ERROR sent).
	ReasonProtocolError
	// ReasonReplaced marks a session a newer one took over; it is not an
	// offline transition (the device stays online) and never stored.
	ReasonReplaced
)

var reasonNames = [...]string{
	ReasonNone: "", ReasonClosed: "closed", ReasonBye: "bye", ReasonTimeout: "timeout",
	ReasonBadTag: "bad_tag", ReasonShutdown: "shutdown", ReasonDisconnected: "disconnected",
	ReasonBlocked: "blocked", ReasonRestart: "restart", ReasonSlowReader: "slow_reader",
	ReasonProtocolError: "protocol_error", ReasonReplaced: "replaced",
}

// String is the reason's name ("" for ReasonNone).
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// OfflineReasons lists every reason a device can go offline with, in
// order: the metric labels and the documented list.
func OfflineReasons() []Reason {
	out := make([]Reason, 0, len(reasonNames))
	for r := ReasonClosed; r < ReasonReplaced; r++ {
		out = append(out, r)
	}
	return out
}
