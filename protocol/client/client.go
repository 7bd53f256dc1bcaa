// Package client is the Go terminal SDK for TGP/1: it dials a termd
// server, authenticates with HELLO (including the clock-challenge retry),
// tags and verifies every later frame, pipelines requests, keeps the
// heartbeat going, acks pushes and implements the spec's reconnect rule.
// Tests, the operator CLI's simulator and the load tester use it; firmware
// teams can read it as a reference terminal.
package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
)

// Defaults of Config's zero values.
const (
	// DefaultHBMin and DefaultHBMax are the spec's clamp for hb_interval_s (§4).
	DefaultHBMin = 10 * time.Second
	DefaultHBMax = 600 * time.Second
	// DefaultHelloTimeout bounds the HELLO exchange when ctx has no earlier
	// deadline; it matches the server's hello_timeout.
	DefaultHelloTimeout = 10 * time.Second
	// maxAckWait caps the heartbeat ack deadline: min(interval, 30 s) (§4).
	maxAckWait = 30 * time.Second
	// writeTimeout bounds one socket write; a server that does not read
	// for this long is treated as gone (the session is closed).
	writeTimeout = 30 * time.Second
	// requestSlots is how many Do requests may be outstanding at once. The
	// server refuses the 17th outstanding request (MaxInFlight), and one
	// slot is kept for the heartbeat so a burst of slow requests can never
	// starve it into an ack timeout.
	requestSlots = protocol.MaxInFlight - 1
)

// Errors a session can end with (besides *protocol.ErrorFrame,
// *GoawayError and read errors).
var (
	// ErrBadServerMAC: HELLO_OK's server_mac did not verify; the server
	// does not know K_dev (or the frame was forged).
	ErrBadServerMAC = errors.New("client: bad server_mac")
	// ErrBadTag: a frame's tag did not verify.
	ErrBadTag = errors.New("client: bad tag")
	// ErrMalformed wraps every framing or body fault in a server frame.
	ErrMalformed = errors.New("client: malformed frame")
	// ErrAckTimeout: no HEARTBEAT_ACK within min(hb_interval, 30 s).
	ErrAckTimeout = errors.New("client: heartbeat ack timeout")
	// ErrClosed: the connection was closed by Close or after Bye.
	ErrClosed = errors.New("client: connection closed")
	// ErrStalled: Stall was called; nothing is sent any more.
	ErrStalled = errors.New("client: connection stalled")
	// ErrFrameTooLarge: a request does not fit in the server's max_frame.
	ErrFrameTooLarge = errors.New("client: frame above max_frame")
)

// GoawayError is the error a session ends with when the server sent
// GOAWAY. errors.Is(err, protocol.Conflict) etc. match its code.
type GoawayError struct{ Goaway protocol.Goaway }

// Error implements error.
func (e *GoawayError) Error() string {
	s := "client: GOAWAY " + e.Goaway.Code.String() + ": " + e.Goaway.Message
	if e.Goaway.RetryAfterMs != 0 {
		s += fmt.Sprintf(" (retry after %d ms)", e.Goaway.RetryAfterMs)
	}
	return s
}

// Unwrap lets errors.Is match the GOAWAY code.
func (e *GoawayError) Unwrap() error { return e.Goaway.Code }

