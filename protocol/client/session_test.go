package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
)

// slack absorbs scheduling delays in timing assertions (race detector on).
const slack = 150 * time.Millisecond

func fastHeartbeat(cfg Config) Config {
	cfg.NoHeartbeat = false
	cfg.HBMin = 100 * time.Millisecond
	return cfg
}

func TestHeartbeatLoopTiming(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{hbInterval: 1, ackInterval: 2, ackFlags: protocol.FlagGroupStale | protocol.FlagUpgradePending})
	groups := uint64(7)
	status, err := EncodeStatus(map[string]any{"temp": 21.5, "ok": true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastHeartbeat(testConfig(srv.addr()))
	cfg.GroupVersion = func() uint64 { return groups }
	cfg.Status = func() []byte { return status }
	c := dial(t, cfg)
	start := time.Now()
	if c.HBInterval() != time.Second {
		t.Fatalf("interval %v", c.HBInterval())
	}
	fc := srv.conn(t)

	first := fc.frame(t, 2*time.Second)
	if d := first.at.Sub(start); d < 500*time.Millisecond-slack/3 || d > time.Second+slack {
		t.Fatalf("first beat after %v, want [0.5 s, 1 s]", d)
	}
	if first.h.Type != protocol.TypeHeartbeat {
		t.Fatalf("type 0x%02x", first.h.Type)
	}
	var hb protocol.Heartbeat
	if err := protocol.DecodeBody(protocol.NewReader(nil), first.body, &hb); err != nil {
		t.Fatal(err)
	}
	if hb.GroupVersion != 7 || !bytes.Equal(hb.Status, status) {
		t.Fatalf("heartbeat %+v", hb)
	}
	// The ack announced 2 s: adopted, with its flags.
	deadline := time.Now().Add(time.Second)
	for c.LastFlags() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.LastFlags() != 3 || c.HBInterval() != 2*time.Second {
		t.Fatalf("flags %d interval %v", c.LastFlags(), c.HBInterval())
	}
	second := fc.frame(t, 3*time.Second)
	if d := second.at.Sub(first.at); d < 1800*time.Millisecond-slack/3 || d > 2*time.Second+slack {
		t.Fatalf("second beat %v after the first, want [1.8 s, 2 s]", d)
	}
}

func TestAckTimeout(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{hbInterval: 1})
	c := dial(t, fastHeartbeat(testConfig(srv.addr())))
	start := time.Now()
	fc := srv.conn(t)
	fc.dropAcks.Store(true)
	beat := fc.frame(t, 2*time.Second)
	err := waitDone(t, c, 3*time.Second)
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(beat.at); d < time.Second-slack || d > time.Second+2*slack {
		t.Fatalf("closed %v after the beat, want ≈1 s (min(interval, 30 s))", d)
	}
	fc.waitClosed(t, time.Second)
	t.Logf("session lasted %v", time.Since(start))
}

func TestGoaway(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{holdEcho: 100})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	res := make(chan error, 1)
	go func() { res <- c.Do(context.Background(), &echoReq{"x"}, &echoResp{}) }()
	fc.frame(t, time.Second)
	fc.push(&protocol.Goaway{Code: protocol.Conflict, Message: "replaced", RetryAfterMs: 250})
	err := waitDone(t, c, 2*time.Second)
	var ge *GoawayError
	if !errors.As(err, &ge) || !errors.Is(err, protocol.Conflict) || ge.Goaway.Message != "replaced" {
		t.Fatalf("err %v", err)
	}
	if RetryAfter(err) != 250*time.Millisecond {
		t.Fatalf("RetryAfter %v", RetryAfter(err))
	}
	if err := <-res; !errors.As(err, &ge) {
		t.Fatalf("pending Do: %v", err)
	}
	if err := c.Do(context.Background(), &echoReq{"y"}, &echoResp{}); !errors.As(err, &ge) {
		t.Fatalf("Do after the end: %v", err)
	}
}

func TestErrorFrame(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	fc.send(0, &protocol.ErrorFrame{Code: protocol.Internal, Message: "boom"})
	err := waitDone(t, c, 2*time.Second)
	var ef *protocol.ErrorFrame
	if !errors.As(err, &ef) || ef.Code != protocol.Internal || ef.Message != "boom" {
		t.Fatalf("err %v", err)
	}
}

type pushLog struct {
	mu    sync.Mutex
	types []byte
	seqs  []uint16
	body  [][]byte
}

func (p *pushLog) on(typ byte, seq uint16, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.types = append(p.types, typ)
	p.seqs = append(p.seqs, seq)
	p.body = append(p.body, append([]byte(nil), body...))
}

func (p *pushLog) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.types)
}

