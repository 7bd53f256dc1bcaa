package loadtest

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/server/servertest"
)

// stallProxy forwards connections to a server. stall makes it stop
// passing the server's bytes on (the server "stops answering" while
// sockets stay open); cut closes every connection (the server died).
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(p.cut)
	go p.accept()
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := s.Read(buf)
				if err != nil {
					c.Close()
					return
				}
				if !p.stalled.Load() {
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}
		}()
	}
}

func (p *stallProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// runAsync runs a scenario and calls at(elapsed) once a second.
func runAsync(t *testing.T, cfg Config, at func(p Progress)) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg, at)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestStalledServerSkipsNotBursts(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	proxy := newStallProxy(t, node.Addr)
	cfg := testConfig(proxy.addr(), ScenarioHeartbeat, 50)
	cfg.Duration = 3 * time.Second
	cfg.AckTimeout = 20 * time.Second // no timeouts in this run: see skips
	var maxSent uint64
	var ticks int
	res := runAsync(t, cfg, func(p Progress) {
		if p.Phase != ScenarioHeartbeat {
			return
		}
		ticks++
		if ticks == 1 {
			proxy.stalled.Store(true) // after about a second of heartbeats
		}
		if ticks > 2 {
			// From the second second of the stall on, every terminal
			// waits for its unanswered heartbeat.
			maxSent = max(maxSent, p.Sent)
		}
	})
	sent, answered := res.Counts["sent"], res.Counts["answered"]
	busy := res.Counts["skipped_unanswered"]
	// Each terminal sent its last heartbeat into the stall and skipped
	// every later slot: one unanswered heartbeat per terminal.
	if sent-answered != 50 || res.Counts["in_flight_at_end"] != 50 {
		t.Errorf("sent %d answered %d in flight %d: want exactly one unanswered per terminal", sent, answered, res.Counts["in_flight_at_end"])
	}
	if busy < 400 || sent+busy < 650 || sent+busy > 800 {
		t.Errorf("sent %d + skipped %d: want ~750 slots, most skipped", sent, busy)
	}
	if maxSent > 0 {
		t.Errorf("a second of the stall sent %d heartbeats", maxSent)
	}
	if res.Counts["skipped_late"] != 0 {
		t.Errorf("skipped_late %d", res.Counts["skipped_late"])
	}
}

func TestUnansweredHeartbeatsTimeOut(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	proxy := newStallProxy(t, node.Addr)
	cfg := testConfig(proxy.addr(), ScenarioHeartbeat, 20)
	cfg.Duration = 2500 * time.Millisecond
	cfg.AckTimeout = 600 * time.Millisecond
	var ticks int
	res := runAsync(t, cfg, func(p Progress) {
		if p.Phase == ScenarioHeartbeat {
			if ticks++; ticks == 1 {
				proxy.stalled.Store(true)
			}
		}
	})
	if got := res.Errors["timeout:answer"]; got != 20 {
		t.Errorf("timeout:answer = %d, want 20; errors %v counts %v", got, res.Errors, res.Counts)
	}
	if res.Counts["unanswered"] != 20 {
		t.Errorf("unanswered = %d, want 20", res.Counts["unanswered"])
	}
}

func TestServerGoneMidRun(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	proxy := newStallProxy(t, node.Addr)
	cfg := testConfig(proxy.addr(), ScenarioHeartbeat, 30)
	var ticks int
	var lastConnected int
	res := runAsync(t, cfg, func(p Progress) {
		if p.Phase == ScenarioHeartbeat {
			if ticks++; ticks == 1 {
				proxy.cut()
			}
			lastConnected = p.Connected
		}
	})
	if got := res.Errors["closed_by_server"]; got != 30 {
		t.Errorf("closed_by_server = %d, want 30: %v", got, res.Errors)
	}
	if lastConnected != 0 {
		t.Errorf("still connected: %d", lastConnected)
	}
	// About a second of heartbeats (30 × 5), nothing after the cut.
	if sent := res.Counts["sent"]; sent > 250 {
		t.Errorf("sent %d after the server went", sent)
	}
}

