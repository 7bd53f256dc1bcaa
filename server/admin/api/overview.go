package api

// ReleaseOverview is GET /v1/releases/{id}/overview: a release's status
// and, when it is phased, its rollout (docs/admin-api.md §23).
type ReleaseOverview struct {
	Status ReleaseStatus `json:"status"`
	// Rollout is nil for a release without phases.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}
