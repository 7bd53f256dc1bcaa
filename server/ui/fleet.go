package ui

// The fleet overview: online now (live) with the day's trend, the alert
// inbox, active rollouts and campaigns each with a health light, devices
// offline for more than a day, and versions per model. All of it from
// the admin API: /v1/stats, /v1/stats/online-trend, /v1/fleet,
// /v1/alerts, /v1/releases (+ status, rollout), /v1/campaigns
// (+ progress).

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/termd/termd/server/admin/api"
)

func init() {
	register(Page{Nav: "Fleet", Path: Prefix + "fleet", Order: 10, Template: "fleet.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"fleet", func(w http.ResponseWriter, r *Request) error {
			d, err := loadFleet(r, true)
			if err != nil {
				return err
			}
			return r.Render(w, "Fleet", d)
		})
		// The panels alone, which the page reloads every few seconds (htmx).
		rt.Get(Prefix+"fleet/panels", func(w http.ResponseWriter, r *Request) error {
			d, err := loadFleet(r, false)
			if err != nil {
				return err
			}
			return r.Partial(w, "panels", d)
		})
		rt.Action(Prefix+"releases/{id}/rollout/pause", "POST", "/v1/releases/{id}/rollout/pause", "Rollout paused.")
		rt.Action(Prefix+"releases/{id}/rollout/resume", "POST", "/v1/releases/{id}/rollout/resume", "Rollout resumed.")
		rt.Action(Prefix+"releases/{id}/rollout/approve", "POST", "/v1/releases/{id}/rollout/approve", "Next phase approved.")
	}})
}

// Health lights.
const (
	healthGreen = "green"
	healthAmber = "amber"
	healthRed   = "red"
	// unphasedErrorRate is the failure rate that turns an unphased
	// release's light red (phased ones use their phase's error_pct).
	unphasedErrorRate = 0.05
	// maxActiveShown bounds the rollouts and campaigns on the page.
	maxActiveShown = 20
)

// fleetData is the fleet page's data.
type fleetData struct {
	Stats     api.Stats
	Fleet     api.Fleet
	Trend     sparkline
	Alerts    api.AlertList
	Rollouts  []rolloutRow
	Campaigns []campaignRow
	// MaxFW and MaxApp scale the version bars.
	MaxFW, MaxApp int
}

type rolloutRow struct {
	Release api.Release
	Status  api.ReleaseStatus
	// Rollout is set for a phased release.
	Rollout *api.RolloutStatus
	Health  string
	Why     string
}

type campaignRow struct {
	Campaign api.Campaign
	Progress api.CampaignProgress
	Health   string
	Why      string
}

