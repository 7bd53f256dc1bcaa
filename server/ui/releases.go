package ui

// The releases pages: the list (/ui/releases), a release and its
// rollout (/ui/releases/{id}: phases against their conditions, the
// funnel, failures grouped by stage × code × model × from-version, the
// actions, the deadline, the signature and the release's history), and
// its live part, which the page reloads every few seconds. Creating a
// release and uploading its artifact are in release_new.go. All of it
// from the admin API: /v1/releases, /v1/releases/{id}/status and
// /v1/releases/{id}/rollout, and the release endpoints for the actions.

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/server/admin/api"
)

func init() {
	register(Page{Nav: "Releases", Path: Prefix + "releases", Order: 40, Template: "releases.html", Routes: releaseRoutes})
}

// Views of the releases page's template: its "content" shows one of them.
const (
	viewReleaseList   = "list"
	viewRelease       = "release"
	viewReleaseCreate = "create"
)

// maxFailureSample is how many device ids of a failure group the page
// lists (the group links to all of them on the devices page).
const maxFailureSample = 5

func releaseRoutes(rt *Routes) {
	rt.Get(Prefix+"releases", func(w http.ResponseWriter, r *Request) error {
		d, err := loadReleaseList(r)
		if err != nil {
			return err
		}
		return r.Render(w, "Releases", d)
	})
	rt.Get(Prefix+"releases/{id}", func(w http.ResponseWriter, r *Request) error {
		d, err := loadRelease(r, r.PathValue("id"))
		if err != nil {
			return err
		}
		return r.Render(w, d.Status.Release.AppID+" "+d.Status.Release.Version, d)
	})
	// The live part alone, which the page reloads every few seconds (htmx).
	rt.Get(Prefix+"releases/{id}/live", func(w http.ResponseWriter, r *Request) error {
		d, err := loadRelease(r, r.PathValue("id"))
		if err != nil {
			return err
		}
		// Its buttons come back to the release page, not to this fragment
		// (act's way back is the request's path).
		r.URL.Path = strings.TrimSuffix(r.URL.Path, "/live")
		return r.Partial(w, "release-live", d)
	})
	for _, a := range []struct{ op, done string }{
		{"publish", "Published: targeted terminals are offered the release."},
		{"pause", "Release paused: no offers until it is resumed."},
		{"resume", "Release resumed."},
		{"cancel", "Release cancelled: offers stopped, downloads not yet installing withdrawn."},
		{"archive", "Release archived."},
	} {
		rt.Action(Prefix+"releases/{id}/"+a.op, "POST", "/v1/releases/{id}/"+a.op, a.done)
	}
	// The rollout's pause, resume and approve are the fleet page's routes
	// (/ui/releases/{id}/rollout/...); this page posts to them too.
	rt.Post(Prefix+"releases/{id}/retry", func(w http.ResponseWriter, r *Request) error {
		var res api.RetryResult
		if err := r.API("POST", r.fill("/v1/releases/{id}/retry"), api.Retry{Failed: true}, &res); err != nil {
			return err
		}
		r.Flash(fmt.Sprintf("%d device(s) may try again; in a phased rollout they left their phase's failures.", res.Devices))
		r.Back(w)
		return nil
	})
	rt.Post(Prefix+"releases/{id}/deadline", func(w http.ResponseWriter, r *Request) error {
		ms, err := parseDeadlineInput(r.PostFormValue("deadline"))
		if err != nil {
			return err
		}
		if ms == 0 {
			return errors.New("give a deadline (UTC), or clear it")
		}
		if err := r.API("PUT", r.fill("/v1/releases/{id}/deadline"), api.Deadline{DeadlineMs: ms}, nil); err != nil {
			return err
		}
		r.Flash("Deadline set: offers are mandatory from " + time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC") + ".")
		r.Back(w)
		return nil
	})
	rt.Post(Prefix+"releases/{id}/deadline/clear", func(w http.ResponseWriter, r *Request) error {
		if err := r.API("PUT", r.fill("/v1/releases/{id}/deadline"), api.Deadline{}, nil); err != nil {
			return err
		}
		r.Flash("Deadline cleared.")
		r.Back(w)
		return nil
	})
	// The share of targeted devices offered a release without phases
	// (a phased release moves by phase).
	rt.Post(Prefix+"releases/{id}/rollout-pct", func(w http.ResponseWriter, r *Request) error {
		pct, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("pct")))
		if err != nil {
			return errors.New("the rollout is a whole percentage, 0 to 100")
		}
		var rel api.Release
		if err := r.API("PUT", r.fill("/v1/releases/{id}/rollout"), api.Rollout{Pct: pct}, &rel); err != nil {
			return err
		}
		r.Flash(fmt.Sprintf("Rollout set to %d %% of the targeted devices; raising it only adds devices.", rel.RolloutPct))
		r.Back(w)
		return nil
	})
	rt.Post(Prefix+"releases/{id}/signature", func(w http.ResponseWriter, r *Request) error {
		sig := strings.TrimSpace(r.PostFormValue("sig"))
		if sig == "" {
			return errors.New("paste the signature termctl release sign printed (128 hex digits)")
		}
		if err := r.API("PUT", r.fill("/v1/releases/{id}/signature"), api.Signature{Sig: sig}, nil); err != nil {
			return err
		}
		r.Flash("Signature stored: termd verified it with its release public keys.")
		r.Back(w)
		return nil
	})
	newReleaseRoutes(rt)
}

