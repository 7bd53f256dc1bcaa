package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

// twoClustersTOML: Frankfurt and Warsaw, one node each on termd's own
// download listener, 15-minute slots.
const twoClustersTOML = `
[schedule]
slot_length = "15m"
[[schedule.clusters]]
id = "fra"
region = "eu-central"
lat = 50.11
lon = 8.68
[[schedule.clusters]]
id = "waw"
lat = 52.23
lon = 21.01
[[schedule.nodes]]
id = "fra-1"
cluster = "fra"
capacity = 40
[[schedule.nodes]]
id = "waw-1"
cluster = "waw"
capacity = 20
`

// The planner in a browser: the heat map renders, two cells clicked are
// weighed by the server, the campaign is created (and published) through
// the confirmation dialog and checked through the API; a simulated
// terminal is placed and the campaign's page shows its reservation; the
// nodes view drains a node. A read-only session gets no creation form
// and no action.
func TestBrowserCampaignPlanner(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, twoClustersTOML)
	relID := uploadRelease(t, p)
	if code := p.api("POST", "/v1/releases/"+relID+"/publish", nil, nil); code != 200 {
		t.Fatalf("publish release: %d", code)
	}
	term := p.dial("POS-1", "P400")
	query(t, term) // termd now knows POS-1 runs pos 1.0.0: it is targeted
	b.signIn(p, opsToken)
	day := time.Now().UTC().AddDate(0, 0, 1)
	date := day.Format(dateLayout)
	at := func(h, m int) int64 {
		return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, time.UTC).UnixMilli()
	}
	b.open(p.url("/ui/campaigns/plan?release=" + relID + "&models=P400&from=" + date + "&to=" + date + "&tz=UTC"))
	b.waitJS(`document.querySelectorAll("#heatmap td[data-s]").length == 96`, 5*time.Second)
	if n := b.text("#targeted"); n != "1" {
		t.Fatalf("targeted %q", n)
	}
	b.click(fmt.Sprintf(`#heatmap td[data-s="%d"]`, at(1, 0)))
	b.click(fmt.Sprintf(`#heatmap td[data-s="%d"]`, at(1, 15)))
	b.waitJS(`(document.querySelector("#cover-figures") || {}).dataset && document.querySelector("#cover-figures").dataset.slots == "2"`, 5*time.Second)
	if sel := evalJS[string](b, `document.getElementById("sel").value`); sel != fmt.Sprintf("%d-%d", at(1, 0), at(1, 30)) {
		t.Fatalf("selection field %q", sel)
	}
	// The same selection from the keyboard: cleared, then Space on the
	// 01:00 cell and Shift+ArrowRight to the next one.
	b.click("#clear-selection")
	b.waitJS(`document.getElementById("sel").value == ""`, 5*time.Second)
	evalJS[bool](b, fmt.Sprintf(`document.querySelector('#heatmap td[data-s="%d"]').focus(), true`, at(1, 0)))
	b.run(chromedp.KeyEvent(" "), chromedp.KeyEvent(kb.ArrowRight, chromedp.KeyModifiers(chromedp.ModifierShift)))
	if sel := evalJS[string](b, `document.getElementById("sel").value`); sel != fmt.Sprintf("%d-%d", at(1, 0), at(1, 30)) {
		t.Fatalf("selection field after the keyboard %q", sel)
	}
	if focused := evalJS[string](b, `document.activeElement.dataset.s || ""`); focused != fmt.Sprint(at(1, 15)) {
		t.Fatalf("focus after Shift+ArrowRight on %q", focused)
	}
	b.waitJS(`(document.querySelector("#cover-figures") || {}).dataset && document.querySelector("#cover-figures").dataset.slots == "2"`, 5*time.Second)
	// The figures are the API's for that window (POS-1 has no online
	// history at 01:00 yet, so the planner expects it not to show up).
	var plan api.Plan
	rfc := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
	p.api("GET", "/v1/plan?release="+relID+"&model=P400&from="+rfc(at(0, 0))+"&to="+rfc(at(24, 0))+"&window="+rfc(at(1, 0))+"/"+rfc(at(1, 30)), nil, &plan)
	if plan.Selection == nil || plan.Selection.Slots != 2 || plan.Selection.Free != 120 {
		t.Fatalf("API selection %+v", plan.Selection)
	}
	if covered := evalJS[string](b, `document.querySelector("#cover-figures").dataset.covered`); covered != fmt.Sprint(plan.Selection.Covered) {
		t.Fatalf("covered %q, the API says %d", covered, plan.Selection.Covered)
	}
	if txt := b.text("#cover-figures"); !bytes.Contains([]byte(txt), []byte("120 free places")) {
		t.Fatalf("cover: %q", txt)
	}
	b.shot("campaign-planner")
	b.click("#publish")
	b.click("#create")
	b.confirm()
	b.waitJS(`location.pathname.indexOf("/ui/campaigns/c-") == 0`, 5*time.Second)
	var list api.CampaignList
	p.api("GET", "/v1/campaigns", nil, &list)
	if len(list.Campaigns) != 1 {
		t.Fatalf("%d campaigns", len(list.Campaigns))
	}
	camp := list.Campaigns[0]
	if camp.State != "published" || !slices.Equal(camp.Windows, []api.Window{{StartMs: at(1, 0), EndMs: at(1, 30)}}) || !slices.Equal(camp.Models, []string{"P400"}) {
		t.Fatalf("campaign %+v", camp)
	}
	// The terminal asks for its slot: the page shows the reservation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack protocol.ScheduleAck
	if err := term.Do(ctx, &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", HasLoc: true, Lat: 52.4, Lon: 16.9}, &ack); err != nil {
		t.Fatalf("placement: %v", err)
	}
	b.open(p.url("/ui/campaigns/" + camp.ID))
	b.waitJS(`document.querySelector('#totals [data-k="reserved"]').textContent == "1"`, 5*time.Second)
	if node := b.text("#per-node tbody td"); !bytes.Contains([]byte(node), []byte(ack.NodeID)) {
		t.Fatalf("per-node row %q, placed on %s", node, ack.NodeID)
	}
	b.shot("campaign-progress")
	// The device's page shows its reservation, and its registered zone.
	if code := p.api("PUT", "/v1/devices/POS-1/zone", api.Zone{TZ: "Europe/Warsaw"}, nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("zone: %d", code)
	}
	b.open(p.url("/ui/devices/POS-1"))
	if res := b.text("#reservations"); !strings.Contains(res, camp.ID) || !strings.Contains(res, ack.NodeID) || !strings.Contains(b.text("#location"), "Europe/Warsaw") {
		t.Fatalf("device page: reservations %q, location %q", res, b.text("#location"))
	}
	// Its next query would be sent to the campaign, not offered the release.
	if next := b.text("#next-offers"); !strings.Contains(next, "schedule through campaign "+camp.ID) {
		t.Fatalf("device page: next query %q", next)
	}
	b.open(p.url("/ui/campaigns/nodes"))
	b.click(`form.action[action="/ui/campaigns/nodes/waw-1/drain"] button`)
	b.confirm()
	b.waitJS(`document.querySelector('tr[data-node="waw-1"] .node-state').textContent == "draining"`, 5*time.Second)
	var nodes api.NodeList
	p.api("GET", "/v1/nodes", nil, &nodes)
	if i := slices.IndexFunc(nodes.Nodes, func(n api.Node) bool { return n.ID == "waw-1" }); i < 0 || !nodes.Nodes[i].Draining {
		t.Fatalf("waw-1 not draining: %+v", nodes.Nodes)
	}
	b.shot("campaign-nodes")
	// Read-only.
	b.click("form.logout button")
	b.waitJS(`location.pathname == "/ui/login"`, 5*time.Second)
	b.signIn(p, readToken)
	b.open(p.url("/ui/campaigns/plan?release=" + relID + "&from=" + date + "&to=" + date))
	b.waitJS(`document.querySelectorAll("#heatmap td[data-s]").length == 96`, 5*time.Second)
	for _, page := range []string{"/ui/campaigns/plan?release=" + relID, "/ui/campaigns/" + camp.ID, "/ui/campaigns/nodes"} {
		b.open(p.url(page))
		if n := evalJS[int](b, `document.querySelectorAll("form.action, #create-campaign, form.retry").length`); n != 0 {
			t.Errorf("read-only %s: %d action forms", page, n)
		}
	}
}

