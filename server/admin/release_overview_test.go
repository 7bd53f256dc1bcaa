package admin

import (
	"reflect"
	"testing"

	"github.com/termd/termd/server/admin/api"
)

// GET /v1/releases/{id}/overview is GET …/status and, for a phased
// release, GET …/rollout in one answer; a release without phases has no
// rollout; an unknown release is a 404, no token a 401.
func TestReleaseOverview(t *testing.T) {
	f, _ := releasesFixture(t, false)
	create := func(body string) api.Release {
		t.Helper()
		resp := f.do(t, "POST", "/v1/releases", testToken, body)
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, readBody(t, resp))
		}
		return decodeJSON[api.Release](t, resp)
	}
	phased := create(`{"app_id":"pos","version":"2.0.0","sha256":"` + relSHA + `","size":1,"url":"https://dl.example/p.bin",` +
		`"phases":[{"devices":["pos-1","pos-2"]},{"percent":100}]}`)
	plain := create(`{"app_id":"pos","version":"2.1.0","sha256":"` + relSHA + `","size":1,"url":"https://dl.example/p.bin","rollout_pct":10}`)
	for _, id := range []string{phased.ID, plain.ID} {
		if resp := f.do(t, "POST", "/v1/releases/"+id+"/publish", testToken, ""); resp.StatusCode != 200 {
			t.Fatalf("publish: %d", resp.StatusCode)
		}
	}

	resp := f.do(t, "GET", "/v1/releases/"+phased.ID+"/overview", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("overview: %d %s", resp.StatusCode, readBody(t, resp))
	}
	o := decodeJSON[api.ReleaseOverview](t, resp)
	st := decodeJSON[api.ReleaseStatus](t, f.do(t, "GET", "/v1/releases/"+phased.ID+"/status", testToken, ""))
	ro := decodeJSON[api.RolloutStatus](t, f.do(t, "GET", "/v1/releases/"+phased.ID+"/rollout", testToken, ""))
	if !reflect.DeepEqual(o.Status, st) || o.Rollout == nil || !reflect.DeepEqual(*o.Rollout, ro) {
		t.Fatalf("overview %+v\nstatus %+v\nrollout %+v", o, st, ro)
	}
	if len(o.Rollout.Phases) != 2 || o.Rollout.Phases[0].Devices[1] != "pos-2" || o.Status.Release.ID != phased.ID {
		t.Fatalf("overview's rollout %+v", o.Rollout)
	}

	o = decodeJSON[api.ReleaseOverview](t, f.do(t, "GET", "/v1/releases/"+plain.ID+"/overview", testToken, ""))
	if o.Rollout != nil || o.Status.Release.RolloutPct != 10 {
		t.Fatalf("unphased overview %+v", o)
	}
	expectError(t, f.do(t, "GET", "/v1/releases/r-0000000000000000/overview", testToken, ""), 404, api.CodeNotFound)
	if resp := f.do(t, "GET", "/v1/releases/"+plain.ID+"/overview", "", ""); resp.StatusCode != 401 {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
}
