package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// apiCall calls the console's admin API with the operator token.
func (tc *testConsole) apiCall(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, tc.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func statusCodeOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// The selection field becomes sorted, merged windows; anything else is
// refused with 400.
func TestSelectionMapping(t *testing.T) {
	ws, err := parseSelection("300-400, 100-200,200-300,,900-1000")
	if err != nil || !slices.Equal(ws, []api.Window{{StartMs: 100, EndMs: 400}, {StartMs: 900, EndMs: 1000}}) {
		t.Fatalf("parse: %v %v", ws, err)
	}
	if encodeSelection(ws) != "100-400,900-1000" {
		t.Fatalf("encode: %s", encodeSelection(ws))
	}
	for _, bad := range []string{"5-3", "x", "1-", "-5-9", "0-10", strings.Repeat("1-2,", maxSelWindows+1)} {
		if _, err := parseSelection(bad); statusCodeOf(err) != http.StatusBadRequest {
			t.Errorf("%.20q: %v, want 400", bad, err)
		}
	}
	in := planInput{Release: "r-1", Models: []string{"P400"}, Clusters: []string{"fra"}}
	c, err := campaignFromSelection(in, ws)
	if err != nil || c.ReleaseID != "r-1" || !slices.Equal(c.Models, in.Models) || !slices.Equal(c.Clusters, in.Clusters) ||
		!slices.Equal(c.Windows, ws) || c.Daily != "" || c.TZ != "" {
		t.Fatalf("campaign %+v %v", c, err)
	}
	if _, err := campaignFromSelection(in, nil); statusCodeOf(err) != http.StatusBadRequest {
		t.Fatalf("empty selection: %v", err)
	}
}

// Slots shorter than 15 minutes are summed into cells; a day whose
// clock is turned back gets a second row for the repeated hour.
func TestHeatMap(t *testing.T) {
	start := time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)
	var p api.Plan
	for i := range 6 { // 10-minute slots: 20-minute cells
		s := start.Add(time.Duration(i) * 10 * time.Minute).UnixMilli()
		p.Slots = append(p.Slots, api.PlanSlot{StartMs: s, EndMs: s + 600000, Free: map[string]int{"fra": 10 * i, "waw": 1}, OnlineShare: 0.5})
	}
	in := planInput{loc: time.UTC}
	m := buildHeatMap(&p, in, 0)
	if m.CellMin != 20 || m.Cells != 3 || len(m.Rows) != 1 || len(m.Cols) != 72 {
		t.Fatalf("map: %d-min cells, %d cells, %d rows, %d cols", m.CellMin, m.Cells, len(m.Rows), len(m.Cols))
	}
	cells := m.Rows[0].Cells
	if cells[0].Total != 0+10+2 || cells[2].Total != 40+50+2 || cells[2].Heat != heatLevels || cells[0].Online != 2 || cells[3].Empty != true {
		t.Fatalf("cells: %+v %+v %+v", cells[0], cells[2], cells[3])
	}
	in.View = "waw"
	if m := buildHeatMap(&p, in, 0); m.Rows[0].Cells[1].Free != 2 || m.MaxFree != 2 {
		t.Fatalf("waw view: %+v max %d", m.Rows[0].Cells[1], m.MaxFree)
	}
	// Berlin turns its clock back from 03:00 to 02:00 on 27 October 2030.
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database")
	}
	p = api.Plan{}
	from := time.Date(2030, 10, 27, 0, 0, 0, 0, berlin)
	for s := from; s.Before(from.AddDate(0, 0, 1)); s = s.Add(15 * time.Minute) {
		p.Slots = append(p.Slots, api.PlanSlot{StartMs: s.UnixMilli(), EndMs: s.Add(15 * time.Minute).UnixMilli(), Free: map[string]int{"fra": 5}})
	}
	m = buildHeatMap(&p, planInput{loc: berlin}, 0)
	if len(p.Slots) != 100 || m.Cells != 100 || len(m.Rows) != 2 || m.Rows[1].Label != "Sun 27 Oct (clock turned back)" {
		t.Fatalf("DST day: %d slots, %d cells, rows %d %q", len(p.Slots), m.Cells, len(m.Rows), m.Rows[len(m.Rows)-1].Label)
	}
	repeated := 0
	for i, c := range m.Rows[1].Cells {
		if !c.Empty {
			repeated++
			if i < 8 || i > 11 { // 02:00–02:45
				t.Errorf("repeated cell in column %d", i)
			}
		}
	}
	if repeated != 4 {
		t.Fatalf("%d cells in the repeated hour's row", repeated)
	}
	if heatLevel(0, 10) != 0 || heatLevel(1, 10) != 1 || heatLevel(10, 10) != heatLevels || heatLevel(3, 0) != 0 {
		t.Fatal("heat levels")
	}
}