// releaseListData is the list's data.
type releaseListData struct {
	View string
	Rows []releaseRow
}

// releaseRow is one release of the list; Active is set for the
// published and paused releases the fleet page also shows.
type releaseRow struct {
	Release   api.Release
	Targeting string
	Active    *rolloutRow
}

// loadReleaseList is every release, newest first, with the progress and
// health light of the active ones (published or paused: at most
// maxActiveShown, the most recently changed, each a read of its records).
func loadReleaseList(r *Request) (*releaseListData, error) {
	var list api.ReleaseList
	if err := r.Get("/v1/releases", &list); err != nil {
		return nil, err
	}
	d := &releaseListData{View: viewReleaseList}
	var active []*releaseRow
	for _, rel := range list.Releases {
		d.Rows = append(d.Rows, releaseRow{Release: rel, Targeting: targeting(rel)})
	}
	for i := range d.Rows {
		if st := d.Rows[i].Release.State; st == "published" || st == "paused" {
			active = append(active, &d.Rows[i])
		}
	}
	slices.SortFunc(active, func(a, b *releaseRow) int { return cmp.Compare(b.Release.UpdatedMs, a.Release.UpdatedMs) })
	for _, row := range active[:min(len(active), maxActiveShown)] {
		o, err := loadOverview(r, row.Release.ID)
		if err != nil {
			return nil, err
		}
		row.Active = o
	}
	slices.SortFunc(d.Rows, func(a, b releaseRow) int {
		return cmp.Or(cmp.Compare(b.Release.CreatedMs, a.Release.CreatedMs), cmp.Compare(a.Release.ID, b.Release.ID))
	})
	return d, nil
}

// loadOverview reads a release's status and rollout in one call
// (GET /v1/releases/{id}/overview: one read of its records) and works
// out its health light as the fleet page does.
func loadOverview(r *Request, id string) (*rolloutRow, error) {
	var o api.ReleaseOverview
	if err := r.Get("/v1/releases/"+url.PathEscape(id)+"/overview", &o); err != nil {
		return nil, err
	}
	row := &rolloutRow{Release: o.Status.Release, Status: o.Status, Rollout: o.Rollout}
	row.Health, row.Why = rolloutHealth(row)
	return row, nil
}

// targeting says in a line which devices a release is for.
func targeting(rel api.Release) string {
	var parts []string
	if len(rel.Models) > 0 {
		parts = append(parts, "models "+strings.Join(rel.Models, ", "))
	} else {
		parts = append(parts, "every model")
	}
	if n := len(rel.Devices); n > 0 {
		parts = append(parts, plural(n, "listed device"))
	}
	if len(rel.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(rel.Groups, ", "))
	}
	if rel.FromRange != "" {
		parts = append(parts, "from "+rel.FromRange)
	}
	if len(rel.Phases) > 0 {
		var ph []string
		for _, p := range rel.Phases {
			ph = append(ph, phaseLabel(p))
		}
		parts = append(parts, "phases "+strings.Join(ph, " → "))
	} else {
		parts = append(parts, fmt.Sprintf("rollout %d %%", rel.RolloutPct))
	}
	return strings.Join(parts, "; ")
}

// phaseLabel names a phase by its devices.
func phaseLabel(p api.Phase) string {
	switch {
	case len(p.Devices) > 0:
		return "pilot of " + plural(len(p.Devices), "device")
	case p.Group != "":
		return "group " + p.Group
	}
	return strconv.Itoa(p.Percent) + " %"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return num(n) + " " + what + "s"
}

