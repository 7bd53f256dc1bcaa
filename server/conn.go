package server

import (
	"errors"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/presence"
)

// Connection states.
const (
	stateHello      uint8 = iota // waiting for HELLO
	stateChallenged              // clock challenge sent, one retry allowed
	stateLive                    // HELLO_OK sent, frames are tagged
	stateClosing                 // an ERROR, GOAWAY or BYE_ACK was sent
	stateProxy                   // waiting for the PROXY v2 header (server.proxy_protocol)
)

// conn is the per-connection state, kept as small as the protocol
// allows: no HMAC instance (the loop has one), no maps, no copies of what
// the presence entry already holds.
type conn struct {
	gc   gnet.Conn
	l    *loop
	live presence.Entry // the session's presence entry (registered once authed)

	ks       protocol.Key
	nIn      uint64 // tagged frames received
	nOut     uint64 // tagged frames sent
	deadline int64  // unix ms: HELLO deadline, then last valid frame + timeout
	lastMs   int64  // unix ms of the token bucket's last refill
	seenMs   int64  // unix ms last_seen was last handed to the write-behind
	timeout  int32  // heartbeat timeout in ms
	tokens   float32
	pushSeq  uint16
	state    uint8
	closed   bool
	authed   bool            // HELLO_OK sent: live is the session's entry
	reason   presence.Reason // offline reason recorded before a close

	pre      *preHello // only until HELLO_OK: eviction queue, source, challenge
	inflight []uint16  // seqs of requests handed to workers
	wheelAt  int64     // timer wheel tick
	wheelGen uint32    // identifies the live wheel entry
	// hb is the HEARTBEAT_ACK state, set by features from any goroutine:
	// the low hbFlagBits bits are the flags, the rest the low bits of the
	// device's group_version (GROUP_STALE is computed from it, hbStale).
	// One word keeps conn in its size class (TestConnSize).
	hb atomic.Uint32
}

// hbFlagBits is how many heartbeat flag bits a session keeps (spec §4
// defines 2); the other 24 bits of conn.hb hold the group_version modulo
// 2^24, so a terminal 16,777,216 versions behind would not be told it is
// stale — a device changes groups far more rarely than that.
const (
	hbFlagBits = 8
	hbFlagMask = 1<<hbFlagBits - 1
)

// hbAck returns the session's HEARTBEAT_ACK flags for a terminal that
// sent group_version v: the stored flags, plus GROUP_STALE when v differs
// from the device's version. O(1), one atomic load, no allocation.
func (c *conn) hbAck(v uint64) uint64 {
	w := c.hb.Load()
	flags := w & hbFlagMask
	if uint32(v)<<hbFlagBits>>hbFlagBits != w>>hbFlagBits {
		flags |= presence.FlagGroupStale
	}
	return uint64(flags)
}

// OnOpen implements gnet.EventHandler. A connection over a cap makes room
// by evicting the oldest connection still before HELLO (prehello.go);
// only when there is none is the new one closed.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if s.shutting.Load() {
		return s.refuseAtOpen(refusedShutdown)
	}
	l := s.loopOf(gc.EventLoop())
	c := &conn{gc: gc, l: l, pre: &preHello{}}
	c.live.Remote = remoteOf(gc)
	if s.cfg.Server.ProxyProtocol {
		if !s.proxyTrusted(c.live.Remote) {
			return s.refuseAtOpen(refusedProxyUntrusted)
		}
		c.state = stateProxy // the source is known, and counted, after the header
	} else if !c.admitSource(s) {
		return nil, gnet.Close
	}
	// Above the fd-derived cap the process would run out of descriptors
	// and accept would fail; above max_pending_hello idle sockets would
	// hold memory. Either way the oldest pre-HELLO connection goes.
	if (int(s.conns.Load()) >= s.maxConns || int(s.pending.Load()) >= s.cfg.Server.MaxPendingHello) && !s.makeRoom(l) {
		s.sources.Done(c.pre.src)
		return s.refuseAtOpen(refusedMaxConns)
	}
	s.conns.Add(1)
	s.pending.Add(1)
	s.m.accepted.Inc()
	c.deadline = s.nowMs() + s.cfg.Server.HelloTimeout.Milliseconds()
	gc.SetContext(c)
	l.linkPre(c)
	l.schedule(c, c.deadline)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok || c.closed {
		return gnet.None
	}
	c.closed = true
	s.conns.Add(-1)
	if !c.authed {
		c.leavePreHello()
		s.pending.Add(-1)
		return gnet.None
	}
	s.sessions.Add(-1)
	s.Presence.Ended(&c.live, c.reason, s.nowMs())
	l := c.l
	l.dropAcks(c)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler: it takes every whole frame out of
