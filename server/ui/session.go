package ui

// Sessions: an opaque random id in an HttpOnly, SameSite=Strict cookie,
// and a server-side table with expiry. The admin token a session acts
// with stays in this process's memory; it is never sent to the browser
// again after the sign-in form. The table is in memory, so a restart of
// termd signs everyone out (docs/console.md).

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// sessionCookie names the session cookie.
	sessionCookie = "termd_session"
	// sessionIdle ends a session nobody used for this long.
	sessionIdle = 8 * time.Hour
	// sessionLifetime ends every session this long after sign-in.
	sessionLifetime = 24 * time.Hour
	// maxSessions bounds the table; at the bound the least recently used
	// session is ended to make room.
	maxSessions = 1000
	// idBytes is the entropy of session ids and CSRF tokens.
	idBytes = 32
	// csrfField and csrfHeader carry the CSRF token of a state-changing
	// request: the form field (forms) or the header (htmx, uploads).
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	// maxFormBytes bounds a console form's body.
	maxFormBytes = 64 << 10
)

// Session is one signed-in operator.
type Session struct {
	id    string
	token string // the admin token, for the API calls
	// Name and Scope are the token's, from GET /v1/whoami.
	Name  string
	Scope string
	// CSRF is the session's anti-forgery token, in every form.
	CSRF    string
	created time.Time

	// Guarded by the table's mutex.
	lastUsed time.Time
	flash    string
	flashErr bool
}

// CanOperate reports whether the session may change anything (its token
// has the operator scope).
func (s *Session) CanOperate() bool { return s.Scope == "operator" }

type sessionTable struct {
	mu sync.Mutex
	m  map[string]*Session
}

func newSessionTable() *sessionTable { return &sessionTable{m: map[string]*Session{}} }

func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// randomID returns idBytes of crypto randomness, base64url.
func randomID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session, ending expired ones and, at the bound, the
// least recently used.
func (t *sessionTable) create(token, name, scope string, now time.Time) *Session {
	s := &Session{id: randomID(), token: token, Name: name, Scope: scope, CSRF: randomID(), created: now, lastUsed: now}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxSessions {
		var lru *Session
		for id, o := range t.m {
			if t.expired(o, now) {
				delete(t.m, id)
			} else if lru == nil || o.lastUsed.Before(lru.lastUsed) {
				lru = o
			}
		}
		if len(t.m) >= maxSessions && lru != nil {
			delete(t.m, lru.id)
		}
	}
	t.m[s.id] = s
	return s
}

func (t *sessionTable) expired(s *Session, now time.Time) bool {
	return now.Sub(s.lastUsed) > sessionIdle || now.Sub(s.created) > sessionLifetime
}

// get returns the live session with id and marks it used.
func (t *sessionTable) get(id string, now time.Time) *Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[id]
	if s == nil {
		return nil
	}
	if t.expired(s, now) {
		delete(t.m, id)
		return nil
	}
	s.lastUsed = now
	return s
}

func (t *sessionTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// setFlash leaves a message for the session's next page.
func (t *sessionTable) setFlash(s *Session, msg string, isErr bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.flash, s.flashErr = msg, isErr
}

// takeFlash returns and clears the session's message.
func (t *sessionTable) takeFlash(s *Session) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	msg, isErr := s.flash, s.flashErr
	s.flash, s.flashErr = "", false
	return msg, isErr
}

// session returns the request's session, nil if it has none.
func (u *UI) session(r *http.Request) *Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 2*idBytes {
		return nil
	}
	return u.sessions.get(c.Value, time.Now())
}

// secureRequest reports whether the browser reached us over TLS, here or
// at a proxy in front (which says so in X-Forwarded-Proto). It only ever
// adds the Secure flag, so a forged header cannot weaken anything.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, scoped to
// the console's path, Secure when the browser came over TLS; maxAge < 0
// deletes it; 0 makes a session cookie.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)})
}

// csrfOK reports whether r carries the session's CSRF token, in the
// header or the form, compared in constant time. A form body is read
// only when it is URL-encoded (bounded); a multipart upload must send
// the header.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return false
		}
		got = r.PostForm.Get(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
