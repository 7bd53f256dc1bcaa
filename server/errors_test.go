package server

import (
	"errors"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
)

// expectError reads an ERROR frame with code, then expects the close.
func (c *rawClient) expectError(code protocol.Code, seq uint16) {
	c.t.Helper()
	f := c.mustRead()
	var e protocol.ErrorFrame
	if f.typ != protocol.TypeError || c.decode(f, &e) != nil || e.Code != code || f.seq != seq {
		c.t.Fatalf("want ERROR %v seq %d, got type %#x seq %d body %x", code, seq, f.typ, f.seq, f.body)
	}
	c.expectClosed(2 * time.Second)
}

// expectRefusal reads a response of type typ with a refusal of code.
func (c *rawClient) expectRefusal(typ byte, code protocol.Code) *protocol.Error {
	c.t.Helper()
	f := c.mustRead()
	var r protocol.Refusal
	if f.typ != typ || c.decode(f, &r) != nil || r.Err.Code != code {
		c.t.Fatalf("want %#x refusal %v, got type %#x body %x", typ, code, f.typ, f.body)
	}
	return r.Err
}

func TestFramingFaultsBeforeHello(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	cases := []struct {
		name string
		raw  []byte
		code protocol.Code
		seq  uint16
	}{
		{"garbage header", []byte("GET / HTTP/1.1\r\n\r\n"), protocol.BadVersion, 0},
		{"version 2", []byte{0xA2, 0x01, 0, 7, 0, 1, 0x90}, protocol.BadVersion, 0},
		{"len 0", []byte{0xA1, 0x01, 0, 3, 0, 0}, protocol.BadRequest, 3},
		// Only the header is sent: the ERROR must come before any body.
		{"too large", []byte{0xA1, 0x01, 0, 4, 0x10, 0x01}, protocol.FrameTooLarge, 4},
		{"not hello", []byte{0xA1, 0x02, 0, 5, 0, 1, 0x90}, protocol.Unauthenticated, 5},
		{"body not array", []byte{0xA1, 0x01, 0, 6, 0, 1, 0x01}, protocol.BadRequest, 6},
		{"body is a map", []byte{0xA1, 0x01, 0, 6, 0, 1, 0x80}, protocol.BadRequest, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.addr)
			c.writeRaw(tc.raw)
			c.expectError(tc.code, tc.seq)
		})
	}
}

func TestHelloRefusals(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	now := time.Now().Unix()

	t.Run("bad device id", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.send(0, c.helloMsg("bad id", now, nil))
		c.expectRefusal(0x81, protocol.BadRequest)
		c.expectClosed(time.Second)
	})
	t.Run("bad mac", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		h := c.helloMsg("T-mac", now, nil)
		h.MAC[0] ^= 1
		c.send(0, h)
		c.expectRefusal(0x81, protocol.Unauthenticated)
		c.expectClosed(time.Second)
	})
	t.Run("replay", func(t *testing.T) {
		a := dialRaw(t, ts.addr)
		h := a.helloMsg("T-replay", now, nil)
		a.send(0, h)
		var ok protocol.HelloOK
		if err := a.decode(a.mustRead(), &ok); err != nil {
			t.Fatal(err)
		}
		b := dialRaw(t, ts.addr)
		b.send(0, h) // the captured HELLO, byte for byte
		if e := b.expectRefusal(0x81, protocol.Unauthenticated); e.Message != "nonce replay" {
			t.Fatalf("message %q", e.Message)
		}
	})
	t.Run("blocked", func(t *testing.T) {
		if err := ts.Block(t.Context(), "T-blocked"); err != nil {
			t.Fatal(err)
		}
		c := dialRaw(t, ts.addr)
		c.send(0, c.helloMsg("T-blocked", now, nil))
		c.expectRefusal(0x81, protocol.Forbidden)
		c.expectClosed(time.Second)
	})
	t.Run("hello on a live session", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-twice")
		c.send(1, c.helloMsg("T-twice", now, nil))
		c.expectRefusal(0x81, protocol.Conflict)
		c.send(2, &protocol.Heartbeat{})
		if f := c.mustRead(); f.typ != 0x82 {
			t.Fatalf("connection not kept: %#x", f.typ)
		}
	})
}

