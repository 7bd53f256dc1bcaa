package upgrade

// A release's overview for the operator console: its status and, when
// phased, its rollout, from one read of its reports and assignments.

import (
	"context"

	"github.com/termd/termd/server/admin/api"
)

// Overview is GET /v1/releases/{id}/overview: Status, and for a phased
// release RolloutStatus with its funnel taken from that same status, so
// the release's records are read once instead of twice.
func (s *Service) Overview(ctx context.Context, id string) (api.ReleaseOverview, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return api.ReleaseOverview{}, err
	}
	out := api.ReleaseOverview{Status: st}
	if len(st.Release.Phases) > 0 {
		ro, err := s.rolloutStatus(ctx, id, &st)
		if err != nil {
			return api.ReleaseOverview{}, err
		}
		out.Rollout = &ro
	}
	return out, nil
}