func TestPushAck(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	var log pushLog
	cfg := testConfig(srv.addr())
	cfg.OnPush = log.on
	c := dial(t, cfg)
	fc := srv.conn(t)
	notice := []byte{0x94, 0xa1, 'r', 0xa1, 'a', 0xa1, '2', 0x01}
	fc.push(&rawMsg{0x5E, []byte{0x91, 0x01}})                  // unknown: ignored
	fc.push(&rawMsg{protocol.TypeGroupMessage, []byte{0x90}})   // not acked
	seq := fc.push(&rawMsg{protocol.TypeUpgradeNotice, notice}) // acked
	ack := fc.frame(t, 2*time.Second)
	// Frames arrive in order, so an ack of the earlier pushes would be first.
	if ack.h.Type != protocol.Response(protocol.TypeUpgradeNotice) || ack.h.Seq != seq || !bytes.Equal(ack.body, []byte{0x91, 0x00}) {
		t.Fatalf("ack type 0x%02x seq %d body %x", ack.h.Type, ack.h.Seq, ack.body)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if !bytes.Equal(log.types, []byte{protocol.TypeGroupMessage, protocol.TypeUpgradeNotice}) {
		t.Fatalf("OnPush saw %x", log.types)
	}
	if log.seqs[1] != seq || !bytes.Equal(log.body[1], notice) {
		t.Fatalf("OnPush seq %d body %x", log.seqs[1], log.body[1])
	}
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

func TestStall(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{hbInterval: 1})
	var log pushLog
	cfg := fastHeartbeat(testConfig(srv.addr()))
	cfg.OnPush = log.on
	c := dial(t, cfg)
	fc := srv.conn(t)
	fc.frame(t, 2*time.Second) // the loop runs…
	c.Stall()                  // …until the terminal hangs
	if err := c.Do(context.Background(), &echoReq{"x"}, &echoResp{}); !errors.Is(err, ErrStalled) {
		t.Fatalf("Do: %v", err)
	}
	if _, err := c.Heartbeat(context.Background()); !errors.Is(err, ErrStalled) {
		t.Fatalf("Heartbeat: %v", err)
	}
	fc.push(&rawMsg{protocol.TypeGroupSync, []byte{0x92, 0x01, 0x90}})
	fc.quiet(t, 1200*time.Millisecond) // no heartbeat, no push ack
	if log.count() != 1 {
		t.Fatalf("%d pushes read while stalled, want 1", log.count())
	}
	select {
	case <-c.Done():
		t.Fatalf("session ended: %v", c.Err())
	case <-fc.closed:
		t.Fatal("socket closed")
	default:
	}
	// A server-side end still reaches a stalled terminal.
	fc.push(&protocol.Goaway{Code: protocol.Expired, Message: "heartbeat timeout"})
	if err := waitDone(t, c, 2*time.Second); !errors.Is(err, protocol.Expired) {
		t.Fatalf("err %v", err)
	}
}

func TestBye(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	if err := c.Bye(context.Background(), "maintenance"); err != nil {
		t.Fatal(err)
	}
	f := fc.frame(t, time.Second)
	var bye protocol.Bye
	if err := protocol.DecodeBody(protocol.NewReader(nil), f.body, &bye); err != nil || bye.Reason != "maintenance" {
		t.Fatalf("BYE %v %q", err, bye.Reason)
	}
	if err := waitDone(t, c, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v", err)
	}
	fc.waitClosed(t, time.Second)
}

func TestRunReconnects(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sessions := make(chan *Conn, 4)
	b := &Backoff{Base: 10 * time.Millisecond, Cap: 20 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, testConfig(srv.addr()), b, func(ctx context.Context, c *Conn) error {
			sessions <- c
			select {
			case <-c.Done():
				return c.Err()
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	next := func() *Conn {
		select {
		case c := <-sessions:
			return c
		case <-time.After(3 * time.Second):
			t.Fatal("no session")
			return nil
		}
	}
	c1 := next()
	fc1 := srv.conn(t)
	fc1.nc.Close() // the server drops the connection
	c2 := next()
	if c2.SessionID() <= c1.SessionID() {
		t.Fatalf("session ids %d then %d", c1.SessionID(), c2.SessionID())
	}
	if b.k != 1 {
		t.Fatalf("k = %d after one short session", b.k)
	}
	fc2 := srv.conn(t)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return")
	}
	// Run said goodbye on the way out.
	if f := fc2.frame(t, time.Second); f.h.Type != protocol.TypeBye {
		t.Fatalf("last frame 0x%02x, want BYE", f.h.Type)
	}
}

// TestHeartbeatAllocs checks that a heartbeat round trip of the loop
// allocates nothing on the client (the fake is allocation-free on this
// path too, and AllocsPerRun counts both).
func TestHeartbeatAllocs(t *testing.T) {
	srv := newFake(t, fakeOpts{noRecord: true})
	c := dial(t, testConfig(srv.addr()))
	srv.conn(t)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	if err := c.beat(timer, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := c.beat(timer, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per heartbeat", allocs)
	}
}