// Config describes one terminal. Only Addr, DeviceID and FleetSecret (or
// Key) are required.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// DeviceID is 1–64 bytes of [A-Za-z0-9._:-].
	DeviceID string
	// FleetSecret derives K_dev = HMAC(fleet_secret, "TGP1 device"‖0‖id)
	// unless Key is set.
	FleetSecret []byte
	// Key is a per-device K_dev; it takes precedence over FleetSecret.
	Key *protocol.Key
	// FW and Model are sent in HELLO: ≤ 32 bytes each, no 0x00 byte.
	FW, Model string
	// Attrs is an optional pre-encoded attrs map (see EncodeAttrs); nil
	// sends none.
	Attrs []byte
	// Dial opens the TCP connection; nil → a net.Dialer. It lets callers
	// pick a source address or wrap the connection (TLS, fault injection).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the terminal's clock, used for HELLO's ts and the server
	// clock offset; nil → time.Now. Timeouts always use the real clock.
	Now func() time.Time
	// HBMin and HBMax clamp the server's hb_interval_s; zero → 10 s and
	// 600 s as the spec requires. Tests lower HBMin.
	HBMin, HBMax time.Duration
	// HelloTimeout bounds the HELLO exchange when ctx has no earlier
	// deadline; zero → 10 s.
	HelloTimeout time.Duration
	// Status, if set, returns the pre-encoded status map (see
	// EncodeStatus) sent with each heartbeat; nil sends none.
	Status func() []byte
	// GroupVersion, if set, returns the group_version sent with each
	// heartbeat; nil sends 0.
	GroupVersion func() uint64
	// NoHeartbeat disables the heartbeat loop (tests, manual heartbeats).
	NoHeartbeat bool
	// OnPush is called on the reader goroutine for every push type the
	// protocol package knows (GOAWAY excepted; it ends the session). body
	// is valid only during the call. Pushes that need an ack are acked
	// after OnPush returns; unknown push types are ignored and not acked.
	// OnPush must not block for long: no frame is read meanwhile; in
	// particular it must not wait for a Do, whose response could not be
	// read (hand the work to another goroutine instead).
	OnPush func(typ byte, seq uint16, body []byte)
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger

	// nonce, when set, replaces crypto/rand as the source of HELLO
	// nonces (tests reproduce the spec's vectors with it).
	nonce io.Reader
}

func (cfg *Config) check() error {
	if !protocol.ValidDeviceID(cfg.DeviceID) {
		return fmt.Errorf("client: invalid device id %q", cfg.DeviceID)
	}
	for _, s := range []string{cfg.FW, cfg.Model} {
		if len(s) > protocol.MaxFW {
			return fmt.Errorf("client: fw/model %q longer than %d bytes", s, protocol.MaxFW)
		}
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return fmt.Errorf("client: fw/model %q contains 0x00", s)
			}
		}
	}
	if cfg.Key == nil && len(cfg.FleetSecret) == 0 {
		return errors.New("client: neither Key nor FleetSecret set")
	}
	return nil
}

func (cfg *Config) now() time.Time {
	if cfg.Now != nil {
		return cfg.Now()
	}
	return time.Now()
}

func (cfg *Config) logger() *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// deviceKey returns K_dev.
func (cfg *Config) deviceKey(m *protocol.MAC) protocol.Key {
	if cfg.Key != nil {
		return *cfg.Key
	}
	return m.DeviceKey(cfg.FleetSecret, cfg.DeviceID)
}

// clampInterval turns hb_interval_s into the interval the terminal uses.
func (cfg *Config) clampInterval(seconds uint64) time.Duration {
	lo, hi := cfg.HBMin, cfg.HBMax
	if lo <= 0 {
		lo = DefaultHBMin
	}
	if hi <= 0 {
		hi = DefaultHBMax
	}
	const maxSeconds = uint64(1 << 32) // keeps the Duration from overflowing
	d := time.Duration(min(seconds, maxSeconds)) * time.Second
	return max(lo, min(d, hi))
}

// Conn is one authenticated TGP/1 session. All methods are safe for
// concurrent use.
type Conn struct {
	cfg Config
	log *slog.Logger
	nc  net.Conn

	// Set by the handshake, read-only afterwards.
	ks        protocol.Key
	sessionID uint64
	maxFrame  int

	hbInterval atomic.Int64 // time.Duration
	offset     atomic.Int64 // time.Duration: server clock − Config.Now
	lastFlags  atomic.Uint64
	leaving    atomic.Bool // Bye was called: the server's close is expected

	// Write side: everything under wmu, so encode, tag counter and socket
	// order agree.
	wmu      sync.Mutex
	w        *protocol.Writer
	wmac     *protocol.MAC
	outN     uint64 // tagged frames sent so far
	stalled  bool
	wclosed  bool // BYE was written: nothing may follow it
	stallCh  chan struct{}
	stallOne sync.Once

	// Read side: owned by the reader goroutine (and the handshake before it).
	br   *bufio.Reader
	src  codec.BufferedSource
	rr   *protocol.Reader
	rmac *protocol.MAC
	inN  uint64 // tagged frames received so far
	rack protocol.Ack

	// Outstanding requests.
	mu      sync.Mutex
	calls   map[uint16]*call
	nextSeq uint16
	closed  bool
	err     error

	reqSlots chan struct{} // Do requests outstanding, ≤ requestSlots
	hbSlot   chan struct{} // the heartbeat's own slot
	done     chan struct{}
	failOne  sync.Once

	// Heartbeat loop state, owned by its goroutine.
	hbReq protocol.Heartbeat
	hbAck protocol.HeartbeatAck
}