// the inbound buffer, answers what it can from memory into the loop's
// writer, and writes the replies with one call. The clock is read once
// per callback.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	l := c.l
	now := s.nowMs()
	l.out.Reset()
	action := gnet.None
	if c.state == stateProxy {
		switch done, ok := c.readProxyHeader(gc); {
		case !ok:
			s.m.refused[refusedProxyHeader].Inc()
			return gnet.Close
		case !done:
			return gnet.None
		}
		if !c.admitSource(s) {
			return gnet.Close
		}
		c.state = stateHello
	}
	for action == gnet.None && !c.closed {
		f, err := codec.Next(gc, c.limits(s))
		if errors.Is(err, codec.ErrIncomplete) {
			break
		}
		if err != nil {
			action = c.framingFault(f.Header, err)
			break
		}
		s.m.bytesIn.Add(f.Size())
		action = c.handle(&f, now)
		_, _ = gc.Discard(f.Size())
	}
	if c.flush() || c.state == stateClosing {
		action = gnet.Close
	}
	l.maybeAdvance(c, now)
	return action
}

func (c *conn) limits(s *Server) codec.Limits {
	if c.state == stateLive || c.state == stateClosing {
		return codec.Limits{MaxLen: s.cfg.Server.MaxFrame, Tagged: true}
	}
	return codec.Limits{MaxLen: codec.MinMaxFrame}
}

// flush writes what the loop's writer holds for this connection. It
// reports true when the connection must be closed because its unsent
// bytes passed the bound: a terminal that does not read would otherwise
// grow our memory without limit.
func (c *conn) flush() (slow bool) {
	out := c.l.out.Bytes()
	if len(out) == 0 {
		return false
	}
	_, _ = c.gc.Write(out)
	c.l.s.m.bytesOut.Add(len(out))
	c.l.out.Reset()
	if c.gc.OutboundBuffered() > c.l.s.cfg.Server.OutboundLimit {
		if c.reason == 0 {
			c.reason = presence.ReasonSlowReader
		}
		return true
	}
	return false
}

// flushOrClose is flush outside OnTraffic (timers, worker results): it
// closes a slow reader itself.
func (c *conn) flushOrClose() {
	if c.flush() && !c.closed {
		_ = c.l.el.Close(c.gc)
	}
}

// framingFault answers a header fault: ERROR with the spec's code, then
// close. Authenticated connections get a tagged ERROR; a frame too short
// for a tag closes silently.
func (c *conn) framingFault(h codec.Header, err error) gnet.Action {
	m := c.l.s.m
	var code protocol.Code
	var msg string
	seq := h.Seq
	switch {
	case errors.Is(err, codec.ErrBadMagic):
		m.decodeError(decBadMagic)
		code, msg, seq = protocol.BadVersion, "supported: 1", 0
	case errors.Is(err, codec.ErrEmpty):
		m.decodeError(decEmpty)
		code, msg = protocol.BadRequest, "empty frame"
	case errors.Is(err, codec.ErrTooLarge):
		m.decodeError(decTooLarge)
		code, msg = protocol.FrameTooLarge, "frame too large"
	default: // codec.ErrNoTag
		m.decodeError(decBadTag)
		c.reason = presence.ReasonBadTag
		return gnet.Close
	}
	c.sendError(seq, code, msg)
	if c.reason == 0 {
		c.reason = presence.ReasonProtocolError
	}
	return gnet.Close
}

// handle processes one whole frame that arrived at now (unix ms).
func (c *conn) handle(f *codec.Frame, now int64) gnet.Action {
	s := c.l.s
	t := f.Header.Type
	s.m.framesIn[t].Inc()
	switch c.state {
	case stateHello, stateChallenged:
		if t != protocol.TypeHello {
			s.m.helloFail(helloNotHello)
			c.sendError(f.Header.Seq, protocol.Unauthenticated, "HELLO required")
			return gnet.Close
		}
		if !protocol.IsArrayStart(f.Body) {
			s.m.decodeError(decNotArray)
			c.sendError(f.Header.Seq, protocol.BadRequest, "body is not an array")
			return gnet.Close
		}
		return c.hello(f)
	case stateClosing:
		return gnet.Close
	}
	// Live: verify the tag first; nothing about an unverified frame is
	// trusted, and a bad one ends the session without a word.
	if !c.l.mac.VerifyTag(&c.ks, protocol.DirTerminal, c.nIn, f.Signed(), f.Tag) {
		s.m.decodeError(decBadTag)
		c.reason = presence.ReasonBadTag
		return gnet.Close
	}
	c.nIn++
	c.live.Touch(now)
	c.deadline = now + int64(c.timeout)
	return c.dispatch(f, now)
}

