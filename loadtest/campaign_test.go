package loadtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	sched "github.com/termd/termd/server/schedule"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// campaignNode starts a node with releases and scheduling wired as
// cmd/termd/schedule.go does, with three clusters of one external node
// each (capacity per 1-second slot), and a published release of
// termload-app.
func campaignNode(t *testing.T, capacity int) (*servertest.Node, *upgrade.Service, *sched.Service, string) {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread.Duration = 0
	cfg.Schedule.SlotLength = config.D(time.Second)
	for i, c := range []struct{ lat, lon float64 }{{51.5, 0}, {41.9, 12.5}, {59.3, 18.1}} {
		cl := fmt.Sprintf("c%d", i)
		cfg.Schedule.Clusters = append(cfg.Schedule.Clusters, config.Cluster{ID: cl, Lat: c.lat, Lon: c.lon})
		cfg.Schedule.Nodes = append(cfg.Schedule.Nodes, config.Node{ID: "n" + cl, Cluster: cl,
			URL: "https://n" + cl + ".example", Secret: "0123456789abcdef-secret", Capacity: capacity})
	}
	var up *upgrade.Service
	var sc *sched.Service
	node := servertest.Start(t, cfg, func(s *server.Server) {
		var err error
		if up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		store, ok := s.Store().(storage.Schedules)
		if !ok {
			t.Fatal("the store keeps no schedules")
		}
		if sc, err = sched.Open(sched.Options{Config: cfg, Store: store, Server: s, Releases: up, Bus: s.Bus,
			Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		sc.Routes(s)
		sc.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = sc.Close(ctx)
			_ = up.Close(ctx)
		})
	})
	rel, err := up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: tgpAppID, Version: "2.0.0",
		SHA256: "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", Size: 1 << 20, URL: "https://dl.example/x.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	return node, up, sc, rel.ID
}

