package admin

// /v1/releases and a device's upgrade history (docs/admin-api.md,
// "Releases"). The release service (*upgrade.Service) does the work; its
// errors carry their status and go through the table in errors.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// maxReleaseBody bounds POST /v1/releases' body: targeting may list
// thousands of devices.
const maxReleaseBody = 4 << 20

// Releases is release management as the admin API needs it.
type Releases interface {
	CreateRelease(ctx context.Context, in api.ReleaseCreate) (api.Release, error)
	Releases(ctx context.Context) []api.Release
	Release(ctx context.Context, id string) (api.Release, error)
	Publish(ctx context.Context, id string) (api.Release, error)
	Pause(ctx context.Context, id string) (api.Release, error)
	Resume(ctx context.Context, id string) (api.Release, error)
	Archive(ctx context.Context, id string) (api.Release, error)
	SetRollout(ctx context.Context, id string, pct int) (api.Release, error)
	SetSignature(ctx context.Context, id, sigHex string) (api.Release, error)
	Status(ctx context.Context, id string) (api.ReleaseStatus, error)
	Retry(ctx context.Context, id string, in api.Retry) (int, error)
	DeviceUpgrades(ctx context.Context, deviceID string) (api.DeviceUpgrades, error)
	Cancel(ctx context.Context, id string) (api.Release, error)
	SetDeadline(ctx context.Context, id string, ms int64) (api.Release, error)
}

// errNoReleases answers every release route of a node without the service.
var errNoReleases = &protocol.Error{Code: protocol.Unavailable, Message: "releases are not served by this node"}

// registerReleases installs the release routes.
func (h *handler) registerReleases(m *http.ServeMux) {
	m.HandleFunc("POST /v1/releases", h.createRelease)
	m.HandleFunc("GET /v1/releases", h.listReleases)
	m.HandleFunc("GET /v1/releases/{id}", h.releaseOp(func(ctx context.Context, rs Releases, id string, _ *http.Request) (any, error) {
		return rs.Release(ctx, id)
	}))
	for name, op := range map[string]func(Releases, context.Context, string) (api.Release, error){
		"publish": Releases.Publish, "pause": Releases.Pause, "resume": Releases.Resume, "archive": Releases.Archive,
		"cancel": Releases.Cancel,
	} {
		m.HandleFunc("POST /v1/releases/{id}/"+name, h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
			rel, err := op(rs, ctx, id)
			h.log.Info("operator action", "action", "release "+name, "release", id, "remote", r.RemoteAddr, "err", err)
			return rel, err
		}))
	}
	m.HandleFunc("PUT /v1/releases/{id}/rollout", h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
		var in api.Rollout
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		rel, err := rs.SetRollout(ctx, id, in.Pct)
		h.log.Info("operator action", "action", "release rollout", "release", id, "pct", in.Pct, "remote", r.RemoteAddr, "err", err)
		return rel, err
	}))
	m.HandleFunc("PUT /v1/releases/{id}/deadline", h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
		var in api.Deadline
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		rel, err := rs.SetDeadline(ctx, id, in.DeadlineMs)
		h.log.Info("operator action", "action", "release deadline", "release", id, "deadline_ms", in.DeadlineMs, "remote", r.RemoteAddr, "err", err)
		return rel, err
	}))
	m.HandleFunc("PUT /v1/releases/{id}/signature", h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
		var in api.Signature
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		rel, err := rs.SetSignature(ctx, id, in.Sig)
		h.log.Info("operator action", "action", "release sign", "release", id, "remote", r.RemoteAddr, "err", err)
		return rel, err
	}))
	m.HandleFunc("GET /v1/releases/{id}/status", h.releaseOp(func(ctx context.Context, rs Releases, id string, _ *http.Request) (any, error) {
		return rs.Status(ctx, id)
	}))
	m.HandleFunc("POST /v1/releases/{id}/retry", h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
		var in api.Retry
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		n, err := rs.Retry(ctx, id, in)
		h.log.Info("operator action", "action", "release retry", "release", id, "device", in.Device, "failed", in.Failed, "remote", r.RemoteAddr, "err", err)
		return api.RetryResult{Devices: n}, err
	}))
	m.HandleFunc("GET /v1/devices/{id}/upgrades", h.deviceUpgrades)
	h.registerReleaseOverview(m)
}

// readBody decodes a JSON body of at most limit bytes, refusing unknown fields.
func readJSONBody(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf("body: %v", err)}
	}
	if dec.More() {
		return &protocol.Error{Code: protocol.BadRequest, Message: "body: more than one JSON value"}
	}
	return nil
}

// releaseOp adapts one release call to a handler.
func (h *handler) releaseOp(fn func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opt.Releases == nil {
			writeProblem(w, errNoReleases)
			return
		}
		v, err := fn(r.Context(), h.opt.Releases, r.PathValue("id"), r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// createRelease serves POST /v1/releases.
func (h *handler) createRelease(w http.ResponseWriter, r *http.Request) {
	if h.opt.Releases == nil {
		writeProblem(w, errNoReleases)
		return
	}
	var in api.ReleaseCreate
	if err := readJSONBody(r, &in, maxReleaseBody); err != nil {
		h.fail(w, r, err)
		return
	}
	rel, err := h.opt.Releases.CreateRelease(r.Context(), in)
	h.log.Info("operator action", "action", "release create", "app", in.AppID, "version", in.Version, "release", rel.ID, "remote", r.RemoteAddr, "err", err)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rel)
}

// listReleases serves GET /v1/releases.
func (h *handler) listReleases(w http.ResponseWriter, r *http.Request) {
	out := api.ReleaseList{Releases: []api.Release{}}
	if h.opt.Releases != nil {
		out.Releases = h.opt.Releases.Releases(r.Context())
	}
	writeJSON(w, http.StatusOK, out)
}

// deviceUpgrades serves GET /v1/devices/{id}/upgrades.
func (h *handler) deviceUpgrades(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	if h.opt.Releases == nil {
		writeJSON(w, http.StatusOK, api.DeviceUpgrades{Apps: []api.AppVersion{}, Attempts: []api.UpgradeAttempt{}})
		return
	}
	v, err := h.opt.Releases.DeviceUpgrades(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deviceApps is the device view's app versions (nil without the service).
func (h *handler) deviceApps(ctx context.Context, id string) []api.AppVersion {
	if h.opt.Releases == nil {
		return nil
	}
	v, err := h.opt.Releases.DeviceUpgrades(ctx, id)
	if err != nil {
		return nil
	}
	return v.Apps
}
