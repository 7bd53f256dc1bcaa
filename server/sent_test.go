package server

import (
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// A Sent response's Done runs once the answer was written, and not when
// the session ended before the answer was ready.
func TestSentDoneAfterWrite(t *testing.T) {
	done := make(chan string, 4)
	release := make(chan struct{})
	ts := startServerWith(t, testConfig(t), func(s *Server) {
		s.Handle(protocol.TypeUpgradeQuery, &Route{
			New: func() protocol.Message { return &protocol.UpgradeQuery{} },
			Start: func(req *Request, reply func(protocol.Message, error)) {
				q := req.Msg.(*protocol.UpgradeQuery)
				go func() {
					if q.AppID == "slow" {
						<-release
					}
					reply(&Sent{Message: &protocol.UpgradeQueryAck{}, Done: func() { done <- q.AppID }}, nil)
				}()
			},
		})
	})
	dial := func(id string) *client.Conn {
		cfg := sdkConfig(ts, id)
		cfg.NoHeartbeat = true
		c, err := client.Dial(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial("T-sent-1")
	defer c.Close()
	var ack protocol.UpgradeQueryAck
	if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "fast", Version: "1"}, &ack); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got != "fast" {
			t.Fatalf("Done of %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not run after the answer was written")
	}
	gone := dial("T-sent-2")
	errc := make(chan error, 1)
	go func() {
		errc <- gone.Do(t.Context(), &protocol.UpgradeQuery{AppID: "slow", Version: "1"}, &protocol.UpgradeQueryAck{})
	}()
	time.Sleep(100 * time.Millisecond) // the request reached the worker
	gone.Close()
	<-errc
	time.Sleep(100 * time.Millisecond) // the session ended on the loop
	close(release)
	select {
	case got := <-done:
		t.Fatalf("Done of %q ran for a session that had ended", got)
	case <-time.After(300 * time.Millisecond):
	}
}
