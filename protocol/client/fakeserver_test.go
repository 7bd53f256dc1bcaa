package client

import (
	"bufio"
	"crypto/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
)

// A small TGP/1 server built from the protocol package, enough to drive
// the SDK: HELLO with the clock challenge, tags both ways, heartbeats, an
// echo request type, BYE, and knobs to inject faults.

const testSecret = "dev-fleet-secret"

// typeEcho is a test request: [payload str] → 0xA0 [0, payload str].
const typeEcho byte = 0x20

type echoReq struct{ Payload string }

func (m *echoReq) Type() byte { return typeEcho }
func (m *echoReq) Encode(w *protocol.Writer) {
	w.Array(1)
	w.Str(m.Payload)
}
func (m *echoReq) Decode(r *protocol.Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 1 {
		return protocol.Missing("payload")
	}
	if m.Payload, err = r.Str(protocol.MaxPayload, "payload"); err != nil {
		return err
	}
	return r.SkipRest(1, n)
}

type echoResp struct{ Payload string }

func (m *echoResp) Type() byte { return protocol.Response(typeEcho) }
func (m *echoResp) Encode(w *protocol.Writer) {
	w.Array(2)
	w.Uint(0)
	w.Str(m.Payload)
}
func (m *echoResp) Decode(r *protocol.Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	code, err := r.UintMax(255, "status")
	if err != nil {
		return err
	}
	if code != 0 {
		e := &protocol.Error{Code: protocol.Code(code)}
		if n >= 2 {
			if e.Message, err = r.OptStr(protocol.MaxMessage, "message"); err != nil {
				return err
			}
		}
		return e
	}
	if m.Payload, err = r.Str(protocol.MaxPayload, "payload"); err != nil {
		return err
	}
	return r.SkipRest(2, n)
}

// rawMsg sends a pre-encoded body in any frame type.
type rawMsg struct {
	typ  byte
	body []byte
}

func (m *rawMsg) Type() byte                      { return m.typ }
func (m *rawMsg) Encode(w *protocol.Writer)       { w.Raw(m.body) }
func (m *rawMsg) Decode(r *protocol.Reader) error { return nil }

type fakeOpts struct {
	now           func() time.Time // server clock; nil → time.Now
	sessionID     uint64           // first session_id; 0 → 1000
	hbInterval    uint64           // announced in HELLO_OK; 0 → 30
	ackInterval   uint64           // announced in acks; 0 → hbInterval
	ackFlags      uint64
	keys          map[string]protocol.Key // per-device keys
	badServerMAC  bool
	challengeSkew time.Duration // added to the challenge's server_time_ms
	reChallenge   bool          // challenge the retry too (a broken server)
	refuse        *protocol.Error
	holdEcho      int  // hold echo requests until this many, answer in reverse
	noRecord      bool // do not copy frames (allocation test)
}

type fakeServer struct {
	t     *testing.T
	ln    net.Listener
	opts  fakeOpts
	conns chan *fakeConn
	next  atomic.Uint64
}

func newFake(t *testing.T, opts fakeOpts) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.hbInterval == 0 {
		opts.hbInterval = 30
	}
	if opts.ackInterval == 0 {
		opts.ackInterval = opts.hbInterval
	}
	if opts.sessionID == 0 {
		opts.sessionID = 1000
	}
	s := &fakeServer{t: t, ln: ln, opts: opts, conns: make(chan *fakeConn, 16)}
	s.next.Store(opts.sessionID)
	go s.accept()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) now() time.Time {
	if s.opts.now != nil {
		return s.opts.now()
	}
	return time.Now()
}

func (s *fakeServer) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{
			srv:    s,
			nc:     nc,
			w:      protocol.NewWriter(),
			wmac:   protocol.NewMAC(),
			rx:     make(chan rxFrame, 1024),
			closed: make(chan struct{}),
			hold:   s.opts.holdEcho,
		}
		s.t.Cleanup(func() { nc.Close() })
		go fc.serve()
	}
}

// conn waits for the next connection that got past HELLO (or was refused
// after its HELLOs were read).
func (s *fakeServer) conn(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case fc := <-s.conns:
		return fc
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the fake server")
		return nil
	}
}

type rxFrame struct {
	h    codec.Header
	raw  []byte
	body []byte
	at   time.Time
}

type fakeConn struct {
	srv *fakeServer
	nc  net.Conn

	// Handshake results; read them after conn() returned.
	hellos    []protocol.Hello
	helloRaw  [][]byte
	challenge [protocol.NonceSize]byte
	ks        protocol.Key
	sessionID uint64

	wmu     sync.Mutex
	w       *protocol.Writer
	wmac    *protocol.MAC
	outN    uint64
	pushSeq uint16
	tx      [][]byte // tagged frames sent, when recording

	dropAcks atomic.Bool
	rx       chan rxFrame  // tagged frames received
	closed   chan struct{} // the read loop ended

	mu   sync.Mutex
	hold int // echo requests are held until this many (0: answer at once)
	held []heldEcho

	// Owned by the read loop.
	hb  protocol.Heartbeat
	ack protocol.HeartbeatAck
}

