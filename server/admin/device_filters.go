package admin

// Saved device searches (docs/admin-api.md §25): a name for a query of
// GET /v1/devices, kept durably and shared by the node's operators. A
// query is checked as the search would check it, and stored in one
// canonical form (known keys only, sorted, empty values dropped), so a
// saved filter always runs and two saves of the same search read alike.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// DeviceFilters stores saved device searches (storage.DeviceFilters).
type DeviceFilters interface {
	PutDeviceFilter(ctx context.Context, f storage.DeviceFilter) (storage.DeviceFilter, bool, error)
	DeleteDeviceFilter(ctx context.Context, name string) error
	DeviceFilter(ctx context.Context, name string) (storage.DeviceFilter, error)
	ListDeviceFilters(ctx context.Context) ([]storage.DeviceFilter, error)
}

// maxDeviceFilterBody bounds PUT /v1/device-filters/{name}'s body.
const maxDeviceFilterBody = 16 << 10

var errNoDeviceFilters = &protocol.Error{Code: protocol.Unavailable, Message: "this node keeps no saved device filters"}

func (h *handler) registerDeviceFilters(m *http.ServeMux) {
	for pattern, fn := range map[string]http.HandlerFunc{
		"GET /v1/device-filters":           h.listDeviceFilters,
		"GET /v1/device-filters/{name}":    h.getDeviceFilter,
		"PUT /v1/device-filters/{name}":    h.putDeviceFilter,
		"DELETE /v1/device-filters/{name}": h.deleteDeviceFilter,
	} {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if h.opt.DeviceFilters == nil {
				writeProblem(w, errNoDeviceFilters)
				return
			}
			fn(w, r)
		})
	}
}

// CanonicalDeviceQuery checks a device search query as GET /v1/devices
// does, without running it, and returns it in canonical form. Unknown
// keys (paging's limit and cursor included) are refused: a saved filter
// with a misspelt key would match more than its author meant.
func CanonicalDeviceQuery(raw string) (string, error) {
	// A query pasted from a browser's address bar may keep its "?".
	q, err := url.ParseQuery(strings.TrimPrefix(strings.TrimSpace(raw), "?"))
	if err != nil {
		return "", badRequest("query: %v", err)
	}
	out := url.Values{}
	for k, vs := range q {
		if !slices.Contains(api.DeviceSearchKeys, k) {
			return "", badRequest("query: %q is not a device search filter (%s)", k, strings.Join(api.DeviceSearchKeys, ", "))
		}
		if len(vs) > 1 {
			return "", badRequest("query: %s is given %d times", k, len(vs))
		}
		if v := strings.TrimSpace(vs[0]); v != "" {
			out.Set(k, v)
		}
	}
	if err := checkDeviceQuery(out); err != nil {
		return "", err
	}
	return out.Encode(), nil
}

func (h *handler) listDeviceFilters(w http.ResponseWriter, r *http.Request) {
	fs, err := h.opt.DeviceFilters.ListDeviceFilters(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.DeviceFilterList{Filters: make([]api.DeviceFilter, 0, len(fs))}
	for _, f := range fs {
		out.Filters = append(out.Filters, apiDeviceFilter(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getDeviceFilter(w http.ResponseWriter, r *http.Request) {
	f, err := h.opt.DeviceFilters.DeviceFilter(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, deviceFilterErr(err, r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, apiDeviceFilter(f))
}

// putDeviceFilter saves the body's query under the path's name: 201 for
// a new filter, 200 for a replaced one.
func (h *handler) putDeviceFilter(w http.ResponseWriter, r *http.Request) {
	var in api.DeviceFilterSave
	if err := readJSONBody(r, &in, maxDeviceFilterBody); err != nil {
		h.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := storage.CheckDeviceFilterName(name); err != nil {
		h.fail(w, r, err)
		return
	}
	query, err := CanonicalDeviceQuery(in.Query)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now, who := time.Now().UnixMilli(), operatorName(r)
	f, created, err := h.opt.DeviceFilters.PutDeviceFilter(r.Context(), storage.DeviceFilter{Name: name, Query: query,
		CreatedBy: who, CreatedMs: now, UpdatedBy: who, UpdatedMs: now})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("operator action", "action", "device filter save", "filter", name, "query", query, "operator", who, "remote", r.RemoteAddr)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, apiDeviceFilter(f))
}

func (h *handler) deleteDeviceFilter(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.opt.DeviceFilters.DeleteDeviceFilter(r.Context(), name); err != nil {
		h.fail(w, r, deviceFilterErr(err, name))
		return
	}
	h.log.Info("operator action", "action", "device filter delete", "filter", name, "operator", operatorName(r), "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// deviceFilterErr names the filter in a not-found refusal.
func deviceFilterErr(err error, name string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return &protocol.Error{Code: protocol.NotFound, Message: "no saved device filter " + strconv.Quote(name)}
	}
	return err
}

func apiDeviceFilter(f storage.DeviceFilter) api.DeviceFilter {
	return api.DeviceFilter{Name: f.Name, Query: f.Query, CreatedBy: f.CreatedBy, CreatedMs: f.CreatedMs,
		UpdatedBy: f.UpdatedBy, UpdatedMs: f.UpdatedMs}
}
