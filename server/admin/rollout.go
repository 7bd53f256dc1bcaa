package admin

// /v1/releases/{id}/rollout: phased rollouts (docs/admin-api.md,
// "Rollouts"; docs/upgrades.md, "Phases").

import (
	"context"
	"net/http"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// Rollouts is the phased-rollout control a release service may offer.
type Rollouts interface {
	RolloutStatus(ctx context.Context, id string) (api.RolloutStatus, error)
	RolloutPause(ctx context.Context, id string) (api.RolloutStatus, error)
	RolloutResume(ctx context.Context, id string) (api.RolloutStatus, error)
	RolloutApprove(ctx context.Context, id string) (api.RolloutStatus, error)
}

var errNoRollouts = &protocol.Error{Code: protocol.Unavailable, Message: "phased rollouts are not served by this node"}

// registerRollouts installs the rollout routes.
func (h *handler) registerRollouts(m *http.ServeMux) {
	m.HandleFunc("GET /v1/releases/{id}/rollout", h.releaseOp(func(ctx context.Context, rs Releases, id string, _ *http.Request) (any, error) {
		ro, ok := rs.(Rollouts)
		if !ok {
			return nil, errNoRollouts
		}
		return ro.RolloutStatus(ctx, id)
	}))
	for name, op := range map[string]func(Rollouts, context.Context, string) (api.RolloutStatus, error){
		"pause": Rollouts.RolloutPause, "resume": Rollouts.RolloutResume, "approve": Rollouts.RolloutApprove,
	} {
		m.HandleFunc("POST /v1/releases/{id}/rollout/"+name, h.releaseOp(func(ctx context.Context, rs Releases, id string, r *http.Request) (any, error) {
			ro, ok := rs.(Rollouts)
			if !ok {
				return nil, errNoRollouts
			}
			st, err := op(ro, ctx, id)
			h.log.Info("operator action", "action", "rollout "+name, "release", id, "remote", r.RemoteAddr, "err", err)
			return st, err
		}))
	}
}
