package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inlineHandler matches an inline event handler attribute (onclick=...).
var inlineHandler = regexp.MustCompile(`\son[a-z]+=`)

// Every console answer, pages, the sign-in form, errors and static files,
// carries the strict CSP and the other security headers.
func TestSecurityHeaders(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	for _, p := range []string{"/ui/login", "/ui/fleet", "/ui/events", "/ui/no-such-page", "/ui/static/ui.js", "/ui/static/vendor/htmx/htmx.min.js"} {
		resp, _ := get(t, c, tc.URL+p)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows something unsafe", p, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", p, h)
		}
	}
	if resp, _ := get(t, c, tc.URL+"/ui/static/vendor/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static directory listing: %d", resp.StatusCode)
	}
	// The templates hold no inline script or style the CSP would block.
	for name, tmpl := range tc.UI.tmpl {
		for _, d := range tmpl.Templates() {
			if d.Tree == nil {
				continue
			}
			src := d.Tree.Root.String()
			if strings.Contains(src, "<script>") || strings.Contains(src, "style=") || strings.Contains(src, "<style") || inlineHandler.MatchString(src) {
				t.Errorf("%s/%s has inline script or style", name, d.Name())
			}
		}
	}
}

// Sign-in: the form, a wrong token (the form again with an error, 401),
// the right one (a session cookie that is HttpOnly, SameSite=Strict,
// scoped to /ui/ and holds no token), then the fleet page; a page asked
// for before sign-in is returned to after it; Secure behind TLS.
func TestSignIn(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	resp, _ := get(t, c, tc.URL+"/ui/fleet")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Ffleet" {
		t.Fatalf("fleet before sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	csrf := formToken(t, c, tc.URL+"/ui/login")
	resp, body := post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {"wrong-token-0123456789"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not accepted") || !strings.Contains(body, `name="token"`) {
		t.Fatalf("wrong token: %d\n%s", resp.StatusCode, body)
	}
	// A node token cannot use the console.
	csrf = hiddenCSRF.FindStringSubmatch(body)[1]
	resp, body = post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {"node-token-0123456789"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cannot use the console") {
		t.Fatalf("node token: %d\n%s", resp.StatusCode, body)
	}
	csrf = hiddenCSRF.FindStringSubmatch(body)[1]
	resp, _ = post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {opsToken}, "next": {"/ui/events"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/events" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || sess.Secure || sess.MaxAge != 0 {
		t.Fatalf("session cookie %+v", sess)
	}
	if strings.Contains(sess.Value, opsToken) || len(sess.Value) < 40 {
		t.Fatalf("session cookie value %q", sess.Value)
	}
	resp, body = get(t, c, tc.URL+"/ui/fleet")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice") || !strings.Contains(body, `id="online-count"`) {
		t.Fatalf("fleet after sign-in: %d\n%s", resp.StatusCode, body)
	}
	// An open redirect is not followed: next must be a console path.
	c2 := browserless(t)
	csrf = formToken(t, c2, tc.URL+"/ui/login")
	resp, _ = post(t, c2, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {opsToken}, "next": {"//evil.example/ui/"}}, nil)
	if resp.Header.Get("Location") != "/ui/fleet" {
		t.Fatalf("next=//evil: to %q", resp.Header.Get("Location"))
	}
	// Behind a TLS proxy the cookies are Secure.
	c3 := browserless(t)
	req, _ := http.NewRequest("GET", tc.URL+"/ui/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := c3.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Cookies(); len(ck) != 1 || !ck[0].Secure || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("behind TLS: cookies %+v, HSTS %q", ck, resp.Header.Get("Strict-Transport-Security"))
	}
}

// The sign-in form has its own anti-forgery token: a post without the
// form's cookie, or with another value, is refused before the token is
// even looked at.
func TestSignInFormForgery(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	resp, _ := post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {"made-up"}, "token": {opsToken}}, nil)
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != loginCookie {
		t.Fatalf("no form cookie: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	_ = formToken(t, c, tc.URL+"/ui/login")
	resp, _ = post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {"made-up"}, "token": {opsToken}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong form token: %d", resp.StatusCode)
	}
}

