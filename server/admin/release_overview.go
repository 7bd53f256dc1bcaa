package admin

// GET /v1/releases/{id}/overview (docs/admin-api.md §23): what the
// console's release page shows, from one read of the release's records.

import (
	"context"
	"net/http"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// ReleaseOverviews is the release service's overview (*upgrade.Service).
type ReleaseOverviews interface {
	Overview(ctx context.Context, id string) (api.ReleaseOverview, error)
}

var errNoOverview = &protocol.Error{Code: protocol.Unavailable, Message: "release overviews are not served by this node"}

// registerReleaseOverview installs GET /v1/releases/{id}/overview.
func (h *handler) registerReleaseOverview(m *http.ServeMux) {
	m.HandleFunc("GET /v1/releases/{id}/overview", h.releaseOp(func(ctx context.Context, rs Releases, id string, _ *http.Request) (any, error) {
		o, ok := rs.(ReleaseOverviews)
		if !ok {
			return nil, errNoOverview
		}
		return o.Overview(ctx, id)
	}))
}
