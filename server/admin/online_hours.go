package admin

import (
	"net/http"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// onlineHours serves GET /v1/devices/{id}/online-hours: the device's
// hourly online history (168 hours ending with the current one). A
// device the registry does not know is 404; one known but never online
// in the week has every hour false.
func (h *handler) onlineHours(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(w, r)
	if !ok {
		return
	}
	if h.opt.OnlineHistory == nil {
		writeCode(w, protocol.Unavailable, "no online history on this node")
		return
	}
	if _, err := h.node.Device(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	hours := h.opt.OnlineHistory.Hours(id, time.Now().UnixMilli())
	out := api.OnlineHours{DeviceID: id, Hours: make([]api.OnlineHour, len(hours))}
	for i, x := range hours {
		out.Hours[i] = api.OnlineHour{StartMs: x.StartMs, Online: x.Online}
	}
	writeJSON(w, http.StatusOK, out)
}
