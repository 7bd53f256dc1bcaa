package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
)

// releasesFixture is the API over a real release service on a real node,
// with one configured release public key (whose private key it returns).
func releasesFixture(t *testing.T, requireSig bool) (*fixture, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, pub, err := protocol.MarshalReleaseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "release.pub")
	if err := os.WriteFile(pubFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(t)
	cfg.Upgrade.ReleasePublicKeys = []string{pubFile}
	cfg.Upgrade.RequireSignature = requireSig
	var up *upgrade.Service
	servertest.Start(t, cfg, func(s *server.Server) {
		if up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Log: quietLog}); err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = up.Close(ctx)
		})
	})
	return newFixture(t, func(o *Options) { o.Releases = up }), key
}

const relSHA = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

func TestReleaseEndpoints(t *testing.T) {
	f, key := releasesFixture(t, true)
	body := `{"app_id":"pos","version":"2.14.3","sha256":"` + relSHA + `","size":1048576,"url":"https://dl.example/pos.bin","models":["P400"],"rollout_pct":10}`
	resp := f.do(t, "POST", "/v1/releases", testToken, body)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, readBody(t, resp))
	}
	rel := decodeJSON[api.Release](t, resp)
	if rel.State != "draft" || rel.RolloutPct != 10 || rel.Size != 1<<20 || rel.ID == "" {
		t.Fatalf("created %+v", rel)
	}
	for _, bad := range []string{
		`{"app_id":"pos","version":"2.14.3.1","sha256":"` + relSHA + `","size":1,"url":"https://x/y"}`,
		`{"app_id":"pos","version":"1.0","sha256":"abc","size":1,"url":"https://x/y"}`,
		`{"app_id":"pos","version":"1.0","sha256":"` + relSHA + `","url":"https://x/y"}`,
		`{"app_id":"pos","version":"1.0","sha256":"` + relSHA + `"}`,
		`{"app_id":"pos","version":"1.0","sha256":"` + relSHA + `","size":1,"url":"https://x/y","from_range":">=x"}`,
		`{"app_id":"pos","version":"1.0","sha256":"` + relSHA + `","size":1,"url":"https://x/y","rollout_pct":101}`,
		`{"app_id":"pos","bogus":1}`,
	} {
		expectError(t, f.do(t, "POST", "/v1/releases", testToken, bad), 400, api.CodeBadRequest)
	}
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/publish", testToken, ""), 409, api.CodeConflict) // unsigned
	expectError(t, f.do(t, "PUT", "/v1/releases/"+rel.ID+"/signature", testToken, `{"sig":"`+hex.EncodeToString(make([]byte, 64))+`"}`), 400, api.CodeBadRequest)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sha, _ := hex.DecodeString(relSHA)
	wrong, _ := protocol.SignRelease(other, "pos", "2.14.3", [32]byte(sha), 1<<20)
	expectError(t, f.do(t, "PUT", "/v1/releases/"+rel.ID+"/signature", testToken, `{"sig":"`+hex.EncodeToString(wrong)+`"}`), 400, api.CodeBadRequest)
	sig, err := protocol.SignRelease(key, "pos", "2.14.3", [32]byte(sha), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	resp = f.do(t, "PUT", "/v1/releases/"+rel.ID+"/signature", testToken, `{"sig":"`+hex.EncodeToString(sig)+`"}`)
	if resp.StatusCode != 200 || decodeJSON[api.Release](t, resp).Sig != hex.EncodeToString(sig) {
		t.Fatalf("sign: %d", resp.StatusCode)
	}
	for _, step := range []struct{ method, path, body, state string }{
		{"POST", "/publish", "", "published"},
		{"POST", "/pause", "", "paused"},
		{"POST", "/resume", "", "published"},
		{"PUT", "/rollout", `{"pct":50}`, "published"},
		{"POST", "/archive", "", "archived"},
	} {
		resp := f.do(t, step.method, "/v1/releases/"+rel.ID+step.path, testToken, step.body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", step.path, resp.StatusCode, readBody(t, resp))
		}
		if got := decodeJSON[api.Release](t, resp); got.State != step.state {
			t.Fatalf("%s: state %s, want %s", step.path, got.State, step.state)
		}
	}
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/resume", testToken, ""), 409, api.CodeConflict)
	expectError(t, f.do(t, "GET", "/v1/releases/r-nope", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/retry", testToken, `{}`), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/retry", testToken, `{"device":"pos-1"}`), 404, api.CodeNotFound)
	list := decodeJSON[api.ReleaseList](t, f.do(t, "GET", "/v1/releases", testToken, ""))
	if len(list.Releases) != 1 || list.Releases[0].State != "archived" || list.Releases[0].RolloutPct != 50 {
		t.Fatalf("list %+v", list)
	}
	st := decodeJSON[api.ReleaseStatus](t, f.do(t, "GET", "/v1/releases/"+rel.ID+"/status", testToken, ""))
	if st.Release.ID != rel.ID || st.Assigned != 0 || st.Failures == nil {
		t.Fatalf("status %+v", st)
	}
	h := decodeJSON[api.DeviceUpgrades](t, f.do(t, "GET", "/v1/devices/pos-1/upgrades", testToken, ""))
	if h.Apps == nil || h.Attempts == nil || len(h.Attempts) != 0 {
		t.Fatalf("history %+v", h)
	}
}

