package admin

// /v1/campaigns, /v1/nodes and /v1/plan (docs/admin-api.md,
// "Scheduling"; docs/scheduling.md).

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/schedule"
)

// Scheduler is upgrade scheduling as the admin API needs it.
type Scheduler interface {
	CreateCampaign(ctx context.Context, in api.CampaignCreate) (api.Campaign, error)
	Campaigns(ctx context.Context) []api.Campaign
	Campaign(ctx context.Context, id string) (api.Campaign, error)
	Publish(ctx context.Context, id string) (api.Campaign, error)
	Pause(ctx context.Context, id string) (api.Campaign, error)
	Resume(ctx context.Context, id string) (api.Campaign, error)
	Cancel(ctx context.Context, id string) (api.Campaign, error)
	Progress(ctx context.Context, id string) (api.CampaignProgress, error)
	Plan(ctx context.Context, q schedule.PlanQuery) (api.Plan, error)
	Nodes(ctx context.Context) api.NodeList
	Drain(ctx context.Context, id string, draining bool) (api.Node, error)
	ReportLoad(ctx context.Context, id string, active int64) error
	Retry(ctx context.Context, id string, in api.CampaignRetry) (int, error)
	SetLocation(ctx context.Context, dev string, lat, lon float64, clear bool) error
	SetZone(ctx context.Context, dev, tz string) error
	DeviceSchedule(ctx context.Context, dev string) (api.DeviceSchedule, error)
}

var errNoSchedule = &protocol.Error{Code: protocol.Unavailable, Message: "upgrade scheduling is not served by this node"}

func (h *handler) schedOp(fn func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opt.Schedule == nil {
			writeProblem(w, errNoSchedule)
			return
		}
		v, code, err := fn(r.Context(), h.opt.Schedule, r.PathValue("id"), r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, code, v)
	}
}

