package admin

// GET /v1/outbox: the notification outbox's pending and failed
// deliveries (docs/upgrades.md, "Notifications").

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// maxOutboxCursor bounds the cursor a client may send (hex of an index
// key: channel, time and entry id).
const maxOutboxCursor = 2 * (storage.MaxOutboxChannel + storage.MaxOutboxID + 16)

// Outbox is what the admin API reads of the notification outbox.
type Outbox interface {
	ListOutbox(ctx context.Context, f storage.OutboxFilter) ([]storage.OutboxDelivery, string, error)
	OutboxCounts(ctx context.Context) (map[string]storage.OutboxCount, error)
}

// registerNotifyRoutes adds the outbox's routes.
func (h *handler) registerNotifyRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /v1/outbox", h.outbox)
}

func (h *handler) outbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.OutboxFilter{Channel: q.Get("channel"), State: q.Get("state"), Cursor: q.Get("cursor"), Limit: DefaultPageSize}
	switch f.State {
	case "", storage.OutboxPending, storage.OutboxFailed, storage.OutboxDelivered:
	default:
		writeCode(w, protocol.BadRequest, fmt.Sprintf("state must be pending, failed or delivered, not %q", f.State))
		return
	}
	if len(f.Channel) > storage.MaxOutboxChannel || len(f.Cursor) > maxOutboxCursor {
		writeCode(w, protocol.BadRequest, "channel or cursor is too long")
		return
	}
	if !isHex(f.Cursor) {
		writeCode(w, protocol.BadRequest, "cursor must be the next_cursor of an earlier page")
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			writeCode(w, protocol.BadRequest, fmt.Sprintf("limit must be an integer in 1..%d", MaxPageSize))
			return
		}
		f.Limit = n
	}
	out := api.OutboxList{Deliveries: []api.OutboxDelivery{}, Counts: map[string]api.OutboxCount{}}
	if h.opt.Outbox != nil {
		ds, next, err := h.opt.Outbox.ListOutbox(r.Context(), f)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		counts, err := h.opt.Outbox.OutboxCounts(r.Context())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, d := range ds {
			out.Deliveries = append(out.Deliveries, api.OutboxDelivery{
				Channel: d.Channel, EntryID: d.EntryID, ReleaseID: d.Group, Kind: d.Kind, State: d.State,
				DeliveryID: d.Batch, Attempts: d.Attempts, CreatedAtMs: d.CreatedAt, NextAtMs: d.NextAt,
				LastAttemptAtMs: d.LastAttemptAt, DoneAtMs: d.DoneAt, LastError: d.LastError,
			})
		}
		for ch, c := range counts {
			out.Counts[ch] = api.OutboxCount{Pending: c.Pending, Failed: c.Failed}
		}
		out.NextCursor = next
	}
	writeJSON(w, http.StatusOK, out)
}

// isHex reports whether s is lowercase or uppercase hex digits.
func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return len(s)%2 == 0
}