// Repeated wrong tokens from one address are slowed down: after the free
// failures the next attempt, even with the right token, is refused (429,
// Retry-After) until the wait has passed, without the token being checked.
func TestSignInSlowdown(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	try := func(tok string) (*http.Response, string) {
		csrf := formToken(t, c, tc.URL+"/ui/login")
		return post(t, c, tc.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {tok}}, nil)
	}
	for i := range freeFailures + 1 {
		if resp, body := try(fmt.Sprintf("wrong-%d-0123456789", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d\n%s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := try(opsToken)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("right token while slowed: %d, Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	time.Sleep(firstWait + 100*time.Millisecond)
	if resp, body := try(opsToken); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the wait: %d\n%s", resp.StatusCode, body)
	}
}

// The limiter's waits double per failure up to maxWait, a success
// forgets the address, and the table never holds more than maxLimited
// addresses.
func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter()
	now := time.Unix(1000, 0)
	for range freeFailures {
		l.failed("a", now)
	}
	if d := l.wait("a", now); d != 0 {
		t.Fatalf("wait after the free failures: %v", d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for _, w := range want {
		l.failed("a", now)
		if d := l.wait("a", now); d != w {
			t.Fatalf("wait %v, want %v", d, w)
		}
	}
	for range 20 {
		l.failed("a", now)
	}
	if d := l.wait("a", now); d != maxWait {
		t.Fatalf("wait capped at %v, want %v", d, maxWait)
	}
	if d := l.wait("b", now); d != 0 {
		t.Fatalf("another address waits %v", d)
	}
	l.succeeded("a")
	if d := l.wait("a", now); d != 0 {
		t.Fatalf("after success: %v", d)
	}
	for i := range maxLimited + 50 {
		l.failed(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.len(); n > maxLimited {
		t.Fatalf("limiter holds %d addresses, bound %d", n, maxLimited)
	}
}

// Sessions: at the bound the least recently used one is ended; an idle
// one expires, and so does every one after sessionLifetime.
func TestSessionTable(t *testing.T) {
	st := newSessionTable()
	now := time.Unix(1000, 0)
	first := st.create("tok", "a", "read", now)
	for i := 1; i < maxSessions; i++ {
		st.create("tok", "a", "read", now.Add(time.Second))
	}
	st.get(first.id, now.Add(2*time.Second)) // first is now the most recently used
	st.create("tok", "a", "read", now.Add(3*time.Second))
	if st.len() != maxSessions || st.get(first.id, now.Add(3*time.Second)) == nil {
		t.Fatalf("%d sessions; first kept: %v", st.len(), st.get(first.id, now.Add(3*time.Second)) != nil)
	}
	if st.get(first.id, now.Add(3*time.Second+sessionIdle+time.Second)) != nil {
		t.Fatal("idle session still valid")
	}
	s := st.create("tok", "a", "read", now)
	for at := now; at.Before(now.Add(sessionLifetime)); at = at.Add(sessionIdle / 2) {
		if st.get(s.id, at) == nil {
			t.Fatalf("session ended early at %v", at.Sub(now))
		}
	}
	if st.get(s.id, now.Add(sessionLifetime+time.Second)) != nil {
		t.Fatal("session outlived sessionLifetime")
	}
}

// CSRF, over plain HTTP: a state-changing request without the session's
// token, or with a wrong one, is refused (403) and changes nothing; with
// it (form field or header) it goes through. Sign-out is the change
// observed: the session survives the forged attempts.
func TestCSRF(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	tc.signIn(t, c, opsToken)
	csrf := formToken(t, c, tc.URL+"/ui/fleet")
	for _, forged := range []struct {
		form url.Values
		hdr  map[string]string
	}{
		{url.Values{}, nil},
		{url.Values{"csrf": {"wrong"}}, nil},
		{url.Values{"csrf": {csrf[:len(csrf)-1] + "x"}}, nil},
		{url.Values{}, map[string]string{csrfHeader: "wrong"}},
	} {
		for _, path := range []string{"/ui/logout", "/ui/releases/r1/rollout/pause"} {
			resp, body := post(t, c, tc.URL+path, forged.form, forged.hdr)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Fatalf("POST %s with %v %v: %d %s", path, forged.form, forged.hdr, resp.StatusCode, body)
			}
		}
	}
	if resp, _ := get(t, c, tc.URL+"/ui/fleet"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session ended by a forged sign-out: %d", resp.StatusCode)
	}
	// With the token the action reaches the API; this node serves no
	// releases, so its refusal comes back as the flash.
	resp, _ := post(t, c, tc.URL+"/ui/releases/r1/rollout/pause", url.Values{"csrf": {csrf}, "back": {"/ui/fleet"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/fleet" {
		t.Fatalf("action with the token: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := get(t, c, tc.URL+"/ui/fleet"); !strings.Contains(body, "flash-error") || !strings.Contains(body, "not served by this node") {
		t.Fatalf("no flash with the API's refusal:\n%s", body)
	}
	resp, _ = post(t, c, tc.URL+"/ui/logout", url.Values{}, map[string]string{csrfHeader: csrf})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out with the header: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, tc.URL+"/ui/fleet"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("fleet after sign-out: %d", resp.StatusCode)
	}
	// Without any session a POST is refused too.
	resp, _ = post(t, browserless(t), tc.URL+"/ui/releases/r1/rollout/pause", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without a session: %d", resp.StatusCode)
	}
}

// A read-only token's pages show no action form, and a forced POST with
// a valid CSRF token is refused by the console (and would be by the API).
func TestReadOnlyHidesActions(t *testing.T) {
	tc := startConsole(t, nil, nil)
	view := &View{CanOperate: true, CSRF: "t", Path: "/ui/fleet"}
	if !strings.Contains(string(act(view, "/ui/x", "Do", "Sure?")), `data-confirm="Sure?"`) {
		t.Fatal("act renders no confirmable form for an operator")
	}
	view.CanOperate = false
	if act(view, "/ui/x", "Do", "Sure?") != "" {
		t.Fatal("act renders a form for a read-only session")
	}
	c := browserless(t)
	tc.signIn(t, c, readToken)
	_, body := get(t, c, tc.URL+"/ui/fleet")
	if !strings.Contains(body, "scope-read") || strings.Contains(body, `class="action"`) {
		t.Fatalf("read-only fleet page:\n%s", body)
	}
	csrf := formToken(t, c, tc.URL+"/ui/fleet") // the sign-out form's
	resp, body := post(t, c, tc.URL+"/ui/releases/r1/rollout/pause", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "scope read") {
		t.Fatalf("forced POST with a read token: %d %s", resp.StatusCode, body)
	}
}

// The navigation lists the registered pages in order; a page registers
// itself and nothing else changes.
func TestNavigationFromRegistry(t *testing.T) {
	tc := startConsole(t, nil, nil)
	c := browserless(t)
	tc.signIn(t, c, readToken)
	_, body := get(t, c, tc.URL+"/ui/events")
	fleet, events := strings.Index(body, `href="/ui/fleet"`), strings.Index(body, `href="/ui/events" class="active"`)
	if fleet < 0 || events < 0 || fleet > events {
		t.Fatalf("navigation:\n%s", body)
	}
	if resp, _ := get(t, c, tc.URL+"/ui/"); resp.Header.Get("Location") != "/ui/fleet" {
		t.Fatalf("/ui/ goes to %q", resp.Header.Get("Location"))
	}
}

// Template helpers: times as <time> in UTC, numbers, paging links.
func TestHelpers(t *testing.T) {
	if got := string(when(1700000000000)); got != `<time datetime="2023-11-14T22:13:20Z" title="2023-11-14 22:13:20 UTC">2023-11-14 22:13:20 UTC</time>` {
		t.Errorf("when: %s", got)
	}
	if when(0) != "never" || num(1234567) != "1,234,567" || num(-1000) != "-1,000" || num(12) != "12" {
		t.Errorf("when(0) %q, num %q %q", when(0), num(1234567), num(-1000))
	}
	v := &View{Path: "/ui/devices", Query: url.Values{"model": {"P400"}, "cursor": {"A"}}}
	if got := nextPage(v, "POS-9"); got != "/ui/devices?cursor=POS-9&model=P400" {
		t.Errorf("next: %s", got)
	}
	if nextPage(v, "") != "" {
		t.Error("next page on the last page")
	}
	if got := joinPath("/ui/releases", "a/b c", "rollout/pause"); got != "/ui/releases/a%2Fb%20c/rollout/pause" {
		t.Errorf("path: %s", got)
	}
}
