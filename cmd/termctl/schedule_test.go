package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/schedule"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// scheduleEnv is a real node with release management and scheduling
// (one cluster, one external node of capacity 2 per hour) behind a real
// admin API.
func scheduleEnv(t *testing.T) (*env, string) {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread.Duration = 0
	cfg.Schedule.SlotLength = config.D(time.Hour)
	cfg.Schedule.Clusters = []config.Cluster{{ID: "eu", Lat: 50, Lon: 8}}
	cfg.Schedule.Nodes = []config.Node{{ID: "eu-1", Cluster: "eu", URL: "https://eu-1.dl.example", Secret: "eu-1-secret-0123456789", Capacity: 2}}
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var up *upgrade.Service
	var sc *schedule.Service
	n := servertest.StartStore(t, cfg, store, func(s *server.Server) {
		up = startUpgrade(t, cfg, s)
		var err error
		if sc, err = schedule.Open(schedule.Options{Config: cfg, Store: store, Server: s, Releases: up, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		sc.Routes(s)
		sc.Start()
		closeAtEnd(t, sc.Close) // cleanups run last first: sc closes before up, which it uses
	})
	return (&env{}).serveAdmin(t, n.Server, admin.Options{Bus: n.Bus, Releases: up, Schedule: sc}), n.Addr
}

func TestCampaignPlanNodeCommands(t *testing.T) {
	e, tgp := scheduleEnv(t)
	rel := e.createRelease(t, "2.0")
	e.mustRun(t, "release", "publish", rel.ID)
	day := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	out := e.mustRun(t, "--json", "campaign", "create", "--release", rel.ID, "--daily", "01:00-03:00", "--dates", day, "--tz", "Europe/Berlin", "--model", "P400")
	var c api.Campaign
	if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Windows) != 1 || c.State != "draft" {
		t.Fatalf("create: %v %s", err, out)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if got := time.UnixMilli(c.Windows[0].StartMs).In(berlin).Format("15:04"); got != "01:00" {
		t.Fatalf("window starts %s Berlin time", got)
	}
	if _, _, err := e.run(nil, "campaign", "create", "--release", rel.ID, "--window", "yesterday/today"); err == nil {
		t.Fatal("a bad --window accepted")
	}
	e.mustRun(t, "campaign", "publish", c.ID)
	if out := e.mustRun(t, "campaign", "list"); !strings.Contains(out, c.ID) || !strings.Contains(out, "published") {
		t.Fatalf("list: %s", out)
	}
	// A terminal asks: it gets the campaign, then its reservation.
	tc := dialTerminal(t, tgp, "pos-1")
	var qa protocol.UpgradeQueryAck
	if err := tc.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0", Launch: true}, &qa); err != nil || qa.Campaign == nil {
		t.Fatalf("query: %+v %v", qa, err)
	}
	e.mustRun(t, "location", "pos-1", "50.1", "8.6")
	if _, _, err := e.run(nil, "location", "pos-1", "95", "8"); err == nil {
		t.Fatal("latitude 95 accepted")
	}
	var sa protocol.ScheduleAck
	if err := tc.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: c.ID, Version: "1.0", SystemID: "pos"}, &sa); err != nil || sa.NodeID != "eu-1" {
		t.Fatalf("schedule: %+v %v", sa, err)
	}
	if out := e.mustRun(t, "location", "pos-1"); !strings.Contains(out, "location: 50.10000, 8.60000") || !strings.Contains(out, c.ID) || !strings.Contains(out, "eu-1") {
		t.Fatalf("location show:\n%s", out)
	}
	e.mustRun(t, "location", "pos-1", "--clear")
	if out := e.mustRun(t, "location", "pos-1"); !strings.Contains(out, "location: none registered") {
		t.Fatalf("location show after --clear:\n%s", out)
	}
	if out := e.mustRun(t, "campaign", "retry", c.ID, "--unreached", "--missed"); !strings.Contains(out, "devices: 0") {
		t.Fatalf("retry: %s", out)
	}
	if out := e.mustRun(t, "campaign", "progress", c.ID); !strings.Contains(out, "eu-1") || !strings.Contains(out, "total") {
		t.Fatalf("progress:\n%s", out)
	}
	out = e.mustRun(t, "plan", "--release", rel.ID, "--model", "P400", "--from", day+"T00:00:00Z", "--to", day+"T04:00:00Z", "--tz", "Europe/Berlin")
	if !strings.Contains(out, "1 targeted terminals") || !strings.Contains(out, "eu=1") || !strings.Contains(out, "eu=2") {
		t.Fatalf("plan:\n%s", out)
	}
	out = e.mustRun(t, "plan", "--release", rel.ID, "--model", "P400", "--from", day+"T00:00:00Z", "--to", day+"T04:00:00Z",
		"--window", day+"T02:00:00Z/"+day+"T04:00:00Z")
	if !strings.Contains(out, "the 1 window(s) given:") || !strings.Contains(out, "of the 1 targeted terminals") {
		t.Fatalf("plan with a window:\n%s", out)
	}
	if _, _, err := e.run(nil, "plan", "--release", rel.ID, "--window", "tomorrow"); err == nil {
		t.Fatal("a bad window accepted")
	}
	if out := e.mustRun(t, "node", "list"); !strings.Contains(out, "eu-1") || !strings.Contains(out, "up") {
		t.Fatalf("nodes: %s", out)
	}
	e.mustRun(t, "node", "drain", "eu-1")
	if out := e.mustRun(t, "node", "list"); !strings.Contains(out, "draining") {
		t.Fatalf("nodes after drain: %s", out)
	}
	e.mustRun(t, "campaign", "cancel", c.ID)
	if _, _, err := e.run(nil, "campaign", "resume", c.ID); err == nil {
		t.Fatal("resume of a cancelled campaign accepted")
	}
}
