// Package admin is termd's operator HTTP API: device queries and actions,
// a presence event stream, backups, and the /healthz, /readyz and /metrics
// probes. It serves on its own listener, apart from the TGP port, and
// reaches the node only through the small Node interface.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/presence/history"
)

// Node is what the API needs of a termd node; *server.Server implements it.
type Node interface {
	Stats() api.Stats
	Device(ctx context.Context, id string) (server.DeviceView, error)
	Devices(ctx context.Context, online *bool, limit int, cursor string) ([]server.DeviceView, string, error)
	Disconnect(id string) bool
	Block(ctx context.Context, id string) error
	Unblock(ctx context.Context, id string) error
	SetKey(ctx context.Context, id string, key []byte) error
	Ready() bool
	// Writable is nil while the store accepts durable writes, else why not
	// (storage.ErrDiskFull).
	Writable() error
}

// Options configure the API.
type Options struct {
	// Token is a bearer token with operator scope, named "admin"
	// (config admin.token). With Tokens empty too, every request that
	// needs a token is refused (config validation normally prevents that).
	Token string
	// Tokens are the named, scoped tokens (config [[admin.tokens]]).
	Tokens []Token
	// OpenProbes serves /healthz, /readyz and /metrics without the token
	// to requests that arrived on a loopback address.
	OpenProbes bool
	// EventBuffer is each /v1/events subscriber's queue, in events; a
	// subscriber that falls further behind loses events (counted and
	// reported in the stream). <= 0 means DefaultEventBuffer.
	EventBuffer int
	// Bus is the presence event bus; nil makes /v1/events unavailable.
	Bus *events.Bus
	// Backup streams a full backup and returns the version it covers;
	// nil makes /v1/backup unavailable.
	Backup func(ctx context.Context, w io.Writer) (uint64, error)
	// Metrics are the metric sets /metrics exposes, in order.
	Metrics []*metrics.Set
	// ExtraMetrics, if set, writes further Prometheus text after the sets
	// (e.g. Badger sizes as gauges).
	ExtraMetrics func(w io.Writer)
	// Services serves /v1/services and /v1/audit; nil: no services.
	Services Services
	// Artifacts serves /v1/artifacts; nil: 503 there.
	Artifacts Artifacts
	// ArtifactInUse, if set, names the releases that still refer to an
	// artifact; DELETE /v1/artifacts/{sha256} is refused (409) while any do.
	ArtifactInUse func(sha [32]byte) []string
	// Releases serves /v1/releases and device upgrade history; nil: none.
	Releases Releases
	// Schedule is upgrade scheduling (campaigns, nodes, plan); nil: 503.
	Schedule Scheduler
	// Logger receives request failures and operator actions; nil → slog.Default().
	Logger *slog.Logger
	// Outbox is the notification outbox (GET /v1/outbox); nil: empty.
	Outbox Outbox
	// OnlineHistory serves GET /v1/devices/{id}/online-hours; nil: 503.
	OnlineHistory *history.History
	// Groups serves /v1/groups; nil: 503 there.
	Groups Groups
	// Trend serves GET /v1/stats/online-trend; nil: 503 there.
	Trend *presence.Trend
	// Versions feeds GET /v1/fleet's app versions; nil: none listed.
	Versions AppVersions
	// Cooldowns lists duplicate-device cool-downs for GET /v1/alerts
	// (up to limit, and the total); nil: none.
	Cooldowns func(limit int) ([]api.Cooldown, int)
	// OperatorAudit records every state-changing request made with a
	// token, before its answer, and serves GET /v1/operator-audit; nil:
	// nothing is recorded and that endpoint answers 503.
	OperatorAudit OperatorAudit
	// DeviceFilters keeps the saved device searches of
	// /v1/device-filters; nil: 503 there.
	DeviceFilters DeviceFilters
}

// Token is one accepted bearer token, known by its SHA-256 only.
type Token struct {
	// Name identifies the holder in logs and the audit.
	Name string
	// Scope is config.ScopeRead, config.ScopeOperator or config.ScopeNode.
	Scope string
	// Node is the download node a ScopeNode token reports for.
	Node string
	// SHA256 is the token's hash.
	SHA256 [sha256.Size]byte
}

// TokensFromConfig turns config's admin.token and [[admin.tokens]]
// (validated) into the API's token list.
func TokensFromConfig(c config.Admin) ([]Token, error) {
	var out []Token
	if c.Token != "" {
		out = append(out, Token{Name: config.LegacyTokenName, Scope: config.ScopeOperator, SHA256: sha256.Sum256([]byte(c.Token))})
	}
	for i, t := range c.Tokens {
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("admin.tokens[%d].sha256 %q is not %d hex digits", i, t.SHA256, 2*sha256.Size)
		}
		tk := Token{Name: t.Name, Scope: t.Scope, Node: t.Node}
		copy(tk.SHA256[:], b)
		out = append(out, tk)
	}
	return out, nil
}

