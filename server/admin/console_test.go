package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

// GET /v1/whoami names the token and its scope; without one it is 401.
func TestWhoAmI(t *testing.T) {
	f := newFixture(t, withScopedTokens(t))
	for tok, want := range map[string]api.WhoAmI{
		readToken: {Name: "ci", Scope: "read"}, opsToken: {Name: "alice", Scope: "operator"}, testToken: {Name: "admin", Scope: "operator"},
	} {
		if got := decodeJSON[api.WhoAmI](t, f.do(t, "GET", "/v1/whoami", tok, "")); got != want {
			t.Errorf("whoami with %q: %+v, want %+v", tok, got, want)
		}
	}
	expectError(t, f.do(t, "GET", "/v1/whoami", "", ""), http.StatusUnauthorized, api.CodeUnauthorized)
}

// GET /v1/stats/online-trend returns the ring's samples, oldest first;
// a node without a trend answers 503.
func TestOnlineTrendEndpoint(t *testing.T) {
	tr := presence.NewTrend()
	tr.Add(1000, 5)
	tr.Add(61000, 7)
	f := newFixture(t, func(o *Options) { o.Trend = tr })
	got := decodeJSON[api.OnlineTrend](t, f.do(t, "GET", "/v1/stats/online-trend", testToken, ""))
	if got.IntervalS != 60 || len(got.Samples) != 2 || got.Samples[0] != (api.TrendSample{AtMs: 1000, Online: 5}) || got.Samples[1].Online != 7 {
		t.Fatalf("trend %+v", got)
	}
	expectError(t, newFixture(t, nil).do(t, "GET", "/v1/stats/online-trend", testToken, ""), http.StatusServiceUnavailable, api.CodeUnavailable)
}

type fakeVersions []storage.AppVersion

func (v fakeVersions) AppVersions(context.Context, string) ([]storage.AppVersion, error) {
	return v, nil
}

// GET /v1/fleet counts the registry: online, offline for more than a day
// (the longest offline listed first), never seen, firmware per model and
// app versions per app × model.
func TestFleetEndpoint(t *testing.T) {
	now := time.Now().UnixMilli()
	day := int64(24 * time.Hour / time.Millisecond)
	f := newFixture(t, func(o *Options) {
		o.Versions = fakeVersions{
			{DeviceID: "A", AppID: "pos", Version: "2.0", Model: "P400"},
			{DeviceID: "B", AppID: "pos", Version: "2.0", Model: "P400"},
			{DeviceID: "C", AppID: "pos", Version: "1.9", Model: "P200"},
		}
	})
	f.node.add(server.DeviceView{Live: true, Device: storage.Device{ID: "A", Online: true, FW: "1.0", Model: "P400", LastSeen: now}})
	f.node.add(server.DeviceView{Device: storage.Device{ID: "B", FW: "1.0", Model: "P400", LastSeen: now - 2*day, OfflineReason: "timeout"}})
	f.node.add(server.DeviceView{Device: storage.Device{ID: "C", FW: "0.9", Model: "P200", LastSeen: now - 3*day}})
	f.node.add(server.DeviceView{Device: storage.Device{ID: "D", FW: "0.9", Model: "P200", LastSeen: now - time.Hour.Milliseconds()}})
	f.node.add(server.DeviceView{Device: storage.Device{ID: "E", Blocked: true}})
	got := decodeJSON[api.Fleet](t, f.do(t, "GET", "/v1/fleet", testToken, ""))
	if got.Devices != 5 || got.Online != 1 || got.OfflineOver24h != 2 || got.NeverSeen != 1 {
		t.Fatalf("counts %+v", got)
	}
	if len(got.Stale) != 2 || got.Stale[0].ID != "C" || got.Stale[1].ID != "B" || got.Stale[1].OfflineReason != "timeout" {
		t.Fatalf("stale %+v", got.Stale)
	}
	wantFW := []api.VersionCount{{Model: "P200", Version: "0.9", Devices: 2}, {Model: "P400", Version: "1.0", Devices: 2}}
	if fmt.Sprint(got.Firmware) != fmt.Sprint(wantFW) {
		t.Fatalf("firmware %+v, want %+v", got.Firmware, wantFW)
	}
	wantApps := []api.VersionCount{{AppID: "pos", Model: "P400", Version: "2.0", Devices: 2}, {AppID: "pos", Model: "P200", Version: "1.9", Devices: 1}}
	if fmt.Sprint(got.Apps) != fmt.Sprint(wantApps) {
		t.Fatalf("apps %+v, want %+v", got.Apps, wantApps)
	}
}

// unusedReleaseCalls panics on the release calls a test does not expect.
type unusedReleaseCalls interface{ Releases }

// fakeReleases serves the three release calls the alert inbox makes.
type fakeReleases struct {
	unusedReleaseCalls
	rels    []api.Release
	rollout map[string]api.RolloutStatus
	status  map[string]api.ReleaseStatus
}