// loadFleet makes the page's API calls, the independent ones at once;
// without whole it loads only what the panels show (alerts, rollouts,
// campaigns), which the page reloads every few seconds: the registry
// scan of /v1/fleet is not repeated for that.
func loadFleet(r *Request, whole bool) (*fleetData, error) {
	d := &fleetData{}
	var trend api.OnlineTrend
	var wg sync.WaitGroup
	errs := make([]error, 5)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	if whole {
		run(0, func() error { return r.Get("/v1/stats", &d.Stats) })
		run(1, func() error { return optional(r.Get("/v1/stats/online-trend", &trend)) })
		run(2, func() error { return r.Get("/v1/fleet", &d.Fleet) })
	}
	run(3, func() error { return r.Get("/v1/alerts", &d.Alerts) })
	run(4, func() error {
		var err error
		if d.Rollouts, err = loadRollouts(r); err != nil {
			return err
		}
		d.Campaigns, err = loadCampaigns(r)
		return err
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if whole {
		// The line ends with the count now, so a node up for less than
		// a minute still draws one.
		d.Trend = newSparkline(append(trend.Samples, api.TrendSample{AtMs: time.Now().UnixMilli(), Online: d.Stats.Online}), len(trend.Samples))
	}
	for _, v := range d.Fleet.Firmware {
		d.MaxFW = max(d.MaxFW, v.Devices)
	}
	for _, v := range d.Fleet.Apps {
		d.MaxApp = max(d.MaxApp, v.Devices)
	}
	return d, nil
}

// optional turns "this node does not serve that" (503) into nothing.
func optional(err error) error {
	if ae, ok := err.(*APIError); ok && ae.Status == http.StatusServiceUnavailable {
		return nil
	}
	return err
}

func loadRollouts(r *Request) ([]rolloutRow, error) {
	var list api.ReleaseList
	if err := r.Get("/v1/releases", &list); err != nil {
		return nil, optional(err)
	}
	var rows []rolloutRow
	for _, rel := range list.Releases {
		if rel.State == "published" || rel.State == "paused" {
			rows = append(rows, rolloutRow{Release: rel})
		}
	}
	slices.SortFunc(rows, func(a, b rolloutRow) int { return cmp.Compare(b.Release.UpdatedMs, a.Release.UpdatedMs) })
	rows = rows[:min(len(rows), maxActiveShown)]
	for i := range rows {
		row := &rows[i]
		id := url.PathEscape(row.Release.ID)
		if err := r.Get("/v1/releases/"+id+"/status", &row.Status); err != nil {
			return nil, err
		}
		if len(row.Release.Phases) > 0 {
			var ro api.RolloutStatus
			if err := r.Get("/v1/releases/"+id+"/rollout", &ro); err != nil {
				return nil, err
			}
			row.Rollout = &ro
		}
		row.Health, row.Why = rolloutHealth(row)
	}
	return rows, nil
}

// rolloutHealth: red when the rollout paused itself or fails beyond its
// error condition; amber when paused by an operator, waiting for
// approval, or with any failed or stuck terminal; green otherwise.
func rolloutHealth(row *rolloutRow) (string, string) {
	st := row.Status
	stuck := st.Stages["timed_out"] + st.Stages["reverted"]
	limit := unphasedErrorRate
	if ro := row.Rollout; ro != nil {
		if ro.State == "paused" && ro.PauseReason != api.PausedByOperator {
			return healthRed, ro.PauseReason
		}
		if i := ro.Phase - 1; i >= 0 && i < len(ro.Phases) {
			limit = float64(ro.Phases[i].ErrorPct) / 100
		}
	}
	if st.Failed > 0 && st.FailureRate > limit {
		return healthRed, fmt.Sprintf("failure rate %s above %s", pct(st.FailureRate), pct(limit))
	}
	switch {
	case row.Release.State == "paused":
		return healthAmber, "release paused"
	case row.Rollout != nil && row.Rollout.State == "paused":
		return healthAmber, row.Rollout.PauseReason
	case row.Rollout != nil && row.Rollout.State == "waiting_approval":
		return healthAmber, "waiting for approval"
	case st.Failed > 0 || stuck > 0:
		return healthAmber, fmt.Sprintf("%d failed, %d stuck", st.Failed, stuck)
	}
	return healthGreen, "no failures"
}

func loadCampaigns(r *Request) ([]campaignRow, error) {
	var list api.CampaignList
	if err := r.Get("/v1/campaigns", &list); err != nil {
		return nil, optional(err)
	}
	var rows []campaignRow
	for _, c := range list.Campaigns {
		if c.State == "published" || c.State == "paused" {
			rows = append(rows, campaignRow{Campaign: c})
		}
	}
	slices.SortFunc(rows, func(a, b campaignRow) int { return cmp.Compare(b.Campaign.UpdatedMs, a.Campaign.UpdatedMs) })
	rows = rows[:min(len(rows), maxActiveShown)]
	for i := range rows {
		row := &rows[i]
		if err := r.Get("/v1/campaigns/"+url.PathEscape(row.Campaign.ID)+"/progress", &row.Progress); err != nil {
			return nil, err
		}
		row.Health, row.Why = campaignHealth(row)
	}
	return rows, nil
}

// campaignHealth: red when more than 5 % of the finished attempts
// failed; amber when paused or terminals missed their slot; green
// otherwise.
func campaignHealth(row *campaignRow) (string, string) {
	t := row.Progress.Totals
	if done := t.Succeeded + t.Failed; t.Failed > 0 && float64(t.Failed) > unphasedErrorRate*float64(done) {
		return healthRed, fmt.Sprintf("%d of %d attempts failed", t.Failed, done)
	}
	switch {
	case row.Campaign.State == "paused":
		return healthAmber, "paused"
	case t.Missed > 0 || t.Failed > 0:
		return healthAmber, fmt.Sprintf("%d missed, %d failed", t.Missed, t.Failed)
	}
	return healthGreen, fmt.Sprintf("%d reserved, %d succeeded", t.Reserved, t.Succeeded)
}

// Sparkline geometry, in SVG user units.
const (
	sparkW = 600
	sparkH = 80
)

// sparkline is the day's online trend as an SVG polyline, drawn on the
// server (no chart library, no inline style).
type sparkline struct {
	Points     string
	W, H       int
	Max        int
	FromMs     int64
	ToMs       int64
	NumSamples int
}

func newSparkline(samples []api.TrendSample, sampled int) sparkline {
	s := sparkline{W: sparkW, H: sparkH, NumSamples: sampled}
	if len(samples) == 0 {
		return s
	}
	s.FromMs, s.ToMs = samples[0].AtMs, samples[len(samples)-1].AtMs
	for _, x := range samples {
		s.Max = max(s.Max, x.Online)
	}
	span := max(s.ToMs-s.FromMs, 1)
	var b strings.Builder
	for i, x := range samples {
		px := float64(x.AtMs-s.FromMs) / float64(span) * sparkW
		if len(samples) == 1 {
			px = sparkW
		}
		py := float64(sparkH)
		if s.Max > 0 {
			py = sparkH - float64(x.Online)/float64(s.Max)*(sparkH-2)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(px, 'f', 1, 64) + "," + strconv.FormatFloat(py, 'f', 1, 64))
	}
	s.Points = b.String()
	return s
}

// barWidth scales n of most to a bar of at most 100 units (an SVG rect's
// width: the CSP forbids inline styles).
func barWidth(n, most int) int {
	if most <= 0 {
		return 0
	}
	return max(1, n*100/most)
}
