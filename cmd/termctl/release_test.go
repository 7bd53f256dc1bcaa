package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
)

// releaseEnv is a real node (TGP and admin API) with release management.
func releaseEnv(t *testing.T) (*env, string) {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread.Duration = 0
	var up *upgrade.Service
	n := servertest.Start(t, cfg, func(s *server.Server) { up = startUpgrade(t, cfg, s) })
	return (&env{}).serveAdmin(t, n.Server, admin.Options{Bus: n.Bus, Releases: up}), n.Addr
}

// startUpgrade opens release management on s, routed and started, and
// closes it when the test ends.
func startUpgrade(t *testing.T, cfg config.Config, s *server.Server) *upgrade.Service {
	t.Helper()
	up, err := upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	up.Routes(s)
	up.Start()
	closeAtEnd(t, up.Close)
	return up
}

// createRelease creates a draft release of app pos at version with an
// external artifact, plus flags, and returns it as the API answered.
func (e *env) createRelease(t *testing.T, version string, flags ...string) api.Release {
	t.Helper()
	out := e.mustRun(t, append([]string{"--json", "release", "create", "--app", "pos", "--version", version,
		"--url", "https://dl.example/p.bin", "--sha256", strings.Repeat("ab", 32), "--size", "4096"}, flags...)...)
	var rel api.Release
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("release create: %v %s", err, out)
	}
	return rel
}

// dialTerminal connects to tgp as terminal dev (model P400, fw 1) until
// the test ends.
func dialTerminal(t *testing.T, tgp, dev string) *client.Conn {
	t.Helper()
	c, err := client.Dial(t.Context(), client.Config{Addr: tgp, DeviceID: dev, FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: "P400", NoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestReleaseCommands(t *testing.T) {
	e, tgp := releaseEnv(t)
	rel := e.createRelease(t, "2.0", "--model", "P400", "--rollout", "100", "--notes", "fixes")
	if rel.ID == "" || rel.State != "draft" || rel.Models[0] != "P400" {
		t.Fatalf("create: %+v", rel)
	}
	if _, _, err := e.run(nil, "release", "create", "--app", "pos", "--version", "2.0"); err == nil {
		t.Fatal("create without an artifact accepted")
	}
	if out := e.mustRun(t, "release", "publish", rel.ID); !strings.Contains(out, "state:") || !strings.Contains(out, "published") {
		t.Fatalf("publish: %s", out)
	}
	if out := e.mustRun(t, "release", "list"); !strings.Contains(out, rel.ID) || !strings.Contains(out, "models P400") {
		t.Fatalf("list: %s", out)
	}
	c := dialTerminal(t, tgp, "pos-1")
	var qa protocol.UpgradeQueryAck
	if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0", Launch: true}, &qa); err != nil || qa.Offer == nil {
		t.Fatalf("query: %+v, %v", qa, err)
	}
	for _, st := range []uint8{protocol.StageDownloading, protocol.StageFailed} {
		var ack protocol.Ack
		if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Code: 28, Message: "disk full"}, &ack); err != nil {
			t.Fatal(err)
		}
	}
	out := e.mustRun(t, "release", "status", rel.ID)
	for _, want := range []string{"failed 1", "failure rate 100.0%", "failed  28    P400   1.0   1        pos-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if out := e.mustRun(t, "device", "pos-1"); !strings.Contains(out, "upgrades:") || !strings.Contains(out, "disk full") || !strings.Contains(out, `"version":"1.0"`) {
		t.Errorf("device:\n%s", out)
	}
	if out := e.mustRun(t, "release", "rollout", rel.ID, "50%"); !strings.Contains(out, "rollout_pct:  50") {
		t.Errorf("rollout: %s", out)
	}
	if out := e.mustRun(t, "release", "retry", rel.ID, "--device", "pos-1"); !strings.Contains(out, "devices: 1\n") {
		t.Errorf("retry: %s", out)
	}
	for _, op := range []string{"pause", "resume", "archive"} {
		e.mustRun(t, "release", op, rel.ID)
	}
	if _, _, err := e.run(nil, "release", "resume", rel.ID); err == nil || !strings.Contains(err.Error(), "archived") {
		t.Errorf("resume of an archived release: %v", err)
	}
}