// sendError queues an ERROR frame (tagged once live) and marks the
// connection closing.
func (c *conn) sendError(seq uint16, code protocol.Code, msg string) {
	c.send(seq, &protocol.ErrorFrame{Code: code, Message: msg})
	c.state = stateClosing
}

// send queues one frame for this connection in the loop's writer: tagged
// with the next outbound counter once live. Frames are encoded and tagged
// here, on the loop, in the order they go out.
func (c *conn) send(seq uint16, m protocol.Message) {
	w := c.l.out
	if c.state == stateLive || (c.state == stateClosing && c.authed) {
		w.AppendTaggedFrame(c.l.mac, &c.ks, protocol.DirServer, c.nOut, seq, m)
		c.nOut++
	} else {
		w.AppendFrame(seq, m)
	}
	c.l.s.m.framesOut[m.Type()].Inc()
}

// onTimer runs when the connection's wheel slot comes round: it enforces
// the HELLO deadline and the heartbeat deadline, or waits again.
func (c *conn) onTimer(now int64) {
	if now < c.deadline {
		c.l.schedule(c, c.deadline)
		return
	}
	s := c.l.s
	l := c.l
	l.out.Reset()
	switch c.state {
	case stateProxy:
		s.m.helloFail(helloTimeout) // no PROXY header in time: nothing to answer
	case stateHello, stateChallenged:
		s.m.helloFail(helloTimeout)
		c.sendError(0, protocol.Unauthenticated, "HELLO timeout")
	case stateLive:
		c.reason = presence.ReasonTimeout
		c.send(c.nextPushSeq(), &protocol.Goaway{Code: protocol.Expired, Message: "heartbeat timeout"})
		c.state = stateClosing
	}
	c.flush()
	if !c.closed {
		_ = l.el.Close(c.gc)
	}
}

func (c *conn) nextPushSeq() uint16 {
	seq := c.pushSeq
	c.pushSeq++
	return seq
}

// Kick implements presence.Owner: it ends the session from any goroutine.
func (c *conn) Kick(sessionID uint64, code uint8, message string, reason presence.Reason) {
	c.l.post(func() {
		if reason == presence.ReasonReplaced {
			c.confirmReplacement(sessionID)
		}
		c.kickNow(sessionID, code, message, reason, 0)
	})
}

// SetFlags implements presence.Owner: the next HEARTBEAT_ACK of the
// session carries flags. The session id check keeps a late call for an
// earlier session of this device from touching this one (a conn serves one
// session, so it only guards against misuse).
func (c *conn) SetFlags(sessionID uint64, flags uint32) {
	if c.live.SessionID == sessionID {
		c.setHB(hbFlagMask, flags&hbFlagMask)
	}
}

// SetGroupVersion implements presence.Owner: the next HEARTBEAT_ACK
// compares the terminal's group_version with v.
func (c *conn) SetGroupVersion(sessionID uint64, v uint64) {
	if c.live.SessionID == sessionID {
		c.setHB(^uint32(hbFlagMask), uint32(v)<<hbFlagBits)
	}
}

// setHB replaces the bits of conn.hb under mask with val.
func (c *conn) setHB(mask, val uint32) {
	for {
		old := c.hb.Load()
		if c.hb.CompareAndSwap(old, old&^mask|val&mask) {
			return
		}
	}
}

// live reports, on the loop, whether the connection still serves session
// sessionID and may be sent frames.
func (c *conn) serves(sessionID uint64) bool {
	return !c.closed && c.authed && c.live.SessionID == sessionID && c.state == stateLive
}

// kickNow sends GOAWAY and closes, on the loop, if the session is still
// the one meant.
func (c *conn) kickNow(sessionID uint64, code uint8, message string, reason presence.Reason, retryMs uint64) {
	if !c.serves(sessionID) {
		return
	}
	c.l.out.Reset()
	c.reason = reason
	c.send(c.nextPushSeq(), &protocol.Goaway{Code: protocol.Code(code), Message: message, RetryAfterMs: retryMs})
	c.state = stateClosing
	c.flush()
	if !c.closed {
		_ = c.l.el.Close(c.gc)
	}
}
