package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
)

// Call states: a response (or the session's end) and the caller's give-up
// race for a waiting call; exactly one CompareAndSwap from callWaiting wins.
const (
	callWaiting   int32 = iota
	callClaimed         // the reader or fail owns it and will signal done
	callAbandoned       // the caller left; whoever removes it frees it
)

// call is one outstanding request. Calls are pooled so a heartbeat does
// not allocate one.
type call struct {
	resp     protocol.Message
	respType byte
	slots    chan struct{} // the semaphore the call holds a slot of
	state    atomic.Int32
	err      error
	done     chan struct{} // capacity 1: signalled once per use
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newCall(resp protocol.Message, respType byte, slots chan struct{}) *call {
	cl := callPool.Get().(*call)
	cl.resp, cl.respType, cl.slots, cl.err = resp, respType, slots, nil
	cl.state.Store(callWaiting)
	return cl
}

func freeCall(cl *call) {
	cl.resp, cl.slots, cl.err = nil, nil, nil
	callPool.Put(cl)
}

// finish returns the result of a signalled call and frees it.
func (cl *call) finish() error {
	err := cl.err
	freeCall(cl)
	return err
}

// Do sends req with the next free seq and waits for the response with the
// same seq, decoding it into resp. A refusal is returned as the
// *protocol.Error resp's Decode produces. Many Do calls may run at once;
// responses are matched by seq in whatever order they come. At most 15 Do
// requests are outstanding (the 16th slot is the heartbeat's), so the SDK
// never provokes RATE_LIMITED; Do blocks for a slot until ctx ends.
//
// If ctx ends first, Do returns ctx.Err() but the seq stays reserved until
// the response arrives, because the server still counts it outstanding.
// resp is decoded on the reader goroutine while the frame is in the
// receive buffer, so its Decode must copy what it keeps (Reader.Str,
// BinCopy), as the protocol package's response types do.
func (c *Conn) Do(ctx context.Context, req, resp protocol.Message) error {
	if t := req.Type(); !protocol.IsRequest(t) || t == protocol.TypeHello {
		return fmt.Errorf("client: type 0x%02x is not a session request", t)
	}
	return c.do(ctx, c.reqSlots, nil, nil, req, resp)
}

// do is Do with the extra ways to give up the heartbeat loop needs: an ack
// deadline (timeout, reported as ErrAckTimeout) and stop (ErrStalled).
// Either may be nil.
func (c *Conn) do(ctx context.Context, slots chan struct{}, timeout <-chan time.Time, stop <-chan struct{}, req, resp protocol.Message) error {
	select {
	case slots <- struct{}{}:
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return ErrAckTimeout
	case <-stop:
		return ErrStalled
	}
	cl := newCall(resp, protocol.Response(req.Type()), slots)
	seq, err := c.register(cl)
	if err != nil {
		<-slots
		freeCall(cl)
		return err
	}
	if err := c.send(seq, req); err != nil {
		return c.unsend(seq, cl, err)
	}
	select {
	case <-cl.done:
		return cl.finish()
	case <-ctx.Done():
		return c.abandon(cl, ctx.Err())
	case <-timeout:
		return c.abandon(cl, ErrAckTimeout)
	case <-stop:
		return c.abandon(cl, ErrStalled)
	}
}

// register gives cl the next seq that no outstanding request holds.
func (c *Conn) register(cl *call) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, c.err
	}
	// At most MaxInFlight seqs are taken, so this ends within 17 tries.
	for {
		seq := c.nextSeq
		c.nextSeq++
		if _, taken := c.calls[seq]; !taken {
			c.calls[seq] = cl
			return seq, nil
		}
	}
}

// unsend withdraws a call whose request was not written.
func (c *Conn) unsend(seq uint16, cl *call, err error) error {
	c.mu.Lock()
	mine := c.calls[seq] == cl
	if mine {
		delete(c.calls, seq)
	}
	c.mu.Unlock()
	if mine {
		<-cl.slots
		freeCall(cl)
		return err
	}
	// The session ended meanwhile and fail took the call: it signals.
	<-cl.done
	freeCall(cl)
	return err
}

// abandon gives up waiting for cl. If the response won the race it is
// returned instead of err.
func (c *Conn) abandon(cl *call, err error) error {
	if cl.state.CompareAndSwap(callWaiting, callAbandoned) {
		return err
	}
	<-cl.done
	return cl.finish()
}

// send encodes, tags and writes one frame. Holding wmu across all three
// keeps the tag counter in wire order.
func (c *Conn) send(seq uint16, m protocol.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.stalled:
		return ErrStalled
	case c.wclosed:
		return ErrClosed
	}
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	c.w.Reset()
	frame := c.w.AppendTaggedFrame(c.wmac, &c.ks, protocol.DirTerminal, c.outN, seq, m)
	if len(frame)-codec.HeaderSize > c.maxFrame {
		return fmt.Errorf("%w: %s is %d bytes, max_frame %d", ErrFrameTooLarge,
			protocol.TypeName(m.Type()), len(frame)-codec.HeaderSize, c.maxFrame)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	c.outN++
	if _, err := c.nc.Write(frame); err != nil {
		// A partial frame breaks the stream; the session is over.
		c.fail(fmt.Errorf("client: write: %w", err))
		return c.Err()
	}
	if m.Type() == protocol.TypeBye {
		c.wclosed = true
	}
	return nil
}

