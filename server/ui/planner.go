package ui

// The campaign planner (/ui/campaigns/plan): GET /v1/plan drawn as a
// calendar heat map of free download capacity, one row per day in the
// operator's time zone and one cell per slot (at least 15 minutes), with
// the past online share of the targeted terminals in each cell. The
// operator selects cells (campaigns.js keeps them in a hidden field as
// windows), the server weighs the selection (GET /v1/plan?window=…), and
// the selection becomes a campaign's absolute windows (POST
// /v1/campaigns). docs/console.md, "Campaign planner".

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// Planner bounds and shapes.
const (
	// minCellMs is the shortest heat-map cell: slots shorter than this
	// are summed into cells of the smallest multiple that reaches it.
	minCellMs = 15 * 60 * 1000
	// maxPlanDays bounds the planner's period.
	maxPlanDays = 31
	// defaultPlanDays is the period shown when none is asked.
	defaultPlanDays = 7
	// heatLevels is the number of intensity classes of cells with free
	// capacity (h1 … h5); h0 is none.
	heatLevels = 5
	// shareLevels is the number of online-share classes above o0.
	shareLevels = 4
	// maxSelWindows bounds a selection (and so a campaign's windows).
	maxSelWindows = 1000
	// dayLayout and clockLayout label rows and times in the planner's zone.
	dayLayout   = "Mon 2 Jan"
	clockLayout = "15:04"
	dateLayout  = "2006-01-02"
)

// planInput is the planner's form: what to plan and how to show it.
type planInput struct {
	Release  string
	Models   []string
	Clusters []string
	// View colours the map by one cluster's free capacity ("" = the sum
	// over the clusters asked).
	View     string
	TZ       string
	From, To string // dates in TZ, To included
	loc      *time.Location
	fromT    time.Time // From's midnight in TZ
	toT      time.Time // the midnight after To in TZ
}

// badInput is a refusal of what the operator typed (HTTP 400).
func badInput(format string, a ...any) error {
	return &APIError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, a...)}
}