func (h *handler) registerSchedule(m *http.ServeMux) {
	m.HandleFunc("POST /v1/campaigns", h.schedOp(func(ctx context.Context, sc Scheduler, _ string, r *http.Request) (any, int, error) {
		var in api.CampaignCreate
		if err := readJSONBody(r, &in, maxReleaseBody); err != nil {
			return nil, 0, err
		}
		c, err := sc.CreateCampaign(ctx, in)
		h.log.Info("operator action", "action", "campaign create", "release", in.ReleaseID, "campaign", c.ID, "remote", r.RemoteAddr, "err", err)
		return c, http.StatusCreated, err
	}))
	m.HandleFunc("GET /v1/campaigns", h.schedOp(func(ctx context.Context, sc Scheduler, _ string, _ *http.Request) (any, int, error) {
		return api.CampaignList{Campaigns: sc.Campaigns(ctx)}, http.StatusOK, nil
	}))
	m.HandleFunc("GET /v1/campaigns/{id}", h.schedOp(func(ctx context.Context, sc Scheduler, id string, _ *http.Request) (any, int, error) {
		c, err := sc.Campaign(ctx, id)
		return c, http.StatusOK, err
	}))
	m.HandleFunc("GET /v1/campaigns/{id}/progress", h.schedOp(func(ctx context.Context, sc Scheduler, id string, _ *http.Request) (any, int, error) {
		p, err := sc.Progress(ctx, id)
		return p, http.StatusOK, err
	}))
	for name, op := range map[string]func(Scheduler, context.Context, string) (api.Campaign, error){
		"publish": Scheduler.Publish, "pause": Scheduler.Pause, "resume": Scheduler.Resume, "cancel": Scheduler.Cancel,
	} {
		m.HandleFunc("POST /v1/campaigns/{id}/"+name, h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
			c, err := op(sc, ctx, id)
			h.log.Info("operator action", "action", "campaign "+name, "campaign", id, "remote", r.RemoteAddr, "err", err)
			return c, http.StatusOK, err
		}))
	}
	m.HandleFunc("POST /v1/campaigns/{id}/retry", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		var in api.CampaignRetry
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, 0, err
		}
		n, err := sc.Retry(ctx, id, in)
		h.log.Info("operator action", "action", "campaign retry", "campaign", id, "devices", n, "remote", r.RemoteAddr, "err", err)
		return api.RetryResult{Devices: n}, http.StatusOK, err
	}))
	m.HandleFunc("PUT /v1/devices/{id}/location", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		var in api.Location
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, 0, err
		}
		err := sc.SetLocation(ctx, id, in.Lat, in.Lon, false)
		h.log.Info("operator action", "action", "device location", "device", id, "remote", r.RemoteAddr, "err", err)
		return in, http.StatusOK, err
	}))
	m.HandleFunc("PUT /v1/devices/{id}/zone", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		var in api.Zone
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, 0, err
		}
		err := sc.SetZone(ctx, id, in.TZ)
		h.log.Info("operator action", "action", "device zone", "device", id, "tz", in.TZ, "remote", r.RemoteAddr, "err", err)
		return in, http.StatusOK, err
	}))
	m.HandleFunc("GET /v1/devices/{id}/schedule", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		if !protocol.ValidDeviceID(id) {
			return nil, 0, &protocol.Error{Code: protocol.BadRequest, Message: "invalid device id"}
		}
		v, err := sc.DeviceSchedule(ctx, id)
		return v, http.StatusOK, err
	}))
	m.HandleFunc("DELETE /v1/devices/{id}/location", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		err := sc.SetLocation(ctx, id, 0, 0, true)
		h.log.Info("operator action", "action", "device location clear", "device", id, "remote", r.RemoteAddr, "err", err)
		return struct{}{}, http.StatusOK, err
	}))
	m.HandleFunc("GET /v1/nodes", h.schedOp(func(ctx context.Context, sc Scheduler, _ string, _ *http.Request) (any, int, error) {
		return sc.Nodes(ctx), http.StatusOK, nil
	}))
	for name, draining := range map[string]bool{"drain": true, "undrain": false} {
		m.HandleFunc("POST /v1/nodes/{id}/"+name, h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
			n, err := sc.Drain(ctx, id, draining)
			h.log.Info("operator action", "action", "node "+name, "node", id, "remote", r.RemoteAddr, "err", err)
			return n, http.StatusOK, err
		}))
	}
	m.HandleFunc("POST /v1/nodes/{id}/load", h.schedOp(func(ctx context.Context, sc Scheduler, id string, r *http.Request) (any, int, error) {
		var in api.NodeLoad
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, 0, err
		}
		return struct{}{}, http.StatusOK, sc.ReportLoad(ctx, id, in.Active)
	}))
	m.HandleFunc("GET /v1/plan", h.schedOp(func(ctx context.Context, sc Scheduler, _ string, r *http.Request) (any, int, error) {
		q, err := planQuery(r)
		if err != nil {
			return nil, 0, err
		}
		p, err := sc.Plan(ctx, q)
		return p, http.StatusOK, err
	}))
}

// planQuery reads GET /v1/plan's parameters: release (required), model,
// device and cluster (repeatable), from_range, from and to (RFC 3339),
// and window (repeatable, START/END in RFC 3339): a selection to weigh.
func planQuery(r *http.Request) (schedule.PlanQuery, error) {
	v := r.URL.Query()
	q := schedule.PlanQuery{ReleaseID: v.Get("release"), Models: v["model"], Devices: v["device"], Clusters: v["cluster"], FromRange: v.Get("from_range")}
	if q.ReleaseID == "" {
		return q, &protocol.Error{Code: protocol.BadRequest, Message: "release is required"}
	}
	for _, w := range v["window"] {
		from, to, ok := strings.Cut(w, "/")
		a, errA := time.Parse(time.RFC3339, strings.TrimSpace(from))
		b, errB := time.Parse(time.RFC3339, strings.TrimSpace(to))
		if !ok || errA != nil || errB != nil {
			return q, &protocol.Error{Code: protocol.BadRequest, Message: "window: want two RFC 3339 times, START/END"}
		}
		q.Select = append(q.Select, api.Window{StartMs: a.UnixMilli(), EndMs: b.UnixMilli()})
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"from", &q.FromMs}, {"to", &q.ToMs}} {
		if s := strings.TrimSpace(v.Get(f.name)); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, &protocol.Error{Code: protocol.BadRequest, Message: f.name + ": want an RFC 3339 time"}
			}
			*f.dst = t.UnixMilli()
		}
	}
	return q, nil
}
