package loadtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
)

// The upgrade scenario against a real node with a published release:
// the upgrading share queries and reports every stage, the failing share
// ends FAILED, the rest only heartbeats.
func TestUpgradeScenario(t *testing.T) {
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread.Duration = 0
	var up *upgrade.Service
	node := servertest.Start(t, cfg, func(s *server.Server) {
		var err error
		if up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
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
	lc := testConfig(node.Addr, ScenarioUpgrade, 40)
	lc.Rate, lc.UpgradeShare, lc.FailShare = 20, 50, 20
	res, err := Run(context.Background(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	upgraders, failing := 0, 0
	for i := range lc.N {
		if i%100 < lc.UpgradeShare {
			upgraders++
			if (i*failSpread)%100 < lc.FailShare {
				failing++
			}
		}
	}
	if h := res.Latency[KindUpgradeQuery]; h == nil || h.Count() != int64(upgraders) {
		t.Fatalf("upgrade queries: %v (want %d)", h, upgraders)
	}
	if h := res.Latency[KindUpgradeReport]; h == nil || h.Count() != int64(upgraders*stepReports) {
		t.Fatalf("upgrade reports: %v (want %d)", h, upgraders*stepReports)
	}
	if h := res.Latency[KindHeartbeat]; h == nil || h.Count() == 0 {
		t.Fatal("no heartbeats")
	}
	st, err := up.Status(t.Context(), rel.ID)
	if err != nil || st.Assigned != upgraders || st.Failed != failing || st.Succeeded != upgraders-failing {
		t.Fatalf("status %+v, %v (want %d upgraders, %d failing)", st, err, upgraders, failing)
	}
}
