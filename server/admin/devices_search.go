package admin

// Device search (GET /v1/devices filters) and bulk actions (POST
// /v1/devices/bulk), docs/admin-api.md §22. The filters run over the
// registry in id order, a page of MaxPageSize records at a time, until a
// page of matches is full: no index is kept (a scan of 19,000 devices is
// a few tens of milliseconds, docs/console.md "Figures"). The filters on
// group, app version and rollout state first build the set of matching
// ids from their own stores, once per request.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
)

const (
	// MaxBulk bounds the devices one bulk action acts on.
	MaxBulk = 10_000
	// maxBulkBody bounds a bulk request's body (10,000 ids).
	maxBulkBody = 1 << 20
	// maxBulkFailures bounds the failures a bulk answer lists one by one.
	maxBulkFailures = 100
)

// ReleaseStages is the rollout state of a release's devices
// (*upgrade.Service): device id → stage of its latest attempt, or
// "offered".
type ReleaseStages interface {
	DeviceStages(ctx context.Context, releaseID string) (map[string]string, error)
}

// deviceQuery is a parsed device search.
type deviceQuery struct {
	online  *bool
	blocked *bool
	// id is a case-insensitive substring of the id.
	id         string
	model, fw  string
	offlineFor time.Duration
	// in, when not nil, is the set the device must be in (the
	// intersection of the group, app and rollout filters).
	in map[string]bool
	// filtered: a filter beyond online is set (the plain listing is
	// cheaper without one).
	filtered bool
}

// parseDeviceQuery reads the filters of q: online, blocked, id, model,
// fw, offline_for, group, app, app_version, release, stage.
func (h *handler) parseDeviceQuery(ctx context.Context, q url.Values) (*deviceQuery, error) {
	dq, err := readDeviceQuery(q)
	if err != nil {
		return nil, err
	}
	dq.filtered = dq.blocked != nil || dq.id != "" || dq.model != "" || dq.fw != "" || dq.offlineFor > 0
	narrow := func(set map[string]bool) {
		if dq.in == nil {
			dq.in = set
		} else {
			for id := range dq.in {
				if !set[id] {
					delete(dq.in, id)
				}
			}
		}
		dq.filtered = true
	}
	if g := q.Get("group"); g != "" {
		if h.opt.Groups == nil {
			return nil, errNoGroups
		}
		m, err := h.opt.Groups.Members(g, "", 0) // all of them
		if err != nil {
			return nil, err
		}
		set := make(map[string]bool, len(m.Members))
		for _, mb := range m.Members {
			set[mb.DeviceID] = true
		}
		narrow(set)
	}
	app, appVersion := q.Get("app"), q.Get("app_version")
	if app != "" {
		set := map[string]bool{}
		if h.opt.Versions != nil {
			vs, err := h.opt.Versions.AppVersions(ctx, "")
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				if v.AppID == app && (appVersion == "" || v.Version == appVersion) {
					set[v.DeviceID] = true
				}
			}
		}
		narrow(set)
	}
	rel, stage := q.Get("release"), q.Get("stage")
	if rel != "" {
		rs, ok := h.opt.Releases.(ReleaseStages)
		if !ok {
			return nil, errNoReleases
		}
		stages, err := rs.DeviceStages(ctx, rel)
		if err != nil {
			return nil, err
		}
		set := map[string]bool{}
		for id, st := range stages {
			if stage == "" || st == stage {
				set[id] = true
			}
		}
		narrow(set)
	}
	return dq, nil
}

// readDeviceQuery reads what q's filters say on their own: the lengths,
// the booleans, the duration, and the filters that need another. The
// stores are not read, so a saved filter is checked with it
// (checkDeviceQuery) as the search will check it.
func readDeviceQuery(q url.Values) (*deviceQuery, error) {
	dq := &deviceQuery{id: strings.ToLower(q.Get("id")), model: q.Get("model"), fw: q.Get("fw")}
	for _, k := range []string{"id", "model", "fw", "group", "app", "app_version", "release", "stage"} {
		if len(q.Get(k)) > maxFilterValue {
			return nil, badRequest("%s is longer than %d bytes", k, maxFilterValue)
		}
	}
	for _, b := range []struct {
		name string
		to   **bool
	}{{"online", &dq.online}, {"blocked", &dq.blocked}} {
		if s := q.Get(b.name); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				return nil, badRequest("%s must be true or false", b.name)
			}
			*b.to = &v
		}
	}
	if s := q.Get("offline_for"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, badRequest("offline_for must be a positive duration such as 90m or 24h")
		}
		dq.offlineFor = d
	}
	if q.Get("app_version") != "" && q.Get("app") == "" {
		return nil, badRequest("app_version needs app")
	}
	if q.Get("stage") != "" && q.Get("release") == "" {
		return nil, badRequest("stage needs release")
	}
	return dq, nil
}

// checkDeviceQuery refuses a query the device search would refuse
// without reading a store.
func checkDeviceQuery(q url.Values) error {
	_, err := readDeviceQuery(q)
	return err
}

func badRequest(format string, args ...any) error {
	return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf(format, args...)}
}

// match reports whether d passes the filters (online is applied by the
// node's listing).
func (dq *deviceQuery) match(d *server.DeviceView, now int64) bool {
	switch {
	case dq.in != nil && !dq.in[d.ID],
		dq.blocked != nil && d.Blocked != *dq.blocked,
		dq.model != "" && d.Model != dq.model,
		dq.fw != "" && d.FW != dq.fw,
		dq.id != "" && !strings.Contains(strings.ToLower(d.ID), dq.id):
		return false
	}
	if dq.offlineFor > 0 {
		last := max(d.LastSeen, d.LastOffline, d.LastOnline)
		if d.Online || last > now-dq.offlineFor.Milliseconds() {
			return false
		}
	}
	return true
}