// splitList reads a comma- or space-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// readPlanInput reads and checks the planner's parameters; today is now
// in the planner's zone when no dates are given.
func readPlanInput(q url.Values, now time.Time) (planInput, error) {
	in := planInput{Release: strings.TrimSpace(q.Get("release")), Models: splitList(q.Get("models")), Clusters: q["cluster"],
		View: q.Get("view"), TZ: strings.TrimSpace(q.Get("tz")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	if in.TZ == "" {
		in.TZ = "UTC"
	}
	loc, err := time.LoadLocation(in.TZ)
	if err != nil || in.TZ == "Local" {
		return in, badInput("time zone %q: not in the time zone database (for example Europe/Berlin, or UTC)", in.TZ)
	}
	in.loc = loc
	if in.From == "" {
		in.From = now.In(loc).Format(dateLayout)
	}
	if in.fromT, err = time.ParseInLocation(dateLayout, in.From, loc); err != nil {
		return in, badInput("from %q: want a date, YYYY-MM-DD", in.From)
	}
	if in.To == "" {
		in.To = in.fromT.AddDate(0, 0, defaultPlanDays-1).Format(dateLayout)
	}
	to, err := time.ParseInLocation(dateLayout, in.To, loc)
	if err != nil {
		return in, badInput("to %q: want a date, YYYY-MM-DD", in.To)
	}
	in.toT = to.AddDate(0, 0, 1)
	if !in.toT.After(in.fromT) || in.toT.Sub(in.fromT) > maxPlanDays*24*time.Hour+time.Hour {
		return in, badInput("the period must run from a date to the same or a later one, %d days at most", maxPlanDays)
	}
	if in.View != "" && len(in.Clusters) > 0 && !slices.Contains(in.Clusters, in.View) {
		in.View = ""
	}
	return in, nil
}

// query is the form's parameters again, for links and the selection's
// requests.
func (in planInput) query() url.Values {
	q := url.Values{"release": {in.Release}, "tz": {in.TZ}, "from": {in.From}, "to": {in.To}}
	if len(in.Models) > 0 {
		q.Set("models", strings.Join(in.Models, ","))
	}
	if in.View != "" {
		q.Set("view", in.View)
	}
	q["cluster"] = in.Clusters
	return q
}

// apiPath is GET /v1/plan for the input and a selection.
func (in planInput) apiPath(sel []api.Window) string {
	q := url.Values{"release": {in.Release}, "from": {in.fromT.UTC().Format(time.RFC3339)}, "to": {in.toT.UTC().Format(time.RFC3339)}}
	q["model"] = in.Models
	q["cluster"] = in.Clusters
	for _, w := range sel {
		q.Add("window", time.UnixMilli(w.StartMs).UTC().Format(time.RFC3339)+"/"+time.UnixMilli(w.EndMs).UTC().Format(time.RFC3339))
	}
	return "/v1/plan?" + q.Encode()
}

// parseSelection reads the selection field: windows "START-END" in unix
// ms, comma-separated; they are sorted and adjacent ones merged.
func parseSelection(s string) ([]api.Window, error) {
	var ws []api.Window
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if len(ws) == maxSelWindows {
			return nil, badInput("at most %d windows can be selected", maxSelWindows)
		}
		a, b, ok := strings.Cut(part, "-")
		start, errA := strconv.ParseInt(a, 10, 64)
		end, errB := strconv.ParseInt(b, 10, 64)
		if !ok || errA != nil || errB != nil || start <= 0 || end <= start {
			return nil, badInput("selection %q: want START-END in unix milliseconds, END after START", part)
		}
		ws = append(ws, api.Window{StartMs: start, EndMs: end})
	}
	return mergeWindows(ws), nil
}

// mergeWindows sorts windows and joins the ones that touch or overlap.
func mergeWindows(ws []api.Window) []api.Window {
	slices.SortFunc(ws, func(a, b api.Window) int { return cmp.Compare(a.StartMs, b.StartMs) })
	out := []api.Window{}
	for _, w := range ws {
		if n := len(out); n > 0 && w.StartMs <= out[n-1].EndMs {
			out[n-1].EndMs = max(out[n-1].EndMs, w.EndMs)
			continue
		}
		out = append(out, w)
	}
	return out
}

// heatCell is one cell of the map: one slot, or the slots of one
// 15-minute (or longer) period summed.
type heatCell struct {
	StartMs, EndMs int64
	// Free is what colours the cell (the view's cluster, or the sum).
	Free  int
	Total int
	Share float64
	Takes int
	// Heat is the intensity class (0 … heatLevels), Online the share's
	// (0 … shareLevels).
	Heat, Online    int
	Past, Suggested bool
	// Empty: no slot of the plan falls here (the period's edges, a
	// daylight-saving jump).
	Empty bool
	Title string
	free  map[string]int
}

// legendItem is one intensity class and the free places it stands for.
type legendItem struct {
	Level int
	Label string
}

type heatRow struct {
	Label string
	Cells []*heatCell
}

// heatMap is the planner's calendar.
type heatMap struct {
	Cols    []string // a label per column ("" between hours)
	Rows    []heatRow
	CellMin int
	MaxFree int
	Legend  []legendItem // the free capacity each class stands for
	Cells   int
}

// planView is the planner page's data.
type planView struct {
	In        planInput
	Releases  []api.Release
	Clusters  []string
	Plan      *api.Plan
	Map       *heatMap
	Suggested []string // the plan's suggested windows in the zone
	// CoverURL is where campaigns.js asks what a selection covers.
	CoverURL string
	Back     string
}

// slotLabel is a window in the planner's zone.
func slotLabel(w api.Window, loc *time.Location) string {
	a, b := time.UnixMilli(w.StartMs).In(loc), time.UnixMilli(w.EndMs).In(loc)
	if a.Format(dateLayout) == b.Format(dateLayout) || b.Equal(time.Date(a.Year(), a.Month(), a.Day()+1, 0, 0, 0, 0, loc)) {
		return a.Format(dayLayout+" "+clockLayout) + "–" + b.Format(clockLayout)
	}
	return a.Format(dayLayout+" "+clockLayout) + " – " + b.Format(dayLayout+" "+clockLayout)
}

// buildHeatMap turns the plan's slots into the calendar.
func buildHeatMap(p *api.Plan, in planInput, nowMs int64) *heatMap {
	if len(p.Slots) == 0 {
		return &heatMap{}
	}
	step := p.Slots[0].EndMs - p.Slots[0].StartMs
	cellMs := step * ((minCellMs + step - 1) / step)
	m := &heatMap{CellMin: int(cellMs / 60000)}
	var cells []*heatCell
	for i := range p.Slots {
		s := &p.Slots[i]
		start := s.StartMs - ((s.StartMs%cellMs)+cellMs)%cellMs
		n := len(cells)
		if n == 0 || cells[n-1].StartMs != start {
			cells = append(cells, &heatCell{StartMs: start, EndMs: start + cellMs, free: map[string]int{}})
			n++
		}
		c := cells[n-1]
		for cl, f := range s.Free {
			c.free[cl] += f
			c.Total += f
		}
		c.Share += s.OnlineShare * float64(step) / float64(cellMs)
		c.Takes += s.Takes
	}
	for _, c := range cells {
		c.Free = c.Total
		if in.View != "" {
			c.Free = c.free[in.View]
		}
		c.Past = c.EndMs <= nowMs
		if !c.Past {
			m.MaxFree = max(m.MaxFree, c.Free)
		}
		for _, w := range p.Suggested {
			if w.StartMs < c.EndMs && c.StartMs < w.EndMs {
				c.Suggested = true
			}
		}
	}
	ncols := (24*60 + m.CellMin - 1) / m.CellMin
	for col := range ncols {
		label := ""
		if minute := col * m.CellMin; minute%60 == 0 && (m.CellMin >= 60 || (minute/60)%2 == 0) {
			label = fmt.Sprintf("%02d", minute/60)
		}
		m.Cols = append(m.Cols, label)
	}
	clusters := sortedKeys(cells)
	rowsOfDay := map[string][]int{} // date → indexes in m.Rows
	for _, c := range cells {
		local := time.UnixMilli(c.StartMs).In(in.loc)
		day := local.Format(dateLayout)
		col := min((local.Hour()*60+local.Minute())/m.CellMin, ncols-1)
		row := -1
		for _, i := range rowsOfDay[day] {
			if m.Rows[i].Cells[col].Empty {
				row = i
				break
			}
		}
		if row < 0 {
			label := local.Format(dayLayout)
			if len(rowsOfDay[day]) > 0 {
				label += " (clock turned back)"
			}
			r := heatRow{Label: label, Cells: make([]*heatCell, ncols)}
			for i := range r.Cells {
				r.Cells[i] = &heatCell{Empty: true}
			}
			m.Rows = append(m.Rows, r)
			row = len(m.Rows) - 1
			rowsOfDay[day] = append(rowsOfDay[day], row)
		}
		c.Heat = heatLevel(c.Free, m.MaxFree)
		c.Online = int(math.Round(c.Share * shareLevels))
		c.Title = cellTitle(c, clusters, in.loc)
		m.Rows[row].Cells[col] = c
		m.Cells++
	}
	for lvl := 1; lvl <= heatLevels && m.MaxFree > 0; lvl++ {
		lo, hi := (lvl-1)*m.MaxFree/heatLevels+1, lvl*m.MaxFree/heatLevels
		m.Legend = append(m.Legend, legendItem{Level: lvl, Label: fmt.Sprintf("%s–%s", num(lo), num(max(lo, hi)))})
	}
	return m
}

// heatLevel is free's class on a scale of most: 0 for none, else 1 …
// heatLevels.
func heatLevel(free, most int) int {
	if free <= 0 || most <= 0 {
		return 0
	}
	return min(heatLevels, 1+(free-1)*heatLevels/most)
}

func sortedKeys(cells []*heatCell) []string {
	var out []string
	for _, c := range cells {
		for cl := range c.free {
			if !slices.Contains(out, cl) {
				out = append(out, cl)
			}
		}
	}
	slices.Sort(out)
	return out
}

func cellTitle(c *heatCell, clusters []string, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(slotLabel(api.Window{StartMs: c.StartMs, EndMs: c.EndMs}, loc))
	if c.Past {
		b.WriteString(": over")
		return b.String()
	}
	fmt.Fprintf(&b, ": %s free", num(c.Total))
	if len(clusters) > 1 {
		b.WriteString(" (")
		for i, cl := range clusters {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s", cl, num(c.free[cl]))
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, "; %s of the targeted terminals online at this hour over the past week; takes %s", pct(c.Share), num(c.Takes))
	return b.String()
}

// loadPlanner makes the planner's API calls: the releases and clusters
// for the form, and the plan when a release is chosen.
func loadPlanner(r *Request) (*planView, error) {
	in, err := readPlanInput(r.URL.Query(), time.Now())
	if err != nil {
		return nil, err
	}
	v := &planView{In: in, Back: r.URL.RequestURI()}
	var rels api.ReleaseList
	if err := r.Get("/v1/releases", &rels); optional(err) != nil {
		return nil, err
	}
	for _, rel := range rels.Releases {
		if rel.State == "published" || rel.State == "paused" || rel.State == "draft" || rel.ID == in.Release {
			v.Releases = append(v.Releases, rel)
		}
	}
	var nodes api.NodeList
	if err := r.Get("/v1/nodes", &nodes); err != nil {
		return nil, err
	}
	for _, n := range nodes.Nodes {
		if !slices.Contains(v.Clusters, n.Cluster) {
			v.Clusters = append(v.Clusters, n.Cluster)
		}
	}
	for _, cl := range in.Clusters {
		if !slices.Contains(v.Clusters, cl) {
			return nil, badInput("unknown cluster %q", cl)
		}
	}
	if in.Release == "" {
		return v, nil
	}
	var p api.Plan
	if err := r.Get(in.apiPath(nil), &p); err != nil {
		return nil, err
	}
	v.Plan = &p
	v.Map = buildHeatMap(&p, in, time.Now().UnixMilli())
	for _, w := range p.Suggested {
		v.Suggested = append(v.Suggested, slotLabel(w, in.loc))
	}
	v.CoverURL = Prefix + "campaigns/plan/cover?" + in.query().Encode()
	return v, nil
}

// coverView is what a selection covers (the "cover" partial).
type coverView struct {
	In       planInput
	Sel      *api.PlanSelection
	Targeted int
	Windows  []string // the first windows, labelled in the zone
	More     int
	Hours    float64
	// Encoded is the selection as the form field holds it.
	Encoded string
}

const coverListed = 8

// loadCover weighs the selection of the request's "sel" field.
func loadCover(r *Request, q url.Values) (*coverView, error) {
	in, err := readPlanInput(q, time.Now())
	if err != nil {
		return nil, err
	}
	if in.Release == "" {
		return nil, badInput("choose a release")
	}
	sel, err := parseSelection(q.Get("sel"))
	if err != nil {
		return nil, err
	}
	v := &coverView{In: in, Encoded: encodeSelection(sel)}
	if len(sel) == 0 {
		return v, nil
	}
	var p api.Plan
	if err := r.Get(in.apiPath(sel), &p); err != nil {
		return nil, err
	}
	v.Sel, v.Targeted = p.Selection, p.Targeted
	if v.Sel == nil {
		v.Sel = &api.PlanSelection{}
	}
	if len(p.Slots) > 0 {
		v.Hours = float64(v.Sel.Slots) * float64(p.Slots[0].EndMs-p.Slots[0].StartMs) / float64(time.Hour.Milliseconds())
	}
	for i, w := range sel {
		if i == coverListed {
			v.More = len(sel) - i
			break
		}
		v.Windows = append(v.Windows, slotLabel(w, in.loc))
	}
	return v, nil
}

func encodeSelection(ws []api.Window) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = strconv.FormatInt(w.StartMs, 10) + "-" + strconv.FormatInt(w.EndMs, 10)
	}
	return strings.Join(parts, ",")
}