// Dial connects to cfg.Addr and performs HELLO. It returns once HELLO_OK
// has been verified, or the refusal: a *protocol.Error (errors.Is matches
// its code; RetryAfterMs is set when the server sent one), a
// *protocol.ClockChallenge if the retry was challenged again, a
// *protocol.ErrorFrame, ErrBadServerMAC, or a network error. ctx bounds
// the dial and the HELLO exchange, not the session.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		cfg:      cfg,
		log:      cfg.logger().With("device_id", cfg.DeviceID),
		nc:       nc,
		w:        protocol.NewWriter(),
		wmac:     protocol.NewMAC(),
		stallCh:  make(chan struct{}),
		br:       bufio.NewReaderSize(nc, codec.MaxFrameBytes),
		rr:       protocol.NewReader(nil),
		rmac:     protocol.NewMAC(),
		calls:    make(map[uint16]*call, protocol.MaxInFlight),
		reqSlots: make(chan struct{}, requestSlots),
		hbSlot:   make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.src.R = c.br
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	c.log.Debug("session established", "session_id", c.sessionID,
		"hb_interval", c.HBInterval(), "max_frame", c.maxFrame)
	go c.readLoop()
	if !cfg.NoHeartbeat {
		go c.heartbeatLoop()
	}
	return c, nil
}

// handshake sends HELLO, answers one clock challenge, and verifies
// HELLO_OK. It runs before the reader goroutine starts.
func (c *Conn) handshake(ctx context.Context) error {
	timeout := c.cfg.HelloTimeout
	if timeout <= 0 {
		timeout = DefaultHelloTimeout
	}
	deadline := time.Now().Add(timeout)
	d, byCtx := ctx.Deadline()
	if byCtx = byCtx && d.Before(deadline); byCtx {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	// A cancelled ctx unblocks the read by moving the deadline to the past.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	err := c.hello()
	stop()
	if byCtx && errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline was ctx's, and may fire a moment before
		// ctx's own timer: report the context's error.
		<-ctx.Done()
	}
	if cerr := ctx.Err(); cerr != nil {
		// ctx ended during the exchange: report that, not the I/O timeout.
		return cerr
	}
	if err != nil {
		return err
	}
	return c.nc.SetDeadline(time.Time{})
}

