package loadtest

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/servertest"
)

// testConfig is a small, fast run against a servertest node.
func testConfig(addr, scenario string, n int) Config {
	return Config{
		Scenario: scenario, Proto: "tgp", Target: addr, Secret: []byte(servertest.FleetSecret),
		N: n, Concurrency: 64, Rate: 5, Duration: 2 * time.Second, Timeout: 30 * time.Second,
		StepFactor: 1.3, StepDuration: time.Second, MaxRate: 40, Pipeline: 4,
		Mix: DefaultMix, TakeoverShare: 0.2, Src: "off", IDPrefix: "T-" + scenario + "-",
		HelloTimeout: 5 * time.Second, AckTimeout: 5 * time.Second, DialTimeout: 5 * time.Second,
		Loops: 2,
	}
}

func within(t *testing.T, what string, got, want uint64, tol float64) {
	t.Helper()
	if d := float64(got) - float64(want); d < -tol*float64(want) || d > tol*float64(want) {
		t.Errorf("%s = %d, want %d ± %.0f%%", what, got, want, tol*100)
	}
}

func TestConnectScenario(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioConnect, 200)
	cfg.Duration = 20 * time.Second
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counts["connect_ok"]; got != 200 {
		t.Fatalf("connect_ok = %d, want 200; counts %v errors %v", got, res.Counts, res.Errors)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if h := res.Latency["hello"]; h == nil || h.Count() != 200 {
		t.Fatalf("hello latencies: %v", h)
	}
	if res.Latency["hello"].Quantile(50) <= 0 {
		t.Error("hello p50 is 0")
	}
	if res.Counts["connects_per_s"] == 0 || res.Duration <= 0 {
		t.Errorf("connects_per_s %d, duration %s", res.Counts["connects_per_s"], res.Duration)
	}
}

func TestHeartbeatScenario(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioHeartbeat, 100)
	var lines int
	res, err := Run(context.Background(), cfg, func(Progress) { lines++ })
	if err != nil {
		t.Fatal(err)
	}
	// 100 terminals × 5/s × 2 s.
	within(t, "sent", res.Counts["sent"], 1000, 0.1)
	within(t, "answered", res.Counts["answered"], 1000, 0.1)
	if s := res.Counts["skipped"]; s != 0 {
		t.Errorf("skipped = %d, want 0 (late %d, unanswered %d)", s, res.Counts["skipped_late"], res.Counts["skipped_unanswered"])
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	h := res.Latency[KindHeartbeat]
	if h == nil || h.Count() != int64(res.Counts["answered"]) {
		t.Fatalf("heartbeat latencies: %v, answered %d", h, res.Counts["answered"])
	}
	if lines < 2 || len(res.Timeline) < 2 {
		t.Errorf("progress lines %d, timeline points %d: want one a second", lines, len(res.Timeline))
	}
}

func TestMixedScenario(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioMixed, 50)
	cfg.Mix = "heartbeat=40,upgrade_query=20,control=20,group_list=20"
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	for _, k := range []string{
		"answered:control:NOT_FOUND", "answered:upgrade_query:OK",
		"answered:group_list:OK", "answered:heartbeat:OK",
	} {
		if res.Counts[k] == 0 {
			t.Errorf("%s = 0; counts %v", k, res.Counts)
		}
	}
	var byStatus uint64
	for k, v := range res.Counts {
		if strings.HasPrefix(k, "answered:") {
			byStatus += v
		}
	}
	if byStatus != res.Counts["answered"] || byStatus == 0 {
		t.Errorf("answers by status add to %d, answered %d", byStatus, res.Counts["answered"])
	}
	within(t, "sent", res.Counts["sent"], 500, 0.1)
	if res.Latency[KindControl] == nil || res.Latency[KindControl].Count() == 0 {
		t.Error("no control latencies")
	}
}

func TestMixedSkipsTypesMQTTCannotSend(t *testing.T) {
	t.Parallel()
	// The MQTT driver has no Requester: only heartbeats go out, and the
	// other kinds are noted.
	addr := mqttEchoBroker(t)
	cfg := testConfig(addr, ScenarioMixed, 10)
	cfg.Proto, cfg.Secret = "mqtt", nil
	cfg.Duration = time.Second
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Which kinds were drawn is chance (about 50 draws, 30 % of them not
	// heartbeats): some were skipped, and only kinds MQTT cannot send.
	var skipped uint64
	for k, n := range res.Counts {
		if kind, ok := strings.CutPrefix(k, "skipped_type:"); ok {
			if kind == "heartbeat" {
				t.Errorf("heartbeats skipped: %v", res.Counts)
			}
			skipped += n
		}
	}
	if skipped == 0 {
		t.Errorf("no skipped_type counts: %v", res.Counts)
	}
	if res.Counts["answered"] == 0 || res.Counts["answered"] != res.Counts["answered:heartbeat:OK"] {
		t.Errorf("answered %d, heartbeat answers %d", res.Counts["answered"], res.Counts["answered:heartbeat:OK"])
	}
}

func TestSourceAddressSpreading(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioConnect, 20)
	cfg.Src = "auto"
	cfg.Duration = 10 * time.Second
	seen := map[string]bool{}
	res, err := Run(context.Background(), cfg, func(Progress) {})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts["connect_ok"] != 20 {
		t.Fatalf("connect_ok %d: %v", res.Counts["connect_ok"], res.Errors)
	}
	// The sessions are closed by now; check the next connections' local
	// addresses with the same source list and dialer.
	src, err := ParseSource("auto", node.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		d := net.Dialer{LocalAddr: src.Next(), Timeout: time.Second}
		c, err := d.Dial("tcp", node.Addr)
		if err != nil {
			t.Fatal(err)
		}
		seen[c.LocalAddr().(*net.TCPAddr).IP.String()] = true
		c.Close()
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		if !seen[ip] {
			t.Errorf("no connection from %s: %v", ip, seen)
		}
	}
}

