package server

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/panjf2000/gnet/v2"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/presence"
)

// Request is one decoded domain request, handed to a worker. Msg was
// decoded from a private copy of the body, so it may be kept.
type Request struct {
	DeviceID  string
	SessionID uint64
	// Model is the model the device sent in HELLO (for ACLs).
	Model string
	// Remote is the terminal's address.
	Remote string
	Type   byte
	Seq    uint16
	Msg    protocol.Message

	// start is when the loop decoded the request, for
	// termd_request_duration_seconds.
	start time.Time
}

// Route serves one request type on the worker pool.
type Route struct {
	// New returns an empty request message to decode into.
	New func() protocol.Message
	// Serve runs on a worker and returns the response message, or an
	// error (a protocol.Code or *protocol.Error; any other error is
	// answered INTERNAL).
	Serve func(ctx context.Context, req *Request) (protocol.Message, error)
	// Start, set instead of Serve, is for requests that may take long
	// (service control): it runs on a worker, must return quickly, and
	// calls reply exactly once, from any goroutine, when the answer is
	// known. The request stays outstanding (and counts against the
	// in-flight limit) until then; other requests keep flowing.
	Start func(req *Request, reply func(protocol.Message, error))
	// Writes marks a route whose requests commit durable records (every
	// CONTROL is audited): while the store refuses writes for lack of disk
	// space they are answered UNAVAILABLE on the loop, before any work
	// starts, so nothing runs that could not be recorded.
	Writes bool
	// Class names the worker-pool class the route's requests run in; a
	// feature gives all its routes one class, so together they hold at
	// most server.route_share of the workers and of the queue. Default:
	// the request type's name.
	Class string

	class *workClass
	// latency is termd_request_duration_seconds of the route's type:
	// from the loop's decode to the answer encoded for the socket.
	latency *metrics.Histogram
}

// Sent wraps a route's response whose sender must learn that it was
// written to the connection (spec §6.1: last_failure is marked delivered
// only then). Done runs on the connection's loop right after the frame was
// handed to the socket, and not at all when the session ended first or
// the connection is closed as a slow reader: it must return at once
// (hand work to a goroutine).
type Sent struct {
	protocol.Message
	Done func()
}

// Handle routes request type t (0x01–0x3F) to r. Call it before Run.
func (s *Server) Handle(t byte, r *Route) {
	if !protocol.IsRequest(t) || t == protocol.TypeHello || t == protocol.TypeHeartbeat || t == protocol.TypeBye {
		panic("server: cannot route request type")
	}
	name := r.Class
	if name == "" {
		name = protocol.TypeName(t)
	}
	r.class = s.work.class(name)
	s.m.workClass(s.work, r.class)
	r.latency = s.m.set.GetOrCreateHistogram(fmt.Sprintf(`termd_request_duration_seconds{type=%q}`, protocol.TypeName(t)))
	s.routes[t] = r
}

