package loadtest

import (
	"errors"
	"strconv"
	"time"
)

// MQTT 3.1.1 as the peer baseline needs it: a session (CONNECT/CONNACK)
// and a heartbeat (PINGREQ/PINGRESP), encoded by hand so the ping path
// allocates nothing and no MQTT library sits between the generator and
// the broker.

// Control packet types (first byte of the fixed header, flags included).
const (
	mqttConnect  = 0x10
	mqttConnack  = 0x20
	mqttPingreq  = 0xC0
	mqttPingresp = 0xD0
)

const (
	// mqttLevel is the protocol level of MQTT 3.1.1.
	mqttLevel = 4
	// mqttCleanSession is the CONNECT flag for a fresh session: the broker
	// keeps nothing between runs.
	mqttCleanSession = 0x02
	// mqttKeepAliveS is the keepalive sent in CONNECT, seconds. Long, so the
	// broker never times out an idle terminal during a run (idle terminals
	// send nothing; the broker closes after 1.5 × keepalive).
	mqttKeepAliveS = 600
	// mqttMaxRemaining bounds the remaining length we wait for, bytes. The
	// generator subscribes to nothing, so a broker sends only CONNACK (2)
	// and PINGRESP (0); anything larger than this is treated as a broken
	// stream rather than buffered.
	mqttMaxRemaining = 64 << 10
	// mqttPingWindow is how many outstanding PINGREQs a terminal tracks
	// (2 bytes each). Beyond it, pings are sent but not tracked: see
	// mqttState.
	mqttPingWindow = 32
)

// errMQTTRemaining reports a remaining length of more than four bytes.
var errMQTTRemaining = errors.New("mqtt: malformed remaining length")

// errMQTTTooLarge reports a packet above mqttMaxRemaining.
var errMQTTTooLarge = errors.New("mqtt: packet larger than " + strconv.Itoa(mqttMaxRemaining) + " bytes")

// errMQTTConnack reports a CONNACK whose remaining length is not 2.
var errMQTTConnack = errors.New("mqtt: malformed CONNACK")

// ConnackCode is a CONNACK return code other than 0 (accepted); it is the
// Err of an EvRefused event.
type ConnackCode byte

// connackNames are the return codes' texts (MQTT 3.1.1 §3.2.2.3) and,
// for Event.Status, constant names in TGP's style.
var connackNames = [...]struct{ text, status string }{
	1: {"unacceptable protocol version", "UNACCEPTABLE_PROTOCOL_VERSION"},
	2: {"identifier rejected", "IDENTIFIER_REJECTED"},
	3: {"server unavailable", "SERVER_UNAVAILABLE"},
	4: {"bad user name or password", "BAD_USER_NAME_OR_PASSWORD"},
	5: {"not authorized", "NOT_AUTHORIZED"},
}

// connackUnknownStatus is the Status of a return code MQTT 3.1.1 does not
// define.
const connackUnknownStatus = "CONNACK_REFUSED"

// Error implements error.
func (c ConnackCode) Error() string {
	if int(c) < len(connackNames) && connackNames[c].text != "" {
		return connackNames[c].text
	}
	return "connack code " + strconv.Itoa(int(c))
}

// Status is the code's constant name, for Event.Status.
func (c ConnackCode) Status() string {
	if int(c) < len(connackNames) && connackNames[c].status != "" {
		return connackNames[c].status
	}
	return connackUnknownStatus
}

// mqttState is one terminal's session state: the seqs of its outstanding
// PINGREQs, oldest first, in a ring. MQTT has no ids, and a broker answers
// pings in order, so the n-th PINGRESP answers the n-th PINGREQ.
//
// When the ring is full, further pings are counted in untracked instead
// of recorded, and so are all pings after them until the count drains:
// every tracked ping then precedes every untracked one, so the pongs that
// arrive first still match their seqs, and the untracked ones' pongs are
// consumed as EvNone (the engine sees those pings as unanswered).
type mqttState struct {
	seqs      [mqttPingWindow]uint16
	head, n   uint8
	untracked uint32
}

// push records an outstanding ping.
func (s *mqttState) push(seq uint16) {
	if s.untracked > 0 || int(s.n) == mqttPingWindow {
		s.untracked++
		return
	}
	s.seqs[(int(s.head)+int(s.n))%mqttPingWindow] = seq
	s.n++
}

