package storage

// This file is the upgrade store's contract (spec §6.1): releases, the
// frozen assignments of devices to releases, per-attempt progress
// reports, each device's undelivered last failure per app and its last
// known version per app. Badger (upgrade_badger.go) and Memory
// (upgrade_memory.go) implement it and pass one contract suite.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Release states (docs/upgrades.md, "Lifecycle"): draft → published ⇄
// paused → archived; published or paused → cancelled (final: only
// archived follows).
const (
	ReleaseDraft     = "draft"
	ReleasePublished = "published"
	ReleasePaused    = "paused"
	ReleaseArchived  = "archived"
	ReleaseCancelled = "cancelled"
)

// Stages a report record can be in: the wire's 1–6 (protocol.Stage*) and
// two that only termd records, for terminals that stopped reporting.
const (
	// StageTimedOut: no report within the stage's timeout, or offline too
	// long after INSTALLING.
	StageTimedOut uint8 = 7
	// StageReverted: the device queried with its old version after it
	// reported INSTALLING.
	StageReverted uint8 = 8
	// StageCount sizes per-stage arrays (index = stage, 0 unused).
	StageCount = 9
)

// Upgrade store bounds.
const (
	// MaxUpgradeID bounds release, app and device ids in upgrade keys, in bytes.
	MaxUpgradeID = 128
	// maxUpgradeText bounds a record's free text (notes, messages), in bytes.
	maxUpgradeText = 4096
	// maxReleaseTargets bounds a release's model and device lists.
	maxReleaseTargets = 100000
)

// upgradeV1 is the leading version byte of every upgrade value (JSON
// after it); a later layout gets a new byte and old ones stay readable.
const upgradeV1 byte = 1

// Release is one version of an application operators publish.
// Published releases change only in State, RolloutPct, Sig, DeadlineMs
// and CancelledMs.
type Release struct {
	ID      string `json:"id"`
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	// SHA256 is the artifact's digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
	// Size is the artifact's length in bytes.
	Size int64 `json:"size"`
	// URL is an external download URL; "" = termd's artifact store.
	URL       string `json:"url,omitempty"`
	Notes     string `json:"notes,omitempty"`
	Mandatory bool   `json:"mandatory,omitempty"`
	State     string `json:"state"`
	// Models, Devices and Groups target the release; an empty list does
	// not restrict. FromRange restricts the installed version.
	Models    []string `json:"models,omitempty"`
	Devices   []string `json:"devices,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	FromRange string   `json:"from_range,omitempty"`
	// RolloutPct is the share of targeted devices offered the release, 0–100.
	RolloutPct int `json:"rollout_pct"`
	// Sig is release_sig (r ‖ s, 64 bytes), nil when unsigned.
	Sig []byte `json:"sig,omitempty"`
	// Times in unix ms; PublishedMs is the first publication (0 = never).
	CreatedMs   int64 `json:"created_ms"`
	PublishedMs int64 `json:"published_ms,omitempty"`
	UpdatedMs   int64 `json:"updated_ms"`
	// Phases, when set, stage the rollout (rollout.go); RolloutPct is
	// then unused. Fixed once published.
	Phases []Phase `json:"phases,omitempty"`
	// CancelledMs is when the release was cancelled (unix ms, 0 = never).
	CancelledMs int64 `json:"cancelled_ms,omitempty"`
	// DeadlineMs makes the release mandatory from then on (unix ms, 0 =
	// no deadline; docs/upgrades.md, "Deadlines").
	DeadlineMs int64 `json:"deadline_ms,omitempty"`
}

// UpgradeAssignment records that a device was offered a release: from
// then on its reports for the release are accepted (frozen assignment).
type UpgradeAssignment struct {
	ReleaseID   string `json:"release_id"`
	DeviceID    string `json:"device_id"`
	AppID       string `json:"app_id"`
	FromVersion string `json:"from_version"`
	Model       string `json:"model,omitempty"`
	AtMs        int64  `json:"at_ms"`
	// Failures counts the device's failed attempts at the release;
	// Forgiven is how many of them an operator's retry cleared. The
	// device gets no offer while Failures-Forgiven reaches the cap.
	Failures int `json:"failures,omitempty"`
	Forgiven int `json:"forgiven,omitempty"`
	// Phase is the phase of a phased rollout the device was offered the
	// release in; Outcome (Outcome*) is its latest attempt's outcome as
	// that phase counts it, of attempt OutcomeAttempt.
	Phase          int    `json:"phase,omitempty"`
	Outcome        uint8  `json:"outcome,omitempty"`
	OutcomeAttempt uint64 `json:"outcome_attempt,omitempty"`
}

// UpgradeReport is one device's progress on one attempt at a release.
type UpgradeReport struct {
	ReleaseID   string `json:"release_id"`
	DeviceID    string `json:"device_id"`
	Attempt     uint64 `json:"attempt"`
	AppID       string `json:"app_id"`
	Version     string `json:"version"`
	FromVersion string `json:"from_version"`
	Model       string `json:"model,omitempty"`
	// Stage is the state reached: it never moves backwards.
	Stage    uint8  `json:"stage"`
	Progress uint8  `json:"progress"`
	Code     uint64 `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
	// StageMs[s] is when stage s was first reported (unix ms, 0 = never).
	StageMs   [StageCount]int64 `json:"stage_ms"`
	UpdatedMs int64             `json:"updated_ms"`
	// Enqueued: the failure's notification is in the outbox.
	Enqueued bool `json:"enqueued,omitempty"`
}

