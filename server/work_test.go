package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// One stuck feature holds at most its share of the workers and of the
// queue: its surplus requests are refused UNAVAILABLE with a retry, and
// the other features' requests are still answered at once.
func TestWorkerIsolation(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.Workers = 4
	cfg.Server.WorkQueue = 16
	cfg.Server.RouteShare = 50 // control: 2 running, 8 queued
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	ts := startServerWith(t, cfg, func(s *Server) {
		s.Handle(protocol.TypeControl, &Route{
			New: func() protocol.Message { return &protocol.Control{} },
			Serve: func(ctx context.Context, _ *Request) (protocol.Message, error) {
				started <- struct{}{}
				<-release // a store that does not answer
				return nil, protocol.NotFound
			},
			Class: "control",
		})
	})
	defer close(release)

	sick := dialSDK(t, ts, "T-sick")
	results := make(chan error, 16)
	send := func(n int) {
		for i := 0; i < n; i++ {
			go func() {
				results <- sick.Do(t.Context(), &protocol.Control{ServiceID: "x", Op: protocol.OpStatus}, &protocol.ControlAck{})
			}()
		}
	}
	send(2)
	<-started
	<-started
	// 2 run; of 13 more, 8 wait and the other 5 are refused at once.
	send(13)
	for i := 0; i < 5; i++ {
		select {
		case err := <-results:
			var pe *protocol.Error
			if protocol.StatusOf(err) != protocol.Unavailable || !errors.As(err, &pe) || pe.RetryAfterMs == 0 {
				t.Fatalf("surplus request: %v, want UNAVAILABLE with retry_after_ms", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d surplus requests were refused", i)
		}
	}
	// Another feature is answered while control is stuck.
	other := dialSDK(t, ts, "T-other")
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := other.Do(ctx, &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0"}, &protocol.UpgradeQueryAck{})
		cancel()
		if err != nil {
			t.Fatalf("upgrade query %d while control is stuck: %v", i, err)
		}
	}
	select {
	case err := <-results:
		t.Fatalf("a stuck control request was answered: %v", err)
	default:
	}
	if n := len(started); n != 0 {
		t.Fatalf("%d more control requests ran past the class's share of 2 workers", n)
	}
}

func dialSDK(t *testing.T, ts *testServer, device string) *client.Conn {
	t.Helper()
	cfg := sdkConfig(ts, device)
	cfg.NoHeartbeat = true
	c, err := client.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Free workers take classes round-robin: a class with a long queue does
// not delay another class's single request behind its whole queue.
func TestWorkersRoundRobin(t *testing.T) {
	w := newWorkers(1, 100, 100)
	defer w.close()
	a, b := w.class("a"), w.class("b")
	gate := make(chan struct{})
	order := make(chan string, 100)
	if !w.submit(a, func(context.Context) { <-gate; order <- "a" }) {
		t.Fatal("submit")
	}
	for i := 0; i < 10; i++ {
		w.submit(a, func(context.Context) { order <- "a" })
	}
	w.submit(b, func(context.Context) { order <- "b" })
	close(gate)
	var got []string
	for i := 0; i < 12; i++ {
		got = append(got, <-order)
	}
	pos := -1
	for i, s := range got {
		if s == "b" {
			pos = i
		}
	}
	if pos < 0 || pos > 2 {
		t.Fatalf("b ran at position %d of %v", pos, got)
	}
	if q := w.depth(); q != 0 {
		t.Fatalf("depth %d after draining", q)
	}
}