// Defaults and bounds of the API.
const (
	// DefaultEventBuffer is the per-subscriber event queue when
	// Options.EventBuffer is not set (matches config.Admin's default).
	DefaultEventBuffer = 1024
	// DefaultPageSize and MaxPageSize bound GET /v1/devices?limit=.
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// keepaliveInterval is the period of the event stream's keepalive
	// comment, which keeps proxies from timing the stream out and lets
	// the handler notice a vanished client.
	keepaliveInterval = 15 * time.Second
	// streamWriteTimeout bounds one write to an event stream: a client
	// that stops reading is dropped instead of holding a subscription.
	streamWriteTimeout = 30 * time.Second
	// maxBodyBytes bounds request bodies (the only one is a 64-hex key).
	maxBodyBytes = 4 << 10
)

// handler is the API's http.Handler.
type handler struct {
	node      Node
	opt       Options
	log       *slog.Logger
	tokens    []Token
	mux       *http.ServeMux
	keepalive time.Duration
	// backupBusy is set while a backup streams (one at a time).
	backupBusy atomic.Bool
	// backupTimeout bounds each backup chunk's write (backupWriteTimeout;
	// tests shorten it).
	backupTimeout time.Duration
}

// New returns the API's handler. Routes that need the token answer 401
// before anything else, so an unauthenticated client learns nothing about
// which paths exist.
func New(node Node, opt Options) http.Handler {
	h := &handler{node: node, opt: opt, log: opt.Logger, keepalive: keepaliveInterval, backupTimeout: backupWriteTimeout}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.opt.EventBuffer <= 0 {
		h.opt.EventBuffer = DefaultEventBuffer
	}
	if opt.Token != "" {
		h.tokens = append(h.tokens, Token{Name: config.LegacyTokenName, Scope: config.ScopeOperator, SHA256: sha256.Sum256([]byte(opt.Token))})
	}
	h.tokens = append(h.tokens, opt.Tokens...)
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", h.healthz)
	m.HandleFunc("GET /readyz", h.readyz)
	m.HandleFunc("GET /metrics", h.metrics)
	m.HandleFunc("GET /v1/stats", h.stats)
	m.HandleFunc("GET /v1/devices", h.devices)
	m.HandleFunc("GET /v1/devices/{id}", h.device)
	m.HandleFunc("POST /v1/devices/bulk", h.bulk)
	m.HandleFunc("POST /v1/devices/{id}/block", h.block)
	m.HandleFunc("POST /v1/devices/{id}/unblock", h.unblock)
	m.HandleFunc("POST /v1/devices/{id}/disconnect", h.disconnect)
	m.HandleFunc("PUT /v1/devices/{id}/key", h.setKey)
	m.HandleFunc("GET /v1/devices/{id}/online-hours", h.onlineHours)
	m.HandleFunc("GET /v1/events", h.events)
	m.HandleFunc("GET /v1/backup", h.backup)
	m.HandleFunc("GET /v1/services", h.services)
	m.HandleFunc("GET /v1/services/{id}", h.service)
	m.HandleFunc("POST /v1/services/{id}/start", h.operate(config.OpStart))
	m.HandleFunc("POST /v1/services/{id}/stop", h.operate(config.OpStop))
	m.HandleFunc("POST /v1/services/{id}/restart", h.operate(config.OpRestart))
	m.HandleFunc("GET /v1/audit", h.auditLog)
	m.HandleFunc("GET /v1/operator-audit", h.operatorAuditLog)
	h.registerDeviceFilters(m)
	h.artifactRoutes(m)
	h.registerNotifyRoutes(m)
	h.registerReleases(m)
	h.registerRollouts(m)
	h.registerSchedule(m)
	h.registerGroups(m)
	h.registerConsole(m)
	// Go's profiler, behind the token like /v1: operators profile a live
	// node without a restart (`go tool pprof` with an Authorization header).
	m.HandleFunc("GET /debug/pprof/", pprof.Index)
	m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	h.mux = m
	return h
}