// dispatch handles one verified frame of a live session, in the spec's
// check order: forbidden type, unknown request type, then the body.
func (c *conn) dispatch(f *codec.Frame, now int64) gnet.Action {
	s := c.l.s
	t, seq := f.Header.Type, f.Header.Seq
	switch {
	case protocol.IsPushAck(t):
		if !protocol.IsArrayStart(f.Body) {
			s.m.decodeError(decNotArray)
			c.reason = presence.ReasonProtocolError
			c.sendError(seq, protocol.BadRequest, "body is not an array")
			return gnet.Close
		}
		if !c.takeToken(now) {
			s.m.rateLimited.Inc() // an ack cannot be answered; it is dropped
		}
		c.l.pushAcked(c, t, seq)
		return gnet.None
	case !protocol.IsRequest(t):
		s.m.decodeError(decForbiddenType)
		c.reason = presence.ReasonProtocolError
		c.sendError(seq, protocol.UnknownType, "frame type not allowed")
		return gnet.Close
	}
	if c.isInflight(seq) {
		s.m.decodeError(decSeqReuse)
		c.reason = presence.ReasonProtocolError
		c.sendError(seq, protocol.BadRequest, "seq reused while outstanding")
		return gnet.Close
	}
	if !c.takeToken(now) {
		s.m.rateLimited.Inc()
		c.refuse(t, seq, &protocol.Error{Code: protocol.RateLimited, Message: "frame rate limit", RetryAfterMs: c.tokenRetryMs()})
		return gnet.None
	}
	if !protocol.KnownRequest(t) {
		s.m.decodeError(decUnknownType)
		c.refuse(t, seq, &protocol.Error{Code: protocol.UnknownType, Message: "unknown request type"})
		return gnet.None
	}
	if !protocol.IsArrayStart(f.Body) {
		s.m.decodeError(decNotArray)
		c.reason = presence.ReasonProtocolError
		c.sendError(seq, protocol.BadRequest, "body is not an array")
		return gnet.Close
	}
	// The pipelining limit applies to every request, the loop-local ones
	// too (spec §1.1); the Go SDK keeps a slot free for heartbeats.
	if len(c.inflight) >= s.cfg.Server.MaxInFlight {
		s.m.rateLimited.Inc()
		c.refuse(t, seq, &protocol.Error{Code: protocol.RateLimited, Message: "too many outstanding requests", RetryAfterMs: 100})
		return gnet.None
	}
	switch t {
	case protocol.TypeHeartbeat:
		c.heartbeat(f, now)
		return gnet.None
	case protocol.TypeBye:
		var bye protocol.Bye
		if err := protocol.DecodeBody(c.l.in, f.Body, &bye); err != nil {
			c.badRequest(t, seq, err)
			return gnet.None
		}
		c.send(seq, &protocol.Ack{AckType: protocol.Response(protocol.TypeBye)})
		c.reason = presence.ReasonBye
		c.state = stateClosing
		return gnet.Close
	case protocol.TypeHello:
		c.refuse(t, seq, &protocol.Error{Code: protocol.Conflict, Message: "session already established"})
		return gnet.None
	}
	c.request(f, now)
	return gnet.None
}

// heartbeat answers HEARTBEAT from memory, on the loop (spec §4). It
// allocates only when a status map must be kept.
func (c *conn) heartbeat(f *codec.Frame, now int64) {
	s, l := c.l.s, c.l
	if err := protocol.DecodeBody(l.in, f.Body, &l.hb); err != nil {
		c.badRequest(protocol.TypeHeartbeat, f.Header.Seq, err)
		return
	}
	s.m.heartbeats.Inc()
	// Persist a new status at once, but last_seen alone only every
	// seen_interval: the live value is in memory, and one record write per
	// heartbeat would dominate Badger's work at fleet scale.
	var status []byte
	if l.hb.Status != nil && !bytes.Equal(l.hb.Status, c.live.Status()) {
		status = append([]byte(nil), l.hb.Status...)
		c.live.SetStatus(status)
	}
	if status != nil || now-c.seenMs >= s.seenIntervalMs {
		c.seenMs = now
		s.Presence.Seen(&c.live, now, status)
	}
	l.ack = protocol.HeartbeatAck{ServerTimeMs: uint64(now), Flags: c.hbAck(l.hb.GroupVersion), HBInterval: s.hbIntervalSeconds()}
	c.send(f.Header.Seq, &l.ack)
}

