package protocol

import (
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// ValidDeviceID reports whether id is 1–64 bytes of [A-Za-z0-9._:-].
func ValidDeviceID(id string) bool {
	if len(id) == 0 || len(id) > MaxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func hasZero(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

// readStatus reads a response's array header and status. For a non-OK
// status it also reads the message and an optional retry_after_ms, skips
// the rest, and returns them as an *Error with the array length read so
// far in used. Responses whose refusals carry more fields read them
// themselves with readHead.
func (r *Reader) readStatus() (n int, err error) {
	n, code, err := r.readHead()
	if err != nil || code == OK {
		return n, err
	}
	return n, r.refusal(n, code)
}

// Head reads a response's array header and status code, for response
// types defined outside this package. On a non-OK status the caller
// usually wants the refusal; see Refusal.
func (r *Reader) Head() (n int, code Code, err error) { return r.readHead() }

// readHead reads the array header and status code.
func (r *Reader) readHead() (n int, code Code, err error) {
	if n, err = r.Array(); err != nil {
		return 0, 0, err
	}
	if n < 1 {
		return 0, 0, Missing("status")
	}
	c, err := r.UintMax(255, "status")
	return n, Code(c), err
}

// refusal reads [_, message, retry_after_ms?, ...] after a non-OK status
// and returns the refusal, or the BAD_REQUEST of a malformed one.
func (r *Reader) refusal(n int, code Code) error {
	e, err := r.readRefusal(n, code)
	if err != nil {
		return err
	}
	return e
}

// readRefusal is refusal with the refusal and a malformed body kept
// apart: both are *Error, and a malformed [3, 5] must not pass for a
// refusal with status BAD_REQUEST.
func (r *Reader) readRefusal(n int, code Code) (*Error, error) {
	e := &Error{Code: code}
	var err error
	if n >= 2 {
		if e.Message, err = r.OptStr(MaxMessage, "message"); err != nil {
			return nil, err
		}
	}
	if n >= 3 && !r.Nil() {
		// Only an integer here is a retry_after_ms; other shapes belong to
		// extensions we do not know and are skipped.
		c, _ := r.peek()
		if isInt(c) {
			if e.RetryAfterMs, err = r.Uint("retry_after_ms"); err != nil {
				return nil, err
			}
		} else if err = r.Skip(2); err != nil {
			return nil, err
		}
	}
	if err = r.SkipRest(min(n, 3), n); err != nil {
		return nil, err
	}
	return e, nil
}

// Refusal is a response that carries only a non-OK status:
// [code, message] or [code, message, retry_after_ms]. Its frame type is
// the response type of the refused request.
type Refusal struct {
	RespType byte
	Err      *Error
}

// Type implements Message.
func (m *Refusal) Type() byte { return m.RespType }

// Encode implements Message.
func (m *Refusal) Encode(w *Writer) { w.Status(m.Err) }

// Decode implements Message; it succeeds only on a non-OK status.
func (m *Refusal) Decode(r *Reader) error {
	n, code, err := r.readHead()
	if err != nil {
		return err
	}
	if code == OK {
		return bad("status: OK in a refusal")
	}
	m.Err, err = r.readRefusal(n, code)
	return err
}

// Ack is a response or push ack with status OK and no fields: [0]. It is
// BYE_ACK, UPGRADE_REPORT_ACK and every push ack. Decoding a non-OK
// status returns the refusal as an *Error.
type Ack struct{ AckType byte }

// Type implements Message.
func (m *Ack) Type() byte { return m.AckType }

// Encode implements Message.
func (m *Ack) Encode(w *Writer) { w.Array(1); w.Uint(0) }

// Decode implements Message.
func (m *Ack) Decode(r *Reader) error {
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	return r.SkipRest(1, n)
}

// Hello is HELLO 0x01, the first frame of every connection (spec §3.1).
type Hello struct {
	DeviceID string
	TS       uint64 // terminal's unix time, seconds
	Nonce    [NonceSize]byte
	MAC      Key
	FW       string
	Model    string
	// Attrs is the optional attrs map as MessagePack; after Decode it
	// aliases the body (copy it to keep it). nil when absent.
	Attrs []byte
}

// Type implements Message.
func (m *Hello) Type() byte { return TypeHello }

// Encode implements Message.
func (m *Hello) Encode(w *Writer) {
	if m.Attrs != nil {
		w.Array(7)
	} else {
		w.Array(6)
	}
	w.Str(m.DeviceID)
	w.Uint(m.TS)
	w.Bin(m.Nonce[:])
	w.Bin(m.MAC[:])
	w.Str(m.FW)
	w.Str(m.Model)
	if m.Attrs != nil {
		w.Raw(m.Attrs)
	}
}

// Decode implements Message.
func (m *Hello) Decode(r *Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 6 {
		return Missing("hello fields")
	}
	id, err := r.StrBytes(MaxID, "device_id")
	if err != nil {
		return err
	}
	if !ValidDeviceID(string(id)) {
		return bad("device_id: bad characters or length")
	}
	m.DeviceID = string(id)
	if m.TS, err = r.Uint("ts"); err != nil {
		return err
	}
	if err = r.BinFixed(m.Nonce[:], "nonce"); err != nil {
		return err
	}
	if err = r.BinFixed(m.MAC[:], "mac"); err != nil {
		return err
	}
	for _, f := range []*string{&m.FW, &m.Model} {
		b, err := r.StrBytes(MaxFW, "fw/model")
		if err != nil {
			return err
		}
		if hasZero(b) {
			return bad("fw/model: contains 0x00")
		}
		*f = string(b)
	}
	m.Attrs = nil
	if n >= 7 && !r.Nil() {
		if m.Attrs, err = r.smallMap("attrs", false); err != nil {
			return err
		}
	}
	return r.SkipRest(min(n, 7), n)
}

// smallMap validates an attrs or status map (≤16 entries, str keys ≤32
// bytes, values str ≤64 bytes, int, bool, and float where allowed) and
// returns its encoding, aliasing the body.
func (r *Reader) smallMap(what string, floats bool) ([]byte, error) {
	start := r.Pos()
	n, err := r.Map(MaxMapItems, what)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if _, err := r.StrBytes(MaxMapKey, what+" key"); err != nil {
			return nil, err
		}
		c, err := r.peek()
		if err != nil {
			return nil, err
		}
		switch {
		case isStr(c):
			_, err = r.StrBytes(MaxMapStr, what+" value")
		case isInt(c):
			_, err = r.Int(what + " value")
		case c == msgpcode.True || c == msgpcode.False:
			_, err = r.Bool(what + " value")
		case floats && (c == msgpcode.Float || c == msgpcode.Double):
			_, err = r.Float(what + " value")
		default:
			err = bad(what + " value: wrong type")
		}
		if err != nil {
			return nil, err
		}
	}
	return r.Since(start), nil
}

// HelloOK is the successful HELLO response 0x81 (spec §3.1).
type HelloOK struct {
	SessionID    uint64
	ServerTimeMs uint64
	HBInterval   uint64 // seconds
	MaxFrame     uint64
	ServerMAC    Key
}

// Type implements Message.
func (m *HelloOK) Type() byte { return Response(TypeHello) }

// Encode implements Message.
func (m *HelloOK) Encode(w *Writer) {
	w.Array(6)
	w.Uint(0)
	w.Uint(m.SessionID)
	w.Uint(m.ServerTimeMs)
	w.Uint(m.HBInterval)
	w.Uint(m.MaxFrame)
	w.Bin(m.ServerMAC[:])
}

// Decode implements Message. A refused HELLO is returned as an *Error, or
// as a *ClockChallenge for EXPIRED with a challenge.
func (m *HelloOK) Decode(r *Reader) error {
	n, code, err := r.readHead()
	if err != nil {
		return err
	}
	if code == Expired && n >= 4 {
		c := &ClockChallenge{}
		if c.Message, err = r.OptStr(MaxMessage, "message"); err != nil {
			return err
		}
		if c.ServerTimeMs, err = r.Uint("server_time_ms"); err != nil {
			return err
		}
		if err = r.BinFixed(c.Challenge[:], "challenge"); err != nil {
			return err
		}
		if err = r.SkipRest(4, n); err != nil {
			return err
		}
		return c
	}
	if code != OK {
		return r.refusal(n, code)
	}
	if n < 6 {
		return Missing("hello_ok fields")
	}
	if m.SessionID, err = r.Uint("session_id"); err != nil {
		return err
	}
	if m.ServerTimeMs, err = r.Uint("server_time_ms"); err != nil {
		return err
	}
	if m.HBInterval, err = r.Uint("hb_interval_s"); err != nil {
		return err
	}
	if m.MaxFrame, err = r.Uint("max_frame"); err != nil {
		return err
	}
	if err = r.BinFixed(m.ServerMAC[:], "server_mac"); err != nil {
		return err
	}
	return r.SkipRest(6, n)
}

// ClockChallenge is the HELLO refusal for a terminal whose clock is off
// (spec §3.2): [12, message, server_time_ms, challenge]. The connection
// stays open for one more HELLO that uses Challenge as its nonce. It is
// both a Message and an error that matches Expired.
type ClockChallenge struct {
	Message      string
	ServerTimeMs uint64
	Challenge    [NonceSize]byte
}

// Type implements Message.
func (m *ClockChallenge) Type() byte { return Response(TypeHello) }

// Encode implements Message.
func (m *ClockChallenge) Encode(w *Writer) {
	w.Array(4)
	w.Uint(uint64(Expired))
	w.Str(m.Message)
	w.Uint(m.ServerTimeMs)
	w.Bin(m.Challenge[:])
}

// Decode implements Message.
func (m *ClockChallenge) Decode(r *Reader) error {
	var ok HelloOK
	err := ok.Decode(r)
	if c, is := err.(*ClockChallenge); is {
		*m = *c
		return nil
	}
	if err == nil {
		return bad("not a clock challenge")
	}
	return err
}

// Error implements error.
func (m *ClockChallenge) Error() string { return "EXPIRED: " + m.Message + " (clock challenge)" }

// Unwrap lets errors.Is(err, Expired) match.
func (m *ClockChallenge) Unwrap() error { return Expired }

// Heartbeat is HEARTBEAT 0x02 (spec §4).
type Heartbeat struct {
	GroupVersion uint64
	// Status is the optional status map as MessagePack; after Decode it
	// aliases the body. nil when absent.
	Status []byte
}

// Type implements Message.
func (m *Heartbeat) Type() byte { return TypeHeartbeat }

// Encode implements Message.
func (m *Heartbeat) Encode(w *Writer) {
	if m.Status != nil {
		w.Array(2)
	} else {
		w.Array(1)
	}
	w.Uint(m.GroupVersion)
	if m.Status != nil {
		w.Raw(m.Status)
	}
}

// Decode implements Message.
func (m *Heartbeat) Decode(r *Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 1 {
		return Missing("group_version")
	}
	if m.GroupVersion, err = r.Uint("group_version"); err != nil {
		return err
	}
	m.Status = nil
	if n >= 2 && !r.Nil() {
		if m.Status, err = r.smallMap("status", true); err != nil {
			return err
		}
	}
	return r.SkipRest(min(n, 2), n)
}

// Heartbeat ack flags (spec §4).
const (
	FlagGroupStale     uint64 = 1 << 0
	FlagUpgradePending uint64 = 1 << 1
)

// HeartbeatAck is HEARTBEAT_ACK 0x82.
type HeartbeatAck struct {
	ServerTimeMs uint64
	Flags        uint64
	HBInterval   uint64 // seconds
}

// Type implements Message.
func (m *HeartbeatAck) Type() byte { return Response(TypeHeartbeat) }

// Encode implements Message.
func (m *HeartbeatAck) Encode(w *Writer) {
	w.Array(4)
	w.Uint(0)
	w.Uint(m.ServerTimeMs)
	w.Uint(m.Flags)
	w.Uint(m.HBInterval)
}

// Decode implements Message.
func (m *HeartbeatAck) Decode(r *Reader) error {
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 4 {
		return Missing("heartbeat_ack fields")
	}
	if m.ServerTimeMs, err = r.Uint("server_time_ms"); err != nil {
		return err
	}
	if m.Flags, err = r.Uint("flags"); err != nil {
		return err
	}
	if m.HBInterval, err = r.Uint("hb_interval_s"); err != nil {
		return err
	}
	return r.SkipRest(4, n)
}

// Bye is BYE 0x0C (spec §8); the server answers [0] and closes.
type Bye struct{ Reason string }

// Type implements Message.
func (m *Bye) Type() byte { return TypeBye }

// Encode implements Message.
func (m *Bye) Encode(w *Writer) {
	if m.Reason == "" {
		w.Array(0)
		return
	}
	w.Array(1)
	w.Str(m.Reason)
}

// Decode implements Message.
func (m *Bye) Decode(r *Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	m.Reason = ""
	if n >= 1 {
		if m.Reason, err = r.OptStr(MaxMessage, "reason"); err != nil {
			return err
		}
	}
	return r.SkipRest(min(n, 1), n)
}

// Goaway is the GOAWAY push 0x44: the server closes the connection after
// it (spec §8).
type Goaway struct {
	Code         Code
	Message      string
	RetryAfterMs uint64 // omitted when 0
}

// Type implements Message.
func (m *Goaway) Type() byte { return TypeGoaway }

// Encode implements Message.
func (m *Goaway) Encode(w *Writer) {
	w.Status(&Error{Code: m.Code, Message: m.Message, RetryAfterMs: m.RetryAfterMs})
}

// Decode implements Message.
func (m *Goaway) Decode(r *Reader) error {
	return decodeCodeMessage(r, &m.Code, &m.Message, &m.RetryAfterMs)
}

// ErrorFrame is ERROR 0xFF: [code, message]; the server closes after it.
type ErrorFrame struct {
	Code    Code
	Message string
}

// Type implements Message.
func (m *ErrorFrame) Type() byte { return TypeError }

// Encode implements Message.
func (m *ErrorFrame) Encode(w *Writer) { w.Status(&Error{Code: m.Code, Message: m.Message}) }

// Decode implements Message.
func (m *ErrorFrame) Decode(r *Reader) error {
	// ERROR defines no third element: whatever follows the message is an
	// extension and is skipped, whatever its type.
	return decodeCodeMessage(r, &m.Code, &m.Message, nil)
}

// Error implements error, so a received ERROR frame can be returned as is.
func (m *ErrorFrame) Error() string { return "ERROR " + m.Code.String() + ": " + m.Message }

// Unwrap lets errors.Is match the Code.
func (m *ErrorFrame) Unwrap() error { return m.Code }

// decodeCodeMessage reads [code, message, retry_after_ms?]; retry is nil
// for ERROR, which defines no third element.
func decodeCodeMessage(r *Reader, code *Code, msg *string, retry *uint64) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("code and message")
	}
	c, err := r.UintMax(255, "code")
	if err != nil {
		return err
	}
	*code = Code(c)
	if *msg, err = r.OptStr(MaxMessage, "message"); err != nil {
		return err
	}
	if retry == nil {
		return r.SkipRest(2, n)
	}
	*retry = 0
	if n >= 3 && !r.Nil() {
		if *retry, err = r.Uint("retry_after_ms"); err != nil {
			return err
		}
	}
	return r.SkipRest(min(n, 3), n)
}