// Failed reports whether the record's stage is a failure (FAILED,
// ROLLED_BACK, TIMED_OUT, REVERTED).
func (r *UpgradeReport) Failed() bool { return StageFailed(r.Stage) }

// StageFailed reports whether stage is a failure outcome.
func StageFailed(stage uint8) bool { return stage >= 5 && stage <= StageReverted }

// UpgradeFailureMark is a device's latest failure for an app, returned
// once as last_failure by a launch query.
type UpgradeFailureMark struct {
	DeviceID  string `json:"device_id"`
	AppID     string `json:"app_id"`
	ReleaseID string `json:"release_id"`
	Version   string `json:"version"`
	Attempt   uint64 `json:"attempt"`
	Code      uint64 `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	AtMs      int64  `json:"at_ms"`
	Delivered bool   `json:"delivered,omitempty"`
}

// AppVersion is a device's last known version of an app (from its
// queries and SUCCEEDED reports).
type AppVersion struct {
	DeviceID string `json:"device_id"`
	AppID    string `json:"app_id"`
	Version  string `json:"version"`
	// Model is the device's model when the version was learnt (so
	// targeting can be evaluated for offline devices).
	Model string `json:"model,omitempty"`
	AtMs  int64  `json:"at_ms"`
}

// UpgradeTx reads and writes upgrade records inside one transaction;
// reads see the transaction's own writes.
type UpgradeTx interface {
	Report(releaseID, deviceID string, attempt uint64) (UpgradeReport, bool, error)
	PutReport(r *UpgradeReport) error
	Assignment(releaseID, deviceID string) (UpgradeAssignment, bool, error)
	PutAssignment(a *UpgradeAssignment) error
	FailureMark(deviceID, appID string) (UpgradeFailureMark, bool, error)
	PutFailureMark(m *UpgradeFailureMark) error
	DeleteFailureMark(deviceID, appID string) error
	PutAppVersion(v *AppVersion) error
	// Rollout returns the release's rollout state; PutRollout stores it.
	Rollout(releaseID string) (RolloutState, bool, error)
	PutRollout(s *RolloutState) error
}

// Upgrades is the durable upgrade store.
type Upgrades interface {
	// PutRelease stores r (creating or replacing), durable before return.
	PutRelease(ctx context.Context, r Release) error
	// GetRelease returns the release or ErrNotFound.
	GetRelease(ctx context.Context, id string) (Release, error)
	// ListReleases returns every release in id order.
	ListReleases(ctx context.Context) ([]Release, error)
	// UpdateUpgrades runs fn in one transaction and commits its writes,
	// durable before return; an error from fn writes nothing. Many reports
	// go through one call (group commit). fn must not call the store.
	UpdateUpgrades(ctx context.Context, fn func(tx UpgradeTx) error) error
	// Assignment returns the device's assignment to the release or ErrNotFound.
	Assignment(ctx context.Context, releaseID, deviceID string) (UpgradeAssignment, error)
	// Assignments calls fn for the release's assignments in device order.
	Assignments(ctx context.Context, releaseID string, fn func(a UpgradeAssignment) error) error
	// Reports calls fn for the reports of a release ("" = of every
	// release) in (release, device, attempt) order.
	Reports(ctx context.Context, releaseID string, fn func(r UpgradeReport) error) error
	// DeviceReports returns the device's reports in (release, attempt) order.
	DeviceReports(ctx context.Context, deviceID string) ([]UpgradeReport, error)
	// FailureMark returns the device's failure mark for the app or ErrNotFound.
	FailureMark(ctx context.Context, deviceID, appID string) (UpgradeFailureMark, error)
	// AppVersions returns the device's known app versions in app order
	// ("" = of every device, in (device, app) order).
	AppVersions(ctx context.Context, deviceID string) ([]AppVersion, error)
	// Rollouts returns every rollout state in release id order.
	Rollouts(ctx context.Context) ([]RolloutState, error)
}

// checkUpgradeID rejects ids that cannot be part of a key: NUL separates
// key parts, so one id's keys never share a prefix with another's.
func checkUpgradeID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(id) > MaxUpgradeID {
		return fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrInvalid, what, len(id), MaxUpgradeID)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%w: %s contains NUL", ErrInvalid, what)
	}
	return nil
}

func checkRelease(r *Release) error {
	if err := checkUpgradeID("release id", r.ID); err != nil {
		return err
	}
	if err := checkUpgradeID("app id", r.AppID); err != nil {
		return err
	}
	switch r.State {
	case ReleaseDraft, ReleasePublished, ReleasePaused, ReleaseArchived, ReleaseCancelled:
	default:
		return fmt.Errorf("%w: release state %q", ErrInvalid, r.State)
	}
	if len(r.Notes) > maxUpgradeText || len(r.URL) > maxUpgradeText || len(r.FromRange) > maxUpgradeText {
		return fmt.Errorf("%w: release text over %d bytes", ErrInvalid, maxUpgradeText)
	}
	if len(r.Models)+len(r.Devices)+len(r.Groups) > maxReleaseTargets {
		return fmt.Errorf("%w: release targets over %d", ErrInvalid, maxReleaseTargets)
	}
	if r.RolloutPct < 0 || r.RolloutPct > 100 {
		return fmt.Errorf("%w: rollout %d%%", ErrInvalid, r.RolloutPct)
	}
	if r.DeadlineMs < 0 || r.CancelledMs < 0 {
		return fmt.Errorf("%w: negative release time", ErrInvalid)
	}
	return checkPhases(r.Phases)
}

func checkReport(r *UpgradeReport) error {
	if err := checkUpgradeID("release id", r.ReleaseID); err != nil {
		return err
	}
	if err := checkUpgradeID("device id", r.DeviceID); err != nil {
		return err
	}
	if r.Attempt == 0 {
		return fmt.Errorf("%w: attempt 0", ErrInvalid)
	}
	if r.Stage == 0 || r.Stage >= StageCount {
		return fmt.Errorf("%w: stage %d", ErrInvalid, r.Stage)
	}
	if len(r.Message) > maxUpgradeText {
		return fmt.Errorf("%w: message over %d bytes", ErrInvalid, maxUpgradeText)
	}
	return nil
}

func checkPair(a, aWhat, b, bWhat string) error {
	if err := checkUpgradeID(aWhat, a); err != nil {
		return err
	}
	return checkUpgradeID(bWhat, b)
}

// encodeUpgrade is upgradeV1 followed by v's JSON.
func encodeUpgrade(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{upgradeV1}, b...), nil
}

// decodeUpgrade reads a value written by encodeUpgrade into v.
func decodeUpgrade(b []byte, v any) error {
	if len(b) == 0 || b[0] != upgradeV1 {
		return fmt.Errorf("%w: upgrade value version", ErrCorrupt)
	}
	if err := json.Unmarshal(b[1:], v); err != nil {
		return fmt.Errorf("%w: upgrade value: %v", ErrCorrupt, err)
	}
	return nil
}
