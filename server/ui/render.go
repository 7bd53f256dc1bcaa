package ui

// Rendering: the view every template gets, and the helpers templates use
// (times, numbers, action buttons, paging, static URLs).

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Template files that are not pages.
const (
	loginTemplate = "login.html"
	errorTemplate = "error.html"
)

// View is what every console template is executed with.
type View struct {
	// Title is the page's title (the nav label unless the handler says).
	Title string
	// Nav is the navigation bar.
	Nav []NavItem
	// Session is the operator's session (nil on the sign-in page).
	Session *Session
	// CanOperate: show buttons and forms that change things. False for
	// read-only tokens: templates wrap every such control in
	// {{if $.CanOperate}} (the act helper does it itself).
	CanOperate bool
	// CSRF is the session's token for hand-written forms ({{csrf $}}).
	CSRF string
	// Flash is a one-time message from the last action.
	Flash    string
	FlashErr bool
	// Path and Query are the current request's, for back links and paging.
	Path  string
	Query url.Values
	// Data is the page's own data.
	Data any
}

// NavItem is one entry of the navigation bar.
type NavItem struct {
	Label, Path string
	Active      bool
}

// Render executes the page's "layout" (the layout around its "content")
// with data as View.Data.
func (r *Request) Render(w http.ResponseWriter, title string, data any) error {
	return r.renderTemplate(w, "layout", title, data)
}

// Partial executes one named template of the page's file alone (an htmx
// fragment), with the same View.
func (r *Request) Partial(w http.ResponseWriter, name string, data any) error {
	return r.renderTemplate(w, name, "", data)
}

func (r *Request) renderTemplate(w http.ResponseWriter, name, title string, data any) error {
	t := r.u.tmpl[r.page.Template]
	if t == nil {
		return fmt.Errorf("page %s has no template %q", r.page.Nav, r.page.Template)
	}
	if title == "" {
		title = r.page.Nav
	}
	v := r.u.view(r.Request, r.Session, title, data)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := buf.WriteTo(w)
	return err
}

// view builds the View of a request.
func (u *UI) view(r *http.Request, s *Session, title string, data any) *View {
	v := &View{Title: title, Session: s, Path: r.URL.Path, Query: r.URL.Query(), Data: data}
	if s != nil {
		v.CanOperate, v.CSRF = s.CanOperate(), s.CSRF
		v.Flash, v.FlashErr = u.sessions.takeFlash(s)
		for _, p := range u.pages {
			if p.Nav == "" {
				continue // a page reached from another (a device's detail)
			}
			v.Nav = append(v.Nav, NavItem{Label: p.Nav, Path: p.Path, Active: r.URL.Path == p.Path || strings.HasPrefix(r.URL.Path, p.Path+"/")})
		}
	}
	return v
}

// renderError shows an error page with status.
func (u *UI) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s := u.session(r)
	var buf bytes.Buffer
	if err := u.tmpl[errorTemplate].ExecuteTemplate(&buf, "layout", u.view(r, s, http.StatusText(status), msg)); err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// funcs are the helpers every template may use.
func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"when":      when,
		"ago":       ago,
		"num":       num,
		"pct":       pct,
		"act":       act,
		"csrf":      csrfInput,
		"next":      nextPage,
		"static":    u.staticURL,
		"path":      joinPath,
		"searchURL": searchURL,
		"bar":       barWidth,
	}
}

// when renders a unix-ms time as <time> in UTC; ui.js shows it in the
// operator's zone and keeps UTC in the tooltip. 0 is "never".
func when(ms int64) template.HTML {
	if ms == 0 {
		return "never"
	}
	t := time.UnixMilli(ms).UTC()
	utc := t.Format("2006-01-02 15:04:05") + " UTC"
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.Format(time.RFC3339Nano), utc, utc))
}

// ago is how long before now a unix-ms time was, in words.
func ago(ms int64) string {
	if ms == 0 {
		return "never"
	}
	d := time.Since(time.UnixMilli(ms))
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// num formats an integer with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pct formats a fraction as a percentage.
func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " %" }

// act renders a state-changing button as its own small form: POST to
// action with the CSRF token and the current page to come back to, and
// a confirmation dialog (ui.js) when confirm is not empty. For a
// read-only session it renders nothing.
func act(v *View, action, label, confirm string) template.HTML {
	if v == nil || !v.CanOperate {
		return ""
	}
	e := template.HTMLEscapeString
	back := v.Path
	if q := v.Query.Encode(); q != "" {
		back += "?" + q
	}
	return template.HTML(fmt.Sprintf(`<form method="post" action="%s" class="action"%s>`+
		`<input type="hidden" name="%s" value="%s"><input type="hidden" name="back" value="%s">`+
		`<button type="submit">%s</button></form>`,
		e(action), confirmAttr(confirm), csrfField, e(v.CSRF), e(back), e(label)))
}

func confirmAttr(c string) string {
	if c == "" {
		return ""
	}
	return ` data-confirm="` + template.HTMLEscapeString(c) + `"`
}

// csrfInput is the hidden CSRF field of a hand-written form.
func csrfInput(v *View) template.HTML {
	if v == nil {
		return ""
	}
	return template.HTML(fmt.Sprintf(`<input type="hidden" name="%s" value="%s">`, csrfField, template.HTMLEscapeString(v.CSRF)))
}

// nextPage is the current page's URL with cursor set: the "next page"
// link of a list paged by the registry's cursor ("" on the last page).
func nextPage(v *View, cursor string) string {
	if cursor == "" {
		return ""
	}
	q := url.Values{}
	for k, vs := range v.Query {
		q[k] = vs
	}
	q.Set("cursor", cursor)
	return v.Path + "?" + q.Encode()
}

// staticURL is a static file's URL with its content hash, so browsers
// may cache it for good.
func (u *UI) staticURL(name string) string {
	return Prefix + "static/" + name + "?v=" + u.static[name]
}

// joinPath joins a console path with path-escaped segments:
// {{path "/ui/releases" .ID "rollout/pause"}} (the last argument may
// hold slashes of its own; middle ones are escaped).
func joinPath(base string, segs ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(base, "/"))
	for i, s := range segs {
		b.WriteByte('/')
		if i == len(segs)-1 && len(segs) > 1 {
			b.WriteString(s)
		} else {
			b.WriteString(url.PathEscape(s))
		}
	}
	return b.String()
}
