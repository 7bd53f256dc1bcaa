package admin

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/termd/termd/server/admin/api"
)

// TestAuditConsoleFilters: GET /v1/audit filters on op, operator,
// result and time, beyond device and service.
func TestAuditConsoleFilters(t *testing.T) {
	f := servicesFixture(t, withScopedTokens(t))
	f.do(t, "POST", "/v1/services/spooler/start", opsToken, "")
	f.do(t, "POST", "/v1/services/spooler/stop", testToken, "")
	f.do(t, "POST", "/v1/services/nope/stop", opsToken, "") // NOT_FOUND
	list := func(q string) []api.AuditRecord {
		t.Helper()
		resp := f.do(t, "GET", "/v1/audit?"+q, readToken, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", q, resp.StatusCode)
		}
		var l api.AuditList
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		return l.Records
	}
	if rs := list("op=stop"); len(rs) != 2 {
		t.Errorf("op=stop: %+v", rs)
	}
	if rs := list("op=stop&result=failed"); len(rs) != 1 || rs[0].Service != "nope" {
		t.Errorf("op=stop&result=failed: %+v", rs)
	}
	// A start is two records: "started; outcome pending", then the outcome.
	if rs := list("operator=alice&result=ok"); len(rs) != 2 || rs[0].Op != "start" || rs[1].Op != "start" {
		t.Errorf("operator=alice&result=ok: %+v", rs)
	}
	if rs := list("operator=alice&limit=1"); len(rs) != 1 || rs[0].Service != "nope" {
		t.Errorf("operator=alice&limit=1: %+v", rs)
	}
	if rs := list("since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z"); len(rs) != 0 {
		t.Errorf("a range in 2000: %+v", rs)
	}
	for _, q := range []string{"result=meh", "since=later", "until=-5"} {
		expectError(t, f.do(t, "GET", "/v1/audit?"+q, readToken, ""), http.StatusBadRequest, api.CodeBadRequest)
	}
}
