package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/storage"
)

// Services is service control as the admin API needs it
// (*control.Controller implements it).
type Services interface {
	Services() []control.ServiceView
	Service(id string) (control.ServiceView, error)
	Operate(ctx context.Context, id, op, remote string) (control.OpResult, error)
	Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, error)
}

// Errors of the service endpoints.
const (
	// CodeConflict (409): another operation on the service is in progress.
	CodeConflict Code = "conflict"
	// CodeTimeout (504): the operation did not finish within the service's
	// timeout; the body is the service as it was then (the operation may
	// still complete: see GET /v1/services/{id} or the event stream).
	CodeTimeout Code = "timeout"
)

// serviceList is the body of GET /v1/services.
type serviceList struct {
	Services []control.ServiceView `json:"services"`
}

// auditList is the body of GET /v1/audit.
type auditList struct {
	Records []storage.AuditRecord `json:"records"`
	// NextBefore is the `before` of the next (older) page; 0 when this
	// page is the last.
	NextBefore uint64 `json:"next_before,omitempty"`
}

// services serves GET /v1/services.
func (h *handler) services(w http.ResponseWriter, _ *http.Request) {
	if h.opt.Services == nil {
		writeJSON(w, http.StatusOK, serviceList{Services: []control.ServiceView{}})
		return
	}
	writeJSON(w, http.StatusOK, serviceList{Services: h.opt.Services.Services()})
}

// service serves GET /v1/services/{id}.
func (h *handler) service(w http.ResponseWriter, r *http.Request) {
	if h.opt.Services == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "unknown service")
		return
	}
	v, err := h.opt.Services.Service(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "unknown service")
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
			writeError(w, http.StatusNotFound, CodeNotFound, "unknown service")
			return
		}
		res, err := h.opt.Services.Operate(r.Context(), id, op, r.RemoteAddr)
		h.log.Info("operator action", "action", "service "+op, "service", id, "remote", r.RemoteAddr, "err", err)
		switch {
		case errors.Is(err, control.ErrUnknownService):
			writeError(w, http.StatusNotFound, CodeNotFound, "unknown service")
		case errors.Is(err, control.ErrBusy):
			writeError(w, http.StatusConflict, CodeConflict, "an operation on this service is in progress")
		case errors.Is(err, control.ErrShuttingDown):
			writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "termd is stopping")
		case err != nil:
			h.log.Error("service operation failed", "service", id, "op", op, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		case res.TimedOut:
			writeJSON(w, http.StatusGatewayTimeout, struct {
				Code    Code                `json:"code"`
				Message string              `json:"message"`
				Service control.ServiceView `json:"service"`
			}{CodeTimeout, "the operation did not finish in time; it may still complete", res.Service})
		default:
			writeJSON(w, http.StatusOK, res.Service)
		}
	}
}

// audit serves GET /v1/audit?device=&service=&limit=&before=.
func (h *handler) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.AuditFilter{DeviceID: q.Get("device"), Service: q.Get("service"), Limit: DefaultPageSize}
	if len(f.DeviceID) > storage.MaxIDLen || len(f.Service) > config.MaxServiceID {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "device or service is too long")
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be an integer in 1..%d", MaxPageSize))
			return
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "before must be a positive integer (a record's seq)")
			return
		}
		f.Before = n
	}
	out := auditList{Records: []storage.AuditRecord{}}
	if h.opt.Services != nil {
		recs, err := h.opt.Services.Audit(r.Context(), f)
		if err != nil {
			h.writeNodeError(w, r, err)
			return
		}
		out.Records = recs
		if len(recs) == f.Limit {
			out.NextBefore = recs[len(recs)-1].Seq
		}
	}
	writeJSON(w, http.StatusOK, out)
}
