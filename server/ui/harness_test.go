package ui

// The in-process harness of the console's unit tests: a real termd front
// end (servertest: gnet listener, in-memory Badger), its admin API and the
// console on one loopback HTTP listener (admin.Serve, as cmd/termd wires
// it), and an HTTP client that signs in with a cookie jar like a browser.
// The browser tests (browser_test.go) run a real termd process instead.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// Tokens of the test consoles.
const (
	opsToken  = "console-operator-token-0123456789"
	readToken = "console-read-token-0123456789"
)

var quietLog = slog.New(slog.DiscardHandler)

// testConsole is a running node with its admin API and console.
type testConsole struct {
	URL  string // http://127.0.0.1:port
	Node *servertest.Node
	UI   *UI
}

func hashHex(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// consoleTokens are the test tokens: alice (operator) and ci (read).
func consoleTokens(t testing.TB) []admin.Token {
	t.Helper()
	toks, err := admin.TokensFromConfig(config.Admin{Tokens: []config.AdminToken{
		{Name: "alice", Scope: config.ScopeOperator, SHA256: hashHex(opsToken)},
		{Name: "ci", Scope: config.ScopeRead, SHA256: hashHex(readToken)},
		{Name: "dl-1", Scope: config.ScopeNode, Node: "dl-1", SHA256: hashHex("node-token-0123456789")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// serveConsole serves the admin API with opt (its tokens: consoleTokens)
// and the console on one loopback listener until the test ends.
func serveConsole(t testing.TB, node *servertest.Node, opt admin.Options) *testConsole {
	t.Helper()
	opt.Tokens, opt.Logger = consoleTokens(t), quietLog
	apiH := admin.New(node.Server, opt)
	u, err := Open(Options{API: apiH, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix, u)
	mux.Handle("/", apiH)
	ctx, cancel := context.WithCancel(context.Background())
	addr, errc, err := admin.Serve(ctx, "127.0.0.1:0", mux, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-errc
		_ = u.Close(context.Background())
	})
	return &testConsole{URL: "http://" + addr.String(), Node: node, UI: u}
}

// openBadger opens an on-disk Badger store for the test, closed at its end.
func openBadger(t testing.TB) *storage.Badger {
	t.Helper()
	b, err := storage.OpenBadger(t.TempDir(), storage.BadgerOptions{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// startConsole runs a node (on store, or an in-memory one when nil) with
// the admin API and the console until the test ends; mod may adjust the
// API's options.
func startConsole(t testing.TB, store *storage.Badger, mod func(*admin.Options)) *testConsole {
	t.Helper()
	cfg := servertest.Config(t)
	var node *servertest.Node
	if store != nil {
		node = servertest.StartStore(t, cfg, store, nil)
	} else {
		node = servertest.Start(t, cfg, nil)
	}
	trend := presence.NewTrend()
	trend.Add(1, 0)
	opt := admin.Options{Bus: node.Bus, EventBuffer: cfg.Admin.EventBuffer,
		Trend: trend, Cooldowns: node.Cooldowns, Outbox: node.Store.(*storage.Badger), DeviceFilters: node.Store.(*storage.Badger)}
	if mod != nil {
		mod(&opt)
	}
	return serveConsole(t, node, opt)
}

// renderer signs in as the operator and returns a function that renders
// one console page in the server (the UI handler called directly, so the
// time is the server's: the handler with its in-process API calls) and
// returns that time and the page; a status other than 200 fails the test.
func (tc *testConsole) renderer(t testing.TB) func(path string) (time.Duration, string) {
	t.Helper()
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	cookie := c.Jar.Cookies(mustURL(t, tc.URL+"/ui/"))
	return func(path string) (time.Duration, string) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		for _, ck := range cookie {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		tc.UI.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d\n%.2000s", path, rec.Code, rec.Body)
		}
		return d, rec.Body.String()
	}
}

// browserless is an HTTP client that keeps cookies and does not follow
// redirects, so a test sees each answer.
func browserless(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken fetches a page and returns the CSRF token of its first form.
func formToken(t testing.TB, c *http.Client, pageURL string) string {
	t.Helper()
	_, body := get(t, c, pageURL)
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on %s:\n%s", pageURL, body)
	}
	return m[1]
}

// get fetches u and returns the response and its body.
func get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// post sends a form and returns the response and its body.
func post(t testing.TB, c *http.Client, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs c in with token and fails the test unless it lands on
// the fleet page.
func (tc *testConsole) signIn(t testing.TB, c *http.Client, token string) {
	t.Helper()
	csrf := formToken(t, c, tc.URL+"/ui/login")
	resp, body := post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/fleet" {
		t.Fatalf("sign-in: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