// Groups in a browser: create a group and add a member through the
// forms (checked through the API), send a message that the simulated
// member receives; a read-only session sees no form.
func TestBrowserGroups(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, "")
	var got atomic.Value
	member, err := client.Dial(context.Background(), client.Config{Addr: p.tgp, DeviceID: "POS-7", FleetSecret: []byte(browserFleetSecret),
		FW: "1.0", Model: "P400", NoHeartbeat: true, OnPush: func(typ byte, _ uint16, body []byte) {
			if typ == protocol.TypeGroupMessage {
				got.Store(bytes.Clone(body))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	b.signIn(p, opsToken)
	b.open(p.url("/ui/groups"))
	b.typeInto("#group-id", "techs")
	b.click("#create-group-btn")
	b.waitJS(`location.pathname == "/ui/groups/techs"`, 5*time.Second)
	b.typeInto("#member-device", "POS-7")
	b.click("#add-member-btn")
	b.waitJS(`!!document.querySelector('#members tr[data-device="POS-7"]')`, 5*time.Second)
	var ms api.GroupMembers
	p.api("GET", "/v1/groups/techs/members", nil, &ms)
	if len(ms.Members) != 1 || ms.Members[0].DeviceID != "POS-7" || ms.Members[0].By != "operator:alice" || !ms.Members[0].Online {
		t.Fatalf("members %+v", ms.Members)
	}
	b.typeInto("#message-text", "price update at 18:00")
	b.click("#send-btn")
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent && document.querySelector(".flash").textContent.indexOf("delivered to 1 online") > 0`, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if body, _ := got.Load().([]byte); !bytes.Contains(body, []byte("price update at 18:00")) {
		t.Fatalf("the member got %q", body)
	}
	b.shot("group")
	b.open(p.url("/ui/groups"))
	b.shot("groups")
	b.click("form.logout button")
	b.waitJS(`location.pathname == "/ui/login"`, 5*time.Second)
	b.signIn(p, readToken)
	for _, page := range []string{"/ui/groups", "/ui/groups/techs"} {
		b.open(p.url(page))
		if n := evalJS[int](b, `document.querySelectorAll("form.action, #create-group, #add-member, #send-message").length`); n != 0 {
			t.Errorf("read-only %s: %d forms", page, n)
		}
	}
}
