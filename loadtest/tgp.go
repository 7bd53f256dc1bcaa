package loadtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
)

// What simulated terminals send in HELLO.
const (
	tgpFW    = "termload"
	tgpModel = "LOAD"
	// tgpAppID and tgpVersion are what the mixed scenario's upgrade
	// queries ask about; termd without releases answers "no offer".
	tgpAppID   = "termload-app"
	tgpVersion = "1.0.0"
	// tgpService is the service the mixed scenario's control requests
	// name; termd without services answers NOT_FOUND.
	tgpService = "termload-svc"
	// tgpGroup is the group the mixed scenario's group requests name.
	tgpGroup = "termload-group"
)

// tgpLimits are the framing limits of what a terminal receives: the
// server never sends a frame above codec.MinMaxFrame (spec §1).
var (
	tgpLimitsHello = codec.Limits{MaxLen: codec.MinMaxFrame}
	tgpLimitsLive  = codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: true}
)

// Errors of the TGP driver; each closes the connection and is counted.
var (
	errTGPServerMAC = errors.New("tgp: HELLO_OK server_mac does not verify")
	errTGPBadTag    = errors.New("tgp: bad frame tag")
	errTGPUnexpect  = errors.New("tgp: unexpected frame")
)

// tgpProto implements Proto and Requester for TGP/1.
type tgpProto struct {
	secret []byte
	// camp and cst are the campaign scenario's plan and figures (nil
	// outside it).
	camp *CampaignPlan
	cst  *campStats
}

// NewTGP returns the TGP/1 driver: HELLO with K_dev derived from the
// fleet secret, HEARTBEAT as the heartbeat, and (Requester) the mixed
// scenario's upgrade queries, control requests and group requests. It
// verifies server_mac and the tag of every frame it receives.
func NewTGP(secret []byte) Proto { return &tgpProto{secret: secret} }

// tgpScratch is one event loop's encoding state, shared by all its
// terminals (a loop runs one callback at a time).
type tgpScratch struct {
	w   *protocol.Writer
	r   *protocol.Reader
	mac *protocol.MAC

	hb     protocol.Heartbeat
	hbAck  protocol.HeartbeatAck
	ok     protocol.HelloOK
	ref    protocol.Refusal
	goaway protocol.Goaway
	errf   protocol.ErrorFrame
	ack    protocol.Ack
	ctlAck protocol.ControlAck
	uqAck  protocol.UpgradeQueryAck
	glAck  protocol.GroupListAck
	gcAck  protocol.GroupChangeAck
	gaAck  protocol.GroupAuthAck
	ctl    protocol.Control
	uq     protocol.UpgradeQuery
	// uqLaunch and rep are the upgrade scenario's query and report.
	uqLaunch protocol.UpgradeQuery
	rep      protocol.UpgradeReport
	// The campaign scenario's requests and answers.
	sched    protocol.ScheduleRequest
	schedAck protocol.ScheduleAck
	check    protocol.UpgradeCheck
	checkAck protocol.UpgradeCheckAck
	gl       protocol.GroupList
	gc       protocol.GroupChange
	ga       protocol.GroupAuth
}