// pop matches one PINGRESP: the oldest tracked ping's seq, or ok false if
// the pong answered an untracked (or unknown) ping.
func (s *mqttState) pop() (seq uint16, ok bool) {
	if s.n == 0 {
		if s.untracked > 0 {
			s.untracked--
		}
		return 0, false
	}
	seq = s.seqs[s.head]
	s.head = uint8((int(s.head) + 1) % mqttPingWindow)
	s.n--
	return seq, true
}

// mqttProto implements Proto for MQTT 3.1.1.
type mqttProto struct{}

// NewMQTT returns the MQTT 3.1.1 driver: CONNECT with a clean session and
// the terminal's ID as client id, PINGREQ as the heartbeat.
func NewMQTT() Proto { return mqttProto{} }

// Name implements Proto.
func (mqttProto) Name() string { return "mqtt" }

// Open implements Proto: it appends CONNECT and resets t.State.
func (mqttProto) Open(t *Term, _ time.Time, out []byte) []byte {
	if s, ok := t.State.(*mqttState); ok {
		*s = mqttState{}
	} else {
		t.State = &mqttState{}
	}
	return appendMQTTConnect(out, t.ID, mqttKeepAliveS)
}

// Ping implements Proto: it appends PINGREQ and remembers seq.
func (mqttProto) Ping(t *Term, seq uint16, out []byte) []byte {
	t.State.(*mqttState).push(seq)
	return append(out, mqttPingreq, 0)
}

// Read implements Proto. It consumes one whole packet: CONNACK becomes
// EvOpened or EvRefused, PINGRESP EvPong with the oldest outstanding
// ping's seq, anything else EvNone.
func (mqttProto) Read(t *Term, in []byte) (int, Event, error) {
	hdr, rem, err := mqttFixedHeader(in)
	if hdr == 0 || err != nil {
		return 0, Event{}, err
	}
	n := hdr + rem
	if len(in) < n {
		return 0, Event{}, nil
	}
	switch in[0] {
	case mqttConnack:
		if rem != 2 {
			return 0, Event{}, errMQTTConnack
		}
		if rc := in[hdr+1]; rc != 0 {
			code := ConnackCode(rc)
			return n, Event{Kind: EvRefused, Err: code, Status: code.Status()}, nil
		}
		return n, Event{Kind: EvOpened}, nil
	case mqttPingresp:
		s, _ := t.State.(*mqttState)
		if s == nil {
			return n, Event{}, nil
		}
		if seq, ok := s.pop(); ok {
			return n, Event{Kind: EvPong, Seq: seq}, nil
		}
	}
	return n, Event{}, nil
}

// mqttFixedHeader decodes a fixed header: its length in bytes (0 if in
// does not hold all of it yet) and the remaining length it declares.
func mqttFixedHeader(in []byte) (hdr, rem int, err error) {
	for i := 1; i < len(in); i++ {
		b := in[i]
		rem |= int(b&0x7F) << (7 * (i - 1))
		if b&0x80 == 0 {
			if rem > mqttMaxRemaining {
				return 0, 0, errMQTTTooLarge
			}
			return i + 1, rem, nil
		}
		if i == 4 { // a fourth length byte may not continue
			return 0, 0, errMQTTRemaining
		}
	}
	return 0, 0, nil
}

// appendMQTTConnect appends a CONNECT packet for clientID.
func appendMQTTConnect(out []byte, clientID string, keepAliveS uint16) []byte {
	const variable = 10 // "MQTT" with its length, level, flags, keepalive
	out = append(out, mqttConnect)
	out = appendMQTTLength(out, variable+2+len(clientID))
	out = append(out, 0, 4, 'M', 'Q', 'T', 'T', mqttLevel, mqttCleanSession,
		byte(keepAliveS>>8), byte(keepAliveS))
	out = append(out, byte(len(clientID)>>8), byte(len(clientID)))
	return append(out, clientID...)
}

// appendMQTTLength appends a remaining length (7 bits a byte, low first).
func appendMQTTLength(out []byte, n int) []byte {
	for {
		b := byte(n & 0x7F)
		n >>= 7
		if n == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}