// releaseData is a release page's data.
type releaseData struct {
	View    string
	Status  api.ReleaseStatus
	Rollout *api.RolloutStatus
	// Health and Why: the release's light, as on the fleet page.
	Health, Why string
	Targeting   string
	Funnel      []funnelStep
	Phases      []phaseRow
	Failures    []failureRow
	History     []historyItem
	// Deadline is the deadline as a datetime-local value (UTC).
	Deadline string
	// Size is the artifact's size with thousands separators.
	Size string
}

// funnelStep is one bar of the funnel; Of is what it is drawn against.
type funnelStep struct {
	Name, Key string
	Count, Of int
	Hint      string
	// Width is the bar's width out of 100 (0 for none).
	Width int
}

// phaseRow is a phase with its conditions worked out for display.
type phaseRow struct {
	api.PhaseStatus
	N     int
	Label string
	// Of is the share's denominator: the devices offered, or a pilot's
	// whole list, as the rollout counts (docs/upgrades.md, "Phases").
	Of int
	// SucceededPct and FailedPct are shares of Of.
	SucceededPct, FailedPct float64
	// SuccessMet: the advance condition holds; ErrorHit: the pause
	// condition holds beyond the failures accepted by a resume (both only
	// from min_devices on).
	SuccessMet, ErrorHit bool
	Soak                 string
}

// failureRow is a failure group with the link to its devices.
type failureRow struct {
	api.FailureGroup
	Sample  []string
	More    int
	Devices string
}

// historyItem is one dated line of the release's history.
type historyItem struct {
	AtMs int64
	What string
}

// loadRelease reads a release's status and, when phased, its rollout.
func loadRelease(r *Request, id string) (*releaseData, error) {
	d := &releaseData{View: viewRelease}
	row, err := loadOverview(r, id)
	if err != nil {
		return nil, err
	}
	d.Status, d.Rollout, d.Health, d.Why = row.Status, row.Rollout, row.Health, row.Why
	rel := d.Status.Release
	d.Targeting = targeting(rel)
	d.Funnel = funnel(d.Status)
	if d.Rollout != nil {
		d.Phases = phaseRows(d.Rollout)
	}
	for _, g := range d.Status.Failures {
		f := failureRow{FailureGroup: g, Sample: g.Devices[:min(len(g.Devices), maxFailureSample)], More: g.Count - min(len(g.Devices), maxFailureSample)}
		f.Devices = devicesURL(rel.ID, g)
		d.Failures = append(d.Failures, f)
	}
	d.History = releaseHistory(rel, d.Rollout)
	d.History = append(d.History, operatorHistory(r, rel.ID)...)
	slices.SortStableFunc(d.History, func(a, b historyItem) int { return cmp.Compare(b.AtMs, a.AtMs) })
	d.Size = num64(rel.Size)
	if rel.DeadlineMs > 0 {
		d.Deadline = time.UnixMilli(rel.DeadlineMs).UTC().Format("2006-01-02T15:04")
	}
	return d, nil
}

// funnel is offered → downloading → installing → succeeded / failed /
// rolled back / stuck, each device counted once by its latest attempt.
// Downloading includes DOWNLOADED (waiting to install); stuck is
// TIMED_OUT and REVERTED (termd's guesses).
func funnel(st api.ReleaseStatus) []funnelStep {
	s := st.Stages
	reported := 0
	for _, n := range s {
		reported += n
	}
	of := max(st.Assigned, reported)
	steps := []funnelStep{
		{Name: "offered", Key: "offered", Count: st.Assigned, Of: of, Hint: fmt.Sprintf("%s without a report yet", num(max(st.Assigned-reported, 0)))},
		{Name: "downloading", Key: "downloading", Count: s["downloading"] + s["downloaded"], Of: of, Hint: fmt.Sprintf("%s downloaded, waiting to install", num(s["downloaded"]))},
		{Name: "installing", Key: "installing", Count: s["installing"], Of: of},
		{Name: "succeeded", Key: "succeeded", Count: s["succeeded"], Of: of},
		{Name: "failed", Key: "failed", Count: s["failed"], Of: of},
		{Name: "rolled back", Key: "rolled_back", Count: s["rolled_back"], Of: of},
		{Name: "stuck", Key: "stuck", Count: s["timed_out"] + s["reverted"], Of: of, Hint: fmt.Sprintf("%s timed out, %s reverted", num(s["timed_out"]), num(s["reverted"]))},
	}
	for i := range steps {
		if steps[i].Count > 0 {
			steps[i].Width = barWidth(steps[i].Count, of)
		}
	}
	return steps
}