var (
	heatCells   = regexp.MustCompile(`<td class="c h\d o\d[^"]*" data-s="`)
	campaignURL = regexp.MustCompile(`^/ui/campaigns/(c-[0-9a-f]+)$`)
)

// The planner over a real node: the heat map, refusals of bad input, what
// a selection covers, and the campaign made from it (checked through the
// API), refused for read-only tokens.
func TestPlannerPages(t *testing.T) {
	b := newMemBadger(t)
	fillRegistry(t, b, 200) // app pos 2.x on P400, P200, K10, M3: 50 P400s
	tc := startSchedConsole(t, b)
	rel := tc.release(t, "3.0.0", "P400")
	day := time.Now().UTC().AddDate(0, 0, 1).Format(dateLayout)
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	q := url.Values{"release": {rel.ID}, "models": {"P400"}, "from": {day}, "to": {day}, "tz": {"UTC"}}
	resp, body := get(t, c, tc.URL+"/ui/campaigns/plan?"+q.Encode())
	if resp.StatusCode != 200 || len(heatCells.FindAllString(body, -1)) != 96 || !strings.Contains(body, `id="targeted">50<`) ||
		!strings.Contains(body, `id="create-campaign"`) {
		t.Fatalf("planner: %d, %d selectable cells\n%s", resp.StatusCode, len(heatCells.FindAllString(body, -1)), body)
	}
	for name, mod := range map[string]func(url.Values){
		"time zone":       func(v url.Values) { v.Set("tz", "Mars/Olympus") },
		"from":            func(v url.Values) { v.Set("from", "tomorrow") },
		"backwards":       func(v url.Values) { v.Set("to", "2020-01-01") },
		"too long":        func(v url.Values) { v.Set("to", time.Now().AddDate(0, 0, 40).Format(dateLayout)) },
		"unknown cluster": func(v url.Values) { v.Set("cluster", "nowhere") },
	} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = slices.Clone(vs)
		}
		mod(v)
		if resp, body := get(t, c, tc.URL+"/ui/campaigns/plan?"+v.Encode()); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400\n%.300s", name, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, c, tc.URL+"/ui/campaigns/plan?release=r-nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown release: %d", resp.StatusCode)
	}
	// Two adjacent cells at 01:00 and 01:15: one window, 2 slots of 90
	// free places; without history everyone shows up, so 50 are covered.
	at := func(hm string) int64 {
		tm, _ := time.Parse(dateLayout+" 15:04", day+" "+hm)
		return tm.UnixMilli()
	}
	sel := fmt.Sprintf("%d-%d,%d-%d", at("01:15"), at("01:30"), at("01:00"), at("01:15"))
	resp, body = get(t, c, tc.URL+"/ui/campaigns/plan/cover?"+q.Encode()+"&sel="+url.QueryEscape(sel))
	if resp.StatusCode != 200 || !strings.Contains(body, `data-covered="50" data-slots="2" data-windows="1"`) || !strings.Contains(body, "180 free places") {
		t.Fatalf("cover: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := get(t, c, tc.URL+"/ui/campaigns/plan/cover?"+q.Encode()+"&sel=x"); resp.StatusCode != 400 || !strings.Contains(body, `data-error="1"`) {
		t.Fatalf("bad selection: %d %s", resp.StatusCode, body)
	}
	// Create and publish it, restricted to fra, with a second window.
	csrf := formToken(t, c, tc.URL+"/ui/campaigns/plan?"+q.Encode())
	form := url.Values{"csrf": {csrf}, "release": {rel.ID}, "models": {"P400"}, "tz": {"UTC"}, "from": {day}, "to": {day}, "cluster": {"fra"},
		"sel": {sel + fmt.Sprintf(",%d-%d", at("03:00"), at("04:00"))}, "publish": {"1"}}
	resp, _ = post(t, c, tc.URL+"/ui/campaigns/plan/create", form, nil)
	m := campaignURL.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var camp api.Campaign
	if tc.apiCall(t, "GET", "/v1/campaigns/"+m[1], nil, &camp) != 200 {
		t.Fatal("the campaign is not in the API")
	}
	want := []api.Window{{StartMs: at("01:00"), EndMs: at("01:30")}, {StartMs: at("03:00"), EndMs: at("04:00")}}
	if !slices.Equal(camp.Windows, want) || !slices.Equal(camp.Models, []string{"P400"}) || !slices.Equal(camp.Clusters, []string{"fra"}) ||
		camp.State != "published" || camp.ReleaseID != rel.ID {
		t.Fatalf("campaign %+v, want windows %v", camp, want)
	}
	if _, body := get(t, c, tc.URL+"/ui/campaigns/"+m[1]); !strings.Contains(body, "created and published with 2 window(s)") {
		t.Fatalf("no flash on the campaign's page:\n%s", body)
	}
	// An empty selection goes back with an error; nothing is created.
	form.Set("sel", "")
	form.Set("back", "/ui/campaigns/plan?"+q.Encode())
	if resp, _ := post(t, c, tc.URL+"/ui/campaigns/plan/create", form, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/campaigns/plan?") {
		t.Fatalf("empty selection: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := get(t, c, tc.URL+"/ui/campaigns/plan?"+q.Encode()); !strings.Contains(body, "select at least one period") {
		t.Fatal("no error flash for an empty selection")
	}
	// A read-only session sees the map but no creation form, and is refused.
	ro := browserless(t)
	tc.signIn(t, ro, readToken)
	if _, body := get(t, ro, tc.URL+"/ui/campaigns/plan?"+q.Encode()); strings.Contains(body, `id="create-campaign"`) || !strings.Contains(body, `data-s="`) {
		t.Fatal("read-only planner: a creation form, or no map")
	}
	roCSRF := hiddenCSRF.FindStringSubmatch(func() string { _, b := get(t, ro, tc.URL+"/ui/campaigns"); return b }())
	if roCSRF == nil {
		t.Fatal("no CSRF token on the read-only page (the logout form has one)")
	}
	form.Set("csrf", roCSRF[1])
	form.Set("sel", sel)
	if resp, _ := post(t, ro, tc.URL+"/ui/campaigns/plan/create", form, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only create: %d", resp.StatusCode)
	}
	var list api.CampaignList
	tc.apiCall(t, "GET", "/v1/campaigns", nil, &list)
	if len(list.Campaigns) != 1 {
		t.Fatalf("%d campaigns, want 1", len(list.Campaigns))
	}
}

// A campaign's page: progress figures from the API, its actions by
// state (checked through the API), retry refusals, the nodes view with
// drain; none of the actions for a read-only session.
func TestCampaignPages(t *testing.T) {
	b := newMemBadger(t)
	fillRegistry(t, b, 40) // 10 P400s
	tc := startSchedConsole(t, b)
	rel := tc.release(t, "3.0.0", "P400")
	start := time.Now().Add(time.Hour).Truncate(15 * time.Minute)
	var camp api.Campaign
	if tc.apiCall(t, "POST", "/v1/campaigns", api.CampaignCreate{ReleaseID: rel.ID, Models: []string{"P400"},
		Windows: []api.Window{{StartMs: start.UnixMilli(), EndMs: start.Add(time.Hour).UnixMilli()}}}, &camp) != 201 {
		t.Fatal("create")
	}
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	page := tc.URL + "/ui/campaigns/" + camp.ID
	resp, body := get(t, c, page)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="unreached">10<`) || !strings.Contains(body, `action="/ui/campaigns/`+camp.ID+`/publish"`) ||
		strings.Contains(body, `/pause"`) {
		t.Fatalf("draft page: %d\n%s", resp.StatusCode, body)
	}
	if _, body := get(t, c, tc.URL+"/ui/campaigns"); !strings.Contains(body, `data-campaign="`+camp.ID+`"`) {
		t.Fatal("not listed")
	}
	if resp, _ := get(t, c, tc.URL+"/ui/campaigns/c-nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown campaign: %d", resp.StatusCode)
	}
	act := func(path string, form url.Values) *http.Response {
		form.Set("csrf", formToken(t, c, page))
		form.Set("back", "/ui/campaigns/"+camp.ID)
		resp, _ := post(t, c, tc.URL+path, form, nil)
		return resp
	}
	for _, step := range []struct{ op, state string }{{"publish", "published"}, {"pause", "paused"}, {"resume", "published"}} {
		if resp := act("/ui/campaigns/"+camp.ID+"/"+step.op, url.Values{}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", step.op, resp.StatusCode)
		}
		var got api.Campaign
		if tc.apiCall(t, "GET", "/v1/campaigns/"+camp.ID, nil, &got); got.State != step.state {
			t.Fatalf("after %s: %s", step.op, got.State)
		}
	}
	act("/ui/campaigns/"+camp.ID+"/retry", url.Values{})
	if _, body := get(t, c, page); !strings.Contains(body, "tick missed, failed and/or not reached") {
		t.Fatal("retry without a choice was not refused")
	}
	act("/ui/campaigns/"+camp.ID+"/retry", url.Values{"unreached": {"1"}})
	if _, body := get(t, c, page); !strings.Contains(body, "10 terminals re-opened") {
		t.Fatal("retry of the unreached")
	}
	// Nodes: drain fra-2 and see it in the API.
	if resp, body := get(t, c, tc.URL+"/ui/campaigns/nodes"); resp.StatusCode != 200 || !strings.Contains(body, `data-node="fra-2"`) {
		t.Fatalf("nodes: %d", resp.StatusCode)
	}
	if resp := act("/ui/campaigns/nodes/fra-2/drain", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain: %d", resp.StatusCode)
	}
	var nodes api.NodeList
	tc.apiCall(t, "GET", "/v1/nodes", nil, &nodes)
	if i := slices.IndexFunc(nodes.Nodes, func(n api.Node) bool { return n.ID == "fra-2" }); i < 0 || !nodes.Nodes[i].Draining {
		t.Fatalf("fra-2 not draining: %+v", nodes.Nodes)
	}
	// Read-only: no action, and refused.
	ro := browserless(t)
	tc.signIn(t, ro, readToken)
	for _, p := range []string{page, tc.URL + "/ui/campaigns/nodes"} {
		if _, body := get(t, ro, p); strings.Contains(body, `class="action"`) || strings.Contains(body, `class="retry"`) {
			t.Errorf("read-only %s shows actions", p)
		}
	}
	_, body = get(t, ro, page)
	csrf := hiddenCSRF.FindStringSubmatch(body)[1]
	if resp, _ := post(t, ro, tc.URL+"/ui/campaigns/"+camp.ID+"/cancel", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only cancel: %d", resp.StatusCode)
	}
	act("/ui/campaigns/"+camp.ID+"/cancel", url.Values{})
	if tc.apiCall(t, "GET", "/v1/campaigns/"+camp.ID, nil, &camp); camp.State != "cancelled" {
		t.Fatalf("cancel: %s", camp.State)
	}
}

