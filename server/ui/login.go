package ui

// Sign-in and sign-out. The sign-in form posts an admin token; the
// console asks the admin API who it is (GET /v1/whoami) with it, and on
// success starts a session. The form carries its own anti-forgery token
// (a double-submit cookie), since there is no session yet to hold one.

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/termd/termd/server/admin/api"
)

const (
	// loginCookie holds the sign-in form's anti-forgery token.
	loginCookie = "termd_login"
	// loginFormAge is how long a sign-in form stays valid.
	loginFormAge = 30 * time.Minute
	// maxTokenLen bounds the token a form may post.
	maxTokenLen = 512
)

// loginView is the sign-in page's data.
type loginView struct {
	Next  string
	Error string
	Form  string // the form's anti-forgery token
}

func (u *UI) loginRoutes() {
	u.mux.HandleFunc("GET "+Prefix+"login", u.loginForm)
	u.mux.HandleFunc("POST "+Prefix+"login", u.login)
	u.mux.HandleFunc("POST "+Prefix+"logout", u.logout)
	// session tells ui.js whether its session still exists (after a
	// termd restart it does not: the page goes to the sign-in form).
	u.mux.HandleFunc("GET "+Prefix+"session", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if u.session(r) == nil {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	if u.session(r) != nil {
		http.Redirect(w, r, u.nextOf(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	u.showLogin(w, r, http.StatusOK, r.URL.Query().Get("next"), "")
}

// showLogin renders the form with a fresh anti-forgery token.
func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	form := randomID()
	setCookie(w, r, loginCookie, form, int(loginFormAge/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	var buf bytes.Buffer
	v := u.view(r, nil, "Sign in", loginView{Next: next, Error: msg, Form: form})
	if err := u.tmpl[loginTemplate].ExecuteTemplate(&buf, "layout", v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		u.showLogin(w, r, http.StatusBadRequest, "", "The form could not be read.")
		return
	}
	next := r.PostForm.Get("next")
	c, err := r.Cookie(loginCookie)
	form := r.PostForm.Get(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		u.csrfRefused.Inc()
		u.showLogin(w, r, http.StatusForbidden, next, "The sign-in form expired or did not come from this console; please sign in again.")
		return
	}
	src, now := sourceOf(r), time.Now()
	if d := u.limiter.wait(src, now); d > 0 {
		u.loginsSlowed.Inc()
		secs := int((d + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		u.showLogin(w, r, http.StatusTooManyRequests, next, fmt.Sprintf("Too many failed sign-ins from your address: try again in %d s.", secs))
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	who, err := u.whoami(r, token)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			u.limiter.failed(src, now)
			u.loginsBad.Inc()
			u.log.Warn("console sign-in refused: wrong token", "remote", r.RemoteAddr)
			u.showLogin(w, r, http.StatusUnauthorized, next, "That token is not accepted by this node.")
			return
		}
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			// A node token: valid, but it may only report its node's load.
			u.showLogin(w, r, http.StatusForbidden, next, "This token cannot use the console: "+ae.Message)
			return
		}
		u.log.Error("console sign-in failed", "remote", r.RemoteAddr, "err", err)
		u.showLogin(w, r, http.StatusInternalServerError, next, "Sign-in failed: "+err.Error())
		return
	}
	if who.Scope != "read" && who.Scope != "operator" {
		u.showLogin(w, r, http.StatusForbidden, next, fmt.Sprintf("Token %q has scope %s, which cannot use the console.", who.Name, who.Scope))
		return
	}
	u.limiter.succeeded(src)
	u.loginsOK.Inc()
	s := u.sessions.create(token, who.Name, who.Scope, now)
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, s.id, 0)
	u.log.Info("console sign-in", "operator", who.Name, "scope", who.Scope, "remote", r.RemoteAddr)
	http.Redirect(w, r, u.nextOf(next), http.StatusSeeOther)
}

// whoami asks the admin API who token is.
func (u *UI) whoami(r *http.Request, token string) (api.WhoAmI, error) {
	var who api.WhoAmI
	if token == "" || len(token) > maxTokenLen {
		return who, &APIError{Status: http.StatusUnauthorized, Code: "unauthorized"}
	}
	req := &Request{Request: r, Session: &Session{token: token}, u: u}
	return who, req.Get("/v1/whoami", &who)
}

// nextOf is where to go after signing in: next when it is a console page.
func (u *UI) nextOf(next string) string {
	if isConsolePath(next) && !strings.HasPrefix(next, Prefix+"login") {
		return next
	}
	return u.home()
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	if !csrfOK(r, s.CSRF) {
		u.csrfRefused.Inc()
		http.Error(w, "CSRF token missing or wrong", http.StatusForbidden)
		return
	}
	u.sessions.remove(s.id)
	setCookie(w, r, sessionCookie, "", -1)
	u.log.Info("console sign-out", "operator", s.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
