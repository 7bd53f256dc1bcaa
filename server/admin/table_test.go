package admin

import (
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
)

// Every status a domain can return has its HTTP status and code in the
// one table; the codes are the documented ones.
func TestErrorTableCoversEveryStatus(t *testing.T) {
	documented := map[api.ErrorCode]bool{
		api.CodeBadRequest: true, api.CodeUnauthorized: true, api.CodeForbidden: true, api.CodeNotFound: true,
		api.CodeConflict: true, api.CodeExpired: true, api.CodeRateLimited: true, api.CodeInternal: true,
		api.CodeUnavailable: true, api.CodeTimeout: true,
	}
	used := map[api.ErrorCode]bool{}
	for c := protocol.BadRequest; c <= protocol.Timeout; c++ {
		he, ok := httpErrors[c]
		if !ok {
			t.Errorf("%v has no entry", c)
			continue
		}
		if !documented[he.code] || he.status < 400 {
			t.Errorf("%v → %d %q", c, he.status, he.code)
		}
		used[he.code] = true
	}
	for code := range documented {
		if !used[code] {
			t.Errorf("code %q is documented but never answered", code)
		}
	}
	// A refusal with retry_after_ms also sets Retry-After.
	w := httptest.NewRecorder()
	writeProblem(w, &protocol.Error{Code: protocol.Unavailable, Message: "busy", RetryAfterMs: 1500})
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 503 || e.Code != api.CodeUnavailable ||
		e.RetryAfterMs != 1500 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("503: %d %+v %v Retry-After %q", w.Code, e, err, w.Header().Get("Retry-After"))
	}
}

// The bus's events reach clients as api.Event without losing a field.
func TestEventJSONMatchesAPI(t *testing.T) {
	code := 3
	ev := events.Event{Kind: events.KindService, DeviceID: "D", SessionID: 7, At: 99, Reason: "r",
		Remote: "1.2.3.4:5", Service: "s", State: "failed", PID: 42, ExitCode: &code,
		Digest: &events.FailureDigest{ID: "d", ReleaseID: "r", AppID: "a", Version: "2", Failures: 2, Devices: 1,
			ByKind: map[string]int{"upgrade_failed": 2}, ByCode: map[string]int{"5": 2}, ByModel: map[string]int{"m": 2},
			FirstAtMs: 1, LastAtMs: 2, Omitted: 1, Items: []events.FailureItem{{ID: "i", Kind: "k", DeviceID: "D", Model: "m",
				FromVersion: "1", Attempt: 1, Stage: 4, Code: 5, Message: "x", AtMs: 1}}}}
	b, _ := json.Marshal(ev)
	var got api.Event
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	back, _ := json.Marshal(got)
	var m1, m2 map[string]any
	_ = json.Unmarshal(b, &m1)
	_ = json.Unmarshal(back, &m2)
	if !reflect.DeepEqual(m1, m2) {
		t.Fatalf("bus event %s\nAPI event %s", b, back)
	}
}

// The API types import nothing of termd's, so clients link no server.
func TestAPIPackageStandsAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/termd/termd/server/admin/api").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/termd/termd/") && dep != "github.com/termd/termd/server/admin/api" {
			t.Errorf("api imports %s", dep)
		}
	}
}
