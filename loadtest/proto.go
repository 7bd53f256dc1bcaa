// Package loadtest is termload: a load generator for termd (TGP/1) and,
// for comparison, MQTT 3.1.1 brokers. Terminals are driven by an event
// loop client, not a goroutine each, so the generator stays lean next to
// the server it measures. A Proto encodes and parses one protocol's
// session and heartbeat; the engine, scenarios and reports are shared.
package loadtest

import (
	"errors"
	"time"
)

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
	// EvClosed: the server is ending an established session (TGP GOAWAY
	// or ERROR); Err says why (ErrReplaced for a takeover); close.
	EvClosed
)

// ErrReplaced is the Err of an EvClosed event when a newer login of the
// same device id replaced the session (TGP GOAWAY [5, "replaced"]).
var ErrReplaced = errors.New("session replaced by a newer login")

// Event is one thing a Proto recognised.
type Event struct {
	Kind EventKind
	Seq  uint16
	Err  error
	// Status names the answer's status for EvPong and EvAnswer ("OK",
	// "NOT_FOUND", ...; "" is read as "OK") and the code of EvRefused and
	// EvClosed. It is a constant string: counting by it allocates nothing.
	Status string
	// Interval is, on EvOpened, the heartbeat interval the server asks
	// for (TGP hb_interval_s); 0 when the protocol leaves it to the client.
	Interval time.Duration
	// Reply holds bytes the engine must send at once, before anything
	// else, with any Kind: a HELLO retry after a clock challenge, a push
	// ack. It aliases the Proto's scratch: valid until its next call.
	Reply []byte
	// Note, if set, is a count to add one to (a constant string): what a
	// scenario's answer meant (the campaign's decisions).
	Note string
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
	// Scratch is the per-event-loop scratch of a Proto that implements
	// Scratcher (encoder, decoder, MAC state), set by the engine before
	// the first call for this Term. All calls for one Term run on the
	// same event loop, so the Proto may use it without locking.
	Scratch any
}

// Scratcher is implemented by protocols that keep reusable encoding state
// per event loop rather than per terminal or per call (TGP: a Writer, a
// Reader and a MAC), so the heartbeat path allocates nothing.
type Scratcher interface {
	// NewScratch returns the state for one event loop; the engine puts
	// it in Term.Scratch of every terminal on that loop.
	NewScratch() any
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
