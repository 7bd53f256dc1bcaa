package server

import (
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/auth"
	"github.com/termd/termd/server/presence"
)

// serverFullRetryMs is the retry_after_ms of a HELLO refused for capacity.
const serverFullRetryMs = 5000

// helloRateJitterMs spreads the retries of HELLOs refused for their
// source's rate, so a NAT's terminals do not come back in step.
const helloRateJitterMs = 2000

// hello authenticates the connection (spec §3.1, §3.2, §3.4). It runs on
// the loop and never blocks: keys and blocked flags come from the
// in-memory index, the MACs use the loop's scratch. The checks run in the
// spec's order: shapes, ts, mac, replay, blocked, duplicate device,
// capacity.
func (c *conn) hello(f *codec.Frame) gnet.Action {
	s, l := c.l.s, c.l
	seq := f.Header.Seq
	// The loop's scratch: a local escapes through DecodeBody's interface
	// and cost an allocation per HELLO. Nothing keeps h past this call:
	// establish copies what the session keeps.
	h := &l.hello
	*h = protocol.Hello{}
	if err := protocol.DecodeBody(l.in, f.Body, h); err != nil {
		s.m.helloFail(helloBadRequest)
		return c.refuseHello(seq, AsError(err))
	}
	now := s.now()
	nowMs, nowS := now.UnixMilli(), now.Unix()
	// The source's HELLO rate is checked before any MAC work: a flood of
	// HELLOs from one address spends its own budget, not the fleet's.
	if ms := s.sources.Hello(c.pre.src, nowMs); ms > 0 {
		s.m.helloFail(helloSourceRate)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Unavailable, Message: "too many HELLOs from this address", RetryAfterMs: uint64(ms) + uint64(randN(helloRateJitterMs))})
	}
	if c.state == stateChallenged {
		// The retry must carry the single-use challenge; it proves
		// freshness, so its ts is not checked.
		if !protocol.Equal(h.Nonce[:], c.pre.challenge[:]) {
			s.m.helloFail(helloBadChallenge)
			return c.refuseHello(seq, &protocol.Error{Code: protocol.Unauthenticated, Message: "retry must use the challenge as nonce"})
		}
	} else if c.tsRefused(h.TS, nowS, nowMs) {
		s.m.helloFail(helloExpired)
		ch := &c.pre.challenge
		_, _ = rand.Read(ch[:])
		c.state = stateChallenged
		c.send(seq, &protocol.ClockChallenge{Message: "clock out of range", ServerTimeMs: uint64(nowMs), Challenge: *ch})
		return gnet.None // open until hello_timeout for one retry
	}

	cred := s.creds.Get(h.DeviceID)
	var kdev protocol.Key
	if cred.Key != nil {
		kdev = *cred.Key
	} else {
		kdev = l.mac.DeviceKey(s.secret, h.DeviceID)
	}
	want := l.mac.HelloMAC(&kdev, h.DeviceID, h.TS, h.Nonce[:], h.FW, h.Model)
	if !protocol.Equal(want[:], h.MAC[:]) {
		s.m.helloFail(helloBadMAC)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Unauthenticated, Message: "bad mac"})
	}
	// From here the nonce is remembered, whatever the outcome.
	switch err := s.nonces.Add(h.DeviceID, h.Nonce[:], nowMs); {
	case errors.Is(err, auth.ErrReplay):
		s.m.helloFail(helloReplay)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Unauthenticated, Message: "nonce replay"})
	case errors.Is(err, auth.ErrNoncesFull):
		s.m.helloFail(helloNoncesFull)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Unavailable, Message: "busy", RetryAfterMs: uint64(s.nonces.RetryAfter(nowMs))})
	}
	if cred.Blocked {
		s.m.helloFail(helloBlocked)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Forbidden, Message: "device blocked"})
	}
	if ms := s.dups.CoolingDown(h.DeviceID, nowMs); ms > 0 {
		s.m.helloFail(helloDuplicate)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Conflict, Message: "duplicate device", RetryAfterMs: uint64(ms)})
	}
	// Only a takeover of a session that is still live may count towards
	// the duplicate-device cool-down (replace.go).
	old := s.Presence.Get(h.DeviceID)
	if old != nil && s.heardFrom(old, nowMs) {
		if ms, started := s.dups.Takeover(h.DeviceID, nowMs); ms > 0 {
			if started {
				s.log.Warn("duplicate device: session replaced too often, cool-down started",
					"device", h.DeviceID, "cooldown_ms", ms, "remote", c.live.RemoteAddr())
				s.Presence.Duplicate(h.DeviceID, c.live.RemoteAddr(), nowMs)
			}
			s.m.helloFail(helloDuplicate)
			return c.refuseHello(seq, &protocol.Error{Code: protocol.Conflict, Message: "duplicate device", RetryAfterMs: uint64(ms)})
		}
	}
	if old == nil && int(s.sessions.Load()) >= s.maxSessions {
		s.m.helloFail(helloServerFull)
		return c.refuseHello(seq, &protocol.Error{Code: protocol.Unavailable, Message: "server full", RetryAfterMs: serverFullRetryMs + uint64(randN(serverFullRetryMs))})
	}
	c.establish(seq, h, &kdev, nowMs)
	return gnet.None
}