func TestClockChallenge(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	skewed := time.Now().Add(-time.Hour).Unix()

	challenge := func(c *rawClient, device string) *protocol.ClockChallenge {
		t.Helper()
		c.send(0, c.helloMsg(device, skewed, nil))
		var ok protocol.HelloOK
		err := c.decode(c.mustRead(), &ok)
		var ch *protocol.ClockChallenge
		if !errors.As(err, &ch) || !errors.Is(err, protocol.Expired) {
			t.Fatalf("want clock challenge, got %v", err)
		}
		if d := time.Since(time.UnixMilli(int64(ch.ServerTimeMs))); d < 0 || d > 5*time.Second {
			t.Fatalf("server_time_ms off by %v", d)
		}
		return ch
	}
	t.Run("retry with the challenge succeeds", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		ch := challenge(c, "T-clock")
		c.send(1, c.helloMsg("T-clock", int64(ch.ServerTimeMs/1000), &ch.Challenge))
		var ok protocol.HelloOK
		if err := c.decode(c.mustRead(), &ok); err != nil {
			t.Fatal(err)
		}
		c.finishLogin(&ok)
		c.send(2, &protocol.Heartbeat{})
		if f := c.mustRead(); f.typ != 0x82 {
			t.Fatalf("%#x", f.typ)
		}
	})
	t.Run("retry keeps the skewed ts", func(t *testing.T) {
		// The challenge proves freshness, so the retry's ts is not checked.
		c := dialRaw(t, ts.addr)
		ch := challenge(c, "T-clock2")
		c.send(1, c.helloMsg("T-clock2", skewed, &ch.Challenge))
		var ok protocol.HelloOK
		if err := c.decode(c.mustRead(), &ok); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("retry with another nonce", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		challenge(c, "T-clock3")
		c.send(1, c.helloMsg("T-clock3", time.Now().Unix(), nil))
		c.expectRefusal(0x81, protocol.Unauthenticated)
		c.expectClosed(time.Second)
	})
	t.Run("other frame after the challenge", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		challenge(c, "T-clock4")
		c.writeRaw([]byte{0xA1, 0x02, 0, 1, 0, 1, 0x90})
		c.expectError(protocol.Unauthenticated, 1)
	})
	t.Run("challenge reused", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		ch := challenge(c, "T-clock5")
		h := c.helloMsg("T-clock5", skewed, &ch.Challenge)
		c.send(1, h)
		c.mustRead()
		d := dialRaw(t, ts.addr)
		d.send(0, h) // replaying the retry on a new connection
		d.expectRefusal(0x81, protocol.Expired)
	})
}

func TestHelloTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.HelloTimeout.Duration = 300 * time.Millisecond
	ts := startServer(t, cfg, nil)
	c := dialRaw(t, ts.addr)
	start := time.Now()
	c.expectError(protocol.Unauthenticated, 0)
	if d := time.Since(start); d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("closed after %v", d)
	}
}

func TestFaultsAfterHello(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	t.Run("bad tag closes silently", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-tag")
		c.w.Reset()
		f := c.w.AppendTaggedFrame(c.mac, &c.ks, protocol.DirTerminal, c.nOut+1, 1, &protocol.Heartbeat{})
		c.writeRaw(f)
		c.expectClosed(time.Second)
		if ev := ts.waitEvent(t, "T-tag", events.KindOffline, time.Second); ev.Reason != presence.ReasonBadTag.String() {
			t.Fatalf("reason %q", ev.Reason)
		}
	})
	t.Run("short frame closes silently", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-short")
		c.writeRaw([]byte{0xA1, 0x02, 0, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
		c.expectClosed(time.Second)
	})
	t.Run("too large", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-large")
		c.writeRaw([]byte{0xA1, 0x02, 0, 9, 0x10, 0x01})
		c.expectError(protocol.FrameTooLarge, 9)
	})
	t.Run("bad magic", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-magic")
		c.writeRaw([]byte{0x00, 0x02, 0, 9, 0, 9})
		c.expectError(protocol.BadVersion, 0)
	})
	t.Run("forbidden type", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-forbidden")
		c.send(3, &rawMsg{typ: 0x44, body: []byte{0x90}})
		c.expectError(protocol.UnknownType, 3)
		if ev := ts.waitEvent(t, "T-forbidden", events.KindOffline, time.Second); ev.Reason != presence.ReasonProtocolError.String() {
			t.Fatalf("reason %q", ev.Reason)
		}
	})
	t.Run("unknown request type keeps the connection", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-unknown")
		c.send(4, &rawMsg{typ: 0x3F, body: []byte{0x90}})
		c.expectRefusal(0xBF, protocol.UnknownType)
		c.send(5, &protocol.Heartbeat{})
		if f := c.mustRead(); f.typ != 0x82 || f.seq != 5 {
			t.Fatalf("%#x", f.typ)
		}
	})
	t.Run("body not an array", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-notarray")
		c.send(6, &rawMsg{typ: protocol.TypeHeartbeat, body: []byte{0x00}})
		c.expectError(protocol.BadRequest, 6)
	})
	t.Run("bad fields answer BAD_REQUEST and keep the connection", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-fields")
		hostile := [][]byte{
			{0x91, 0xa1, 'x'}, // group_version is a string
			{0x90},            // missing group_version
			{0x92, 0x00, 0xdf, 0xff, 0xff, 0xff, 0xff},       // map32 claiming 4G entries
			{0x92, 0x00, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff}, // str32 key claiming 4 GiB
			{0x91, 0x00, 0xc1},                               // bytes after the array
			{0xdd, 0xff, 0xff, 0xff, 0xff},                   // array32 claiming 4G elements
			deepArray(20),
		}
		for i, body := range hostile {
			seq := uint16(10 + i)
			c.send(seq, &rawMsg{typ: protocol.TypeHeartbeat, body: body})
			if e := c.expectRefusal(0x82, protocol.BadRequest); e.Message == "" {
				t.Fatalf("body %x: empty message", body)
			}
		}
		c.send(99, &protocol.Heartbeat{})
		if f := c.mustRead(); f.typ != 0x82 || f.seq != 99 {
			t.Fatalf("%#x", f.typ)
		}
	})
	t.Run("push ack with a bad body", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.login("T-ack")
		c.send(1, &rawMsg{typ: 0xC1, body: []byte{0x90, 0x00}[:1]}) // [] is fine
		c.send(2, &rawMsg{typ: 0xC1, body: []byte{0x05}})
		c.expectError(protocol.BadRequest, 2)
	})
}

