package admin

// The endpoints the operator console added (docs/admin-api.md §21):
// GET /v1/whoami, GET /v1/stats/online-trend, GET /v1/fleet and
// GET /v1/alerts. Ordinary read endpoints: any token may call them.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

// AppVersions is what GET /v1/fleet reads of the upgrade store: every
// device's last known app versions (deviceID "").
type AppVersions interface {
	AppVersions(ctx context.Context, deviceID string) ([]storage.AppVersion, error)
}

const (
	// staleAfter is how long a device must have been silent to count as
	// offline for more than a day.
	staleAfter = 24 * time.Hour
	// fleetPage is the registry page size of the fleet summary's scan.
	fleetPage = MaxPageSize
	// maxCooldownAlerts bounds the duplicate cool-downs listed one by one.
	maxCooldownAlerts = 50
	// maxAlertReleases bounds the active releases the alert inbox looks
	// at, newest first (each costs a scan of its reports).
	maxAlertReleases = 50
)

// registerConsole installs the console's endpoints.
func (h *handler) registerConsole(m *http.ServeMux) {
	m.HandleFunc("GET /v1/whoami", h.whoami)
	m.HandleFunc("GET /v1/stats/online-trend", h.onlineTrend)
	m.HandleFunc("GET /v1/fleet", h.fleet)
	m.HandleFunc("GET /v1/alerts", h.alerts)
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	t, ok := r.Context().Value(tokenKey{}).(*Token)
	if !ok {
		writeCode(w, protocol.Unauthenticated, "no token")
		return
	}
	writeJSON(w, http.StatusOK, api.WhoAmI{Name: t.Name, Scope: t.Scope})
}

func (h *handler) onlineTrend(w http.ResponseWriter, r *http.Request) {
	if h.opt.Trend == nil {
		writeCode(w, protocol.Unavailable, "this node keeps no online trend")
		return
	}
	ss := h.opt.Trend.Samples()
	out := api.OnlineTrend{IntervalS: int(presence.TrendInterval / time.Second), Samples: make([]api.TrendSample, len(ss))}
	for i, s := range ss {
		out.Samples[i] = api.TrendSample{AtMs: s.AtMs, Online: s.Online}
	}
	writeJSON(w, http.StatusOK, out)
}