func TestChurnWithTakeovers(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	// 20 events/s for 2 s over the fewest ids the duplicate limit allows
	// (10: each replaced 4 times), half of them takeovers.
	cfg := testConfig(node.Addr, ScenarioChurn, 10)
	cfg.Rate = 20
	cfg.TakeoverShare = 0.5
	res := runAsync(t, cfg, nil)
	if len(res.Errors) != 0 {
		t.Errorf("errors (a CONFLICT refusal is the duplicate limit): %v", res.Errors)
	}
	take, repl := res.Counts["takeovers"], res.Counts["replaced"]
	if take < 17 || take > 21 || repl != take {
		t.Errorf("takeovers %d, replaced %d: want ~20 and equal", take, repl)
	}
	if d, r := res.Counts["disconnects"], res.Counts["reconnects"]; d < 17 || r != d {
		t.Errorf("disconnects %d, reconnects %d", d, r)
	}
	if ok := res.Counts["connect_ok"]; ok != 10+take+res.Counts["reconnects"] {
		t.Errorf("connect_ok %d != 10 + takeovers + reconnects", ok)
	}
	if node.Presence.Online() != 0 {
		// All closed at the end; give the server a moment.
		time.Sleep(200 * time.Millisecond)
	}
	// Too few ids for the rate is refused before anything connects.
	cfg.N = 9
	if _, err := Run(context.Background(), cfg, nil); err == nil {
		t.Error("churn over too few ids ran")
	}
}

func TestSaturateFindsTheKnee(t *testing.T) {
	scfg := servertest.Config(t)
	// The server answers at most 8 frames a second per terminal: the
	// knee is the last step at or below that.
	scfg.Server.FrameRate = 8
	scfg.Server.FrameBurst = 2
	node := servertest.Start(t, scfg, nil)
	cfg := testConfig(node.Addr, ScenarioHeartbeat, 20)
	cfg.Saturate = true
	cfg.Rate = 3
	cfg.StepFactor = 2
	cfg.MaxRate = 20
	res := runAsync(t, cfg, nil)
	if len(res.Steps) != 3 {
		t.Fatalf("steps %+v, want 3: 60/s, 120/s, 240/s", res.Steps)
	}
	for i, want := range []float64{60, 120, 240} {
		if res.Steps[i].Offered != want {
			t.Errorf("step %d offered %v, want %v", i, res.Steps[i].Offered, want)
		}
	}
	if res.Knee != 120 {
		t.Errorf("knee %v, want 120 (steps %+v)", res.Knee, res.Steps)
	}
	if a := res.Steps[2].Achieved; a > 0.95*240 || a < 100 {
		t.Errorf("achieved at 240/s: %v", a)
	}
	if res.Counts["answered:heartbeat:RATE_LIMITED"] == 0 {
		t.Errorf("no RATE_LIMITED answers: %v", res.Counts)
	}
}

func TestIdleHoldsTerminalsAndSamples(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioIdle, 100)
	cfg.Duration = 1500 * time.Millisecond
	cfg.ServerPID = os.Getpid() // the node runs in this process
	res := runAsync(t, cfg, nil)
	if res.Counts["connect_ok"] != 100 || len(res.Errors) != 0 {
		t.Fatalf("counts %v errors %v", res.Counts, res.Errors)
	}
	if res.Counts["sent"] != 0 {
		t.Errorf("idle terminals sent %d (the interval is 30 s)", res.Counts["sent"])
	}
	if len(res.Server) < 3 || !res.Server[0].At.Before(res.Started) {
		t.Fatalf("server samples %d, first %v, started %v", len(res.Server), res.Server[0].At, res.Started)
	}
	if d := res.Derived(); d.RSSBefore <= 0 || d.RSSAfter <= 0 {
		t.Errorf("derived %+v", d)
	}
}
