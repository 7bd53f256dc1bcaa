package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/storage"
)

// Services is service control as the admin API needs it
// (*control.Controller implements it). Its errors carry their status
// (*protocol.Error), answered through the one table in errors.go.
type Services interface {
	Services() []api.Service
	Service(id string) (api.Service, error)
	Operate(ctx context.Context, id, op, remote string) (control.OpResult, error)
	Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, error)
}

// services serves GET /v1/services.
func (h *handler) services(w http.ResponseWriter, _ *http.Request) {
	out := api.ServiceList{Services: []api.Service{}}
	if h.opt.Services != nil {
		out.Services = h.opt.Services.Services()
	}
	writeJSON(w, http.StatusOK, out)
}

// service serves GET /v1/services/{id}.
func (h *handler) service(w http.ResponseWriter, r *http.Request) {
	if h.opt.Services == nil {
		writeProblem(w, control.ErrUnknownService)
		return
	}
	v, err := h.opt.Services.Service(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// operate serves POST /v1/services/{id}/{op} for start, stop and restart:
// it waits for the operation (at most the service's timeout for it).
func (h *handler) operate(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if h.opt.Services == nil {
			writeProblem(w, control.ErrUnknownService)
			return
		}
		ctx := control.WithOperator(r.Context(), operatorName(r))
		res, err := h.opt.Services.Operate(ctx, id, op, r.RemoteAddr)
		h.log.Info("operator action", "action", "service "+op, "service", id, "operator", operatorName(r), "remote", r.RemoteAddr, "err", err)
		switch {
		case err != nil:
			h.fail(w, r, err)
		case res.TimedOut:
			he := httpErrorOf(protocol.Timeout)
			writeJSON(w, he.status, api.OpTimeout{
				Code: he.code, Message: "the operation did not finish in time; it may still complete", Service: res.Service,
			})
		default:
			writeJSON(w, http.StatusOK, res.Service)
		}
	}
}

// audit serves GET /v1/audit?device=&service=&limit=&before= and the
// console's filters op=, result=, source=, operator=, since=, until=
// (services_audit.go).
func (h *handler) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.AuditFilter{DeviceID: q.Get("device"), Service: q.Get("service"), Limit: DefaultPageSize}
	if len(f.DeviceID) > storage.MaxIDLen || len(f.Service) > config.MaxServiceID {
		writeCode(w, protocol.BadRequest, "device or service is too long")
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			writeCode(w, protocol.BadRequest, fmt.Sprintf("limit must be an integer in 1..%d", MaxPageSize))
			return
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			writeCode(w, protocol.BadRequest, "before must be a positive integer (a record's seq)")
			return
		}
		f.Before = n
	}
	x, err := auditExtra(q)
	if err != nil {
		writeCode(w, protocol.BadRequest, err.Error())
		return
	}
	out := api.AuditList{Records: []api.AuditRecord{}}
	if h.opt.Services != nil {
		if out, err = h.auditPage(r.Context(), f, x); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// auditJSON is an audit record as the API shows it.
func auditJSON(r storage.AuditRecord) api.AuditRecord {
	return api.AuditRecord{
		Seq: r.Seq, AtMs: r.At, DurationMs: r.DurationMs, Source: r.Source,
		DeviceID: r.DeviceID, SessionID: r.SessionID, Remote: r.Remote, Operator: r.Operator,
		RequestID: r.RequestID, HasRequestID: r.HasRequestID,
		Service: r.Service, Op: r.Op, Args: r.Args, Status: r.Status, Message: r.Message,
		State: r.State, PID: r.PID, ExitCode: r.ExitCode, SinceMs: r.SinceMs, Output: r.Output,
		Repeat: r.Repeat, Count: r.Count, LastAtMs: r.LastAt, ArgCount: r.ArgCount, ArgsSHA256: r.ArgsDigest,
	}
}
