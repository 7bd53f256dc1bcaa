package ui

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// apiGet GETs path from the admin API with the operator token; anything
// but 200 fails the test.
func apiGet(t testing.TB, tc *testConsole, path string, out any) {
	t.Helper()
	if code := tc.apiCall(t, "GET", path, nil, out); code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, code)
	}
}

// Device search with 19,000 devices in an on-disk Badger registry: the
// page's server time for a filter that matches a few devices spread over
// the registry, and for one that matches none (a scan of everything),
// target ≤ 200 ms (asserted without -race); and the CSV export of a
// filtered set holds exactly its devices.
func TestDevicesSearchRenderTime(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a registry of 19,000 devices")
	}
	b := openBadger(t)
	fillRegistry(t, b, fleetSize)
	tc := startConsole(t, b, func(o *admin.Options) { o.Versions, o.OperatorAudit = b, b })
	render := tc.renderer(t)
	// P400 (i%4 == 0), firmware 1.0.0 (i%5 == 0), app pos 2.0.0 (i%4 == 0),
	// offline for more than a day (i%3 == 2): i%60 == 20, 317 devices; the
	// page shows the first 100.
	const few = "/ui/devices?model=P400&fw=1.0.0&app=pos&app_version=2.0.0&offline_for=24h"
	const none = "/ui/devices?id=no-such-device"
	var fewTimes, noneTimes []time.Duration
	for range 5 {
		d, body := render(few)
		if strings.Count(body, `<tr data-id="POS-`) != 100 || !strings.Contains(body, `data-id="POS-000020"`) ||
			strings.Contains(body, `data-id="POS-000000"`) {
			t.Fatalf("filtered page does not list the right devices:\n%s", body)
		}
		fewTimes = append(fewTimes, d)
		d, body = render(none)
		if !strings.Contains(body, "No device matches.") {
			t.Fatalf("a filter matching nothing:\n%s", body)
		}
		noneTimes = append(noneTimes, d)
	}
	first := fewTimes[0]
	slices.Sort(fewTimes)
	slices.Sort(noneTimes)
	t.Logf("device search over %d devices: first render %v, then median %v, max %v; no match (full scan) median %v, max %v (race: %v)",
		fleetSize, first.Round(time.Millisecond), fewTimes[2].Round(time.Millisecond), fewTimes[4].Round(time.Millisecond),
		noneTimes[2].Round(time.Millisecond), noneTimes[4].Round(time.Millisecond), raceEnabled)
	if !raceEnabled && (fewTimes[4] > 200*time.Millisecond || noneTimes[4] > 200*time.Millisecond) {
		t.Fatalf("device search slower than 200 ms: %v / %v", fewTimes[4], noneTimes[4])
	}

	// CSV of the filtered set, through every API page.
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	start := time.Now()
	resp, body := get(t, c, tc.URL+"/ui/devices.csv?model=P400&fw=1.0.0")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+950 || rows[0][0] != "id" || rows[1][0] != "POS-000000" || rows[2][0] != "POS-000020" || rows[950][0] != "POS-018980" {
		t.Fatalf("csv: %d rows, first %v", len(rows), rows[:min(3, len(rows))])
	}
	for _, r := range rows[1:] {
		if r[2] != "P400" || r[3] != "1.0.0" {
			t.Fatalf("csv row outside the filter: %v", r)
		}
	}
	resp, body = get(t, c, tc.URL+"/ui/devices.csv")
	if n := strings.Count(body, "\n"); resp.StatusCode != http.StatusOK || n != 1+fleetSize {
		t.Fatalf("csv of everything: %d, %d lines", resp.StatusCode, n)
	}
	t.Logf("CSV export of all %d devices and of 950: %v", fleetSize, time.Since(start).Round(time.Millisecond))
}

