package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// servicesFixture is the API over a real controller: a sleeping daemon
// and a oneshot that prints and exits 3, audited in a memory store.
func servicesFixture(t *testing.T, mods ...func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string { return servertest.Script(t, dir, name, body) }
	cfg := config.Defaults()
	cfg.Storage.Dir = dir
	cfg.Services = []config.Service{
		{ID: "spooler", Kind: config.KindDaemon, Command: write("d.sh", "exec sleep 600\n"),
			StartWait: config.D(50 * time.Millisecond), StopGrace: config.D(time.Second)},
		{ID: "sync", Kind: config.KindOneshot, Command: write("o.sh", "echo synced\nexit 3\n")},
	}
	ctl, err := control.Open(control.Options{Config: cfg, Audit: storage.NewMemory(), Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ctl.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ctl.Close(ctx)
	})
	return newFixture(t, func(o *Options) {
		o.Services = ctl
		for _, m := range mods {
			m(o)
		}
	})
}

func decodeJSON[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServicesEndpoints(t *testing.T) {
	f := servicesFixture(t)
	resp := f.do(t, "GET", "/v1/services", "", "")
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	list := decodeJSON[api.ServiceList](t, f.do(t, "GET", "/v1/services", testToken, ""))
	if len(list.Services) != 2 || list.Services[0].ID != "spooler" || list.Services[0].State != "stopped" {
		t.Fatalf("list: %+v", list)
	}
	expectError(t, f.do(t, "GET", "/v1/services/nope", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "POST", "/v1/services/nope/start", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "GET", "/v1/services/spooler/start", testToken, ""), 405, api.CodeMethodNotAllowed)

	resp = f.do(t, "POST", "/v1/services/spooler/start", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("start: %d %s", resp.StatusCode, readBody(t, resp))
	}
	v := decodeJSON[api.Service](t, resp)
	if v.State != "running" || v.PID == 0 {
		t.Fatalf("start: %+v", v)
	}
	got := decodeJSON[api.Service](t, f.do(t, "GET", "/v1/services/spooler", testToken, ""))
	if got.PID != v.PID {
		t.Fatalf("get: %+v", got)
	}
	resp = f.do(t, "POST", "/v1/services/spooler/stop", testToken, "")
	if v := decodeJSON[api.Service](t, resp); resp.StatusCode != 200 || v.State != "stopped" {
		t.Fatalf("stop: %d %+v", resp.StatusCode, v)
	}
	resp = f.do(t, "POST", "/v1/services/sync/start", testToken, "")
	if v := decodeJSON[api.Service](t, resp); v.State != "failed" || v.ExitCode != 3 || !strings.Contains(v.Output, "synced") {
		t.Fatalf("oneshot: %+v", v)
	}

	audit := decodeJSON[api.AuditList](t, f.do(t, "GET", "/v1/audit?service=spooler", testToken, ""))
	// The stop, the start, and the start's record from before the daemon ran.
	if len(audit.Records) != 3 || audit.Records[0].Op != "stop" || audit.Records[1].Op != "start" ||
		audit.Records[2].State != "running" || audit.Records[2].PID != audit.Records[1].PID ||
		audit.Records[0].Source != storage.SourceOperator || audit.Records[0].Remote == "" {
		t.Fatalf("audit: %+v", audit)
	}
	all := decodeJSON[api.AuditList](t, f.do(t, "GET", "/v1/audit?limit=2", testToken, ""))
	if len(all.Records) != 2 || all.NextBefore == 0 {
		t.Fatalf("page: %+v", all)
	}
	rest := decodeJSON[api.AuditList](t, f.do(t, "GET", "/v1/audit?limit=10&before="+strconv.FormatUint(all.NextBefore, 10), testToken, ""))
	if len(rest.Records) != 4 || rest.Records[0].Seq >= all.Records[1].Seq || rest.NextBefore != 0 {
		t.Fatalf("next page: %+v after %+v", rest, all)
	}
	for _, q := range []string{"limit=0", "limit=x", "before=0", "before=-1", "service=" + strings.Repeat("s", 65)} {
		expectError(t, f.do(t, "GET", "/v1/audit?"+q, testToken, ""), 400, api.CodeBadRequest)
	}
}

// A node without services lists none and finds none.
func TestServicesNone(t *testing.T) {
	f := newFixture(t, nil)
	list := decodeJSON[api.ServiceList](t, f.do(t, "GET", "/v1/services", testToken, ""))
	if list.Services == nil || len(list.Services) != 0 {
		t.Fatalf("list: %+v", list)
	}
	expectError(t, f.do(t, "POST", "/v1/services/x/restart", testToken, ""), 404, api.CodeNotFound)
	audit := decodeJSON[api.AuditList](t, f.do(t, "GET", "/v1/audit", testToken, ""))
	if audit.Records == nil || len(audit.Records) != 0 {
		t.Fatalf("audit: %+v", audit)
	}
}
