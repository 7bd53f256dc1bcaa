package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
)

func sdkConfig(ts *testServer, device string) client.Config {
	return client.Config{
		Addr: ts.addr, DeviceID: device, FleetSecret: []byte(testSecret),
		FW: "2.1.0", Model: "K10", HBMin: 100 * time.Millisecond,
	}
}

// The SDK heartbeats on its own at the server's interval and stays online.
func TestSDKHeartbeatLoop(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat.Interval.Duration = time.Second
	cfg.Heartbeat.MissFactor = 2
	ts := startServer(t, cfg, nil)
	c, err := client.Dial(t.Context(), sdkConfig(ts, "T-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.HBInterval() != time.Second {
		t.Fatalf("interval %v", c.HBInterval())
	}
	// 3.5 s is longer than the 2 s timeout: only heartbeats keep it alive.
	time.Sleep(3500 * time.Millisecond)
	select {
	case <-c.Done():
		t.Fatalf("session ended: %v", c.Err())
	default:
	}
	if e := ts.Presence.Get("T-sdk"); e == nil || time.Since(time.UnixMilli(e.LastSeen())) > 1500*time.Millisecond {
		t.Fatal("device not seen recently")
	}
}

// echo is a test request message: [n uint] → [0, n].
type echo struct{ n uint64 }

func (m *echo) Type() byte                { return protocol.TypeGroupList }
func (m *echo) Encode(w *protocol.Writer) { w.Array(1); w.Uint(m.n) }
func (m *echo) Decode(r *protocol.Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 1 {
		return protocol.Missing("n")
	}
	if m.n, err = r.Uint("n"); err != nil {
		return err
	}
	return r.SkipRest(1, n)
}

type echoAck struct{ n uint64 }

func (m *echoAck) Type() byte                { return protocol.Response(protocol.TypeGroupList) }
func (m *echoAck) Encode(w *protocol.Writer) { w.Array(2); w.Uint(0); w.Uint(m.n) }
func (m *echoAck) Decode(r *protocol.Reader) error {
	n, code, err := r.Head()
	if err != nil || code != protocol.OK {
		return errors.Join(err, code)
	}
	m.n, err = r.Uint("n")
	return errors.Join(err, r.SkipRest(2, n))
}

// gate is a worker route whose requests wait until released.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	started chan uint64
}

func newGate() *gate { return &gate{release: make(chan struct{}), started: make(chan uint64, 64)} }

func (g *gate) route() *Route {
	return &Route{
		New: func() protocol.Message { return &echo{} },
		Serve: func(ctx context.Context, req *Request) (protocol.Message, error) {
			n := req.Msg.(*echo).n
			g.started <- n
			if n == 0 { // n 0 is answered at once
				return &echoAck{n: 0}, nil
			}
			<-g.release
			if n == 13 {
				return nil, protocol.Errorf(protocol.NotFound, "no %d", n)
			}
			return &echoAck{n: n * 10}, nil
		},
	}
}

func TestWorkerPathPipelining(t *testing.T) {
	ts, g := startGated(t)
	cfg := sdkConfig(ts, "T-pipe")
	cfg.NoHeartbeat = true
	c, err := client.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	results := make([]uint64, 14)
	errs := make([]error, 14)
	for i := 1; i <= 13; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ack echoAck
			errs[i] = c.Do(t.Context(), &echo{n: uint64(i)}, &ack)
			results[i] = ack.n
		}()
	}
	for i := 0; i < 13; i++ {
		<-g.started
	}
	// While 13 slow requests are outstanding, heartbeats and quick
	// requests on the same connection are answered.
	for i := 0; i < 3; i++ {
		if _, err := c.Heartbeat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var quick echoAck
	if err := c.Do(t.Context(), &echo{n: 0}, &quick); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	wg.Wait()
	for i := 1; i <= 12; i++ {
		if errs[i] != nil || results[i] != uint64(i*10) {
			t.Fatalf("request %d: %d %v", i, results[i], errs[i])
		}
	}
	if !errors.Is(errs[13], protocol.NotFound) {
		t.Fatalf("request 13: %v", errs[13])
	}
}

func TestInFlightLimitAndSeqReuse(t *testing.T) {
	ts, g := startGated(t)
	c := dialRaw(t, ts.addr)
	c.login("T-inflight")
	for seq := uint16(1); seq <= 16; seq++ {
		c.send(seq, &echo{n: uint64(seq)})
	}
	for i := 0; i < 16; i++ {
		<-g.started
	}
	c.send(17, &echo{n: 17})
	c.expectRefusal(protocol.Response(protocol.TypeGroupList), protocol.RateLimited)
	c.send(18, &protocol.Heartbeat{}) // every request type counts
	c.expectRefusal(protocol.Response(protocol.TypeHeartbeat), protocol.RateLimited)
	c.send(5, &echo{n: 5}) // seq 5 is still outstanding
	c.expectError(protocol.BadRequest, 5)
	close(g.release)
	if ev := ts.waitEvent(t, "T-inflight", events.KindOffline, time.Second); ev.Reason != presence.ReasonProtocolError.String() {
		t.Fatalf("reason %q", ev.Reason)
	}
}

// startGated starts a server whose GROUP_LIST route is a gate.
func startGated(t *testing.T) (*testServer, *gate) {
	g := newGate()
	ts := startServerWith(t, gateConfig(t), func(s *Server) { s.Handle(protocol.TypeGroupList, g.route()) })
	return ts, g
}

// A disconnected terminal's late worker result is dropped, not written to
// a closed or reused connection.
func TestLateResultAfterDisconnect(t *testing.T) {
	ts, g := startGated(t)
	c := dialRaw(t, ts.addr)
	c.login("T-late")
	c.send(1, &echo{n: 1})
	<-g.started
	c.nc.Close()
	ts.waitEvent(t, "T-late", events.KindOffline, time.Second)
	close(g.release)
	// The server keeps serving.
	d := dialRaw(t, ts.addr)
	d.login("T-late")
	d.send(1, &echo{n: 0})
	if f := d.mustRead(); f.typ != protocol.Response(protocol.TypeGroupList) {
		t.Fatalf("%#x", f.typ)
	}
}

// gateConfig has enough workers for every gated request to block on one.
func gateConfig(t *testing.T) config.Config {
	cfg := testConfig(t)
	cfg.Server.Workers = 32
	return cfg
}