// The campaign scenario against a real node: every terminal of the share
// learns the campaign from its launch query, is placed, heartbeats until
// its slot, checks in inside it and is told PROCEED; the others only
// heartbeat; no slot holds more than its node's capacity.
func TestCampaignScenario(t *testing.T) {
	// Terminals 50..89: 50..79 are in the campaign (i % 100 < 80).
	const all, n, capacity = 40, 30, 4
	node, _, sc, relID := campaignNode(t, capacity)
	now := time.Now()
	camp, err := sc.CreateCampaign(t.Context(), api.CampaignCreate{ReleaseID: relID,
		Windows: []api.Window{{StartMs: now.Add(time.Second).UnixMilli(), EndMs: now.Add(time.Minute).UnixMilli()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Publish(t.Context(), camp.ID); err != nil {
		t.Fatal(err)
	}
	lc := testConfig(node.Addr, ScenarioCampaign, all)
	lc.Rate, lc.Duration, lc.IDOffset = 10, 40*time.Second, 50
	lc.CampaignBox, lc.SystemID, lc.CampaignHB, lc.CampaignShare = DefaultCampaignBox, DefaultSystemID, 300*time.Millisecond, 80
	res, err := Run(context.Background(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if got := res.Counts[noteProceed]; got != n {
		t.Errorf("PROCEED %d, want %d (counts %v)", got, n, res.Counts)
	}
	if got := res.Counts[noteNoCampaign] + res.Counts[noteGaveUp]; got != 0 {
		t.Errorf("%d terminals without a campaign or giving up", got)
	}
	if h := res.Latency[KindUpgradeQuery]; h == nil || h.Count() != n {
		t.Fatalf("queries: %v (want %d: the others only heartbeat)", h, n)
	}
	if h := res.Latency[KindSchedule]; h == nil || h.Count() < n {
		t.Fatalf("schedule requests: %v (want ≥ %d)", h, n)
	}
	if h := res.Latency[KindUpgradeCheck]; h == nil || h.Count() < n {
		t.Fatalf("checks: %v (want ≥ %d)", h, n)
	}
	if h := res.Latency[KindHeartbeat]; h == nil || h.Count() == 0 {
		t.Fatal("no heartbeats")
	}
	if sp := res.Spans[SpanPlacement]; sp.N != n || sp.Rate() <= 0 {
		t.Fatalf("placement span %+v", sp)
	}
	p, err := sc.Progress(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Totals.Reserved != n || p.Totals.Proceeded != n {
		t.Fatalf("progress totals %+v", p.Totals)
	}
	clusters := map[string]bool{}
	for _, s := range p.Slots {
		clusters[s.Cluster] = true
		if s.Reserved > capacity {
			t.Errorf("slot %s@%d holds %d > capacity %d", s.Node, s.StartMs, s.Reserved, capacity)
		}
	}
	if len(clusters) < 2 {
		t.Errorf("terminals spread over %d cluster(s): %v", len(clusters), clusters)
	}
}

// A node without a campaign: every terminal's query says so and it ends.
func TestCampaignScenarioNoCampaign(t *testing.T) {
	node, _, _, _ := campaignNode(t, 1)
	lc := testConfig(node.Addr, ScenarioCampaign, 5)
	lc.Rate, lc.Duration = 10, 10*time.Second
	lc.CampaignBox, lc.SystemID, lc.CampaignHB, lc.CampaignShare = DefaultCampaignBox, DefaultSystemID, time.Second, 100
	res, err := Run(context.Background(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counts[noteNoCampaign]; got != 5 {
		t.Fatalf("no_campaign %d, want 5 (counts %v)", got, res.Counts)
	}
	if res.Latency[KindSchedule] != nil {
		t.Fatal("a terminal without a campaign asked for placement")
	}
	if res.Duration > 5*time.Second {
		t.Errorf("the run took %s: it should end once every terminal is done", res.Duration)
	}
}

func TestCampaignCoords(t *testing.T) {
	var p CampaignPlan
	if err := p.ParseBox("10,-20,30,40"); err != nil {
		t.Fatal(err)
	}
	seen := map[[2]float64]bool{}
	for i := range 1000 {
		id := deviceID("LOAD-", i)
		lat, lon := p.Coords(id)
		if lat < 10 || lat >= 30 || lon < -20 || lon >= 40 {
			t.Fatalf("%s at %v,%v: outside the box", id, lat, lon)
		}
		if lat2, lon2 := p.Coords(id); lat2 != lat || lon2 != lon {
			t.Fatalf("%s: not deterministic", id)
		}
		seen[[2]float64{lat, lon}] = true
	}
	if len(seen) < 990 {
		t.Errorf("only %d distinct coordinates of 1000", len(seen))
	}
	for _, bad := range []string{"", "1,2,3", "a,b,c,d", "30,0,10,10", "0,0,91,10", "0,-181,10,10"} {
		if err := p.ParseBox(bad); err == nil {
			t.Errorf("ParseBox(%q) accepted", bad)
		}
	}
}

// -campaign-download: a PROCEED's url is fetched and checked against
// its sha256 and size; a wrong digest and a failed GET are counted apart.
func TestCampaignDownload(t *testing.T) {
	body := []byte("termload artifact")
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	p := NewTGP(nil).(*tgpProto)
	p.SetCampaign(&CampaignPlan{Download: true})
	p.download("T-1", srv.URL+"/a", sum[:], uint64(len(body)))
	p.download("T-2", srv.URL+"/a", make([]byte, 32), uint64(len(body)))
	p.download("T-3", srv.URL+"/missing", sum[:], uint64(len(body)))
	res := &Result{Counts: map[string]uint64{}, Latency: map[string]*Histogram{}}
	p.CampaignTally(res)
	if res.Counts["download_ok"] != 1 || res.Counts["download_bad_digest"] != 1 || res.Counts["download_failed"] != 1 {
		t.Fatalf("counts %v", res.Counts)
	}
	if h := res.Latency["download"]; h == nil || h.Count() != 1 {
		t.Fatalf("download latency %v", h)
	}
}
