// Package ui is termd's operator console: server-rendered pages under
// /ui/ on the admin listener, for people (termctl stays the scriptable
// interface). Every page reads and acts through the admin API only, which
// it calls in process with the signed-in operator's own token, so the
// console can do nothing that token could not do with curl
// (docs/console.md).
//
// Pages register themselves (see Page); templates and static files are
// embedded, so the console ships inside the termd binary.
package ui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/termd/termd/server/internal/lifecycle"

	"github.com/VictoriaMetrics/metrics"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served on the admin listener.
const Prefix = "/ui/"

// Options configure the console.
type Options struct {
	// API is the admin API's handler (admin.New). The console calls it in
	// process for every read and action, with the session's token.
	API http.Handler
	// Logger receives sign-ins, refusals and failures; nil: slog.Default().
	Logger *slog.Logger
}

// UI is the console's http.Handler.
type UI struct {
	api      http.Handler
	log      *slog.Logger
	sessions *sessionTable
	limiter  *loginLimiter
	mux      *http.ServeMux
	pages    []*Page
	// tmpl holds each page's template set (the layout, the shared
	// partials and the page's own file), by template file name.
	tmpl map[string]*template.Template
	// static maps a static file's path to its content hash, for
	// cache-busting URLs.
	static map[string]string

	// streams ends the event streams at Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	set          *metrics.Set
	loginsOK     *metrics.Counter
	loginsBad    *metrics.Counter
	loginsSlowed *metrics.Counter
	csrfRefused  *metrics.Counter
	render       *metrics.Histogram
}

// Page is one console page: a navigation entry, the template file it
// renders and the routes it serves. A page registers itself from an
// init function in its own file (register), so adding a page touches no
// other file; the navigation lists the registered pages by Order.
type Page struct {
	// Nav is the page's label in the navigation bar; Path the URL the
	// entry links to (GET, under Prefix).
	Nav  string
	Path string
	// Order places the entry in the navigation, lowest first.
	Order int
	// Template is the page's file under templates/: it defines "content"
	// (the page body) and any partials the page renders on its own.
	Template string
	// Routes installs the page's handlers.
	Routes func(r *Routes)
}

var (
	registryMu sync.Mutex
	registry   []Page
)

// register adds a page to the console; called from init functions.
func register(p Page) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry = append(registry, p)
}

// Open compiles the templates and routes of every registered page.
func Open(opt Options) (*UI, error) {
	if opt.API == nil {
		return nil, errors.New("ui: Options.API is required")
	}
	u := &UI{api: opt.API, log: opt.Logger, sessions: newSessionTable(), limiter: newLoginLimiter(),
		mux: http.NewServeMux(), tmpl: map[string]*template.Template{}, static: map[string]string{}}
	if u.log == nil {
		u.log = slog.Default()
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.initMetrics()
	if err := u.hashStatic(); err != nil {
		return nil, err
	}
	base, err := template.New("base").Funcs(u.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: layout: %w", err)
	}
	registryMu.Lock()
	pages := slices.Clone(registry)
	registryMu.Unlock()
	slices.SortFunc(pages, func(a, b Page) int { return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Nav, b.Nav)) })
	for _, tf := range append([]string{loginTemplate, errorTemplate}, pageTemplates(pages)...) {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+tf)
		if err != nil {
			return nil, fmt.Errorf("ui: %s: %w", tf, err)
		}
		u.tmpl[tf] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	u.mux.Handle("GET "+Prefix+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only, no directory listings
			return
		}
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	}))
	u.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, u.home(), http.StatusSeeOther)
	})
	u.loginRoutes()
	u.streamRoutes()
	for i := range pages {
		p := &pages[i]
		u.pages = append(u.pages, p)
		p.Routes(&Routes{u: u, page: p})
	}
	u.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		u.renderError(w, r, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	return u, nil
}

// pageTemplates is the distinct template files of pages.
func pageTemplates(pages []Page) []string {
	var out []string
	for _, p := range pages {
		if p.Template != "" && !slices.Contains(out, p.Template) {
			out = append(out, p.Template)
		}
	}
	return out
}

// home is where a signed-in operator lands: the first page.
func (u *UI) home() string {
	if len(u.pages) == 0 {
		return Prefix + "login"
	}
	return u.pages[0].Path
}

// hashStatic records a short content hash of every static file.
func (u *UI) hashStatic() error {
	return fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		u.static[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
}

func (u *UI) initMetrics() {
	u.set = metrics.NewSet()
	u.loginsOK = u.set.NewCounter(`termd_ui_logins_total{result="ok"}`)
	u.loginsBad = u.set.NewCounter(`termd_ui_logins_total{result="wrong_token"}`)
	u.loginsSlowed = u.set.NewCounter(`termd_ui_logins_total{result="slowed"}`)
	u.csrfRefused = u.set.NewCounter(`termd_ui_csrf_refused_total`)
	u.render = u.set.NewHistogram(`termd_ui_page_seconds`)
	u.set.NewGauge(`termd_ui_sessions`, func() float64 { return float64(u.sessions.len()) })
}

// Metrics is the console's metric set: sign-ins, CSRF refusals, page
// times and sessions.
func (u *UI) Metrics() *metrics.Set { return u.set }

// Close ends the live event streams and waits for them, bounded by ctx.
func (u *UI) Close(ctx context.Context) error {
	u.cancel()
	return lifecycle.Wait(ctx, &u.wg)
}

// contentSecurityPolicy allows only the console's own scripts, styles and
// connections: no inline script or style, no eval, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP sets the security headers every console response carries,
// then routes.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if secureRequest(r) {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	u.mux.ServeHTTP(w, r)
}

// Routes installs one page's handlers.
type Routes struct {
	u    *UI
	page *Page
}

// Handler serves one console request; an error it returns is shown as
// an error page (a GET) or a flash on the page the form came from (a
// POST). An API refusal keeps its HTTP status.
type Handler func(w http.ResponseWriter, r *Request) error

// Get serves GET pattern (a full path under Prefix, with {wildcards})
// to signed-in operators; others are sent to the sign-in form.
func (rt *Routes) Get(pattern string, h Handler) {
	rt.u.mux.HandleFunc("GET "+pattern, rt.u.signedIn(rt.page, h))
}

// Post serves a state-changing POST pattern. The session and its CSRF
// token are checked before h runs; read-only sessions are refused
// before h runs too (the admin API would refuse them anyway).
func (rt *Routes) Post(pattern string, h Handler) {
	rt.u.mux.HandleFunc("POST "+pattern, rt.u.changes(rt.page, h))
}

// Action is a Post that makes one admin API call and goes back to the
// page the form came from with done as the flash message. apiPath may
// hold the pattern's {wildcards}, which are filled in path-escaped:
//
//	rt.Action("/ui/releases/{id}/rollout/pause", "POST", "/v1/releases/{id}/rollout/pause", "Rollout paused.")
func (rt *Routes) Action(pattern, method, apiPath, done string) {
	rt.Post(pattern, func(w http.ResponseWriter, r *Request) error {
		if err := r.API(method, r.fill(apiPath), nil, nil); err != nil {
			return err
		}
		r.Flash(done)
		r.Back(w)
		return nil
	})
}

// renderTime records how long a page took to render.
func (u *UI) renderTime(start time.Time) { u.render.UpdateDuration(start) }