func (f *fakeReleases) Releases(context.Context) []api.Release { return f.rels }
func (f *fakeReleases) Status(_ context.Context, id string) (api.ReleaseStatus, error) {
	return f.status[id], nil
}
func (f *fakeReleases) RolloutStatus(_ context.Context, id string) (api.RolloutStatus, error) {
	return f.rollout[id], nil
}
func (f *fakeReleases) RolloutPause(context.Context, string) (api.RolloutStatus, error) {
	return api.RolloutStatus{}, errors.New("unused")
}
func (f *fakeReleases) RolloutResume(context.Context, string) (api.RolloutStatus, error) {
	return api.RolloutStatus{}, errors.New("unused")
}
func (f *fakeReleases) RolloutApprove(context.Context, string) (api.RolloutStatus, error) {
	return api.RolloutStatus{}, errors.New("unused")
}

// GET /v1/alerts: an automatic rollout pause (critical, first), not an
// operator's pause; stuck terminals of an active release, not of an
// archived one; duplicate cool-downs beyond the bound counted as
// omitted; a channel's given-up notifications with the last error; and
// refused durable writes.
func TestAlertsEndpoint(t *testing.T) {
	b, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	if _, err := b.EnqueueOutbox(ctx, storage.OutboxEntry{ID: "e1", Group: "r1", Kind: "upgrade_failed", At: 10, Channels: []string{"smtp"}, Payload: []byte(`{}`)}, 100); err != nil {
		t.Fatal(err)
	}
	c, _, _ := b.ClaimOutbox(ctx, "smtp", 100, 0)
	if _, err := b.SettleOutbox(ctx, "smtp", c.Batch, storage.OutboxResult{At: 200, Error: "550 no such user"}); err != nil {
		t.Fatal(err)
	}
	phases := []api.Phase{{Percent: 100}}
	rs := &fakeReleases{
		rels: []api.Release{
			{ID: "r1", AppID: "pos", Version: "2.0", State: "paused", Phases: phases, UpdatedMs: 3},
			{ID: "r2", AppID: "pos", Version: "2.1", State: "published", Phases: phases, UpdatedMs: 2},
			{ID: "r3", AppID: "pos", Version: "1.0", State: "archived", UpdatedMs: 1},
		},
		rollout: map[string]api.RolloutStatus{
			"r1": {State: "paused", PauseReason: "phase 1: 3 of 20 devices failed, above 5%", PausedMs: 500},
			"r2": {State: "paused", PauseReason: api.PausedByOperator, PausedMs: 600},
		},
		status: map[string]api.ReleaseStatus{
			"r2": {Stages: map[string]int{"timed_out": 2, "reverted": 1, "succeeded": 9}},
			"r3": {Stages: map[string]int{"timed_out": 4}},
		},
	}
	cooldowns := []api.Cooldown{{DeviceID: "dup-1", StartedMs: 100, UntilMs: 900}}
	f := newFixture(t, func(o *Options) {
		o.Outbox, o.Releases = b, rs
		o.Cooldowns = func(limit int) ([]api.Cooldown, int) { return cooldowns[:min(limit, len(cooldowns))], 3 }
	})
	f.node.noWrite = storage.ErrDiskFull
	got := decodeJSON[api.AlertList](t, f.do(t, "GET", "/v1/alerts", testToken, ""))
	kinds := map[string]api.Alert{}
	for _, a := range got.Alerts {
		if _, dup := kinds[a.Kind]; dup {
			t.Fatalf("two %s alerts: %+v", a.Kind, got.Alerts)
		}
		kinds[a.Kind] = a
	}
	if len(got.Alerts) != 5 || got.Alerts[0].Severity != api.SeverityCritical || got.Alerts[2].Severity != api.SeverityWarning {
		t.Fatalf("alerts %+v", got.Alerts)
	}
	if a := kinds[api.AlertRolloutPaused]; a.ReleaseID != "r1" || a.AtMs != 500 || a.Severity != api.SeverityCritical {
		t.Fatalf("rollout pause %+v", a)
	}
	if a := kinds[api.AlertStuck]; a.ReleaseID != "r2" || a.Count != 3 {
		t.Fatalf("stuck %+v", a)
	}
	if a := kinds[api.AlertDuplicate]; a.DeviceID != "dup-1" || a.AtMs != 100 || got.Omitted != 2 {
		t.Fatalf("duplicate %+v, omitted %d", a, got.Omitted)
	}
	if a := kinds[api.AlertNotifyFailed]; a.Channel != "smtp" || a.Count != 1 || a.ReleaseID != "r1" || a.AtMs != 200 {
		t.Fatalf("notify %+v", a)
	}
	if _, ok := kinds[api.AlertStorage]; !ok {
		t.Fatalf("no storage alert: %+v", got.Alerts)
	}
}