// ServeHTTP authorises, then routes; the mux's own 404 and 405 answers
// are rewritten as JSON errors.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, ok := h.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="termd"`)
		writeHTTPError(w, http.StatusUnauthorized, api.CodeUnauthorized, "missing or invalid bearer token")
		return
	}
	route, pattern := h.mux.Handler(r)
	if pattern != "" {
		var aw *auditWriter
		if h.opt.OperatorAudit != nil && audited(r, tok) {
			aw = &auditWriter{ResponseWriter: w, h: h, r: r, tok: tok, route: pattern}
			defer aw.finish()
			w = aw
			r = r.WithContext(context.WithValue(r.Context(), auditKey{}, aw))
			aw.r = r
		}
		if tok != nil && tok.Scope == config.ScopeNode && (r.Method != http.MethodPost || r.URL.Path != "/v1/nodes/"+tok.Node+"/load") {
			h.log.Warn("admin request refused: node token", "token", tok.Name, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeCode(w, protocol.Forbidden, fmt.Sprintf("token %q may only POST /v1/nodes/%s/load", tok.Name, tok.Node))
			return
		}
		if tok != nil && tok.Scope == config.ScopeRead && needsOperator(r) {
			h.log.Warn("admin request refused: token scope", "token", tok.Name, "scope", tok.Scope,
				"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeCode(w, protocol.Forbidden, fmt.Sprintf("token %q has scope %s; %s %s needs an %s token",
				tok.Name, tok.Scope, r.Method, r.URL.Path, config.ScopeOperator))
			return
		}
		if tok != nil {
			r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
		}
		// Every POST and PUT writes a durable record (a device change or
		// an audit record): refused up front while the store cannot take
		// it, so no operation runs that could not be recorded.
		if r.Method != http.MethodGet {
			if err := h.node.Writable(); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		if aw != nil {
			aw.r = r // the request the mux fills with path values
		}
		h.mux.ServeHTTP(w, r)
		return
	}
	// No pattern: the mux would answer 404 or 405 (with Allow) in plain
	// text. Run it against a scratch writer to learn which.
	var scratch headerOnly
	route.ServeHTTP(&scratch, r)
	if scratch.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", scratch.Header().Get("Allow"))
		writeHTTPError(w, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	writeCode(w, protocol.NotFound, "no such endpoint: "+r.URL.Path)
}

// probePaths need no token when probes are open and the request came in
// on a loopback address.
var probePaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// needsOperator reports whether r needs an operator token: anything but
// GET and HEAD, and the backup (it holds every device key) and profiler
// even though they are GETs.
func needsOperator(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	return r.URL.Path == "/v1/backup" || strings.HasPrefix(r.URL.Path, "/debug/pprof/")
}

// tokenKey is the context key of the request's *Token.
type tokenKey struct{}

// operatorName is the name of the token r was authorised with ("" for
// an open probe), for logs and the audit.
func operatorName(r *http.Request) string {
	if t, ok := r.Context().Value(tokenKey{}).(*Token); ok {
		return t.Name
	}
	return ""
}

// authorized returns the token r carries (nil for an open probe) and
// whether r may proceed. The presented token is hashed and compared with
// every entry, in constant time and without stopping at a match, so the
// timing tells neither whether nor which token matched.
func (h *handler) authorized(r *http.Request) (*Token, bool) {
	if probePaths[r.URL.Path] && h.opt.OpenProbes && arrivedOnLoopback(r) {
		return nil, true
	}
	if len(h.tokens) == 0 {
		return nil, false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found, idx := 0, 0
	for i := range h.tokens {
		m := subtle.ConstantTimeCompare(got[:], h.tokens[i].SHA256[:])
		idx = subtle.ConstantTimeSelect(m, i, idx)
		found |= m
	}
	if found != 1 {
		return nil, false
	}
	return &h.tokens[idx], true
}

// arrivedOnLoopback reports whether the connection's local address (the
// address the client dialled) is a loopback address, which only a
// process on this host can reach.
func arrivedOnLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// headerOnly is a ResponseWriter that keeps the header and status and
// discards the body.
type headerOnly struct {
	h    http.Header
	code int
}

func (s *headerOnly) Header() http.Header {
	if s.h == nil {
		s.h = http.Header{}
	}
	return s.h
}
func (s *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *headerOnly) WriteHeader(code int)        { s.code = code }

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.node.Ready() {
		writeCode(w, protocol.Unavailable, "node is not accepting terminals")
		return
	}
	if err := h.node.Writable(); err != nil {
		// Terminals are still served, but nothing durable can be recorded:
		// a load balancer should send the fleet elsewhere.
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// metrics writes Prometheus text: the node's sets, the extras, then the
// process_* and go_* metrics.
func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, s := range h.opt.Metrics {
		s.WritePrometheus(w)
	}
	if h.opt.ExtraMetrics != nil {
		h.opt.ExtraMetrics(w)
	}
	metrics.WriteProcessMetrics(w)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.node.Stats())
}