type heldEcho struct {
	seq     uint16
	payload string
}

func (fc *fakeConn) serve() {
	defer close(fc.closed)
	defer fc.nc.Close()
	br := bufio.NewReaderSize(fc.nc, codec.MaxLen+codec.HeaderSize)
	src := &codec.BufferedSource{R: br}
	if !fc.handshake(src) {
		return
	}
	r := protocol.NewReader(nil)
	mac := protocol.NewMAC()
	var inN uint64
	lim := codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: true}
	for {
		f, err := codec.Next(src, lim)
		if err != nil {
			return
		}
		if !mac.VerifyTag(&fc.ks, protocol.DirTerminal, inN, f.Signed(), f.Tag) {
			fc.srv.t.Logf("fake: bad tag from the client on %s seq %d", protocol.TypeName(f.Header.Type), f.Header.Seq)
			return
		}
		inN++
		if !fc.srv.opts.noRecord {
			raw := append([]byte(nil), f.Raw...)
			fc.rx <- rxFrame{h: f.Header, raw: raw, body: raw[codec.HeaderSize : len(raw)-codec.TagSize], at: time.Now()}
		}
		if !fc.handle(r, f) {
			return
		}
		src.Discard(f.Size())
	}
}

// handle answers one frame; false closes the connection.
func (fc *fakeConn) handle(r *protocol.Reader, f codec.Frame) bool {
	seq := f.Header.Seq
	switch t := f.Header.Type; {
	case t == protocol.TypeHeartbeat:
		if err := protocol.DecodeBody(r, f.Body, &fc.hb); err != nil {
			fc.srv.t.Errorf("fake: heartbeat: %v", err)
		}
		if fc.dropAcks.Load() {
			return true
		}
		fc.ack = protocol.HeartbeatAck{
			ServerTimeMs: uint64(fc.srv.now().UnixMilli()),
			Flags:        fc.srv.opts.ackFlags,
			HBInterval:   fc.srv.opts.ackInterval,
		}
		fc.send(seq, &fc.ack)
	case t == typeEcho:
		var req echoReq
		if err := protocol.DecodeBody(r, f.Body, &req); err != nil {
			fc.send(seq, &protocol.Refusal{RespType: protocol.Response(t), Err: &protocol.Error{Code: protocol.BadRequest, Message: "bad echo"}})
			return true
		}
		fc.mu.Lock()
		if fc.hold > 0 {
			fc.held = append(fc.held, heldEcho{seq, req.Payload})
			if len(fc.held) >= fc.hold {
				fc.flushLocked()
			}
			fc.mu.Unlock()
			return true
		}
		fc.mu.Unlock()
		fc.send(seq, &echoResp{Payload: req.Payload})
	case t == protocol.TypeBye:
		fc.send(seq, &protocol.Ack{AckType: protocol.Response(t)})
		return false
	case protocol.IsPushAck(t):
	default:
		fc.send(seq, &protocol.Refusal{RespType: protocol.Response(t), Err: &protocol.Error{Code: protocol.UnknownType, Message: "unknown"}})
	}
	return true
}

// flushLocked answers the held echo requests, newest first.
func (fc *fakeConn) flushLocked() {
	for i := len(fc.held) - 1; i >= 0; i-- {
		fc.send(fc.held[i].seq, &echoResp{Payload: fc.held[i].payload})
	}
	fc.held = fc.held[:0]
}

// release answers what is held and stops holding.
func (fc *fakeConn) release() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.hold = 0
	fc.flushLocked()
}

func (fc *fakeConn) heldCount() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.held)
}