func TestSourceAddressSpreadingOnServer(t *testing.T) {
	t.Parallel()
	// What the server sees: sessions from several 127.0.0.x sources.
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioIdle, 10)
	cfg.Src = "127.0.0.2-127.0.0.6"
	cfg.Duration = 500 * time.Millisecond
	ips := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Look while the run holds its terminals.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && node.Presence.Online() < 10 {
			time.Sleep(10 * time.Millisecond)
		}
		node.Presence.Each(func(e *presence.Entry) bool {
			host, _, _ := net.SplitHostPort(e.RemoteAddr())
			ips[host]++
			return true
		})
	}()
	if _, err := Run(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	<-done
	if len(ips) != 5 {
		t.Errorf("sources seen by the server: %v, want 127.0.0.2-6 twice each", ips)
	}
	for ip, n := range ips {
		if !strings.HasPrefix(ip, "127.0.0.") || ip == "127.0.0.1" || n != 2 {
			t.Errorf("%s: %d sessions", ip, n)
		}
	}
}

// mqttEchoBroker accepts any number of MQTT clients, answers CONNECT
// with CONNACK and every PINGREQ with PINGRESP, until the test ends.
func mqttEchoBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveMQTTEcho(c)
		}
	}()
	return ln.Addr().String()
}

func serveMQTTEcho(c net.Conn) {
	defer c.Close()
	var in []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:n]...)
		for {
			hdr, rem, err := mqttFixedHeader(in)
			if err != nil {
				return
			}
			if hdr == 0 || len(in) < hdr+rem {
				break
			}
			var reply []byte
			switch in[0] {
			case mqttConnect:
				reply = []byte{mqttConnack, 2, 0, 0}
			case mqttPingreq:
				reply = []byte{mqttPingresp, 0}
			}
			in = in[hdr+rem:]
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}

// sampledAt reports whether res has a server sample taken at exactly t.
func sampledAt(res *Result, t time.Time) bool {
	return slices.ContainsFunc(res.Server, func(s ServerSample) bool { return s.At.Equal(t) })
}

func TestMarksSampleTheServer(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioHeartbeat, 50)
	cfg.Duration = 1500 * time.Millisecond
	cfg.ServerPID = os.Getpid() // the node runs in this process
	var marks []string
	res := runAsync(t, cfg, func(p Progress) {
		if p.Mark != "" {
			marks = append(marks, p.Mark)
		}
	})
	if len(marks) != 0 {
		t.Errorf("a run that samples itself reported marks %v", marks)
	}
	if res.RampEnd.Before(res.Started) || !res.MeasureEnd.After(res.RampEnd) {
		t.Fatalf("started %v, ramp end %v, measure end %v", res.Started, res.RampEnd, res.MeasureEnd)
	}
	if d := res.MeasureEnd.Sub(res.RampEnd); d < res.Duration || d > res.Duration+500*time.Millisecond {
		t.Errorf("marks %v apart, phase %v", d, res.Duration)
	}
	if !sampledAt(res, res.RampEnd) || !sampledAt(res, res.MeasureEnd) {
		t.Errorf("no samples at the marks %v, %v: %+v", res.RampEnd, res.MeasureEnd, res.Server)
	}
	if last := res.Server[len(res.Server)-1]; !last.At.After(res.MeasureEnd) {
		t.Errorf("no sample after the phase (the teardown): last %v", last.At)
	}
	// Heartbeats start after the ramp's end: every answer is the phase's.
	if n := res.Counts["answered_in_ramp"]; n != 0 || res.Counts["connect_ok_after_ramp"] != 0 {
		t.Errorf("answered in the ramp %d, connects after it %d", n, res.Counts["connect_ok_after_ramp"])
	}
	within(t, "answered", res.Counts["answered"], 50*5*3/2, 0.15)

	// connect: the ramp's end, no phase after it.
	cfg = testConfig(node.Addr, ScenarioConnect, 50)
	cfg.IDPrefix = "T-marks-connect-"
	cfg.ServerPID = os.Getpid()
	res = runAsync(t, cfg, nil)
	if res.RampEnd.IsZero() || !res.MeasureEnd.IsZero() || !sampledAt(res, res.RampEnd) {
		t.Errorf("connect: ramp end %v, measure end %v, samples %+v", res.RampEnd, res.MeasureEnd, res.Server)
	}
}

func TestWorkerReportsMarks(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	cfg := testConfig(node.Addr, ScenarioHeartbeat, 20)
	cfg.Duration = 500 * time.Millisecond
	cfg.NoSampler = true
	var mu sync.Mutex
	var marks []Progress
	res := runAsync(t, cfg, func(p Progress) {
		if p.Mark != "" {
			mu.Lock()
			marks = append(marks, p)
			mu.Unlock()
		}
	})
	if len(marks) != 2 || marks[0].Mark != MarkRampEnd || marks[1].Mark != MarkMeasureEnd ||
		!marks[0].At.Equal(res.RampEnd) || !marks[1].At.Equal(res.MeasureEnd) {
		t.Errorf("marks %+v; result's %v %v", marks, res.RampEnd, res.MeasureEnd)
	}
}