// The device pages without a browser: a bad filter is shown, not a
// crash; bulk block through the form blocks through the API and the
// operator audit names it; a read-only session sees no bulk form and a
// forced bulk POST is refused; the detail page shows the device and its
// key action.
func TestDevicePagesUnit(t *testing.T) {
	mem := storage.NewMemory()
	tc := startConsole(t, nil, func(o *admin.Options) { o.OperatorAudit = mem })
	ctx := context.Background()
	for _, id := range []string{"pos-1", "pos-2", "pos-3"} {
		if err := tc.Node.Store.SetKey(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	_, body := get(t, c, tc.URL+"/ui/devices?offline_for=soon")
	if !strings.Contains(body, "Filter refused: offline_for must be a positive duration") {
		t.Fatalf("bad filter:\n%s", body)
	}
	_, body = get(t, c, tc.URL+"/ui/devices?id=POS-")
	if strings.Count(body, `<tr data-id=`) != 3 || !strings.Contains(body, `id="bulk"`) {
		t.Fatalf("devices page:\n%s", body)
	}
	csrf := hiddenCSRF.FindStringSubmatch(body)[1]
	resp, _ := post(t, c, tc.URL+"/ui/devices/bulk", url.Values{"csrf": {csrf}, "action": {"block"}, "scope": {"selected"},
		"id": {"pos-1", "pos-3"}, "back": {"/ui/devices"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bulk block: %d", resp.StatusCode)
	}
	_, body = get(t, c, tc.URL+"/ui/devices")
	if !strings.Contains(body, "block: 2 devices, 2 succeeded, 0 failed.") {
		t.Fatalf("no summary after the bulk action:\n%s", body)
	}
	for id, want := range map[string]bool{"pos-1": true, "pos-2": false, "pos-3": true} {
		var d api.Device
		apiGet(t, tc, "/v1/devices/"+id, &d)
		if d.Blocked != want {
			t.Errorf("%s blocked = %v, want %v", id, d.Blocked, want)
		}
	}
	// The whole filtered set: unblock every pos-* (the filter is the form's).
	post(t, c, tc.URL+"/ui/devices/bulk", url.Values{"csrf": {csrf}, "action": {"unblock"}, "scope": {"filter"},
		"filter": {"id=pos-&blocked=true"}, "back": {"/ui/devices"}}, nil)
	_, body = get(t, c, tc.URL+"/ui/devices?blocked=true")
	if !strings.Contains(body, "unblock: 2 devices, 2 succeeded") || !strings.Contains(body, "No device matches.") {
		t.Fatalf("after unblocking the filtered set:\n%s", body)
	}
	_, body = get(t, c, tc.URL+"/ui/audit?target=pos-3")
	if strings.Count(body, "/v1/devices/bulk") != 2 || !strings.Contains(body, "alice") {
		t.Fatalf("audit page:\n%s", body)
	}
	_, body = get(t, c, tc.URL+"/ui/devices/pos-1")
	if !strings.Contains(body, "<h1>pos-1") || !strings.Contains(body, "Set key") || !strings.Contains(body, "POST /v1/devices/bulk") {
		t.Fatalf("detail page:\n%s", body)
	}
	if resp, _ := get(t, c, tc.URL+"/ui/devices/nobody"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown device: %d", resp.StatusCode)
	}
	// A bad key is refused on the page, not sent.
	post(t, c, tc.URL+"/ui/devices/pos-2/key", url.Values{"csrf": {csrf}, "key": {"abc"}, "back": {"/ui/devices/pos-2"}}, nil)
	if _, body = get(t, c, tc.URL+"/ui/devices/pos-2"); !strings.Contains(body, "a key is 64 hex digits") {
		t.Fatalf("bad key:\n%s", body)
	}

	ro := browserless(t)
	tc.signIn(t, ro, readToken)
	_, body = get(t, ro, tc.URL+"/ui/devices")
	if strings.Contains(body, `id="bulk-apply"`) || strings.Contains(body, `type="checkbox" name="id"`) {
		t.Fatalf("read-only session sees the bulk form:\n%s", body)
	}
	_, body = get(t, ro, tc.URL+"/ui/devices/pos-1")
	if strings.Contains(body, "Set key") || strings.Contains(body, "Block") {
		t.Fatalf("read-only session sees device actions")
	}
	roCSRF := hiddenCSRF.FindStringSubmatch(body)[1] // the sign-out form's
	if resp, _ := post(t, ro, tc.URL+"/ui/devices/bulk", url.Values{"csrf": {roCSRF}, "action": {"block"}, "id": {"pos-2"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forced bulk POST with a read token: %d", resp.StatusCode)
	}
	var d api.Device
	if apiGet(t, tc, "/v1/devices/pos-2", &d); d.Blocked {
		t.Fatal("the read-only bulk POST blocked pos-2")
	}
	_, body = get(t, ro, tc.URL+"/ui/services")
	if !strings.Contains(body, "No services configured") {
		t.Fatalf("services page:\n%s", body)
	}
	_, body = get(t, ro, tc.URL+"/ui/services?result=meh")
	if !strings.Contains(body, "Filter refused: result must be ok or failed") {
		t.Fatalf("services page, bad filter:\n%s", body)
	}
}

// Saved searches on the device page, over a real Badger store: an
// operator saves the search shown, the page lists it and marks it as the
// one shown, a link runs it, a save under the same name replaces it, a
// misspelt name is refused with the API's message, delete removes it,
// the API holds what the page did, and a read-only session sees the list
// but no form, and its forced POST is refused.
func TestSavedDeviceFilters(t *testing.T) {
	b := openBadger(t)
	tc := startConsole(t, b, func(o *admin.Options) { o.OperatorAudit = b })
	ctx := context.Background()
	for _, id := range []string{"pos-1", "pos-2", "kiosk-1"} {
		if err := tc.Node.Store.SetKey(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tc.Node.Store.SetBlocked(ctx, "pos-2", true); err != nil {
		t.Fatal(err)
	}
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	_, body := get(t, c, tc.URL+"/ui/devices?id=pos&blocked=true")
	if !strings.Contains(body, `id="saved-filters"`) || !strings.Contains(body, "none yet") || !strings.Contains(body, `id="save-filter"`) {
		t.Fatalf("devices page without saved searches:\n%s", body)
	}
	csrf := hiddenCSRF.FindStringSubmatch(body)[1]
	resp, _ := post(t, c, tc.URL+"/ui/devices/filters", url.Values{"csrf": {csrf}, "name": {"blocked POS"},
		"filter": {"id=pos&blocked=true"}, "back": {"/ui/devices?id=pos&blocked=true"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/devices?blocked=true&id=pos" {
		t.Fatalf("save: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var f api.DeviceFilter
	apiGet(t, tc, "/v1/device-filters/"+url.PathEscape("blocked POS"), &f)
	if f.Query != "blocked=true&id=pos" || f.CreatedBy != "alice" {
		t.Fatalf("saved through the API: %+v", f)
	}
	_, body = get(t, c, tc.URL+"/ui/devices?blocked=true&id=pos")
	if !strings.Contains(body, `Saved the search as &#34;blocked POS&#34;.`) ||
		!strings.Contains(body, `class="saved-filter current" data-name="blocked POS"`) ||
		!strings.Contains(body, `href="/ui/devices?blocked=true&amp;id=pos"`) ||
		strings.Count(body, `<tr data-id=`) != 1 || !strings.Contains(body, `data-id="pos-2"`) {
		t.Fatalf("page after the save:\n%s", body)
	}
	// The same name again replaces the search; every device is a search too.
	post(t, c, tc.URL+"/ui/devices/filters", url.Values{"csrf": {csrf}, "name": {"blocked POS"}, "filter": {"blocked=true"}}, nil)
	post(t, c, tc.URL+"/ui/devices/filters", url.Values{"csrf": {csrf}, "name": {"everything"}, "filter": {""}}, nil)
	var l api.DeviceFilterList
	apiGet(t, tc, "/v1/device-filters", &l)
	if len(l.Filters) != 2 || l.Filters[0].Query != "blocked=true" || l.Filters[1].Name != "everything" || l.Filters[1].Query != "" {
		t.Fatalf("after replace: %+v", l.Filters)
	}
	_, body = get(t, c, tc.URL+"/ui/devices")
	if !strings.Contains(body, `class="saved-filter current" data-name="everything"`) || !strings.Contains(body, `href="/ui/devices"`) {
		t.Fatalf("the unfiltered page is the saved search everything:\n%s", body)
	}
	// Refused by the API: the message comes back on the page.
	post(t, c, tc.URL+"/ui/devices/filters", url.Values{"csrf": {csrf}, "name": {" padded "}, "filter": {"blocked=true"},
		"back": {"/ui/devices"}}, nil)
	post(t, c, tc.URL+"/ui/devices/filters", url.Values{"csrf": {csrf}, "name": {"bad"}, "filter": {"offline_for=soon"},
		"back": {"/ui/devices"}}, nil)
	_, body = get(t, c, tc.URL+"/ui/devices")
	if !strings.Contains(body, "offline_for must be a positive duration") {
		t.Fatalf("a refused save:\n%s", body)
	}
	apiGet(t, tc, "/v1/device-filters", &l)
	if len(l.Filters) != 3 || l.Filters[2].Name != "padded" {
		t.Fatalf("the padded name is trimmed, the bad search is not saved: %+v", l.Filters)
	}
	// Delete.
	resp, _ = post(t, c, tc.URL+"/ui/devices/filters/delete", url.Values{"csrf": {csrf}, "name": {"padded"}, "back": {"/ui/devices"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	apiGet(t, tc, "/v1/device-filters", &l)
	if len(l.Filters) != 2 {
		t.Fatalf("after delete: %+v", l.Filters)
	}
	_, body = get(t, c, tc.URL+"/ui/audit?target=padded")
	if strings.Count(body, "/v1/device-filters/padded") != 2 {
		t.Fatalf("the audit lacks the save and the delete:\n%s", body)
	}

	ro := browserless(t)
	tc.signIn(t, ro, readToken)
	_, body = get(t, ro, tc.URL+"/ui/devices")
	if !strings.Contains(body, `data-name="blocked POS"`) || strings.Contains(body, `id="save-filter"`) ||
		strings.Contains(body, "/ui/devices/filters/delete") {
		t.Fatalf("read-only session: the list without forms expected:\n%s", body)
	}
	roCSRF := hiddenCSRF.FindStringSubmatch(body)[1]
	if resp, _ := post(t, ro, tc.URL+"/ui/devices/filters/delete", url.Values{"csrf": {roCSRF}, "name": {"everything"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forced delete with a read token: %d", resp.StatusCode)
	}
	if apiGet(t, tc, "/v1/device-filters", &l); len(l.Filters) != 2 {
		t.Fatalf("the read-only POST deleted: %+v", l.Filters)
	}
}
