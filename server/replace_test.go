package server

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// heartbeat sends a HEARTBEAT and reads its ack.
func (c *rawClient) heartbeat(seq uint16) {
	c.t.Helper()
	c.send(seq, &protocol.Heartbeat{})
	if f := c.mustRead(); f.typ != 0x82 {
		c.t.Fatalf("heartbeat answered with %#x", f.typ)
	}
}

// helloErr sends HELLO for device on a fresh connection and returns the
// refusal, or nil with the client logged in.
func (c *rawClient) helloErr(device string) error {
	c.t.Helper()
	c.send(0, c.helloMsg(device, time.Now().Unix(), nil))
	var ok protocol.HelloOK
	if err := c.decode(c.mustRead(), &ok); err != nil {
		return err
	}
	c.finishLogin(&ok)
	return nil
}

// loopHolding finds, on the loops themselves, the loop of the
// connection whose remote address is addr (or nil).
func (ts *testServer) loopHolding(t *testing.T, addr net.Addr) *loop {
	t.Helper()
	want := addr.String()
	found := make(chan *loop, 8)
	n := 0
	ts.loops.Range(func(_, v any) bool {
		l := v.(*loop)
		n++
		l.post(func() {
			for c := l.preHead; c != nil; c = c.pre.next {
				if c.live.RemoteAddr() == want {
					found <- l
					return
				}
			}
			if e := ts.Presence.Get("T-race"); e != nil && e.RemoteAddr() == want && e.Owner.(*conn).l == l {
				found <- l
				return
			}
			found <- nil
		})
		return true
	})
	var at *loop
	for range n {
		if l := <-found; l != nil {
			at = l
		}
	}
	return at
}

// A clean close racing the terminal's reconnect is not a replacement.
// The HELLO is checked on the new connection's loop; the old connection's
// close is seen on its own loop, which may be busy. Here that loop is
// held (a real busy loop does the same for a few ms) while the terminal
// closes and logs in again on the other loop: the HELLO finds the old
// session still registered. Before the fix that counted as a replacement
// at once, so with replace_limit 1 the second such reconnect was refused
// CONFLICT "duplicate device". Now the old loop confirms a replacement
// only if the kernel still has the old connection established, and a
// connection whose FIN has arrived is not.
func TestReplacementRaceWithClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth.ReplaceLimit = 1
	ts := startServer(t, cfg, nil)
	cur := dialRaw(t, ts.addr)
	cur.login("T-race")
	for round := range 3 {
		oldLoop := ts.Presence.Get("T-race").Owner.(*conn).l
		// The reconnect must land on the other loop (gnet hands accepted
		// connections to loops in turn).
		var next *rawClient
		for range 4 {
			next = dialRaw(t, ts.addr)
			var at *loop
			waitFor(t, 2*time.Second, func() bool { at = ts.loopHolding(t, next.nc.LocalAddr()); return at != nil })
			if at != oldLoop {
				break
			}
			next.nc.Close()
			next = nil
		}
		if next == nil {
			t.Fatal("every new connection landed on the old session's loop")
		}
		held, release := make(chan struct{}), make(chan struct{})
		oldLoop.post(func() { close(held); <-release })
		<-held
		cur.nc.Close()
		time.Sleep(50 * time.Millisecond) // the FIN is in the old loop's kernel queue
		err := next.helloErr("T-race")
		close(release)
		if err != nil {
			t.Fatalf("round %d: reconnect after a clean close refused: %v", round, err)
		}
		waitFor(t, 2*time.Second, func() bool { return ts.conns.Load() == 1 })
		cur = next
	}
}

// A terminal on a flaky link: its old connection is half-open (open on
// our side, nothing more from the terminal) and it reconnects after
// min(hb_interval, 30 s) without an ack. Eight such reconnects within
// replace_window are never refused. Before the fix the sixth was refused
// CONFLICT "duplicate device" and the terminal locked out for ten minutes.
func TestHalfOpenReconnectsNeverLockOut(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat.Interval = config.D(time.Second) // silence threshold min(1 s, 30 s)
	cfg.Heartbeat.MissFactor = 60                  // half-open sessions outlive the test
	ts := startServer(t, cfg, nil)
	for i := range 8 {
		c := dialRaw(t, ts.addr)
		if err := c.helloErr("T-flaky"); err != nil {
			t.Fatalf("reconnect %d refused: %v", i, err)
		}
		c.heartbeat(1)
		// The link dies: the socket stays open, the terminal goes silent
		// and gives up on its next ack after the interval.
		time.Sleep(1100 * time.Millisecond)
	}
}

// Two live terminals sharing an id, both heartbeating, take the session
// from each other: the sixth replacement within the window is refused and
// starts the cool-down.
func TestLiveDuplicatesStillCaught(t *testing.T) {
	ts := startServer(t, testConfig(t), nil) // replace_limit 5, 10 m window
	var prev *rawClient
	for i := range 7 {
		c := dialRaw(t, ts.addr)
		err := c.helloErr("T-twin")
		if i == 6 {
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.Conflict || pe.Message != "duplicate device" {
				t.Fatalf("takeover %d: %v, want CONFLICT duplicate device", i, err)
			}
			prev.heartbeat(2) // the live one keeps its session
			return
		}
		if err != nil {
			t.Fatalf("takeover %d refused: %v", i, err)
		}
		if prev != nil {
			prev.expectGoaway(protocol.Conflict)
		}
		c.heartbeat(1)
		prev = c
	}
}
