package admin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// deviceJSON is a device as the API shows it. The per-device key is never
// shown, only whether there is one.
func (h *handler) deviceJSON(v server.DeviceView) api.Device {
	return api.Device{
		ID: v.ID, Online: v.Online, Live: v.Live, SessionID: v.SessionID,
		FirstSeenMs: v.FirstSeen, LastSeenMs: v.LastSeen, LastOnlineMs: v.LastOnline,
		LastOfflineMs: v.LastOffline, OfflineReason: v.OfflineReason, RemoteAddr: v.RemoteAddr,
		FW: v.FW, Model: v.Model,
		Attrs: h.decodeMap(v.ID, "attrs", v.Attrs), Status: h.decodeMap(v.ID, "status", v.Status),
		Blocked: v.Blocked, HasKey: len(v.Key) > 0,
	}
}

// decodeMap turns a stored MessagePack map into a JSON-encodable value.
// The bytes were validated by the server when they arrived, so a failure
// here means a corrupt record: it is logged and shown as null rather than
// failing the whole listing.
func (h *handler) decodeMap(id, field string, b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var m map[string]any
	if err := msgpack.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		h.log.Warn("stored map does not decode", "device_id", id, "field", field, "err", err)
		return nil
	}
	return m
}

// deviceID returns the {id} path value, or writes 400 and returns false.
func deviceID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !protocol.ValidDeviceID(id) {
		writeCode(w, protocol.BadRequest,
			fmt.Sprintf("invalid device id %q: 1-%d bytes of [A-Za-z0-9._:-]", id, protocol.MaxID))
		return "", false
	}
	return id, true
}

// devices serves GET /v1/devices?online=&limit=&cursor= and the search
// filters (devices_search.go): blocked, id, model, fw, offline_for,
// group, app, app_version, release, stage.
func (h *handler) devices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			writeCode(w, protocol.BadRequest, fmt.Sprintf("limit must be an integer in 1..%d", MaxPageSize))
			return
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if len(cursor) > storage.MaxIDLen {
		writeCode(w, protocol.BadRequest, "cursor is too long")
		return
	}
	dq, err := h.parseDeviceQuery(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	devs, next, err := h.findDevices(r.Context(), dq, limit, cursor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.DeviceList{Devices: make([]api.Device, 0, len(devs)), NextCursor: next}
	for _, d := range devs {
		out.Devices = append(out.Devices, h.deviceJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// device serves GET /v1/devices/{id}.
func (h *handler) device(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	d, err := h.node.Device(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := h.deviceJSON(d)
	v.Apps = h.deviceApps(r.Context(), id)
	writeJSON(w, http.StatusOK, v)
}

// audit logs an operator action that changed something.
func (h *handler) audit(r *http.Request, action, id string) {
	h.log.Info("operator action", "action", action, "device_id", id, "operator", operatorName(r), "remote", r.RemoteAddr)
}

func (h *handler) block(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	if err := h.node.Block(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.audit(r, "block", id)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) unblock(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	if err := h.node.Unblock(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.audit(r, "unblock", id)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) disconnect(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	if !h.node.Disconnect(id) {
		writeCode(w, protocol.NotFound, "device is not online")
		return
	}
	h.audit(r, "disconnect", id)
	w.WriteHeader(http.StatusNoContent)
}

// setKeyRequest is PUT /v1/devices/{id}/key's body. Key is raw so that a
// missing field (an error) differs from null (remove the key).
type setKeyRequest struct {
	Key json.RawMessage `json:"key"`
}

// setKey serves PUT /v1/devices/{id}/key: {"key":"<64 hex>"} or {"key":null}.
func (h *handler) setKey(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	key, err := parseKeyBody(w, r)
	if err != nil {
		writeCode(w, protocol.BadRequest, err.Error())
		return
	}
	if err := h.node.SetKey(r.Context(), id, key); err != nil {
		h.fail(w, r, err)
		return
	}
	if key == nil {
		h.audit(r, "remove key", id)
	} else {
		h.audit(r, "set key", id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseKeyBody returns the key, nil for {"key":null}, or why the body is bad.
func parseKeyBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	var req setKeyRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("body must be {\"key\": \"<%d hex digits>\"} or {\"key\": null}: %v", 2*storage.KeySize, err)
	}
	if dec.More() {
		return nil, errors.New("body has data after the JSON object")
	}
	if len(req.Key) == 0 {
		return nil, errors.New(`body has no "key" field (use {"key": null} to remove the key)`)
	}
	if string(req.Key) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(req.Key, &s); err != nil {
		return nil, errors.New("key must be a string of hex digits or null")
	}
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != storage.KeySize {
		return nil, fmt.Errorf("key must be %d hex digits (%d bytes)", 2*storage.KeySize, storage.KeySize)
	}
	return key, nil
}
