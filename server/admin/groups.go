package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// Groups is device groups as the admin API needs them (*groups.Service
// implements it). by names the operator: "operator:<token name>".
type Groups interface {
	Create(ctx context.Context, in api.GroupCreate, by string) (api.Group, error)
	Groups() []api.Group
	Group(id string) (api.Group, error)
	Members(id, after string, limit int) (api.GroupMembers, error)
	Add(ctx context.Context, id, device, role, by string) (api.DeviceGroups, error)
	Remove(ctx context.Context, id, device, by string) (api.DeviceGroups, error)
	Delete(ctx context.Context, id, by string) error
	Send(ctx context.Context, id string, payload []byte) (delivered int, msgID uint64, err error)
	DeviceGroups(device string) api.DeviceGroups
	RotateKey() error
}

var errNoGroups = &protocol.Error{Code: protocol.Unavailable, Message: "groups are not enabled on this node"}

// registerGroups installs the group routes.
func (h *handler) registerGroups(m *http.ServeMux) {
	m.HandleFunc("POST /v1/groups", h.groupOp(func(ctx context.Context, g Groups, r *http.Request) (any, error) {
		var in api.GroupCreate
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		v, err := g.Create(ctx, in, operatorOf(r))
		h.log.Info("operator action", "action", "group create", "group", in.ID, "policy", in.Policy, "operator", operatorName(r), "err", err)
		return v, err
	}))
	m.HandleFunc("GET /v1/groups", h.groupOp(func(_ context.Context, g Groups, _ *http.Request) (any, error) {
		return api.GroupList{Groups: g.Groups()}, nil
	}))
	m.HandleFunc("GET /v1/groups/{id}", h.groupOp(func(_ context.Context, g Groups, r *http.Request) (any, error) {
		return g.Group(r.PathValue("id"))
	}))
	m.HandleFunc("DELETE /v1/groups/{id}", h.groupOp(func(ctx context.Context, g Groups, r *http.Request) (any, error) {
		id := r.PathValue("id")
		err := g.Delete(ctx, id, operatorOf(r))
		h.log.Info("operator action", "action", "group delete", "group", id, "operator", operatorName(r), "err", err)
		return map[string]string{"deleted": id}, err
	}))
	m.HandleFunc("GET /v1/groups/{id}/members", h.groupOp(func(_ context.Context, g Groups, r *http.Request) (any, error) {
		limit := 0 // all, as before paging
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxPageSize {
				return nil, &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf("limit must be an integer in 1..%d", MaxPageSize)}
			}
			limit = n
		}
		return g.Members(r.PathValue("id"), r.URL.Query().Get("after"), limit)
	}))
	m.HandleFunc("PUT /v1/groups/{id}/members/{device}", h.groupOp(func(ctx context.Context, g Groups, r *http.Request) (any, error) {
		var in api.GroupMemberPut
		if err := readOptionalJSON(r, &in); err != nil {
			return nil, err
		}
		id, dev := r.PathValue("id"), r.PathValue("device")
		v, err := g.Add(ctx, id, dev, in.Role, operatorOf(r))
		h.log.Info("operator action", "action", "group add", "group", id, "device", dev, "role", in.Role, "operator", operatorName(r), "err", err)
		return v, err
	}))
	m.HandleFunc("DELETE /v1/groups/{id}/members/{device}", h.groupOp(func(ctx context.Context, g Groups, r *http.Request) (any, error) {
		id, dev := r.PathValue("id"), r.PathValue("device")
		v, err := g.Remove(ctx, id, dev, operatorOf(r))
		h.log.Info("operator action", "action", "group remove", "group", id, "device", dev, "operator", operatorName(r), "err", err)
		return v, err
	}))
	m.HandleFunc("POST /v1/groups/{id}/send", h.groupOp(func(ctx context.Context, g Groups, r *http.Request) (any, error) {
		var in api.GroupSend
		if err := readJSONBody(r, &in, maxBodyBytes); err != nil {
			return nil, err
		}
		payload := in.Payload
		if in.Text != "" {
			if len(payload) > 0 {
				return nil, &protocol.Error{Code: protocol.BadRequest, Message: "give text or payload, not both"}
			}
			payload = []byte(in.Text)
		}
		n, id, err := g.Send(ctx, r.PathValue("id"), payload)
		h.log.Info("operator action", "action", "group send", "group", r.PathValue("id"), "bytes", len(payload), "delivered", n, "operator", operatorName(r), "err", err)
		return api.GroupSent{Delivered: n, MsgID: id}, err
	}))
	m.HandleFunc("GET /v1/devices/{id}/groups", h.groupOp(func(_ context.Context, g Groups, r *http.Request) (any, error) {
		return g.DeviceGroups(r.PathValue("id")), nil
	}))
	m.HandleFunc("POST /v1/group-keys/rotate", h.groupOp(func(_ context.Context, g Groups, r *http.Request) (any, error) {
		err := g.RotateKey()
		h.log.Info("operator action", "action", "group key rotate", "operator", operatorName(r), "err", err)
		return map[string]bool{"rotated": err == nil}, err
	}))
}

// operatorOf is who a membership an operator makes is recorded as.
func operatorOf(r *http.Request) string {
	if n := operatorName(r); n != "" {
		return "operator:" + n
	}
	return "operator"
}

// readOptionalJSON is readJSONBody for a body that may be empty.
func readOptionalJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf("body: %v", err)}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf("body: %v", err)}
	}
	return nil
}

// groupOp adapts one groups call to a handler.
func (h *handler) groupOp(fn func(ctx context.Context, g Groups, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opt.Groups == nil {
			writeProblem(w, errNoGroups)
			return
		}
		v, err := fn(r.Context(), h.opt.Groups, r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		status := http.StatusOK
		if r.Method == http.MethodPost && r.URL.Path == "/v1/groups" {
			status = http.StatusCreated
		}
		writeJSON(w, status, v)
	}
}
