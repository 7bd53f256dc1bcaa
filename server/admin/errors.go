package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/termd/termd/server"
	"github.com/termd/termd/storage"
)

// Code is the stable identifier of an admin API error, sent as the
// `code` field of every error body. Scripts match on it; the message
// next to it is for people and may change. docs/admin-api.md lists the
// same values.
type Code string

// Error codes, each with the HTTP status it is sent with.
const (
	// CodeUnauthorized (401): the bearer token is missing or wrong.
	CodeUnauthorized Code = "unauthorized"
	// CodeNotFound (404): no such device, route, or (disconnect) the
	// device is not online.
	CodeNotFound Code = "not_found"
	// CodeBadRequest (400): a malformed parameter, id, key or body.
	CodeBadRequest Code = "bad_request"
	// CodeMethodNotAllowed (405): the route exists with other methods
	// (listed in the Allow header).
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeInternal (500): the node failed; the request may be retried.
	CodeInternal Code = "internal"
	// CodeUnavailable (503): the node is not ready, is stopping, or the
	// feature is not configured on it.
	CodeUnavailable Code = "unavailable"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client going away is not our error
}

// writeError writes an error body.
func writeError(w http.ResponseWriter, status int, code Code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

// writeNodeError maps an error from the node to a status and code.
// Anything not recognised is internal and is logged by the caller.
func (h *handler) writeNodeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "device not found")
	case errors.Is(err, storage.ErrInvalid), errors.Is(err, server.ErrBadKey):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, storage.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "store is closed (node stopping)")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away or the listener is stopping; nobody reads this.
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "request canceled")
	default:
		h.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}
