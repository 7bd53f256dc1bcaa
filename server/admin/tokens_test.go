package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
)

// Tokens of the scope tests, as an operator would configure them.
const (
	readToken = "read-only-token-for-ci"
	opsToken  = "operator-token-for-alice"
)

func hashHex(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func withScopedTokens(t *testing.T) func(*Options) {
	toks, err := TokensFromConfig(config.Admin{Tokens: []config.AdminToken{
		{Name: "ci", Scope: config.ScopeRead, SHA256: hashHex(readToken)},
		{Name: "alice", Scope: config.ScopeOperator, SHA256: hashHex(opsToken)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) { o.Tokens = toks }
}

// TestScopedTokens (issue 10 item 12): a read token reads but gets 403
// forbidden on every mutating endpoint and on the backup; an operator
// token and the legacy admin.token may act; every operator action is
// audited with the token's name.
func TestScopedTokens(t *testing.T) {
	f := servicesFixture(t, withScopedTokens(t))
	for _, tok := range []string{readToken, opsToken, testToken} {
		if resp := f.do(t, "GET", "/v1/services", tok, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/services with %q: %d", tok, resp.StatusCode)
		}
	}
	expectError(t, f.do(t, "GET", "/v1/services", "wrong-token", ""), http.StatusUnauthorized, api.CodeUnauthorized)

	mutating := []struct{ method, path, body string }{
		{"POST", "/v1/devices/t1/block", ""},
		{"POST", "/v1/devices/t1/unblock", ""},
		{"POST", "/v1/devices/t1/disconnect", ""},
		{"PUT", "/v1/devices/t1/key", `{"key":"` + hashHex("k") + `"}`},
		{"POST", "/v1/services/sync/start", ""},
		{"POST", "/v1/services/spooler/stop", ""},
		{"POST", "/v1/services/spooler/restart", ""},
		{"GET", "/v1/backup", ""},
		{"GET", "/debug/pprof/", ""},
	}
	for _, m := range mutating {
		resp := f.do(t, m.method, m.path, readToken, m.body)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s with a read token: %d, want 403", m.method, m.path, resp.StatusCode)
			continue
		}
		expectError(t, resp, http.StatusForbidden, api.CodeForbidden)
	}
	f.node.mu.Lock()
	calls := f.node.calls
	f.node.mu.Unlock()
	if len(calls) != 0 {
		t.Fatalf("a read token reached the node: %v", calls)
	}

	// The operator token acts, and the audit names it.
	if resp := f.do(t, "POST", "/v1/services/sync/start", opsToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("operator start: %d", resp.StatusCode)
	}
	if resp := f.do(t, "POST", "/v1/services/sync/start", testToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin.token start: %d", resp.StatusCode)
	}
	list := decodeJSON[api.AuditList](t, f.do(t, "GET", "/v1/audit?service=sync", readToken, ""))
	var names []string
	for _, r := range list.Records {
		if r.Source == "operator" {
			names = append(names, r.Operator)
		}
	}
	// Each run has two records, "started" and its answer (docs/services.md, Audit).
	want := []string{config.LegacyTokenName, config.LegacyTokenName, "alice", "alice"}
	if !slices.Equal(names, want) {
		t.Fatalf("operator records name %v, want %v (newest first)", names, want)
	}
	if resp := f.do(t, "POST", "/v1/devices/t1/block", opsToken, ""); resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("operator block: %d", resp.StatusCode)
	}
}

// TestTokensFromConfigRefusesBadHash: a hash that is not 64 hex digits
// never becomes a token.
func TestTokensFromConfigRefusesBadHash(t *testing.T) {
	if _, err := TokensFromConfig(config.Admin{Tokens: []config.AdminToken{{Name: "x", Scope: "read", SHA256: "abc"}}}); err == nil {
		t.Fatal("a short hash was accepted")
	}
}
