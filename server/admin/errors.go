package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
)

// httpError is how one TGP status is answered over HTTP.
type httpError struct {
	status int
	code   api.ErrorCode
}

// httpErrors is the one table from the status codes domain code returns
// (spec §2) to the admin API's HTTP status and stable code. Terminals and
// operators thus hear the same refusal in their own protocol.
var httpErrors = map[protocol.Code]httpError{
	protocol.BadRequest:      {http.StatusBadRequest, api.CodeBadRequest},
	protocol.Unauthenticated: {http.StatusUnauthorized, api.CodeUnauthorized},
	protocol.Forbidden:       {http.StatusForbidden, api.CodeForbidden},
	protocol.NotFound:        {http.StatusNotFound, api.CodeNotFound},
	protocol.Conflict:        {http.StatusConflict, api.CodeConflict},
	protocol.RateLimited:     {http.StatusTooManyRequests, api.CodeRateLimited},
	protocol.Unavailable:     {http.StatusServiceUnavailable, api.CodeUnavailable},
	protocol.Internal:        {http.StatusInternalServerError, api.CodeInternal},
	protocol.BadVersion:      {http.StatusBadRequest, api.CodeBadRequest},
	protocol.FrameTooLarge:   {http.StatusBadRequest, api.CodeBadRequest},
	protocol.UnknownType:     {http.StatusBadRequest, api.CodeBadRequest},
	protocol.Expired:         {http.StatusGone, api.CodeExpired},
	protocol.Timeout:         {http.StatusGatewayTimeout, api.CodeTimeout},
}

// httpErrorOf is code's entry (internal for a code the table lacks).
func httpErrorOf(code protocol.Code) httpError {
	if he, ok := httpErrors[code]; ok {
		return he
	}
	return httpErrors[protocol.Internal]
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client going away is not our error
}

// writeHTTPError writes an error that has no TGP status (401 before
// anything is known, 405 from the router).
func writeHTTPError(w http.ResponseWriter, status int, code api.ErrorCode, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}

// writeCode writes a refusal with a TGP status and a message.
func writeCode(w http.ResponseWriter, code protocol.Code, msg string) {
	writeProblem(w, &protocol.Error{Code: code, Message: msg})
}

// writeProblem writes e through the table; a retry_after_ms also goes out
// as Retry-After (whole seconds, rounded up).
func writeProblem(w http.ResponseWriter, e *protocol.Error) {
	he := httpErrorOf(e.Code)
	if e.RetryAfterMs > 0 {
		w.Header().Set("Retry-After", strconv.FormatUint((e.RetryAfterMs+999)/1000, 10))
	}
	writeJSON(w, he.status, api.Error{Code: he.code, Message: e.Message, RetryAfterMs: e.RetryAfterMs})
}

// fail answers err from the node or a feature. Domain errors carry their
// status (server.AsError maps the storage errors too); anything else is
// internal and logged with its details, which the client is not shown.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away or the listener is stopping; nobody reads this.
		writeCode(w, protocol.Unavailable, "request canceled")
		return
	}
	e := server.AsError(err)
	if e.Code == protocol.Internal {
		h.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		if !errors.As(err, new(*protocol.Error)) {
			// Operators may see what failed; terminals never do.
			e = &protocol.Error{Code: protocol.Internal, Message: err.Error()}
		}
	}
	writeProblem(w, e)
}
