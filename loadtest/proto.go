// Package loadtest is termload: a load generator for termd (TGP/1) and,
// for comparison, MQTT 3.1.1 brokers. Terminals are driven by an event
// loop client, not a goroutine each, so the generator stays lean next to
// the server it measures. A Proto encodes and parses one protocol's
// session and heartbeat; the engine, scenarios and reports are shared.
package loadtest

import "time"

// EventKind says what a Proto recognised in inbound bytes.
type EventKind uint8

// Events a Proto reports.
const (
	// EvNone: bytes consumed, nothing for the engine (e.g. a push).
	EvNone EventKind = iota
	// EvOpened: the session is up (HELLO_OK verified / CONNACK accepted).
	EvOpened
	// EvPong: the answer to heartbeat Seq arrived.
	EvPong
	// EvRefused: the server refused the session (Err says why); close.
	EvRefused
	// EvAnswer: the answer to a non-heartbeat request Seq arrived (mixed).
	EvAnswer
)

// Event is one thing a Proto recognised.
type Event struct {
	Kind EventKind
	Seq  uint16
	Err  error
}

// Term is one simulated terminal. The engine owns it; a Proto keeps its
// per-session state in State (set in Open).
type Term struct {
	// Index is the terminal's number in its process (0-based).
	Index int
	// ID is the device id (TGP) or client id (MQTT).
	ID string
	// State is the Proto's per-session state.
	State any
}

// Proto is one wire protocol as the load generator needs it.
type Proto interface {
	// Name is "tgp" or "mqtt".
	Name() string
	// Open starts a session on a new connection: it appends the first
	// bytes to send (HELLO / CONNECT) to out, and sets t.State.
	Open(t *Term, now time.Time, out []byte) []byte
	// Ping appends one heartbeat (HEARTBEAT / PINGREQ) identified by seq.
	// MQTT has no seq: PINGRESPs are matched in order.
	Ping(t *Term, seq uint16, out []byte) []byte
	// Read parses inbound bytes. It returns how many bytes it consumed (0
	// with a nil error: wait for more) and the event they carried. An
	// error means the connection is unusable (bad tag, malformed frame).
	Read(t *Term, in []byte) (n int, ev Event, err error)
}

// Requester is implemented by protocols that can send the mixed
// scenario's other requests (TGP: upgrade query, control, group list).
type Requester interface {
	// Request appends request kind (see Mix) with seq to out, or returns
	// out unchanged and false if the protocol or server lacks it.
	Request(t *Term, kind string, seq uint16, out []byte) ([]byte, bool)
}