// release create --deadline, release deadline ID TIME|none and release
// cancel ID against a real node; bad times are refused before a request.
func TestReleaseCancelDeadlineCommands(t *testing.T) {
	e, _ := releaseEnv(t)
	rel := e.createRelease(t, "2.0", "--deadline", "2026-12-31T00:00:00Z")
	if rel.DeadlineMs != time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("create --deadline: %+v", rel)
	}
	if _, _, err := e.run(nil, "release", "deadline", rel.ID, "tomorrow"); err == nil {
		t.Fatal("deadline tomorrow accepted")
	}
	out := e.mustRun(t, "--json", "release", "deadline", rel.ID, "none")
	var cleared api.Release
	if err := json.Unmarshal([]byte(out), &cleared); err != nil || cleared.ID != rel.ID || cleared.DeadlineMs != 0 {
		t.Fatalf("deadline none: %v %s", err, out)
	}
	e.mustRun(t, "release", "publish", rel.ID)
	if out := e.mustRun(t, "release", "cancel", rel.ID); !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %s", out)
	}
	if _, _, err := e.run(nil, "release", "resume", rel.ID); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("resume after cancel: %v", err)
	}
}

// release create --pilot/--phases and rollout show|pause|resume|approve
// against a real node: the pilot device is offered, the next phase's
// device is not until the pilot succeeded and an operator approved.
func TestRolloutCommands(t *testing.T) {
	e, tgp := releaseEnv(t)
	rel := e.createRelease(t, "2.0", "--pilot", "pilot-1", "--phases", "100", "--soak", "0s", "--approval")
	if len(rel.Phases) != 2 || rel.Phases[0].Devices[0] != "pilot-1" || rel.Phases[1].Percent != 100 ||
		!rel.Phases[0].Approval || rel.Phases[0].SuccessPct != 95 || rel.Phases[0].MinDevices != 1 {
		t.Fatalf("create: %+v", rel)
	}
	if _, _, err := e.run(nil, "release", "create", "--app", "pos", "--version", "2.0", "--url", "https://dl.example/p.bin",
		"--sha256", strings.Repeat("ab", 32), "--size", "4096", "--phases", "1,x"); err == nil {
		t.Fatal("--phases 1,x accepted")
	}
	e.mustRun(t, "release", "publish", rel.ID)
	query := func(dev string) *protocol.UpgradeQueryAck {
		c := dialTerminal(t, tgp, dev)
		var qa protocol.UpgradeQueryAck
		if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0", Launch: true}, &qa); err != nil {
			t.Fatal(err)
		}
		if qa.Offer != nil && dev == "pilot-1" {
			for _, st := range []uint8{protocol.StageDownloading, protocol.StageSucceeded} {
				var ack protocol.Ack
				if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st}, &ack); err != nil {
					t.Fatal(err)
				}
			}
		}
		return &qa
	}
	if query("other").Offer != nil {
		t.Fatal("a device outside the pilot was offered")
	}
	if query("pilot-1").Offer == nil {
		t.Fatal("the pilot device was not offered")
	}
	out := e.mustRun(t, "rollout", "show", rel.ID)
	for _, want := range []string{"waiting_approval, phase 1 of 2", "1 listed", "1        1          0", "95%", "5% (min 1)", "current, approval", "succeeded 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if query("other").Offer != nil {
		t.Fatal("offered before approval")
	}
	e.mustRun(t, "rollout", "pause", rel.ID)
	if _, _, err := e.run(nil, "rollout", "approve", rel.ID); err == nil || !strings.Contains(err.Error(), "resume it first") {
		t.Errorf("approve while paused: %v", err)
	}
	e.mustRun(t, "rollout", "resume", rel.ID)
	e.mustRun(t, "rollout", "approve", rel.ID)
	out = e.mustRun(t, "--json", "rollout", "show", rel.ID)
	var st api.RolloutStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Phase != 2 || st.State != "running" {
		t.Fatalf("after approve: %v %s", err, out)
	}
	if query("other").Offer == nil {
		t.Fatal("not offered in the second phase")
	}
}