// deepArray nests n arrays: [[[...[0]...]]] wrapped as a heartbeat body.
func deepArray(n int) []byte {
	b := []byte{0x92, 0x00}
	for i := 0; i < n; i++ {
		b = append(b, 0x91)
	}
	return append(b, 0x00)
}

// rawMsg is a message with a given type and pre-encoded body.
type rawMsg struct {
	typ  byte
	body []byte
}

func (m *rawMsg) Type() byte                      { return m.typ }
func (m *rawMsg) Encode(w *protocol.Writer)       { w.Raw(m.body) }
func (m *rawMsg) Decode(r *protocol.Reader) error { return r.Skip(1) }

func TestRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.FrameRate = 1
	cfg.Server.FrameBurst = 3
	ts := startServer(t, cfg, nil)
	c := dialRaw(t, ts.addr)
	c.login("T-rate")
	for seq := uint16(1); seq <= 3; seq++ {
		c.send(seq, &protocol.Heartbeat{})
		if f := c.mustRead(); f.typ != 0x82 {
			t.Fatalf("seq %d: %#x", seq, f.typ)
		}
	}
	c.send(4, &protocol.Heartbeat{})
	e := c.expectRefusal(0x82, protocol.RateLimited)
	if e.RetryAfterMs == 0 || e.RetryAfterMs > 1001 {
		t.Fatalf("retry_after_ms %d", e.RetryAfterMs)
	}
	time.Sleep(time.Duration(e.RetryAfterMs+50) * time.Millisecond)
	c.send(5, &protocol.Heartbeat{})
	if f := c.mustRead(); f.typ != 0x82 {
		t.Fatalf("after waiting: %#x", f.typ)
	}
}

func TestCapacity(t *testing.T) {
	t.Run("server full", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Server.MaxSessions = 1
		cfg.Server.MaxConnections = 10
		ts := startServer(t, cfg, nil)
		a := dialRaw(t, ts.addr)
		a.login("T-first")
		b := dialRaw(t, ts.addr)
		b.send(0, b.helloMsg("T-second", time.Now().Unix(), nil))
		e := b.expectRefusal(0x81, protocol.Unavailable)
		if e.Message != "server full" || e.RetryAfterMs == 0 {
			t.Fatalf("%+v", e)
		}
		b.expectClosed(time.Second)
		// A takeover is not a new session: it is allowed when full.
		c := dialRaw(t, ts.addr)
		c.login("T-first")
	})
	t.Run("max connections closes at once", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Server.MaxConnections = 1
		ts := startServer(t, cfg, nil)
		a := dialRaw(t, ts.addr)
		a.login("T-one")
		b := dialRaw(t, ts.addr)
		b.expectClosed(time.Second)
	})
}

// The frame reader never buffers a body it will refuse: a header that
// announces too much is answered at once, whatever follows.
func TestTooLargeAnsweredBeforeBody(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	c := dialRaw(t, ts.addr)
	hdr := codec.AppendHeader(nil, codec.Header{Type: 1, Seq: 2, Len: 0xFFFF})
	c.writeRaw(hdr)
	c.expectError(protocol.FrameTooLarge, 2)
}