func (c *Conn) hello() error {
	kdev := c.cfg.deviceKey(c.wmac)
	h := protocol.Hello{
		DeviceID: c.cfg.DeviceID,
		TS:       unixSeconds(c.cfg.now()),
		FW:       c.cfg.FW,
		Model:    c.cfg.Model,
		Attrs:    c.cfg.Attrs,
	}
	src := c.cfg.nonce
	if src == nil {
		src = rand.Reader
	}
	if _, err := io.ReadFull(src, h.Nonce[:]); err != nil {
		return fmt.Errorf("client: nonce: %w", err)
	}
	for attempt := uint16(0); ; attempt++ {
		h.MAC = c.wmac.HelloMAC(&kdev, h.DeviceID, h.TS, h.Nonce[:], h.FW, h.Model)
		c.w.Reset()
		frame := c.w.AppendFrame(attempt, &h)
		if len(frame)-codec.HeaderSize > codec.MinMaxFrame {
			return fmt.Errorf("%w: HELLO is %d bytes (attrs too large)", ErrFrameTooLarge, len(frame))
		}
		if _, err := c.nc.Write(frame); err != nil {
			return err
		}
		var ok protocol.HelloOK
		err := c.readHelloResponse(&ok)
		var ch *protocol.ClockChallenge
		if attempt == 0 && errors.As(err, &ch) {
			// §3.2: the challenge proves freshness; the refusal is not
			// authenticated, so the local clock is left alone.
			c.log.Info("clock challenged; retrying HELLO", "server_time_ms", ch.ServerTimeMs)
			h.TS = ch.ServerTimeMs / 1000
			h.Nonce = ch.Challenge
			continue
		}
		if err != nil {
			return err
		}
		want := c.wmac.ServerMAC(&kdev, h.MAC[:], ok.SessionID, ok.ServerTimeMs)
		if !protocol.Equal(want[:], ok.ServerMAC[:]) {
			return ErrBadServerMAC
		}
		// Only now is server_time_ms trustworthy.
		c.setOffset(ok.ServerTimeMs)
		c.ks = c.wmac.SessionKey(&kdev, h.Nonce[:], ok.SessionID)
		c.sessionID = ok.SessionID
		// The spec's floor is 4096; a smaller announcement is a server
		// bug, and sending up to the floor is what every server accepts.
		c.maxFrame = int(max(codec.MinMaxFrame, min(ok.MaxFrame, codec.MaxLen)))
		c.hbInterval.Store(int64(c.cfg.clampInterval(ok.HBInterval)))
		c.nextSeq = attempt + 1
		return nil
	}
}

// readHelloResponse reads the untagged frame that answers HELLO.
func (c *Conn) readHelloResponse(ok *protocol.HelloOK) error {
	f, err := codec.Next(&c.src, codec.Limits{MaxLen: codec.MinMaxFrame})
	if err == codec.ErrIncomplete {
		return fmt.Errorf("client: reading HELLO response: %w", c.src.Err())
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer c.src.Discard(f.Size())
	switch f.Header.Type {
	case protocol.Response(protocol.TypeHello):
		err := protocol.DecodeBody(c.rr, f.Body, ok)
		if errors.Is(err, protocol.ErrNotArray) {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return err
	case protocol.TypeError:
		ef := &protocol.ErrorFrame{}
		if err := protocol.DecodeBody(c.rr, f.Body, ef); err != nil {
			return fmt.Errorf("%w: ERROR: %v", ErrMalformed, err)
		}
		return ef
	}
	return fmt.Errorf("%w: type 0x%02x before HELLO_OK", ErrMalformed, f.Header.Type)
}

func unixSeconds(t time.Time) uint64 { return uint64(max(t.Unix(), 0)) }

func (c *Conn) setOffset(serverTimeMs uint64) {
	now := c.cfg.now()
	c.offset.Store(int64(time.UnixMilli(int64(serverTimeMs)).Sub(now)))
}

// SessionID is the session_id of HELLO_OK.
func (c *Conn) SessionID() uint64 { return c.sessionID }

// MaxFrame is the largest `len` the server accepts from this terminal.
func (c *Conn) MaxFrame() int { return c.maxFrame }

// HBInterval is the heartbeat interval in force: the last hb_interval_s
// announced (HELLO_OK or HEARTBEAT_ACK), clamped to [HBMin, HBMax].
func (c *Conn) HBInterval() time.Duration { return time.Duration(c.hbInterval.Load()) }

// ServerTimeOffset is the server's clock minus Config.Now, as of the last
// verified HELLO_OK or HEARTBEAT_ACK: add it to the local clock to get
// server time.
func (c *Conn) ServerTimeOffset() time.Duration { return time.Duration(c.offset.Load()) }

// LastFlags are the flags of the last HEARTBEAT_ACK (protocol.FlagGroupStale,
// protocol.FlagUpgradePending).
func (c *Conn) LastFlags() uint64 { return c.lastFlags.Load() }

// Done is closed when the session has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the session ended (nil while it is live): ErrClosed after
// Close or Bye, a *protocol.ErrorFrame, a *GoawayError, ErrBadTag,
// ErrAckTimeout, an ErrMalformed wrap, or the read/write error.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// LocalAddr is the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }
