package storage

// Phased rollouts (docs/upgrades.md, "Phases"): a release's phases are
// part of the release record; the rollout's state — the current phase,
// per-phase counts of distinct devices by outcome, pause and approval —
// is one record per release, written only inside UpdateUpgrades, in the
// same transaction as the report or first offer that changed a count.

import (
	"context"
	"fmt"
	"slices"
)

// Phase is one stage of a phased rollout. Its devices are named by
// Percent (a cumulative share of the release's targets by the stable
// rollout hash) or by Devices (an explicit list), never both.
type Phase struct {
	Percent int      `json:"percent,omitempty"`
	Devices []string `json:"devices,omitempty"`
	// Group names the phase's devices by an operator-only device group
	// (its members at the time of each offer).
	Group string `json:"group,omitempty"`
	// SoakMs is how long the phase runs at least before it may advance.
	SoakMs int64 `json:"soak_ms"`
	// SuccessPct: the phase may advance when at least this share of its
	// devices succeeded.
	SuccessPct int `json:"success_pct"`
	// ErrorPct: the rollout pauses when more than this share of the
	// phase's devices failed, once it has at least MinDevices devices.
	ErrorPct   int `json:"error_pct"`
	MinDevices int `json:"min_devices"`
	// Approval: when the success condition holds the rollout waits for
	// an operator's approval instead of advancing by itself.
	Approval bool `json:"approval,omitempty"`
}

// Outcomes of a device's latest attempt at a release, as counted by its
// phase (UpgradeAssignment.Outcome).
const (
	OutcomeOpen      uint8 = 0
	OutcomeSucceeded uint8 = 1
	OutcomeFailed    uint8 = 2
)

// PhaseCounts are a phase's distinct devices: offered the release while
// the phase was current, and of those, whose latest attempt succeeded or
// failed (FAILED, ROLLED_BACK, TIMED_OUT, REVERTED).
type PhaseCounts struct {
	Devices   int `json:"devices"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Accepted is the failures an operator accepted by resuming: the
	// rollout pauses again only on a failure beyond them.
	Accepted int `json:"accepted,omitempty"`
}

// RolloutState is the state of one release's phased rollout.
type RolloutState struct {
	ReleaseID string `json:"release_id"`
	// Phase is the current phase's index.
	Phase int `json:"phase"`
	// PhaseStartedMs is when the current phase began (unix ms; 0: at the
	// release's publication).
	PhaseStartedMs int64         `json:"phase_started_ms,omitempty"`
	Counts         []PhaseCounts `json:"counts"`
	// Paused: no device gets a first offer (by an operator, or by the
	// error condition: PauseReason says which).
	Paused      bool   `json:"paused,omitempty"`
	PauseReason string `json:"pause_reason,omitempty"`
	PausedMs    int64  `json:"paused_ms,omitempty"`
	// WaitingApproval: the current phase's success condition held and it
	// waits for an operator to approve the next one.
	WaitingApproval bool `json:"waiting_approval,omitempty"`
	// Completed: the last phase's success condition held.
	Completed bool  `json:"completed,omitempty"`
	UpdatedMs int64 `json:"updated_ms"`
}

// maxPhases bounds a release's phases.
const maxPhases = 16

// Clone returns a deep copy.
func (s RolloutState) Clone() RolloutState {
	s.Counts = slices.Clone(s.Counts)
	return s
}

func checkPhases(ps []Phase) error {
	if len(ps) > maxPhases {
		return fmt.Errorf("%w: %d phases (at most %d)", ErrInvalid, len(ps), maxPhases)
	}
	for i, p := range ps {
		if n := btoi(p.Percent > 0) + btoi(len(p.Devices) > 0) + btoi(p.Group != ""); n != 1 {
			return fmt.Errorf("%w: phase %d: a percent, a device list or a group", ErrInvalid, i+1)
		}
		if p.Percent < 0 || p.Percent > 100 || p.SuccessPct < 0 || p.SuccessPct > 100 || p.ErrorPct < 0 || p.ErrorPct > 100 || p.MinDevices < 0 || p.SoakMs < 0 {
			return fmt.Errorf("%w: phase %d: out of range", ErrInvalid, i+1)
		}
	}
	return nil
}

func checkRollout(s *RolloutState) error {
	if err := checkUpgradeID("release id", s.ReleaseID); err != nil {
		return err
	}
	if s.Phase < 0 || s.Phase >= max(len(s.Counts), 1) || len(s.Counts) > maxPhases {
		return fmt.Errorf("%w: rollout phase %d of %d", ErrInvalid, s.Phase, len(s.Counts))
	}
	return nil
}

// Rollouts is implemented by the upgrade stores: every rollout state,
// in release id order.
type Rollouts interface {
	Rollouts(ctx context.Context) ([]RolloutState, error)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
