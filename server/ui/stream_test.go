package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/servertest"
)

// sseMsg is one message of the console's stream.
type sseMsg struct {
	event string
	data  string
	at    time.Time
}

// openStream opens /ui/stream with c's session and delivers its messages
// until the test ends.
func openStream(t *testing.T, tc *testConsole, c *http.Client) <-chan sseMsg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.URL+"/ui/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseMsg, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					m.at = time.Now()
					out <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "event: "):
				m.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				m.data = line[len("data: "):]
			}
		}
	}()
	return out
}

func decodeTick(t *testing.T, m sseMsg) tickMsg {
	t.Helper()
	var tm tickMsg
	if err := json.Unmarshal([]byte(m.data), &tm); err != nil {
		t.Fatalf("tick %q: %v", m.data, err)
	}
	return tm
}

// A storm of events reaches the browser aggregated: at most one message
// per window, at most maxSampled events listed in each, every event
// counted or reported lost (the bus drops for a slow subscriber and the
// stream says how many), and the online count of real terminals that
// connect during it on screen within a second.
func TestStreamAggregatesStorm(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	tc.signIn(t, c, readToken)
	msgs := openStream(t, tc, c)
	first := <-msgs
	if first.event != "tick" || decodeTick(t, first).Online != 0 {
		t.Fatalf("first message %+v", first)
	}
	const synthetic, terminals = 5000, 30
	start := time.Now()
	for i := range synthetic {
		tc.Node.Bus.Publish(events.Event{Kind: events.KindOnline, DeviceID: fmt.Sprintf("SYN-%05d", i), At: time.Now().UnixMilli()})
	}
	for i := range terminals {
		conn, err := client.Dial(context.Background(), client.Config{Addr: tc.Node.Addr, DeviceID: fmt.Sprintf("T-%02d", i),
			FleetSecret: []byte(servertest.FleetSecret), FW: "1.0", Model: "P400", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	connected := time.Now()
	var counted, ticks, sampled int
	var dropped uint64
	var onScreen time.Time
	deadline := time.After(15 * time.Second)
	for onScreen.IsZero() || counted+int(dropped) < synthetic+terminals {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.event != "tick" {
				continue
			}
			ticks++
			tm := decodeTick(t, m)
			counted += tm.Counts["online"]
			dropped = max(dropped, tm.Dropped)
			sampled += len(tm.Events)
			if len(tm.Events) > maxSampled || len(tm.Events)+tm.Omitted != sumCounts(tm.Counts) {
				t.Fatalf("tick lists %d events, omits %d, counts %v", len(tm.Events), tm.Omitted, tm.Counts)
			}
			if tm.Online == terminals && onScreen.IsZero() {
				onScreen = m.at
			}
		case <-deadline:
			t.Fatalf("after 15 s: %d counted + %d dropped of %d events; online on screen: %v", counted, dropped, synthetic+terminals, !onScreen.IsZero())
		}
	}
	elapsed := time.Since(start)
	if maxTicks := int(elapsed/streamTick) + 2; ticks > maxTicks {
		t.Fatalf("%d messages in %v: more than one per %v", ticks, elapsed, streamTick)
	}
	if lag := onScreen.Sub(connected); lag > time.Second {
		t.Fatalf("online count on screen %v after the last terminal connected (target ≤ 1 s)", lag)
	}
	t.Logf("%d events in %d messages over %v (%d listed, %d lost by the bus); online count on screen %v after the last connect",
		synthetic+terminals, ticks, elapsed.Round(time.Millisecond), sampled, dropped, onScreen.Sub(connected).Round(time.Millisecond))
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Upgrade failure digests, a rollout that paused itself and refused
// writes are toasts, at once; an operator's pause is not.
func TestStreamToasts(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	tc.signIn(t, c, readToken)
	msgs := openStream(t, tc, c)
	<-msgs
	bus := tc.Node.Bus
	bus.Publish(events.Event{Kind: events.KindRollout, Release: "r0", State: "paused", Reason: api.PausedByOperator})
	bus.Publish(events.Event{Kind: events.KindUpgradeFailure, Digest: &api.FailureDigest{ReleaseID: "r1", AppID: "pos", Version: "2.0", Failures: 3, Devices: 2}})
	bus.Publish(events.Event{Kind: events.KindRollout, Release: "r2", State: "paused", Reason: "phase 1: 3 of 20 devices failed, above 5%"})
	bus.Publish(events.Event{Kind: events.KindStorage, State: "writes_refused"})
	var toasts []toastMsg
	timeout := time.After(5 * time.Second)
	for len(toasts) < 3 {
		select {
		case m := <-msgs:
			if m.event == "toast" {
				var tm toastMsg
				if err := json.Unmarshal([]byte(m.data), &tm); err != nil {
					t.Fatal(err)
				}
				toasts = append(toasts, tm)
			}
		case <-timeout:
			t.Fatalf("toasts after 5 s: %+v", toasts)
		}
	}
	if toasts[0].ReleaseID != "r1" || !strings.Contains(toasts[0].Title, "pos 2.0") || !strings.Contains(toasts[0].Body, "3 failures on 2 devices") {
		t.Errorf("digest toast %+v", toasts[0])
	}
	if toasts[1].ReleaseID != "r2" || toasts[1].Title != "Rollout paused itself" {
		t.Errorf("pause toast %+v", toasts[1])
	}
	if toasts[2].Kind != "storage" {
		t.Errorf("storage toast %+v", toasts[2])
	}
}

// The stream needs a session: without one it is 401 (ui.js then checks
// /ui/session and goes to the sign-in form, as after a termd restart).
func TestStreamNeedsSession(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	req, _ := http.NewRequest("GET", tc.URL+"/ui/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stream without a session: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, tc.URL+"/ui/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/ui/session without a session: %d", resp.StatusCode)
	}
	tc.signIn(t, c, readToken)
	if resp, _ := get(t, c, tc.URL+"/ui/session"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("/ui/session signed in: %d", resp.StatusCode)
	}
}
