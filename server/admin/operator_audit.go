package admin

// The operator audit (docs/admin-api.md §22): every state-changing
// request (anything but GET and HEAD) made with a token is recorded with
// the token's name and scope, the source address, the method, path and
// route, the ids it acted on and the status answered. The record is
// committed to the store before the status goes out: an answer the
// client sees is always in the audit, even after kill -9. Node tokens'
// load reports are routine telemetry, not operator actions, and are not
// recorded; requests without a valid token (401) are not either, so a
// stranger cannot fill the log.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// OperatorAudit stores operator records (storage.OperatorAudit).
type OperatorAudit interface {
	AppendOperator(ctx context.Context, rec storage.OperatorRecord) (uint64, error)
	ListOperator(ctx context.Context, f storage.OperatorFilter) ([]storage.OperatorRecord, uint64, error)
}

// maxFilterValue bounds a text filter of the audit and device queries.
const maxFilterValue = 1024

// audited reports whether the request with tok is recorded.
func audited(r *http.Request, tok *Token) bool {
	if tok == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	return !(tok.Scope == config.ScopeNode && r.Method == http.MethodPost && r.URL.Path == "/v1/nodes/"+tok.Node+"/load")
}

// auditWriter commits the request's record when its status is decided:
// at WriteHeader for a success, at the first Write for a refusal (so its
// message is kept), or when the handler returns having written nothing.
// If the record cannot be stored the client gets 500 instead of a
// success it could not audit.
type auditWriter struct {
	http.ResponseWriter
	h     *handler
	r     *http.Request
	tok   *Token
	route string
	// targets are ids a handler named (bulk requests), total how many.
	targets []string
	total   int
	status  int  // decided, not yet committed (a refusal awaiting its body)
	done    bool // committed (or given up); writes pass through or are dropped
	swallow bool // the handler's answer is replaced by the audit failure
}

// auditKey is the context key of the request's *auditWriter.
type auditKey struct{}

// auditTargets names the ids a request acts on beyond its path values
// (a bulk request's devices): the first storage.MaxOperatorTargets are
// kept, total is how many there are.
func auditTargets(r *http.Request, ids []string, total int) {
	if a, ok := r.Context().Value(auditKey{}).(*auditWriter); ok {
		a.targets = append(a.targets[:0], ids[:min(len(ids), storage.MaxOperatorTargets)]...)
		a.total = total
	}
}