// Groups: create (and a refused one), add a member (who added it is the
// token's name), page through members, send, remove, delete — each
// checked through the API; read-only sessions get no forms.
func TestGroupPages(t *testing.T) {
	tc := startSchedConsole(t, nil)
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	post1 := func(path string, form url.Values) *http.Response {
		form.Set("csrf", formToken(t, c, tc.URL+"/ui/groups"))
		resp, _ := post(t, c, tc.URL+path, form, nil)
		return resp
	}
	resp := post1("/ui/groups/create", url.Values{"id": {"techs"}, "name": {"Technicians"}, "policy": {"operator"}, "limit": {"0"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/groups/techs" {
		t.Fatalf("create: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	post1("/ui/groups/create", url.Values{"id": {"bad"}, "limit": {"-3"}, "back": {"/ui/groups"}})
	if tc.apiCall(t, "GET", "/v1/groups/bad", nil, nil) != http.StatusNotFound {
		t.Fatal("a group with a negative limit was created")
	}
	if _, body := get(t, c, tc.URL+"/ui/groups"); !strings.Contains(body, "want a whole number") || !strings.Contains(body, `data-group="techs"`) {
		t.Fatalf("groups page:\n%s", body)
	}
	for i := range 3 {
		resp := post1("/ui/groups/techs/members", url.Values{"device": {fmt.Sprintf("POS-%d", i)}, "role": {"moderator"}, "back": {"/ui/groups/techs"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("add: %d", resp.StatusCode)
		}
	}
	var ms api.GroupMembers
	tc.apiCall(t, "GET", "/v1/groups/techs/members", nil, &ms)
	if len(ms.Members) != 3 || ms.Members[0].By != "operator:alice" || ms.Members[0].Role != "moderator" {
		t.Fatalf("members: %+v", ms)
	}
	_, body := get(t, c, tc.URL+"/ui/groups/techs")
	if !strings.Contains(body, `data-device="POS-2"`) || !strings.Contains(body, "operator:alice") {
		t.Fatalf("group page:\n%s", body)
	}
	post1("/ui/groups/techs/send", url.Values{"text": {"price update at 18:00"}, "back": {"/ui/groups/techs"}})
	if _, body := get(t, c, tc.URL+"/ui/groups/techs"); !strings.Contains(body, "delivered to 0 online member(s)") {
		t.Fatal("no send flash")
	}
	post1("/ui/groups/techs/members/POS-1/remove", url.Values{"back": {"/ui/groups/techs"}})
	tc.apiCall(t, "GET", "/v1/groups/techs/members", nil, &ms)
	if len(ms.Members) != 2 || slices.ContainsFunc(ms.Members, func(m api.GroupMember) bool { return m.DeviceID == "POS-1" }) {
		t.Fatalf("after remove: %+v", ms.Members)
	}
	ro := browserless(t)
	tc.signIn(t, ro, readToken)
	_, body = get(t, ro, tc.URL+"/ui/groups/techs")
	if strings.Contains(body, `id="add-member"`) || strings.Contains(body, `id="send-message"`) || strings.Contains(body, `class="action"`) {
		t.Fatal("read-only group page has forms")
	}
	if _, body := get(t, ro, tc.URL+"/ui/groups"); strings.Contains(body, `id="create-group"`) {
		t.Fatal("read-only groups page has the creation form")
	}
	if resp, _ := post(t, ro, tc.URL+"/ui/groups/techs/delete", url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(body)[1]}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only delete: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, tc.URL+"/ui/groups/nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown group: %d", resp.StatusCode)
	}
	if resp := post1("/ui/groups/techs/delete", url.Values{}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/groups" {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if tc.apiCall(t, "GET", "/v1/groups/techs", nil, nil) != http.StatusNotFound {
		t.Fatal("the group is still there")
	}
}
