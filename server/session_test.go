package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

func TestHelloHeartbeatBye(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	c := dialRaw(t, ts.addr)
	ok := c.login("T-0001")
	if ok.HBInterval != 30 || ok.MaxFrame != 4096 || ok.SessionID>>32 == 0 {
		t.Fatalf("HELLO_OK %+v", ok)
	}
	ev := ts.waitEvent(t, "T-0001", events.KindOnline, time.Second)
	if ev.SessionID != ok.SessionID {
		t.Fatalf("online event %+v", ev)
	}
	status := []byte{0x81, 0xa3, 'b', 'a', 't', 0x5a} // {"bat": 90}
	for seq := uint16(1); seq <= 3; seq++ {
		c.send(seq, &protocol.Heartbeat{GroupVersion: 0, Status: status})
		f := c.mustRead()
		var ack protocol.HeartbeatAck
		if f.typ != 0x82 || f.seq != seq {
			t.Fatalf("ack frame %#x seq %d", f.typ, f.seq)
		}
		if err := c.decode(f, &ack); err != nil || ack.HBInterval != 30 {
			t.Fatalf("ack %+v %v", ack, err)
		}
		if d := time.Since(time.UnixMilli(int64(ack.ServerTimeMs))); d < 0 || d > 5*time.Second {
			t.Fatalf("server_time_ms off by %v", d)
		}
	}
	if e := ts.Presence.Get("T-0001"); e == nil || string(e.Status()) != string(status) {
		t.Fatalf("presence entry status %v", e)
	}
	c.send(9, &protocol.Bye{Reason: "power off"})
	f := c.mustRead()
	var ack protocol.Ack
	if f.typ != 0x8C || f.seq != 9 || c.decode(f, &ack) != nil {
		t.Fatalf("bye ack %#x %x", f.typ, f.body)
	}
	c.expectClosed(2 * time.Second)
	ev = ts.waitEvent(t, "T-0001", events.KindOffline, time.Second)
	if ev.Reason != presence.ReasonBye.String() {
		t.Fatalf("offline reason %q", ev.Reason)
	}
	// The write-behind reaches the store within a flush or two.
	waitFor(t, 2*time.Second, func() bool {
		d, err := ts.store.Get(context.Background(), "T-0001")
		return err == nil && !d.Online && d.OfflineReason == presence.ReasonBye.String() && string(d.Status) == string(status) && d.FW == "1.0.0"
	})
}

func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClosedOfflineWithinASecond(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	c := dialRaw(t, ts.addr)
	c.login("T-close")
	ts.waitEvent(t, "T-close", events.KindOnline, time.Second)
	start := time.Now()
	c.nc.Close()
	ev := ts.waitEvent(t, "T-close", events.KindOffline, time.Second)
	if ev.Reason != presence.ReasonClosed.String() || time.Since(start) > time.Second {
		t.Fatalf("offline %+v after %v", ev, time.Since(start))
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat.Interval.Duration = time.Second
	cfg.Heartbeat.MissFactor = 2
	ts := startServer(t, cfg, nil)
	c := dialRaw(t, ts.addr)
	c.login("T-stall")
	// One heartbeat moves the deadline; then silence.
	time.Sleep(500 * time.Millisecond)
	c.send(1, &protocol.Heartbeat{})
	c.mustRead()
	last := time.Now()
	f := c.mustRead() // GOAWAY after 2 s of silence
	var g protocol.Goaway
	if f.typ != protocol.TypeGoaway || c.decode(f, &g) != nil || g.Code != protocol.Expired {
		t.Fatalf("expected GOAWAY 12, got %#x %x", f.typ, f.body)
	}
	if d := time.Since(last); d < 2*time.Second-50*time.Millisecond || d > 2*time.Second+500*time.Millisecond {
		t.Fatalf("timeout after %v, want 2s", d)
	}
	c.expectClosed(time.Second)
	ev := ts.waitEvent(t, "T-stall", events.KindOffline, time.Second)
	if ev.Reason != presence.ReasonTimeout.String() {
		t.Fatalf("reason %q", ev.Reason)
	}
}

func TestTakeoverNewestWins(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	a := dialRaw(t, ts.addr)
	okA := a.login("T-dup")
	ts.waitEvent(t, "T-dup", events.KindOnline, time.Second)
	b := dialRaw(t, ts.addr)
	okB := b.login("T-dup")
	if okB.SessionID <= okA.SessionID {
		t.Fatalf("session ids not increasing: %d then %d", okA.SessionID, okB.SessionID)
	}
	f := a.mustRead()
	var g protocol.Goaway
	if f.typ != protocol.TypeGoaway || a.decode(f, &g) != nil || g.Code != protocol.Conflict || g.Message != "replaced" {
		t.Fatalf("old session got %#x %x", f.typ, f.body)
	}
	a.expectClosed(time.Second)
	ev := ts.waitEvent(t, "T-dup", events.KindReplaced, time.Second)
	if ev.SessionID != okB.SessionID {
		t.Fatalf("replaced event %+v", ev)
	}
	// No offline event: the device stayed online throughout.
	select {
	case ev := <-ts.events.C:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
	if e := ts.Presence.Get("T-dup"); e == nil || e.SessionID != okB.SessionID {
		t.Fatal("presence does not hold the new session")
	}
	b.send(1, &protocol.Heartbeat{})
	if f := b.mustRead(); f.typ != 0x82 {
		t.Fatalf("new session heartbeat: %#x", f.typ)
	}
}

func TestDuplicateDeviceCooldown(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth.ReplaceLimit = 2
	ts := startServer(t, cfg, nil)
	var last *rawClient
	for i := 0; i < 3; i++ { // first login + 2 replacements
		c := dialRaw(t, ts.addr)
		c.login("T-twin")
		if last != nil {
			// The replacement is confirmed on the old session's loop
			// before its GOAWAY goes out.
			last.expectGoaway(protocol.Conflict)
		}
		last = c
	}
	c := dialRaw(t, ts.addr)
	c.send(0, c.helloMsg("T-twin", time.Now().Unix(), nil))
	var refusal protocol.HelloOK
	err := c.decode(c.mustRead(), &refusal)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.Conflict || pe.Message != "duplicate device" || pe.RetryAfterMs < 9*60*1000 {
		t.Fatalf("4th HELLO: %v", err)
	}
	c.expectClosed(time.Second)
	ts.waitEvent(t, "T-twin", events.KindDuplicate, time.Second)
	// The live session is untouched.
	last.send(1, &protocol.Heartbeat{})
	if f := last.mustRead(); f.typ != 0x82 {
		t.Fatalf("live session: %#x", f.typ)
	}
}

func TestSessionIDsIncreaseAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	var prev uint64
	for i := 0; i < 2; i++ {
		st, err := storage.OpenBadger(dir, storage.BadgerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, testConfig(t), st)
		c := dialRaw(t, ts.addr)
		ok := c.login("T-epoch")
		if ok.SessionID <= prev {
			t.Fatalf("boot %d: session id %d not above %d", i, ok.SessionID, prev)
		}
		prev = ok.SessionID
		ts.stop()
		st.Close()
	}
}