// request decodes a domain request on the loop, from a private copy of the
// body, and hands it to a worker; the worker's answer comes back to this
// loop, which encodes and tags it in frame order.
func (c *conn) request(f *codec.Frame, now int64) {
	s := c.l.s
	t, seq := f.Header.Type, f.Header.Seq
	rt := s.routes[t]
	if rt == nil { // every request type has a route; kept as a guard
		c.refuse(t, seq, &protocol.Error{Code: protocol.UnknownType, Message: "unknown request type"})
		return
	}
	if rt.Writes {
		if err := s.store.Writable(); err != nil {
			s.m.writesRefused.Inc()
			c.refuse(t, seq, AsError(err))
			return
		}
	}
	msg := rt.New()
	body := append([]byte(nil), f.Body...)
	if err := protocol.DecodeBody(c.l.in, body, msg); err != nil {
		c.badRequest(t, seq, err)
		return
	}
	req := &Request{
		DeviceID: c.live.DeviceID, SessionID: c.live.SessionID, Model: c.live.Model,
		Type: t, Seq: seq, Msg: msg, start: time.Now(),
	}
	c.inflight = append(c.inflight, seq)
	var ok bool
	if rt.Start != nil {
		addr := c.live.Remote
		ok = s.work.submit(rt.class, func(context.Context) {
			if addr != nil {
				req.Remote = addr.String() // formatted on the worker, not the loop
			}
			rt.Start(req, func(resp protocol.Message, err error) {
				c.l.post(func() { c.finish(req, resp, err) })
			})
		})
	} else {
		ok = s.work.submit(rt.class, func(ctx context.Context) {
			resp, err := rt.Serve(ctx, req)
			c.l.post(func() { c.finish(req, resp, err) })
		})
	}
	if !ok {
		c.inflight = c.inflight[:len(c.inflight)-1]
		s.m.workRejected.Inc()
		c.refuse(t, seq, &protocol.Error{Code: protocol.Unavailable, Message: "server busy", RetryAfterMs: 1000})
	}
}

// finish writes a worker's answer, on the loop, if the session is still
// the one that asked.
func (c *conn) finish(req *Request, resp protocol.Message, err error) {
	if c.closed || !c.authed || c.live.SessionID != req.SessionID || c.state != stateLive {
		return
	}
	for i, q := range c.inflight {
		if q == req.Seq {
			c.inflight = append(c.inflight[:i], c.inflight[i+1:]...)
			break
		}
	}
	if len(c.inflight) == 0 {
		c.inflight = nil
	}
	c.l.out.Reset()
	if err != nil || resp == nil {
		if err == nil {
			err = protocol.Internal
		}
		c.refuse(req.Type, req.Seq, AsError(err))
	} else {
		c.send(req.Seq, resp)
	}
	// Timed before the write, so that a terminal holding its answer finds
	// the request counted (the write itself is a non-blocking send).
	if rt := c.l.s.routes[req.Type]; rt != nil && rt.latency != nil {
		rt.latency.UpdateDuration(req.start)
	}
	slow := c.flush()
	if slow && !c.closed {
		_ = c.l.el.Close(c.gc)
	}
	if sent, ok := resp.(*Sent); ok && err == nil && !slow && sent.Done != nil {
		sent.Done()
	}
}

func (c *conn) refuse(t byte, seq uint16, e *protocol.Error) {
	c.send(seq, &protocol.Refusal{RespType: protocol.Response(t), Err: e})
}

func (c *conn) badRequest(t byte, seq uint16, err error) {
	c.l.s.m.decodeError(decBadField)
	c.refuse(t, seq, AsError(err))
}

func (c *conn) isInflight(seq uint16) bool {
	for _, q := range c.inflight {
		if q == seq {
			return true
		}
	}
	return false
}

// takeToken applies the per-connection frame rate limit (token bucket).
func (c *conn) takeToken(now int64) bool {
	cfg := &c.l.s.cfg.Server
	if el := now - c.lastMs; el > 0 {
		c.tokens = min(float32(cfg.FrameBurst), c.tokens+float32(el)*float32(cfg.FrameRate)/1000)
		c.lastMs = now
	}
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// tokenRetryMs is when the next token will be there.
func (c *conn) tokenRetryMs() uint64 {
	return uint64((1-c.tokens)*1000/float32(c.l.s.cfg.Server.FrameRate)) + 1
}
