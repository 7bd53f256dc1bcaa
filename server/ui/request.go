package ui

// A console request and its calls to the admin API. The console calls
// the admin handler in process (docs/console.md, "Calling the API"): the
// same routing, token check, scope check and error table as over HTTP,
// with the session's token in the Authorization header, and no loopback
// connection, listener address or second token to manage.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// maxAPIBody bounds an API answer the console buffers (a page of 1,000
// devices is about 400 KB).
const maxAPIBody = 16 << 20

// Request is a console request of a signed-in operator.
type Request struct {
	*http.Request
	// Session is the operator's session.
	Session *Session
	u       *UI
	page    *Page
}

// APIError is the admin API's refusal of a call.
type APIError struct {
	// Status is the HTTP status; Code and Message the body's (§3 of
	// docs/admin-api.md).
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Get calls GET path on the admin API and decodes the answer into out.
func (r *Request) Get(path string, out any) error { return r.API(http.MethodGet, path, nil, out) }

// API calls the admin API with the session's token: body (nil for none)
// is sent as JSON; a 2xx answer is decoded into out (nil to ignore it);
// anything else is an *APIError.
func (r *Request) API(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	rec, err := r.u.call(r.Request, r.Session, method, path, rd)
	if err != nil {
		return err
	}
	if rec.status < 200 || rec.status > 299 {
		return rec.apiError()
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// call runs one admin API request in process, as from the browser's
// address (the API's logs then name the real client) and within the
// browser request's context (it ends when the browser goes away).
func (u *UI) call(br *http.Request, s *Session, method, path string, body io.Reader) (*recorder, error) {
	req, err := http.NewRequestWithContext(br.Context(), method, path, body)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = br.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}, status: http.StatusOK}
	u.api.ServeHTTP(rec, req)
	if rec.over {
		return nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", method, path, maxAPIBody)
	}
	return rec, nil
}

// recorder is the ResponseWriter of an in-process call: it keeps the
// status and a bounded body.
type recorder struct {
	h      http.Header
	status int
	wrote  bool
	body   bytes.Buffer
	over   bool
}

func (c *recorder) Header() http.Header { return c.h }
func (c *recorder) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
}
func (c *recorder) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	if c.body.Len()+len(b) > maxAPIBody {
		c.over = true
		return 0, errors.New("answer too large")
	}
	return c.body.Write(b)
}

func (c *recorder) apiError() *APIError {
	var e api.Error
	if json.Unmarshal(c.body.Bytes(), &e) != nil || e.Code == "" {
		return &APIError{Status: c.status, Code: "internal", Message: strings.TrimSpace(c.body.String())}
	}
	return &APIError{Status: c.status, Code: string(e.Code), Message: e.Message}
}

// fill replaces the {wildcards} of an API path with the request's path
// values, path-escaped.
func (r *Request) fill(apiPath string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(apiPath, '{')
		j := strings.IndexByte(apiPath, '}')
		if i < 0 || j < i {
			b.WriteString(apiPath)
			return b.String()
		}
		b.WriteString(apiPath[:i])
		b.WriteString(url.PathEscape(r.PathValue(apiPath[i+1 : j])))
		apiPath = apiPath[j+1:]
	}
}

// Flash leaves msg for the next page the operator sees.
func (r *Request) Flash(msg string) { r.u.sessions.setFlash(r.Session, msg, false) }

// FlashError leaves an error message for the next page.
func (r *Request) FlashError(msg string) { r.u.sessions.setFlash(r.Session, msg, true) }

// Back redirects (303) to the page a form came from: its "back" field
// when that is a console path, else the current page's.
func (r *Request) Back(w http.ResponseWriter) {
	http.Redirect(w, r.Request, r.backPath(), http.StatusSeeOther)
}

func (r *Request) backPath() string {
	if b := r.PostFormValue("back"); isConsolePath(b) {
		return b
	}
	if r.page != nil {
		return r.page.Path
	}
	return r.u.home()
}

// isConsolePath reports whether p is a path of the console (and not a
// protocol-relative URL to another host).
func isConsolePath(p string) bool {
	return strings.HasPrefix(p, Prefix) && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n")
}

// signedIn wraps a GET handler: no session → the sign-in form (or 401
// for a request that is not a page load), else h; errors become an error
// page with the API's status.
func (u *UI) signedIn(p *Page, h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.session(r)
		if s == nil {
			u.toLogin(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		start := time.Now()
		defer u.renderTime(start)
		req := &Request{Request: r, Session: s, u: u, page: p}
		if err := h(w, req); err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
				// The token is no longer accepted (the configuration changed).
				u.sessions.remove(s.id)
				u.toLogin(w, r)
				return
			}
			u.log.Warn("console page failed", "path", r.URL.Path, "operator", s.Name, "err", err)
			u.renderError(w, r, statusOf(err), err.Error())
		}
	}
}

// changes wraps a state-changing handler: a session, its CSRF token and
// the operator scope are required before h runs; h's error goes back to
// the page as a flash.
func (u *UI) changes(p *Page, h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.session(r)
		if s == nil {
			http.Error(w, "not signed in", http.StatusForbidden)
			return
		}
		if !csrfOK(r, s.CSRF) {
			u.csrfRefused.Inc()
			u.log.Warn("console request refused: CSRF token missing or wrong", "path", r.URL.Path, "operator", s.Name, "remote", r.RemoteAddr)
			http.Error(w, "CSRF token missing or wrong", http.StatusForbidden)
			return
		}
		req := &Request{Request: r, Session: s, u: u, page: p}
		if !s.CanOperate() {
			u.log.Warn("console request refused: read-only token", "path", r.URL.Path, "operator", s.Name, "remote", r.RemoteAddr)
			http.Error(w, fmt.Sprintf("token %q has scope %s: it may not change anything", s.Name, s.Scope), http.StatusForbidden)
			return
		}
		if err := h(w, req); err != nil {
			req.FlashError(err.Error())
			req.Back(w)
		}
	}
}

// statusOf is the HTTP status to show for err.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

// toLogin sends a page load to the sign-in form, remembering where it
// was going; other requests (htmx, event streams) get 401.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") != "" || r.Header.Get("Accept") == "text/event-stream" {
		w.Header().Set("HX-Redirect", Prefix+"login")
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}
