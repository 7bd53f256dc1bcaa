package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// TestDeviceFilters: saved searches over a real Badger store: a save is
// checked as the search checks its query and kept in canonical form, a
// second save replaces the query and keeps who made it, a read-only
// token reads but cannot save, every change is in the operator audit,
// and refusals carry the spec's status.
func TestDeviceFilters(t *testing.T) {
	store, err := storage.OpenBadger(t.TempDir(), storage.BadgerOptions{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := newFixture(t, func(o *Options) { withScopedTokens(t)(o); o.DeviceFilters = store; o.OperatorAudit = store })
	name := "/v1/device-filters/" + url.PathEscape("P400 offline")
	body := func(q string) string { b, _ := json.Marshal(api.DeviceFilterSave{Query: q}); return string(b) }
	read := func(resp *http.Response, v any) {
		t.Helper()
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}

	resp := f.do(t, "PUT", name, opsToken, body(" ?online=false&model=P400&id=&fw= 2.1 "))
	var saved api.DeviceFilter
	read(resp, &saved)
	if resp.StatusCode != http.StatusCreated || saved.Name != "P400 offline" || saved.Query != "fw=2.1&model=P400&online=false" ||
		saved.CreatedBy != "alice" || saved.CreatedMs == 0 || saved.UpdatedMs != saved.CreatedMs {
		t.Fatalf("save: %d %+v", resp.StatusCode, saved)
	}
	// Replaced: 200, the new query, the creator kept.
	resp = f.do(t, "PUT", name, opsToken, body("model=P400&offline_for=24h"))
	var replaced api.DeviceFilter
	read(resp, &replaced)
	if resp.StatusCode != http.StatusOK || replaced.Query != "model=P400&offline_for=24h" || replaced.CreatedMs != saved.CreatedMs ||
		replaced.CreatedBy != "alice" || replaced.UpdatedBy != "alice" {
		t.Fatalf("replace: %d %+v", resp.StatusCode, replaced)
	}
	if resp := f.do(t, "PUT", "/v1/device-filters/all", opsToken, body("")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("an empty query (every device): %d", resp.StatusCode)
	}
	// A name with a slash, a percent sign and non-ASCII, escaped in the path.
	odd := "EU/ÄÖ 50%"
	if resp := f.do(t, "PUT", "/v1/device-filters/"+url.PathEscape(odd), opsToken, body("fw=1")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("odd name: %d", resp.StatusCode)
	}
	var oddF api.DeviceFilter
	read(f.do(t, "GET", "/v1/device-filters/"+url.PathEscape(odd), readToken, ""), &oddF)
	if oddF.Name != odd || oddF.Query != "fw=1" {
		t.Fatalf("odd name read back: %+v", oddF)
	}
	if resp := f.do(t, "DELETE", "/v1/device-filters/"+url.PathEscape(odd), opsToken, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("odd name delete: %d", resp.StatusCode)
	}

	// Read with a read-only token, one and all.
	var one api.DeviceFilter
	read(f.do(t, "GET", name, readToken, ""), &one)
	if one != replaced {
		t.Fatalf("GET one: %+v, want %+v", one, replaced)
	}
	var list api.DeviceFilterList
	read(f.do(t, "GET", "/v1/device-filters", readToken, ""), &list)
	if len(list.Filters) != 2 || list.Filters[0].Name != "P400 offline" || list.Filters[1].Name != "all" {
		t.Fatalf("list: %+v", list)
	}

	// Refusals.
	for _, tc := range []struct {
		method, path, token, body string
		status                    int
		msg                       string
	}{
		{"PUT", name, readToken, body("model=X"), http.StatusForbidden, "scope read"},
		{"DELETE", name, readToken, "", http.StatusForbidden, "scope read"},
		{"PUT", name, opsToken, body("modle=P400"), http.StatusBadRequest, `"modle" is not a device search filter`},
		{"PUT", name, opsToken, body("limit=5"), http.StatusBadRequest, `"limit" is not a device search filter`},
		{"PUT", name, opsToken, body("model=A&model=B"), http.StatusBadRequest, "model is given 2 times"},
		{"PUT", name, opsToken, body("online=maybe"), http.StatusBadRequest, "online must be true or false"},
		{"PUT", name, opsToken, body("offline_for=-1h"), http.StatusBadRequest, "offline_for must be a positive duration"},
		{"PUT", name, opsToken, body("stage=failed"), http.StatusBadRequest, "stage needs release"},
		{"PUT", name, opsToken, body("app_version=1.0"), http.StatusBadRequest, "app_version needs app"},
		{"PUT", name, opsToken, body("id=" + strings.Repeat("x", maxFilterValue+1)), http.StatusBadRequest, "id is longer than"},
		{"PUT", name, opsToken, body("%zz"), http.StatusBadRequest, "query:"},
		{"PUT", name, opsToken, `{"query":"model=A","extra":1}`, http.StatusBadRequest, "unknown field"},
		{"PUT", "/v1/device-filters/" + url.PathEscape(" lead"), opsToken, body("model=A"), http.StatusBadRequest, "leading or trailing space"},
		{"PUT", "/v1/device-filters/" + strings.Repeat("n", storage.MaxDeviceFilterName+1), opsToken, body(""), http.StatusBadRequest, "exceeds"},
		{"GET", "/v1/device-filters/nope", readToken, "", http.StatusNotFound, `no saved device filter "nope"`},
		{"DELETE", "/v1/device-filters/nope", opsToken, "", http.StatusNotFound, `no saved device filter "nope"`},
	} {
		resp := f.do(t, tc.method, tc.path, tc.token, tc.body)
		var e api.Error
		read(resp, &e)
		if resp.StatusCode != tc.status || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s %s %s: %d %+v, want %d with %q", tc.method, tc.path, tc.body, resp.StatusCode, e, tc.status, tc.msg)
		}
	}
	// None of the refusals changed the filter.
	read(f.do(t, "GET", name, readToken, ""), &one)
	if one != replaced {
		t.Fatalf("after refusals: %+v", one)
	}

	// Delete; then gone.
	if resp := f.do(t, "DELETE", name, opsToken, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	list = api.DeviceFilterList{}
	read(f.do(t, "GET", "/v1/device-filters", readToken, ""), &list)
	if len(list.Filters) != 1 || list.Filters[0].Name != "all" {
		t.Fatalf("list after delete: %+v", list)
	}

	// The operator audit holds each change with the filter's name as target.
	audit := operatorAuditOf(t, f, "?target="+url.QueryEscape("P400 offline")+"&result=ok")
	var routes []string
	for _, r := range audit.Records {
		routes = append(routes, r.Route)
	}
	if strings.Join(routes, "|") != "DELETE /v1/device-filters/{name}|PUT /v1/device-filters/{name}|PUT /v1/device-filters/{name}" {
		t.Fatalf("audit: %q", routes)
	}
}

// TestDeviceFiltersBound: past storage.MaxDeviceFilters a new name is
// refused with 409; a node without the store answers 503.
func TestDeviceFiltersBound(t *testing.T) {
	store := storage.NewMemory()
	f := newFixture(t, func(o *Options) { o.DeviceFilters = store })
	for i := range storage.MaxDeviceFilters {
		if _, _, err := store.PutDeviceFilter(t.Context(), storage.DeviceFilter{Name: "f" + strings.Repeat("x", i%50) + string(rune('A'+i%26)) + string(rune('a'+i/26))}); err != nil {
			t.Fatal(err)
		}
	}
	resp := f.do(t, "PUT", "/v1/device-filters/one-more", testToken, `{"query":""}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "saved filters kept at most") {
		t.Fatalf("beyond the bound: %d %s", resp.StatusCode, b)
	}
	none := newFixture(t, nil)
	if resp := none.do(t, "GET", "/v1/device-filters", testToken, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("no store: %d", resp.StatusCode)
	}
}

// FuzzCanonicalDeviceQuery: any query is refused or brought to a form
// that is its own canonical form and that the search accepts.
func FuzzCanonicalDeviceQuery(f *testing.F) {
	for _, s := range []string{"", "?model=P400&online=false", "fw= 2.1 &id=", "offline_for=24h", "stage=failed&release=r1",
		"a=%zz", "model=A&model=B", "id=%00", "blocked=1&app=pos&app_version=2.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := CanonicalDeviceQuery(raw)
		if err != nil {
			return
		}
		again, err := CanonicalDeviceQuery(c)
		if err != nil || again != c {
			t.Fatalf("%q → %q → %q, %v", raw, c, again, err)
		}
		q, _ := url.ParseQuery(c)
		if err := checkDeviceQuery(q); err != nil {
			t.Fatalf("canonical %q refused by the search: %v", c, err)
		}
	})
}
