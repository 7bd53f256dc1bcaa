package api

// Phased rollouts (docs/upgrades.md, "Phases").

// Phase is one stage of a phased rollout: Percent (cumulative share of
// the targets) or Devices, a soak time, and its conditions.
type Phase struct {
	Percent int      `json:"percent,omitempty"`
	Devices []string `json:"devices,omitempty"`
	// Group names the phase's devices by an operator-only device group:
	// its members at the time of each offer (docs/groups.md).
	Group string `json:"group,omitempty"`
	// SoakS is the phase's minimum duration in seconds; nil: 3600.
	SoakS      *int64 `json:"soak_s,omitempty"`
	SuccessPct int    `json:"success_pct"`
	ErrorPct   int    `json:"error_pct"`
	MinDevices int    `json:"min_devices"`
	Approval   bool   `json:"approval,omitempty"`
}

// PhaseStatus is a phase with its counts (GET /v1/releases/{id}/rollout).
type PhaseStatus struct {
	Phase
	// Devices offered the release in this phase, and of them the ones
	// whose latest attempt succeeded or failed.
	Offered   int `json:"offered"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Accepted is the failures an operator accepted by resuming.
	Accepted int `json:"accepted,omitempty"`
	// State: done, current, pending.
	State string `json:"state"`
}

// RolloutStatus is GET /v1/releases/{id}/rollout.
type RolloutStatus struct {
	ReleaseID string `json:"release_id"`
	// State: running, paused, waiting_approval, completed.
	State       string `json:"state"`
	PauseReason string `json:"pause_reason,omitempty"`
	// PausedMs is when it paused (unix ms; 0 unless paused).
	PausedMs       int64         `json:"paused_ms,omitempty"`
	Phase          int           `json:"phase"` // 1-based
	PhaseStartedMs int64         `json:"phase_started_ms,omitempty"`
	Phases         []PhaseStatus `json:"phases"`
	// Funnel counts devices by their latest report's stage ("offered":
	// assigned without a report yet).
	Funnel map[string]int `json:"funnel"`
}