// handshake runs HELLO; false means the connection was refused.
func (fc *fakeConn) handshake(src *codec.BufferedSource) bool {
	s := fc.srv
	r := protocol.NewReader(nil)
	mac := protocol.NewMAC()
	challenged := false
	defer func() { s.conns <- fc }()
	for {
		f, err := codec.Next(src, codec.Limits{MaxLen: codec.MinMaxFrame})
		if err != nil {
			return false
		}
		if f.Header.Type != protocol.TypeHello {
			fc.sendPlain(f.Header.Seq, &protocol.ErrorFrame{Code: protocol.Unauthenticated, Message: "HELLO first"})
			return false
		}
		var h protocol.Hello
		if err := protocol.DecodeBody(r, f.Body, &h); err != nil {
			fc.refuse(f.Header.Seq, protocol.StatusOf(err), "bad hello")
			return false
		}
		fc.hellos = append(fc.hellos, h)
		fc.helloRaw = append(fc.helloRaw, append([]byte(nil), f.Raw...))
		seq := f.Header.Seq
		src.Discard(f.Size())

		now := s.now()
		skew := int64(h.TS) - now.Unix()
		if (!challenged && (skew > 300 || skew < -300)) || (challenged && s.opts.reChallenge) {
			if _, err := rand.Read(fc.challenge[:]); err != nil {
				panic(err)
			}
			fc.sendPlain(seq, &protocol.ClockChallenge{
				Message:      "clock",
				ServerTimeMs: uint64(now.Add(s.opts.challengeSkew).UnixMilli()),
				Challenge:    fc.challenge,
			})
			challenged = true
			continue
		}
		if challenged && h.Nonce != fc.challenge {
			fc.refuse(seq, protocol.Unauthenticated, "not the challenge")
			return false
		}
		kdev, ok := s.opts.keys[h.DeviceID]
		if !ok {
			kdev = mac.DeviceKey([]byte(testSecret), h.DeviceID)
		}
		want := mac.HelloMAC(&kdev, h.DeviceID, h.TS, h.Nonce[:], h.FW, h.Model)
		if !protocol.Equal(want[:], h.MAC[:]) {
			fc.refuse(seq, protocol.Unauthenticated, "bad mac")
			return false
		}
		if e := s.opts.refuse; e != nil {
			fc.sendPlain(seq, &protocol.Refusal{RespType: protocol.Response(protocol.TypeHello), Err: e})
			return false
		}
		fc.sessionID = s.next.Add(1) - 1
		ok2 := &protocol.HelloOK{
			SessionID:    fc.sessionID,
			ServerTimeMs: uint64(now.UnixMilli()),
			HBInterval:   s.opts.hbInterval,
			MaxFrame:     codec.MinMaxFrame,
		}
		ok2.ServerMAC = mac.ServerMAC(&kdev, h.MAC[:], ok2.SessionID, ok2.ServerTimeMs)
		if s.opts.badServerMAC {
			ok2.ServerMAC[0] ^= 1
		}
		fc.ks = mac.SessionKey(&kdev, h.Nonce[:], fc.sessionID)
		fc.sendPlain(seq, ok2)
		return true
	}
}

func (fc *fakeConn) refuse(seq uint16, code protocol.Code, msg string) {
	fc.sendPlain(seq, &protocol.Refusal{RespType: protocol.Response(protocol.TypeHello), Err: &protocol.Error{Code: code, Message: msg}})
}

// sendPlain writes an untagged frame (before HELLO_OK).
func (fc *fakeConn) sendPlain(seq uint16, m protocol.Message) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.w.Reset()
	_, _ = fc.nc.Write(fc.w.AppendFrame(seq, m))
}

// send writes a tagged frame.
func (fc *fakeConn) send(seq uint16, m protocol.Message) { fc.sendTagged(seq, m, false) }

// sendBadTag writes a tagged frame whose tag is wrong.
func (fc *fakeConn) sendBadTag(seq uint16, m protocol.Message) { fc.sendTagged(seq, m, true) }

func (fc *fakeConn) sendTagged(seq uint16, m protocol.Message, corrupt bool) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.w.Reset()
	frame := fc.w.AppendTaggedFrame(fc.wmac, &fc.ks, protocol.DirServer, fc.outN, seq, m)
	fc.outN++
	if corrupt {
		frame[len(frame)-1] ^= 0xFF
	}
	if !fc.srv.opts.noRecord {
		fc.tx = append(fc.tx, append([]byte(nil), frame...))
	}
	_, _ = fc.nc.Write(frame)
}

// push sends a push with the connection's next push seq and returns it.
func (fc *fakeConn) push(m protocol.Message) uint16 {
	fc.wmu.Lock()
	seq := fc.pushSeq
	fc.pushSeq++
	fc.wmu.Unlock()
	fc.send(seq, m)
	return seq
}

func (fc *fakeConn) writeRaw(b []byte) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_, _ = fc.nc.Write(b)
}

func (fc *fakeConn) sent() [][]byte {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return append([][]byte(nil), fc.tx...)
}

// frame waits for the next tagged frame from the client.
func (fc *fakeConn) frame(t *testing.T, within time.Duration) rxFrame {
	t.Helper()
	select {
	case f := <-fc.rx:
		return f
	case <-time.After(within):
		t.Fatalf("no frame from the client within %v", within)
		return rxFrame{}
	}
}

// quiet checks that the client sends nothing for d.
func (fc *fakeConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-fc.rx:
		t.Fatalf("unexpected frame %s seq %d", protocol.TypeName(f.h.Type), f.h.Seq)
	case <-time.After(d):
	}
}

// waitClosed waits until the fake's read loop ended (the client closed).
func (fc *fakeConn) waitClosed(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-fc.closed:
	case <-time.After(within):
		t.Fatalf("connection still open after %v", within)
	}
}
