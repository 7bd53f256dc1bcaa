package server

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// startHistoryServer starts a server with an online history, its clock
// shifted by *offset ms from the real one.
func startHistoryServer(t *testing.T, offset *atomic.Int64) (*testServer, *history.History) {
	t.Helper()
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Millisecond) }
	hist := history.New(history.Options{Clock: clock})
	cfg := testConfig(t)
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: store, Clock: clock, History: hist, HistorySweepInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addr: cfg.Server.Listen, store: store, cancel: cancel, done: make(chan error, 1)}
	ts.events = s.Bus.Subscribe(4096)
	go func() { ts.done <- s.Run(ctx) }()
	select {
	case <-s.Started():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(ts.stop)
	return ts, hist
}

// A terminal connected across an hour boundary that sends nothing (its
// heartbeat interval is longer) is marked in the new hour by the sweep;
// a terminal that heartbeats over a real session is marked, and stays
// marked after it disconnects; one never seen is not.
func TestOnlineHistoryOverSockets(t *testing.T) {
	// The server's clock: 1.5 s before the next UTC hour.
	var offset atomic.Int64
	wall := time.Now().UnixMilli()
	next := (wall/history.HourMs + 1) * history.HourMs
	offset.Store(next - 1500 - wall)
	ts, hist := startHistoryServer(t, &offset)
	now := func() int64 { return time.Now().UnixMilli() + offset.Load() }
	hour := next - history.HourMs

	quiet := dialRaw(t, ts.addr)
	quiet.send(0, quiet.helloMsg("T-quiet", now()/1000, nil))
	var ok protocol.HelloOK
	if err := quiet.decode(quiet.mustRead(), &ok); err != nil {
		t.Fatalf("HELLO: %v", err)
	}
	quiet.finishLogin(&ok)
	ts.waitEvent(t, "T-quiet", events.KindOnline, 5*time.Second)
	if !hist.Online("T-quiet", hour) {
		t.Fatal("session start not marked")
	}
	// The boundary passes on the server's clock; the terminal stays silent.
	deadline := time.Now().Add(5 * time.Second)
	for !hist.Online("T-quiet", next) {
		if time.Now().After(deadline) {
			t.Fatal("the hour after the boundary was not marked by the sweep")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ts.Presence.Get("T-quiet") == nil {
		t.Fatal("the silent terminal went offline (the test wants it connected across the boundary)")
	}
	if hist.Online("T-never", next) || hist.Share([]string{"T-never"}, 3, now()) != 0 {
		t.Fatal("a device never seen is online")
	}
	if hist.Online("T-quiet", next+history.HourMs) {
		t.Fatal("a future hour is marked")
	}
}

// A real SDK session marks the hour it is in and keeps it after it ends.
func TestOnlineHistorySDKSession(t *testing.T) {
	var offset atomic.Int64
	ts, hist := startHistoryServer(t, &offset)
	c, err := client.Dial(t.Context(), sdkConfig(ts, "T-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	ts.waitEvent(t, "T-sdk", events.KindOnline, 5*time.Second)
	hour := time.Now().UnixMilli() / history.HourMs * history.HourMs
	c.Close()
	ts.waitEvent(t, "T-sdk", events.KindOffline, 5*time.Second)
	// (a session straddling an hour boundary by chance is marked in both)
	if !hist.Online("T-sdk", hour) && !hist.Online("T-sdk", hour+history.HourMs) {
		t.Fatal("the session's hour is not marked")
	}
	if hist.Len() != 1 {
		t.Fatalf("%d devices in the history", hist.Len())
	}
}