func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *auditWriter) WriteHeader(code int) {
	if a.done || a.status != 0 {
		return
	}
	if code >= 400 {
		a.status = code // commit with the message at the first Write
		return
	}
	a.commit(code, "")
	if !a.swallow {
		a.ResponseWriter.WriteHeader(code)
	}
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if !a.done {
		if a.status == 0 {
			a.WriteHeader(http.StatusOK)
		} else {
			var e api.Error
			_ = json.Unmarshal(b, &e)
			code := a.status
			a.commit(code, e.Message)
			a.ResponseWriter.WriteHeader(code)
		}
	}
	if a.swallow {
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// finish commits a request whose handler wrote nothing (or only a
// refusal's header).
func (a *auditWriter) finish() {
	if a.done {
		return
	}
	code := a.status
	if code == 0 {
		code = http.StatusOK
	}
	a.commit(code, "")
	if !a.swallow {
		a.ResponseWriter.WriteHeader(code)
	}
}

// commit stores the record. It runs without the request's cancellation:
// the operation has run, so the record is written even if the client has
// gone.
func (a *auditWriter) commit(code int, msg string) {
	a.done = true
	rec := storage.OperatorRecord{
		At: time.Now().UnixMilli(), Operator: a.tok.Name, Scope: a.tok.Scope, Remote: a.r.RemoteAddr,
		Method: a.r.Method, Path: a.r.URL.Path, Route: a.route, Status: code, Message: msg,
	}
	rec.Targets = pathTargets(a.r, a.route)
	if len(a.targets) > 0 {
		rec.Targets = append(rec.Targets, a.targets...)
		rec.TargetCount = len(rec.Targets) - len(a.targets) + a.total
	}
	if _, err := a.h.opt.OperatorAudit.AppendOperator(context.WithoutCancel(a.r.Context()), rec); err != nil {
		a.h.log.Error("operator audit record not stored", "operator", rec.Operator, "method", rec.Method, "path", rec.Path,
			"status", code, "err", err)
		if code < 400 {
			// The operation ran but cannot be audited: say so rather than
			// acknowledge it.
			a.swallow = true
			e := httpErrorOf(protocol.Internal)
			writeJSON(a.ResponseWriter, e.status, api.Error{Code: e.code,
				Message: "the request was carried out but its operator audit record could not be stored: " + err.Error()})
		}
	}
}

// pathTargets are the request's path values, in the route's order.
func pathTargets(r *http.Request, route string) []string {
	var out []string
	for {
		i := strings.IndexByte(route, '{')
		j := strings.IndexByte(route, '}')
		if i < 0 || j < i {
			return out
		}
		name := strings.TrimSuffix(route[i+1:j], "...")
		if name != "$" {
			if v := r.PathValue(name); v != "" {
				out = append(out, v)
			}
		}
		route = route[j+1:]
	}
}

// operatorAuditLog serves GET /v1/operator-audit?operator=&method=&target=
// &path=&result=ok|failed&since=&until=&before=&limit=.
func (h *handler) operatorAuditLog(w http.ResponseWriter, r *http.Request) {
	if h.opt.OperatorAudit == nil {
		writeCode(w, protocol.Unavailable, "this node keeps no operator audit")
		return
	}
	f, err := operatorFilter(r)
	if err != nil {
		writeCode(w, protocol.BadRequest, err.Error())
		return
	}
	recs, next, err := h.opt.OperatorAudit.ListOperator(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.OperatorAuditList{Records: make([]api.OperatorRecord, 0, len(recs)), NextBefore: next}
	for _, rec := range recs {
		out.Records = append(out.Records, api.OperatorRecord{Seq: rec.Seq, AtMs: rec.At, Operator: rec.Operator, Scope: rec.Scope,
			Remote: rec.Remote, Method: rec.Method, Path: rec.Path, Route: rec.Route, Targets: rec.Targets,
			TargetCount: rec.TargetCount, Status: rec.Status, Message: rec.Message})
	}
	writeJSON(w, http.StatusOK, out)
}

// operatorFilter parses the audit query.
func operatorFilter(r *http.Request) (storage.OperatorFilter, error) {
	q := r.URL.Query()
	f := storage.OperatorFilter{Operator: q.Get("operator"), Method: strings.ToUpper(q.Get("method")),
		Target: q.Get("target"), PathPrefix: q.Get("path")}
	for _, k := range []string{"operator", "method", "target", "path"} {
		if len(q.Get(k)) > maxFilterValue {
			return f, fmt.Errorf("%s is longer than %d bytes", k, maxFilterValue)
		}
	}
	switch q.Get("result") {
	case "":
	case "ok":
		f.Failed = new(bool)
	case "failed":
		f.Failed = new(bool)
		*f.Failed = true
	default:
		return f, fmt.Errorf("result must be ok or failed")
	}
	var err error
	if f.Since, err = timeParam(q.Get("since")); err != nil {
		return f, fmt.Errorf("since: %v", err)
	}
	if f.Until, err = timeParam(q.Get("until")); err != nil {
		return f, fmt.Errorf("until: %v", err)
	}
	if s := q.Get("before"); s != "" {
		if f.Before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return f, fmt.Errorf("before must be a record seq")
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			return f, fmt.Errorf("limit must be an integer in 1..%d", MaxPageSize)
		}
		f.Limit = n
	}
	return f, nil
}

// timeParam parses a time filter: unix ms or RFC 3339; "" is 0.
func timeParam(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither unix ms nor RFC 3339", s)
	}
	return t.UnixMilli(), nil
}