// findDevices returns up to limit devices matching dq after cursor, in
// id order, and the cursor of the next page ("" at the end).
func (h *handler) findDevices(ctx context.Context, dq *deviceQuery, limit int, cursor string) ([]server.DeviceView, string, error) {
	if !dq.filtered {
		return h.node.Devices(ctx, dq.online, limit, cursor)
	}
	if dq.in != nil && len(dq.in) == 0 {
		return nil, "", nil
	}
	now := time.Now().UnixMilli()
	var out []server.DeviceView
	for {
		devs, next, err := h.node.Devices(ctx, dq.online, MaxPageSize, cursor)
		if err != nil {
			return nil, "", err
		}
		for i := range devs {
			if !dq.match(&devs[i], now) {
				continue
			}
			out = append(out, devs[i])
			if len(out) == limit {
				return out, devs[i].ID, nil
			}
		}
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
}

// bulk serves POST /v1/devices/bulk: one action on the listed devices or
// on every device a filter matches (at most MaxBulk), each device on its
// own; the answer counts successes and failures.
func (h *handler) bulk(w http.ResponseWriter, r *http.Request) {
	var in api.BulkRequest
	if err := readJSONBody(r, &in, maxBulkBody); err != nil {
		h.fail(w, r, err)
		return
	}
	act, err := h.bulkAction(r, &in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ids, err := h.bulkTargets(r, &in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	auditTargets(r, ids, len(ids))
	out := api.BulkResult{Action: in.Action, Matched: len(ids), Failures: []api.BulkFailure{}}
	for _, id := range ids {
		if err := act(r.Context(), id); err != nil {
			out.Failed++
			if len(out.Failures) < maxBulkFailures {
				e := server.AsError(err)
				out.Failures = append(out.Failures, api.BulkFailure{ID: id, Code: httpErrorOf(e.Code).code, Message: e.Message})
			}
			continue
		}
		out.Succeeded++
	}
	h.log.Info("operator action", "action", "bulk "+in.Action, "devices", len(ids), "failed", out.Failed,
		"operator", operatorName(r), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, out)
}

// bulkAction returns the per-device operation of in.Action.
func (h *handler) bulkAction(r *http.Request, in *api.BulkRequest) (func(ctx context.Context, id string) error, error) {
	switch in.Action {
	case api.BulkDisconnect:
		return func(_ context.Context, id string) error {
			if !h.node.Disconnect(id) {
				return &protocol.Error{Code: protocol.NotFound, Message: "device is not online"}
			}
			return nil
		}, nil
	case api.BulkBlock:
		return h.node.Block, nil
	case api.BulkUnblock:
		return h.node.Unblock, nil
	case api.BulkGroupAdd:
		if h.opt.Groups == nil {
			return nil, errNoGroups
		}
		if in.Group == "" {
			return nil, badRequest("group_add needs group")
		}
		if _, err := h.opt.Groups.Group(in.Group); err != nil {
			return nil, err
		}
		by := operatorOf(r)
		return func(ctx context.Context, id string) error {
			_, err := h.opt.Groups.Add(ctx, in.Group, id, "", by)
			return err
		}, nil
	case api.BulkRetryUpgrade:
		if h.opt.Releases == nil {
			return nil, errNoReleases
		}
		if in.Release == "" {
			return nil, badRequest("retry_upgrade needs release")
		}
		if _, err := h.opt.Releases.Release(r.Context(), in.Release); err != nil {
			return nil, err
		}
		return func(ctx context.Context, id string) error {
			_, err := h.opt.Releases.Retry(ctx, in.Release, api.Retry{Device: id})
			return err
		}, nil
	}
	return nil, badRequest("action must be one of disconnect, block, unblock, group_add, retry_upgrade")
}

// bulkTargets returns the devices a bulk request names: its ids, or what
// its filter matches.
func (h *handler) bulkTargets(r *http.Request, in *api.BulkRequest) ([]string, error) {
	switch {
	case in.Filter != nil && len(in.IDs) > 0:
		return nil, badRequest("give ids or filter, not both")
	case in.Filter == nil:
		if len(in.IDs) == 0 {
			return nil, badRequest("give ids or filter")
		}
		if len(in.IDs) > MaxBulk {
			return nil, badRequest("at most %d devices per bulk action, got %d", MaxBulk, len(in.IDs))
		}
		for _, id := range in.IDs {
			if !protocol.ValidDeviceID(id) {
				return nil, badRequest("invalid device id %q", id)
			}
		}
		return in.IDs, nil
	}
	q, err := url.ParseQuery(*in.Filter)
	if err != nil {
		return nil, badRequest("filter is not a query string: %v", err)
	}
	dq, err := h.parseDeviceQuery(r.Context(), q)
	if err != nil {
		return nil, err
	}
	devs, _, err := h.findDevicesAll(r.Context(), dq, MaxBulk+1)
	if err != nil {
		return nil, err
	}
	if len(devs) > MaxBulk {
		return nil, badRequest("the filter matches more than %d devices: narrow it", MaxBulk)
	}
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	return ids, nil
}

// findDevicesAll is findDevices over every page, up to max devices.
func (h *handler) findDevicesAll(ctx context.Context, dq *deviceQuery, max int) ([]server.DeviceView, string, error) {
	var out []server.DeviceView
	cursor := ""
	for len(out) < max {
		devs, next, err := h.findDevices(ctx, dq, min(MaxPageSize, max-len(out)), cursor)
		if err != nil {
			return nil, "", err
		}
		out = append(out, devs...)
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
	return out, cursor, nil
}
