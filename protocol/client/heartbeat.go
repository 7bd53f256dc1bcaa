package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/termd/termd/protocol"
)

// Heartbeat spreads (spec §4): the first beat at a random point in
// [0.5, 1.0] × interval after HELLO_OK, later ones in [0.9, 1.0] × interval.
const (
	firstBeatLow = 0.5
	nextBeatLow  = 0.9
)

// Heartbeat sends one HEARTBEAT (with Config.GroupVersion and Status) and
// waits for its ack, bounded by ctx. The ack's interval and flags are
// adopted as the heartbeat loop's are.
func (c *Conn) Heartbeat(ctx context.Context) (protocol.HeartbeatAck, error) {
	var req protocol.Heartbeat
	var ack protocol.HeartbeatAck
	c.fillHeartbeat(&req)
	if err := c.do(ctx, c.hbSlot, nil, nil, &req, &ack); err != nil {
		return ack, err
	}
	c.adoptAck(&ack)
	return ack, nil
}

func (c *Conn) fillHeartbeat(req *protocol.Heartbeat) {
	req.GroupVersion, req.Status = 0, nil
	if c.cfg.GroupVersion != nil {
		req.GroupVersion = c.cfg.GroupVersion()
	}
	if c.cfg.Status != nil {
		req.Status = c.cfg.Status()
	}
}

// adoptAck takes the interval, flags and server time of a verified ack.
func (c *Conn) adoptAck(ack *protocol.HeartbeatAck) {
	c.hbInterval.Store(int64(c.cfg.clampInterval(ack.HBInterval)))
	c.lastFlags.Store(ack.Flags)
	c.setOffset(ack.ServerTimeMs)
}

// heartbeatLoop beats until the session ends or Stall is called. A beat
// whose ack does not come within min(interval, 30 s) ends the session with
// ErrAckTimeout. It reuses its message, ack and timers: a beat allocates
// nothing.
func (c *Conn) heartbeatLoop() {
	next := time.NewTimer(jitter(c.HBInterval(), firstBeatLow))
	defer next.Stop()
	ackWait := time.NewTimer(time.Hour)
	ackWait.Stop()
	for {
		select {
		case <-next.C:
		case <-c.done:
			return
		case <-c.stallCh:
			return
		}
		sent := time.Now()
		err := c.beat(ackWait, min(c.HBInterval(), maxAckWait))
		wait := jitter(c.HBInterval(), nextBeatLow)
		switch {
		case err == nil:
		case errors.Is(err, ErrAckTimeout):
			c.fail(ErrAckTimeout)
			return
		case errors.Is(err, ErrStalled), errors.Is(err, ErrClosed), c.Err() != nil:
			// Stalled, after BYE, or the session is over.
			return
		default:
			// A refused heartbeat (RATE_LIMITED, say) is answered, so the
			// server is alive: keep beating, no sooner than it asked.
			c.log.Warn("heartbeat refused", "err", err)
			wait = max(wait, RetryAfter(err))
		}
		next.Reset(max(0, wait-time.Since(sent)))
	}
}

// beat sends one heartbeat from the loop and waits up to wait for its ack.
func (c *Conn) beat(ackWait *time.Timer, wait time.Duration) error {
	c.fillHeartbeat(&c.hbReq)
	ackWait.Reset(wait)
	defer ackWait.Stop()
	err := c.do(context.Background(), c.hbSlot, ackWait.C, c.stallCh, &c.hbReq, &c.hbAck)
	if err != nil {
		return err
	}
	c.adoptAck(&c.hbAck)
	return nil
}

// jitter returns a uniform random duration in [low × d, d].
func jitter(d time.Duration, low float64) time.Duration {
	lo := time.Duration(float64(d) * low)
	if d <= lo {
		return d
	}
	return lo + rand.N(d-lo+1)
}