// campaignFromSelection is the campaign a selection makes: the plan's
// release, models and clusters, and one absolute window per run of
// adjacent selected cells (docs/console.md, "From a selection to a
// campaign").
func campaignFromSelection(in planInput, sel []api.Window) (api.CampaignCreate, error) {
	if in.Release == "" {
		return api.CampaignCreate{}, badInput("choose a release")
	}
	if len(sel) == 0 {
		return api.CampaignCreate{}, badInput("select at least one period on the calendar")
	}
	return api.CampaignCreate{ReleaseID: in.Release, Models: in.Models, Clusters: in.Clusters, Windows: sel}, nil
}

// createFromPlan creates the campaign of the planner's selection, and
// publishes it when asked; the operator lands on its page.
func createFromPlan(w http.ResponseWriter, r *Request) error {
	if err := r.ParseForm(); err != nil {
		return badInput("%v", err)
	}
	in, err := readPlanInput(r.PostForm, time.Now())
	if err != nil {
		return err
	}
	sel, err := parseSelection(r.PostFormValue("sel"))
	if err != nil {
		return err
	}
	in2, err := campaignFromSelection(in, sel)
	if err != nil {
		return err
	}
	var c api.Campaign
	if err := r.API(http.MethodPost, "/v1/campaigns", in2, &c); err != nil {
		return err
	}
	msg := fmt.Sprintf("Campaign %s created as a draft with %d window(s).", c.ID, len(c.Windows))
	if r.PostFormValue("publish") == "1" {
		if err := r.API(http.MethodPost, "/v1/campaigns/"+url.PathEscape(c.ID)+"/publish", nil, &c); err != nil {
			r.FlashError(fmt.Sprintf("Campaign %s was created as a draft but not published: %v", c.ID, err))
			http.Redirect(w, r.Request, joinPath(Prefix+"campaigns", c.ID), http.StatusSeeOther)
			return nil
		}
		msg = fmt.Sprintf("Campaign %s created and published with %d window(s).", c.ID, len(c.Windows))
	}
	r.Flash(msg)
	http.Redirect(w, r.Request, joinPath(Prefix+"campaigns", c.ID), http.StatusSeeOther)
	return nil
}

// ModelsText is the models field's value.
func (in planInput) ModelsText() string { return strings.Join(in.Models, ", ") }

// HasCluster reports whether the plan was asked for cluster cl.
func (in planInput) HasCluster(cl string) bool { return slices.Contains(in.Clusters, cl) }

// CoveredShare is the covered terminals' share of the targeted ones.
func (v *coverView) CoveredShare() float64 {
	if v.Sel == nil || v.Targeted == 0 {
		return 0
	}
	return float64(v.Sel.Covered) / float64(v.Targeted)
}