func TestReleasesWithoutService(t *testing.T) {
	f := newFixture(t, nil)
	expectError(t, f.do(t, "POST", "/v1/releases", testToken, `{}`), 503, api.CodeUnavailable)
	expectError(t, f.do(t, "GET", "/v1/releases/x", testToken, ""), 503, api.CodeUnavailable)
	if got := decodeJSON[api.ReleaseList](t, f.do(t, "GET", "/v1/releases", testToken, "")); len(got.Releases) != 0 {
		t.Fatalf("list %+v", got)
	}
}

// POST /v1/releases/{id}/cancel and PUT /v1/releases/{id}/deadline:
// deadline_ms at creation, set and clear, 400 for a bad deadline or
// body, 404 for an unknown release, 409 for a draft's cancel and for any
// change but archive after the cancel.
func TestReleaseCancelAndDeadlineEndpoints(t *testing.T) {
	f, _ := releasesFixture(t, false)
	body := `{"app_id":"pos","version":"2.0","sha256":"` + relSHA + `","size":1,"url":"https://dl.example/p.bin","deadline_ms":1767139200000}`
	resp := f.do(t, "POST", "/v1/releases", testToken, body)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, readBody(t, resp))
	}
	rel := decodeJSON[api.Release](t, resp)
	if rel.DeadlineMs != 1767139200000 {
		t.Fatalf("created %+v", rel)
	}
	expectError(t, f.do(t, "POST", "/v1/releases", testToken, strings.Replace(body, "1767139200000", "-5", 1)), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/cancel", testToken, ""), 409, api.CodeConflict) // draft
	expectError(t, f.do(t, "POST", "/v1/releases/r-nope/cancel", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "PUT", "/v1/releases/"+rel.ID+"/deadline", testToken, `{"deadline_ms":-1}`), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "PUT", "/v1/releases/"+rel.ID+"/deadline", testToken, `{"when":1}`), 400, api.CodeBadRequest)
	resp = f.do(t, "PUT", "/v1/releases/"+rel.ID+"/deadline", testToken, `{"deadline_ms":0}`)
	if got := decodeJSON[api.Release](t, resp); resp.StatusCode != 200 || got.DeadlineMs != 0 {
		t.Fatalf("clear deadline: %d %+v", resp.StatusCode, got)
	}
	if resp := f.do(t, "POST", "/v1/releases/"+rel.ID+"/publish", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	resp = f.do(t, "POST", "/v1/releases/"+rel.ID+"/cancel", testToken, "")
	if got := decodeJSON[api.Release](t, resp); resp.StatusCode != 200 || got.State != "cancelled" || got.CancelledMs == 0 {
		t.Fatalf("cancel: %d %+v", resp.StatusCode, got)
	}
	expectError(t, f.do(t, "POST", "/v1/releases/"+rel.ID+"/resume", testToken, ""), 409, api.CodeConflict)
	expectError(t, f.do(t, "PUT", "/v1/releases/"+rel.ID+"/deadline", testToken, `{"deadline_ms":1}`), 409, api.CodeConflict)
	if resp := f.do(t, "POST", "/v1/releases/"+rel.ID+"/archive", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("archive a cancelled release: %d", resp.StatusCode)
	}
}
