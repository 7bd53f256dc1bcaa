package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/servertest"
)

const simSecret = "simulate-fleet-secret"

// startTGP runs a real termd front end on a loopback port (in-memory
// Badger) until the test ends.
func startTGP(t *testing.T, mod func(*config.Config)) (*server.Server, string) {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Auth.FleetSecret = simSecret
	cfg.Admin.Token = testToken
	if mod != nil {
		mod(&cfg)
	}
	node := servertest.Start(t, cfg, nil)
	return node.Server, node.Addr
}

// collect gathers presence events of a subscription until want of kind
// arrived or the time is up.
func collect(t *testing.T, sub *events.Subscription, kind events.Kind, want int, within time.Duration) []events.Event {
	t.Helper()
	var got []events.Event
	deadline := time.After(within)
	for len(got) < want {
		select {
		case ev := <-sub.C:
			if ev.Kind == kind {
				got = append(got, ev)
			}
		case <-deadline:
			t.Fatalf("%d %s events within %v, want %d: %+v", len(got), kind, within, want, got)
		}
	}
	return got
}

// startSimulate runs `termctl simulate` in the background.
func startSimulate(t *testing.T, args ...string) (out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, _, err := (*env)(nil).runTo(ctx, out, &syncBuffer{}, nil, append([]string{"simulate"}, args...)...)
		done <- err
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("simulate did not stop")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

func TestSimulate(t *testing.T) {
	srv, addr := startTGP(t, nil)
	sub := srv.Bus.Subscribe(1024)
	defer sub.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fleet-secret"), []byte(simSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "3", "--addr-tgp", addr, "--data", dir, "--prefix", "T-", "--rate", "1000"}
	spread := runtime.GOOS == "linux"
	if spread {
		args = append(args, "--spread-src", "on")
	}
	out, stop := startSimulate(t, args...)

	online := collect(t, sub, events.KindOnline, 3, 10*time.Second)
	ids := map[string]bool{}
	for _, ev := range online {
		ids[ev.DeviceID] = true
	}
	if !ids["T-000001"] || !ids["T-000002"] || !ids["T-000003"] {
		t.Errorf("online ids %v", ids)
	}
	if spread {
		d, err := srv.Device(context.Background(), "T-000001")
		if err != nil || !strings.HasPrefix(d.RemoteAddr, "127.0.0.") || strings.HasPrefix(d.RemoteAddr, "127.0.0.1:") {
			t.Errorf("spread source address %q (%v)", d.RemoteAddr, err)
		}
	}
	waitFor(t, "a status line with 3 connected", func() bool { return strings.Contains(out.String(), "connected=3/3 failed=0") })

	// Stopping closes the sockets without BYE: the server sees `closed`.
	if err := stop(); err != nil {
		t.Fatalf("simulate: %v", err)
	}
	for _, ev := range collect(t, sub, events.KindOffline, 3, 5*time.Second) {
		if ev.Reason != presence.ReasonClosed.String() {
			t.Errorf("%s went offline with %q, want %q (no BYE)", ev.DeviceID, ev.Reason, presence.ReasonClosed.String())
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "simulating 3 terminals T-000001..T-000003") {
		t.Errorf("first line %q", lines[0])
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "stopped connected=0/3 failed=0") {
		t.Errorf("last line %q", last)
	}
}

func TestSimulateStall(t *testing.T) {
	// The server gives up on a silent session after 1 s.
	srv, addr := startTGP(t, func(c *config.Config) {
		c.Heartbeat.Interval = config.D(time.Second)
		c.Heartbeat.MissFactor = 1
	})
	sub := srv.Bus.Subscribe(1024)
	defer sub.Close()
	out, stop := startSimulate(t, "-n", "2", "--addr-tgp", addr, "--secret", simSecret,
		"--stall-after", "100ms", "--hb-min", "1s", "--spread-src", "off")

	collect(t, sub, events.KindOnline, 2, 10*time.Second)
	for _, ev := range collect(t, sub, events.KindOffline, 2, 5*time.Second) {
		if ev.Reason != presence.ReasonTimeout.String() {
			t.Errorf("stalled %s went offline with %q, want timeout", ev.DeviceID, ev.Reason)
		}
	}
	// Stalled terminals never come back.
	select {
	case ev := <-sub.C:
		t.Errorf("stalled terminal came back: %+v", ev)
	case <-time.After(2 * time.Second):
	}
	waitFor(t, "the stall counters", func() bool {
		return strings.Contains(out.String(), "stalled=2 stalled_closed_by_server=2")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "reconnects=0") {
		t.Errorf("stalled terminals reconnected:\n%s", out.String())
	}
}

func TestSimulateFlags(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0", "--secret", simSecret}, "at least 1"},
		{[]string{"-n", "19001", "--secret", simSecret}, "several `termctl simulate` processes"},
		{[]string{"-n", "5", "--secret", simSecret, "--prefix", "bad prefix"}, "invalid device ids"},
		{[]string{"-n", "5", "--secret", simSecret, "--rate", "0"}, "--rate"},
		{[]string{"-n", "5", "--secret", simSecret, "--addr-tgp", "10.1.1.1:7000", "--spread-src", "on"}, "loopback"},
		{[]string{"-n", "5", "--secret", simSecret, "--spread-src", "maybe"}, "auto, on or off"},
		{[]string{"-n", "5", "--data", empty}, "no fleet secret"},
	} {
		_, _, err := (*env)(nil).runTo(context.Background(), &syncBuffer{}, &syncBuffer{}, nil, append([]string{"simulate"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("simulate %q: %v, want an error about %q", c.args, err, c.want)
		}
	}
	if !ipv4Loopback("127.0.0.1:7000") || ipv4Loopback("[::1]:7000") || ipv4Loopback("localhost:7000") || ipv4Loopback("10.0.0.1:1") {
		t.Error("ipv4Loopback")
	}
}

func TestPacer(t *testing.T) {
	p := newPacer(100) // 10 ms apart
	start := time.Now()
	for range 6 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 45*time.Millisecond {
		t.Errorf("6 slots at 100/s took %v, want >= 50ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = newPacer(0.001)
	_ = p.wait(ctx) // the first slot is now
	if err := p.wait(ctx); err == nil {
		t.Error("wait ignored a cancelled context")
	}
}

// TestSimulateUpgrades: with --app the simulated terminals ask for
// upgrades after HELLO_OK; offered a published release, the first
// --upgrade-fail of them report FAILED and the others SUCCEEDED, which
// the release's status then counts.
func TestSimulateUpgrades(t *testing.T) {
	e, tgp := releaseEnv(t)
	rel := e.createRelease(t, "2.0.0", "--model", simModel, "--rollout", "100")
	e.mustRun(t, "release", "publish", rel.ID)
	sim, stop := startSimulate(t, "-n", "4", "--addr-tgp", tgp, "--secret", servertest.FleetSecret, "--rate", "1000",
		"--app", "pos", "--app-version", "1.0.0", "--upgrade-fail", "1")
	waitFor(t, "upgraded=3 upgrade_failed=1 in the status line", func() bool {
		return strings.Contains(sim.String(), "upgraded=3 upgrade_failed=1")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var st api.ReleaseStatus
	if err := json.Unmarshal([]byte(e.mustRun(t, "--json", "release", "status", rel.ID)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Succeeded != 3 || st.Failed != 1 || len(st.Failures) != 1 || st.Failures[0].Code != 42 || st.Failures[0].Devices[0] != "SIM-000001" {
		t.Fatalf("release status after the simulation: %+v", st)
	}
	if _, _, err := (*env)(nil).runTo(t.Context(), &syncBuffer{}, &syncBuffer{}, nil, "simulate", "-n", "1", "--upgrade-fail", "1"); err == nil {
		t.Fatal("--upgrade-fail without --app accepted")
	}
}