// num64 is num for sizes in bytes.
func num64(n int64) string { return num(int(n)) }

// phaseRows works out each phase's conditions against its counts, as
// the rollout does (docs/upgrades.md, "Phases").
func phaseRows(ro *api.RolloutStatus) []phaseRow {
	var out []phaseRow
	for i, p := range ro.Phases {
		row := phaseRow{PhaseStatus: p, N: i + 1, Label: phaseLabel(p.Phase)}
		// The share is of the devices offered, or of a pilot's whole list
		// (its devices that never asked count too).
		row.Of = max(p.Offered, len(p.Devices))
		if row.Of > 0 {
			row.SucceededPct = float64(p.Succeeded) / float64(row.Of)
			row.FailedPct = float64(p.Failed) / float64(row.Of)
		}
		enough := row.Of >= max(p.MinDevices, 1)
		row.SuccessMet = enough && p.Succeeded*100 >= p.SuccessPct*row.Of
		row.ErrorHit = enough && p.Failed*100 > p.ErrorPct*row.Of && p.Failed > p.Accepted
		if p.SoakS != nil {
			row.Soak = (time.Duration(*p.SoakS) * time.Second).String()
		}
		out = append(out, row)
	}
	return out
}

// devicesURL is the devices page filtered to one failure group
// (docs/console.md, "Releases and rollouts"). The devices page is built
// apart; the URL's shape is the contract.
func devicesURL(release string, g api.FailureGroup) string {
	q := url.Values{}
	q.Set("release", release)
	q.Set("outcome", "failed")
	q.Set("stage", g.Stage)
	q.Set("code", strconv.FormatUint(g.Code, 10))
	q.Set("model", g.Model)
	q.Set("from", g.FromVersion)
	return Prefix + "devices?" + q.Encode()
}

// maxReleaseAudit is how many operator-audit records a release page
// shows (the newest).
const maxReleaseAudit = 50

// operatorHistory is who did what to the release: the operator audit's
// records that name it (GET /v1/operator-audit?target=ID), newest first.
// A node without the audit, or a refusal, shows none.
func operatorHistory(r *Request, id string) []historyItem {
	var l api.OperatorAuditList
	if err := r.Get("/v1/operator-audit?limit="+strconv.Itoa(maxReleaseAudit)+"&target="+url.QueryEscape(id), &l); err != nil {
		return nil
	}
	h := make([]historyItem, 0, len(l.Records))
	for _, rec := range l.Records {
		what := fmt.Sprintf("%s (%s): %s %s → %d", rec.Operator, rec.Scope, rec.Method, rec.Path, rec.Status)
		if rec.Message != "" {
			what += " " + rec.Message
		}
		h = append(h, historyItem{AtMs: rec.AtMs, What: what})
	}
	return h
}

// releaseHistory is what the release's records keep of its past: its lifecycle
// times and its rollout's last transitions, newest first. Who did what
// comes from the operator audit (operatorHistory).
func releaseHistory(rel api.Release, ro *api.RolloutStatus) []historyItem {
	var h []historyItem
	add := func(ms int64, what string) {
		if ms > 0 {
			h = append(h, historyItem{AtMs: ms, What: what})
		}
	}
	add(rel.CreatedMs, fmt.Sprintf("created as a draft: %s %s", rel.AppID, rel.Version))
	add(rel.PublishedMs, "published")
	add(rel.CancelledMs, "cancelled")
	if rel.UpdatedMs != rel.CreatedMs && rel.UpdatedMs != rel.PublishedMs && rel.UpdatedMs != rel.CancelledMs {
		add(rel.UpdatedMs, "last change; state now "+rel.State)
	}
	if ro != nil {
		add(ro.PhaseStartedMs, fmt.Sprintf("phase %d of %d started", ro.Phase, len(ro.Phases)))
		if ro.State == "paused" {
			add(ro.PausedMs, "rollout paused: "+ro.PauseReason)
		}
	}
	slices.SortStableFunc(h, func(a, b historyItem) int { return cmp.Compare(b.AtMs, a.AtMs) })
	return h
}

// parseDeadlineInput reads a deadline form field: a datetime-local value
// (taken as UTC) or RFC 3339; "" is 0.
func parseDeadlineInput(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 2000 || t.Year() > 9999 {
				break
			}
			return t.UnixMilli(), nil
		}
	}
	return 0, &APIError{Status: http.StatusBadRequest, Code: "bad_request",
		Message: fmt.Sprintf("deadline %q: give a time in UTC like 2026-12-31T00:00 (or RFC 3339)", s)}
}