// NewScratch implements Scratcher.
func (p *tgpProto) NewScratch() any {
	s := &tgpScratch{w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
	s.ctl = protocol.Control{ServiceID: tgpService, Op: protocol.OpStatus}
	s.uq = protocol.UpgradeQuery{AppID: tgpAppID, Version: tgpVersion}
	s.gc = protocol.GroupChange{Op: protocol.GroupLeave, From: tgpGroup}
	s.ga = protocol.GroupAuth{GroupID: tgpGroup}
	return s
}

func (p *tgpProto) scratch(t *Term) *tgpScratch {
	if s, ok := t.Scratch.(*tgpScratch); ok {
		return s
	}
	// A caller outside the engine (a test) gave none: make one for t.
	s := p.NewScratch().(*tgpScratch)
	t.Scratch = s
	return s
}

// tgpSession is one terminal's session state: K_s and the two frame
// counters, plus the HELLO's secrets until HELLO_OK.
type tgpSession struct {
	ks    protocol.Key
	nIn   uint64 // tagged frames received
	nOut  uint64 // tagged frames sent
	live  bool
	hello *tgpHello // nil once live
	up    upState   // the upgrade scenario's progress
	camp  campState // the campaign scenario's progress
	// srvOff is the server's clock minus ours, ms (HELLO_OK's server_time_ms).
	srvOff int64
}

// tgpHello is what verifying HELLO_OK and deriving K_s need.
type tgpHello struct {
	kdev    protocol.Key
	mac     protocol.Key
	nonce   [protocol.NonceSize]byte
	retried bool // a clock challenge was answered already
}

// Name implements Proto.
func (p *tgpProto) Name() string { return "tgp" }

// Open implements Proto: it appends HELLO and starts a fresh session.
func (p *tgpProto) Open(t *Term, now time.Time, out []byte) []byte {
	sc := p.scratch(t)
	h := &tgpHello{}
	h.kdev = sc.mac.DeviceKey(p.secret, t.ID)
	_, _ = rand.Read(h.nonce[:])
	t.State = &tgpSession{hello: h}
	return append(out, p.hello(sc, t.ID, h, uint64(now.Unix()))...)
}

// hello encodes HELLO with h's nonce and ts, and records its mac.
func (p *tgpProto) hello(sc *tgpScratch, id string, h *tgpHello, ts uint64) []byte {
	m := protocol.Hello{DeviceID: id, TS: ts, Nonce: h.nonce, FW: tgpFW, Model: tgpModel}
	m.MAC = sc.mac.HelloMAC(&h.kdev, id, ts, h.nonce[:], tgpFW, tgpModel)
	h.mac = m.MAC
	sc.w.Reset()
	return sc.w.AppendFrame(0, &m)
}

// Ping implements Proto: it appends one tagged HEARTBEAT [0].
func (p *tgpProto) Ping(t *Term, seq uint16, out []byte) []byte {
	sc := p.scratch(t)
	s := t.State.(*tgpSession)
	sc.w.Reset()
	f := sc.w.AppendTaggedFrame(sc.mac, &s.ks, protocol.DirTerminal, s.nOut, seq, &sc.hb)
	s.nOut++
	return append(out, f...)
}

// Request implements Requester for the mixed scenario's kinds.
func (p *tgpProto) Request(t *Term, kind string, seq uint16, out []byte) ([]byte, bool) {
	sc := p.scratch(t)
	s, ok := t.State.(*tgpSession)
	if !ok || !s.live {
		return out, false
	}
	var m protocol.Message
	switch kind {
	case KindHeartbeat:
		return p.Ping(t, seq, out), true
	case KindSchedule, KindUpgradeCheck:
		cm, ok := p.campaignRequest(t, sc, s, kind)
		if !ok {
			return out, false
		}
		m = cm
	case KindUpgradeQuery, KindUpgradeReport:
		if cm, ok := p.campaignRequest(t, sc, s, kind); ok {
			m = cm
		} else if um, ok := p.upgradeRequest(sc, s, kind); ok {
			m = um
		} else if kind == KindUpgradeQuery {
			m = &sc.uq
		} else {
			return out, false
		}
	case KindControl:
		m = &sc.ctl
	case KindGroupList:
		m = &sc.gl
	case KindGroupChange:
		sc.gc.RequestID = uint64(seq)
		m = &sc.gc
	case KindGroupAuth:
		m = &sc.ga
	default:
		return out, false
	}
	sc.w.Reset()
	f := sc.w.AppendTaggedFrame(sc.mac, &s.ks, protocol.DirTerminal, s.nOut, seq, m)
	s.nOut++
	return append(out, f...), true
}

// Read implements Proto: it consumes one whole frame.
func (p *tgpProto) Read(t *Term, in []byte) (int, Event, error) {
	s, ok := t.State.(*tgpSession)
	if !ok {
		return 0, Event{}, errTGPUnexpect
	}
	lim := tgpLimitsHello
	if s.live {
		lim = tgpLimitsLive
	}
	f, err := codec.Split(in, lim)
	if errors.Is(err, codec.ErrIncomplete) {
		return 0, Event{}, nil
	}
	if err != nil {
		return 0, Event{}, err
	}
	n := f.Size()
	sc := p.scratch(t)
	if !s.live {
		ev, err := p.readHello(t, sc, s, &f)
		return n, ev, err
	}
	if !sc.mac.VerifyTag(&s.ks, protocol.DirServer, s.nIn, f.Signed(), f.Tag) {
		return n, Event{}, errTGPBadTag
	}
	s.nIn++
	ev, err := p.readLive(t, sc, s, &f)
	return n, ev, err
}

// readHello handles the frame that answers HELLO: HELLO_OK, a refusal, a
// clock challenge (answered once with a retry HELLO) or an ERROR.
func (p *tgpProto) readHello(t *Term, sc *tgpScratch, s *tgpSession, f *codec.Frame) (Event, error) {
	switch f.Header.Type {
	case protocol.TypeError:
		if err := protocol.DecodeBody(sc.r, f.Body, &sc.errf); err != nil {
			return Event{}, err
		}
		return Event{Kind: EvRefused, Status: sc.errf.Code.String(), Err: fmt.Errorf("tgp: ERROR %s: %s", sc.errf.Code, sc.errf.Message)}, nil
	case protocol.Response(protocol.TypeHello):
	default:
		return Event{}, fmt.Errorf("%w: type 0x%02x before HELLO_OK", errTGPUnexpect, f.Header.Type)
	}
	h := s.hello
	err := protocol.DecodeBody(sc.r, f.Body, &sc.ok)
	var ch *protocol.ClockChallenge
	var refusal *protocol.Error
	switch {
	case err == nil:
	case errors.As(err, &ch):
		if h.retried {
			return Event{Kind: EvRefused, Status: protocol.Expired.String(), Err: err}, nil
		}
		// Spec §3.2: one retry with the challenge as nonce and the
		// server's time as ts.
		h.retried = true
		h.nonce = ch.Challenge
		return Event{Reply: p.hello(sc, t.ID, h, ch.ServerTimeMs/1000)}, nil
	case errors.As(err, &refusal):
		return Event{Kind: EvRefused, Status: refusal.Code.String(), Err: refusal}, nil
	default:
		return Event{}, err
	}
	want := sc.mac.ServerMAC(&h.kdev, h.mac[:], sc.ok.SessionID, sc.ok.ServerTimeMs)
	if !protocol.Equal(want[:], sc.ok.ServerMAC[:]) {
		return Event{}, errTGPServerMAC
	}
	s.ks = sc.mac.SessionKey(&h.kdev, h.nonce[:], sc.ok.SessionID)
	s.srvOff = int64(sc.ok.ServerTimeMs) - time.Now().UnixMilli()
	s.live, s.hello = true, nil
	return Event{Kind: EvOpened, Interval: time.Duration(sc.ok.HBInterval) * time.Second}, nil
}

// readLive handles a verified frame of an established session.
func (p *tgpProto) readLive(t *Term, sc *tgpScratch, s *tgpSession, f *codec.Frame) (Event, error) {
	typ, seq := f.Header.Type, f.Header.Seq
	switch typ {
	case protocol.Response(protocol.TypeHeartbeat):
		status, err := p.answer(sc, f.Body, &sc.hbAck)
		if err != nil {
			return Event{}, err
		}
		return Event{Kind: EvPong, Seq: seq, Status: status.String(), Err: refusalErr(status)}, nil
	case protocol.Response(protocol.TypeControl):
		status, err := p.answer(sc, f.Body, &sc.ctlAck)
		return answerEvent(seq, status, err)
	case protocol.Response(protocol.TypeUpgradeQuery):
		status, err := p.answer(sc, f.Body, &sc.uqAck)
		note := ""
		if err == nil {
			s.upgradeAnswered(true, status, sc.uqAck.Offer)
			note = p.queryAnswered(s, status, sc)
		}
		return notedEvent(seq, status, err, note)
	case protocol.Response(protocol.TypeScheduleReq):
		status, err := p.answer(sc, f.Body, &sc.schedAck)
		note := ""
		if err == nil {
			note = p.scheduleAnswered(s, status, sc)
		}
		return notedEvent(seq, status, err, note)
	case protocol.Response(protocol.TypeUpgradeCheck):
		status, err := p.answer(sc, f.Body, &sc.checkAck)
		note := ""
		if err == nil {
			note = p.checkAnswered(t, s, status, sc)
		}
		return notedEvent(seq, status, err, note)
	case protocol.Response(protocol.TypeUpgradeReport):
		sc.ack.AckType = typ
		status, err := p.answer(sc, f.Body, &sc.ack)
		if err == nil {
			s.upgradeAnswered(false, status, nil)
		}
		return answerEvent(seq, status, err)
	case protocol.Response(protocol.TypeGroupList):
		status, err := p.answer(sc, f.Body, &sc.glAck)
		return answerEvent(seq, status, err)
	case protocol.Response(protocol.TypeGroupChange):
		status, err := p.answer(sc, f.Body, &sc.gcAck)
		return answerEvent(seq, status, err)
	case protocol.Response(protocol.TypeGroupAuth):
		status, err := p.answer(sc, f.Body, &sc.gaAck)
		return answerEvent(seq, status, err)
	case protocol.TypeGoaway:
		if err := protocol.DecodeBody(sc.r, f.Body, &sc.goaway); err != nil {
			return Event{}, err
		}
		ev := Event{Kind: EvClosed, Status: sc.goaway.Code.String()}
		if sc.goaway.Code == protocol.Conflict {
			ev.Err = ErrReplaced
		} else {
			ev.Err = fmt.Errorf("tgp: GOAWAY %s: %s", sc.goaway.Code, sc.goaway.Message)
		}
		return ev, nil
	case protocol.TypeError:
		if err := protocol.DecodeBody(sc.r, f.Body, &sc.errf); err != nil {
			return Event{}, err
		}
		return Event{Kind: EvClosed, Status: sc.errf.Code.String(), Err: fmt.Errorf("tgp: ERROR %s: %s", sc.errf.Code, sc.errf.Message)}, nil
	}
	if protocol.PushNeedsAck(typ) {
		// The generator takes no part in upgrades or groups: it only
		// acknowledges, so the server does not retry.
		sc.ack.AckType = protocol.Response(typ)
		sc.w.Reset()
		reply := sc.w.AppendTaggedFrame(sc.mac, &s.ks, protocol.DirTerminal, s.nOut, seq, &sc.ack)
		s.nOut++
		return Event{Reply: reply}, nil
	}
	if typ&protocol.ResponseBit != 0 && protocol.IsRequest(typ&^protocol.ResponseBit) {
		// The response to a request kind this driver has no decoder for.
		return Event{Kind: EvAnswer, Seq: seq, Status: "OK"}, nil
	}
	return Event{}, nil // other pushes (GROUP_MESSAGE, unknown) are ignored
}

// answer decodes a response body: its status, and for OK the whole body
// into m. A refusal is returned as its status with a nil error; err is
// set only for a malformed body.
func (p *tgpProto) answer(sc *tgpScratch, body []byte, m protocol.Message) (protocol.Code, error) {
	if !protocol.IsArrayStart(body) {
		return 0, protocol.ErrNotArray
	}
	sc.r.Reset(body)
	_, code, err := sc.r.Head()
	if err != nil {
		return 0, err
	}
	if code != protocol.OK {
		sc.ref.RespType = m.Type()
		return code, protocol.DecodeBody(sc.r, body, &sc.ref)
	}
	return code, protocol.DecodeBody(sc.r, body, m)
}

// refusalErr is the Err of an answer event: nil for OK, else the status
// (a Code in an interface: no allocation).
func refusalErr(status protocol.Code) error {
	if status == protocol.OK {
		return nil
	}
	return status
}

// answerEvent is the EvAnswer of a response, or a malformed body's error.
func answerEvent(seq uint16, status protocol.Code, err error) (Event, error) {
	if err != nil {
		return Event{}, err
	}
	return Event{Kind: EvAnswer, Seq: seq, Status: status.String(), Err: refusalErr(status)}, nil
}

// notedEvent is answerEvent with a Note (a count of the campaign scenario).
func notedEvent(seq uint16, status protocol.Code, err error, note string) (Event, error) {
	ev, err := answerEvent(seq, status, err)
	ev.Note = note
	return ev, err
}