// readLoop is the connection's only reader. It verifies every frame's tag
// and dispatches it; any fault ends the session.
func (c *Conn) readLoop() {
	lim := codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: true}
	for {
		f, err := codec.Next(&c.src, lim)
		if err == codec.ErrIncomplete {
			c.fail(c.readError())
			return
		}
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrMalformed, err))
			return
		}
		if !c.rmac.VerifyTag(&c.ks, protocol.DirServer, c.inN, f.Signed(), f.Tag) {
			c.fail(ErrBadTag)
			return
		}
		c.inN++
		err = c.dispatch(f.Header, f.Body)
		c.src.Discard(f.Size())
		if err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Conn) readError() error {
	if c.leaving.Load() {
		return ErrClosed // the server closes after BYE_ACK
	}
	return fmt.Errorf("client: read: %w", c.src.Err())
}

// dispatch handles one verified frame. A non-nil error ends the session.
func (c *Conn) dispatch(h codec.Header, body []byte) error {
	if !protocol.IsArrayStart(body) {
		return fmt.Errorf("%w: %s body is not an array", ErrMalformed, protocol.TypeName(h.Type))
	}
	t := h.Type
	switch {
	case t == protocol.TypeError:
		ef := &protocol.ErrorFrame{}
		if err := protocol.DecodeBody(c.rr, body, ef); err != nil {
			return fmt.Errorf("%w: ERROR: %v", ErrMalformed, err)
		}
		return ef
	case t == protocol.TypeGoaway:
		ge := &GoawayError{}
		if err := protocol.DecodeBody(c.rr, body, &ge.Goaway); err != nil {
			return fmt.Errorf("%w: GOAWAY: %v", ErrMalformed, err)
		}
		return ge
	case t >= pushFirst && t <= pushLast:
		c.push(t, h.Seq, body)
		return nil
	case t > protocol.ResponseBit && protocol.IsRequest(t&^protocol.ResponseBit):
		c.response(t, h.Seq, body)
		return nil
	}
	return fmt.Errorf("%w: unexpected frame type 0x%02x", ErrMalformed, t)
}

// Push types (spec §1.1).
const (
	pushFirst byte = 0x40
	pushLast  byte = 0x5F
)

// push hands a push to OnPush and acks it if it needs an ack.
func (c *Conn) push(t byte, seq uint16, body []byte) {
	if protocol.TypeName(t) == "unknown" {
		c.log.Debug("ignoring unknown push", "type", t, "seq", seq)
		return
	}
	if c.cfg.OnPush != nil {
		c.cfg.OnPush(t, seq, body)
	}
	if !protocol.PushNeedsAck(t) {
		return
	}
	c.rack.AckType = protocol.Response(t)
	if err := c.send(seq, &c.rack); err != nil && !errors.Is(err, ErrStalled) {
		c.log.Debug("push ack not sent", "type", t, "seq", seq, "err", err)
	}
}

// response completes the call waiting for seq.
func (c *Conn) response(t byte, seq uint16, body []byte) {
	c.mu.Lock()
	cl, ok := c.calls[seq]
	if ok {
		delete(c.calls, seq)
	}
	c.mu.Unlock()
	if !ok {
		c.log.Debug("response to no outstanding request", "type", t, "seq", seq)
		return
	}
	<-cl.slots
	if !cl.state.CompareAndSwap(callWaiting, callClaimed) {
		freeCall(cl) // abandoned: nobody else holds it now
		return
	}
	if t != cl.respType {
		cl.err = fmt.Errorf("%w: response type 0x%02x for seq %d, want 0x%02x", ErrMalformed, t, seq, cl.respType)
	} else {
		cl.err = protocol.DecodeBody(c.rr, body, cl.resp)
	}
	cl.done <- struct{}{}
}

// fail ends the session with err (the first cause wins): it records err,
// closes Done and the socket, and fails every waiting call.
func (c *Conn) fail(err error) {
	c.failOne.Do(func() {
		c.mu.Lock()
		c.err = err
		c.closed = true
		calls := c.calls
		c.calls = nil
		c.mu.Unlock()
		close(c.done)
		_ = c.nc.Close()
		for _, cl := range calls {
			if cl.state.CompareAndSwap(callWaiting, callClaimed) {
				cl.err = err
				cl.done <- struct{}{}
			} else {
				freeCall(cl)
			}
		}
		if err != ErrClosed {
			c.log.Info("session ended", "session_id", c.sessionID, "err", err)
		}
	})
}

// Close closes the socket without BYE. The session ends with ErrClosed
// unless it had already ended.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Bye sends BYE with an optional reason, waits for BYE_ACK (bounded by
// ctx) and closes the connection.
func (c *Conn) Bye(ctx context.Context, reason string) error {
	c.leaving.Store(true)
	ack := protocol.Ack{AckType: protocol.Response(protocol.TypeBye)}
	err := c.do(ctx, c.reqSlots, nil, nil, &protocol.Bye{Reason: reason}, &ack)
	c.Close()
	return err
}

// Stall models a hung terminal: the heartbeat loop stops and nothing more
// is sent (Do and Heartbeat return ErrStalled, pushes are not acked), but
// the socket stays open and frames are still read, so a server-side
// timeout or GOAWAY still ends the session.
func (c *Conn) Stall() {
	c.wmu.Lock()
	c.stalled = true
	c.wmu.Unlock()
	c.stallOne.Do(func() { close(c.stallCh) })
}