// tsRefused applies the clock window and the post-restart rule: for
// NonceRetention after start, a HELLO older than the start could have been
// captured before a restart emptied the nonce cache.
func (c *conn) tsRefused(ts uint64, nowS, nowMs int64) bool {
	s := c.l.s
	window := int64(s.cfg.Auth.ClockWindow.Seconds())
	if ts > 1<<62 {
		return true
	}
	d := int64(ts) - nowS
	if d > window || -d > window {
		return true
	}
	return nowMs < s.startMs+s.nonceWindow && int64(ts) < s.startMs/1000
}

// establish sends HELLO_OK and makes the session live.
func (c *conn) establish(seq uint16, h *protocol.Hello, kdev *protocol.Key, nowMs int64) {
	s, l := c.l.s, c.l
	sid := s.newSessionID()
	hb := s.hbIntervalSeconds()
	c.send(seq, &protocol.HelloOK{
		SessionID: sid, ServerTimeMs: uint64(nowMs), HBInterval: hb,
		MaxFrame: uint64(s.cfg.Server.MaxFrame), ServerMAC: l.mac.ServerMAC(kdev, h.MAC[:], sid, uint64(nowMs)),
	})
	c.ks = l.mac.SessionKey(kdev, h.Nonce[:], sid)
	c.state = stateLive
	c.timeout = int32(s.hbTimeout().Milliseconds())
	c.deadline = nowMs + int64(c.timeout)
	l.schedule(c, c.deadline)
	c.tokens = float32(s.cfg.Server.FrameBurst)
	c.lastMs = nowMs
	c.seenMs = nowMs
	c.leavePreHello()
	c.live = presence.Entry{
		DeviceID: h.DeviceID, SessionID: sid, Since: nowMs, Remote: c.live.Remote, // the PROXY header's, if any
		FW: l.intern(h.FW), Model: l.intern(h.Model), Attrs: string(h.Attrs), Owner: c,
	}
	c.authed = true
	s.pending.Add(-1)
	s.sessions.Add(1)
	s.m.helloOK.Inc()
	s.Presence.Started(&c.live, h.Attrs)
}

// refuseHello answers HELLO with a refusal and closes (spec §3.1).
func (c *conn) refuseHello(seq uint16, e *protocol.Error) gnet.Action {
	c.send(seq, &protocol.Refusal{RespType: protocol.Response(protocol.TypeHello), Err: e})
	c.state = stateClosing
	return gnet.Close
}

// hbIntervalSeconds is hb_interval_s as announced: whole seconds, at
// least 1 (the spec's 10 s floor is the terminal's clamp; tests go lower).
func (s *Server) hbIntervalSeconds() uint64 { return s.hbSecs }

func hbSeconds(d time.Duration) uint64 { return uint64(max(int64(d.Seconds()+0.5), 1)) }

// hbTimeout is miss_factor × the announced interval.
func (s *Server) hbTimeout() time.Duration {
	return time.Duration(s.hbIntervalSeconds()) * time.Second * time.Duration(s.cfg.Heartbeat.MissFactor)
}

// remoteOf is the peer address of gc, safe to keep after gnet releases
// the connection: gnet drops its reference then (and pools an IPv6 zone's
// bytes, so a zone is copied) but never changes the address itself.
func remoteOf(gc gnet.Conn) net.Addr {
	a := gc.RemoteAddr()
	if ta, ok := a.(*net.TCPAddr); ok && ta.Zone != "" {
		return &net.TCPAddr{IP: ta.IP, Port: ta.Port, Zone: strings.Clone(ta.Zone)}
	}
	return a
}