// fleet summarises the registry in one scan of it (plus one of the app
// versions): no index is kept for it, because at tens of thousands of
// devices the scan is a few tens of milliseconds (docs/console.md).
func (h *handler) fleet(w http.ResponseWriter, r *http.Request) {
	f, err := h.fleetSummary(r.Context(), time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

type versionKey struct{ app, model, version string }

func (h *handler) fleetSummary(ctx context.Context, now time.Time) (api.Fleet, error) {
	f := api.Fleet{AtMs: now.UnixMilli(), Stale: []api.StaleDevice{}, Firmware: []api.VersionCount{}, Apps: []api.VersionCount{}}
	cutoff := now.Add(-staleAfter).UnixMilli()
	fw := map[versionKey]int{}
	var stale []api.StaleDevice
	cursor := ""
	for {
		devs, next, err := h.node.Devices(ctx, nil, fleetPage, cursor)
		if err != nil {
			return f, err
		}
		for _, d := range devs {
			f.Devices++
			if d.Online {
				f.Online++
			}
			if d.Model != "" || d.FW != "" {
				fw[versionKey{"", d.Model, d.FW}]++
			}
			last := max(d.LastSeen, d.LastOffline, d.LastOnline)
			switch {
			case d.Online:
			case last == 0:
				f.NeverSeen++
			case last < cutoff:
				f.OfflineOver24h++
				stale = append(stale, api.StaleDevice{ID: d.ID, LastSeenMs: last, OfflineReason: d.OfflineReason, Model: d.Model})
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortFunc(stale, func(a, b api.StaleDevice) int {
		return cmp.Or(cmp.Compare(a.LastSeenMs, b.LastSeenMs), cmp.Compare(a.ID, b.ID))
	})
	f.Stale = append(f.Stale, stale[:min(len(stale), api.MaxStale)]...)
	f.Firmware = countsOf(fw)
	if h.opt.Versions != nil {
		vs, err := h.opt.Versions.AppVersions(ctx, "")
		if err != nil {
			return f, err
		}
		apps := map[versionKey]int{}
		for _, v := range vs {
			apps[versionKey{v.AppID, v.Model, v.Version}]++
		}
		f.Apps = countsOf(apps)
	}
	return f, nil
}

// countsOf turns counts into a list, largest first.
func countsOf(m map[versionKey]int) []api.VersionCount {
	out := make([]api.VersionCount, 0, len(m))
	for k, n := range m {
		out = append(out, api.VersionCount{AppID: k.app, Model: k.model, Version: k.version, Devices: n})
	}
	slices.SortFunc(out, func(a, b api.VersionCount) int {
		return cmp.Or(cmp.Compare(b.Devices, a.Devices), cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.Model, b.Model), cmp.Compare(a.Version, b.Version))
	})
	return out
}

// alerts gathers the alert inbox from the node's state now: automatic
// rollout pauses and stuck terminals of the active releases,
// duplicate-device cool-downs, notifications a channel gave up on, and
// refused durable writes. Nothing is stored: an alert goes away when its
// cause does.
func (h *handler) alerts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := api.AlertList{Alerts: []api.Alert{}}
	if err := h.node.Writable(); err != nil {
		out.Alerts = append(out.Alerts, api.Alert{Kind: api.AlertStorage, Severity: api.SeverityCritical,
			Message: "durable writes are refused: " + err.Error()})
	}
	if h.opt.Releases != nil {
		if err := h.releaseAlerts(ctx, &out); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if h.opt.Cooldowns != nil {
		cs, total := h.opt.Cooldowns(maxCooldownAlerts)
		for _, c := range cs {
			out.Alerts = append(out.Alerts, api.Alert{Kind: api.AlertDuplicate, Severity: api.SeverityWarning, AtMs: c.StartedMs,
				DeviceID: c.DeviceID, Message: fmt.Sprintf("duplicate-device cool-down until %s: two terminals probably share this id",
					time.UnixMilli(c.UntilMs).UTC().Format(time.RFC3339))})
		}
		out.Omitted = total - len(cs)
	}
	if h.opt.Outbox != nil {
		counts, err := h.opt.Outbox.OutboxCounts(ctx)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for ch, c := range counts {
			if c.Failed == 0 {
				continue
			}
			a := api.Alert{Kind: api.AlertNotifyFailed, Severity: api.SeverityWarning, Channel: ch, Count: int(c.Failed),
				Message: fmt.Sprintf("%d failure notifications to %s were given up", c.Failed, ch)}
			ds, _, err := h.opt.Outbox.ListOutbox(ctx, storage.OutboxFilter{Channel: ch, State: storage.OutboxFailed, Limit: 1})
			if err == nil && len(ds) > 0 {
				a.AtMs, a.ReleaseID = ds[0].DoneAt, ds[0].Group
				if ds[0].LastError != "" {
					a.Message += ": " + ds[0].LastError
				}
			}
			out.Alerts = append(out.Alerts, a)
		}
	}
	slices.SortStableFunc(out.Alerts, func(a, b api.Alert) int {
		return cmp.Or(severityRank(a.Severity)-severityRank(b.Severity), cmp.Compare(b.AtMs, a.AtMs))
	})
	writeJSON(w, http.StatusOK, out)
}

func severityRank(s string) int {
	if s == api.SeverityCritical {
		return 0
	}
	return 1
}

// releaseAlerts adds the automatic pauses and stuck terminals of the
// published and paused releases.
func (h *handler) releaseAlerts(ctx context.Context, out *api.AlertList) error {
	var active []api.Release
	for _, rel := range h.opt.Releases.Releases(ctx) {
		if rel.State == storage.ReleasePublished || rel.State == storage.ReleasePaused {
			active = append(active, rel)
		}
	}
	slices.SortFunc(active, func(a, b api.Release) int { return cmp.Compare(b.UpdatedMs, a.UpdatedMs) })
	ro, phased := h.opt.Releases.(Rollouts)
	for _, rel := range active[:min(len(active), maxAlertReleases)] {
		name := rel.AppID + " " + rel.Version
		if phased && len(rel.Phases) > 0 {
			st, err := ro.RolloutStatus(ctx, rel.ID)
			if err != nil {
				return err
			}
			if st.State == "paused" && st.PauseReason != api.PausedByOperator {
				out.Alerts = append(out.Alerts, api.Alert{Kind: api.AlertRolloutPaused, Severity: api.SeverityCritical,
					AtMs: st.PausedMs, ReleaseID: rel.ID, Message: fmt.Sprintf("rollout of %s paused itself: %s", name, st.PauseReason)})
			}
		}
		st, err := h.opt.Releases.Status(ctx, rel.ID)
		if err != nil {
			return err
		}
		if n := st.Stages["timed_out"] + st.Stages["reverted"]; n > 0 {
			out.Alerts = append(out.Alerts, api.Alert{Kind: api.AlertStuck, Severity: api.SeverityWarning, ReleaseID: rel.ID, Count: n,
				Message: fmt.Sprintf("%d terminals stuck on %s (timed out or reverted)", n, name)})
		}
	}
	return nil
}
