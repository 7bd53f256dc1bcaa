package api

// Releases and upgrade progress (docs/upgrades.md, docs/admin-api.md).

// Release is a release as operators see it (GET /v1/releases/{id}).
type Release struct {
	ID        string   `json:"id"`
	AppID     string   `json:"app_id"`
	Version   string   `json:"version"`
	SHA256    string   `json:"sha256"`
	Size      int64    `json:"size"`
	URL       string   `json:"url,omitempty"`
	Notes     string   `json:"notes,omitempty"`
	Mandatory bool     `json:"mandatory"`
	State     string   `json:"state"`
	Models    []string `json:"models,omitempty"`
	Devices   []string `json:"devices,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	FromRange string   `json:"from_range,omitempty"`
	// RolloutPct is the share of targeted devices offered the release.
	RolloutPct int `json:"rollout_pct"`
	// Sig is release_sig in hex ("" = unsigned).
	Sig         string `json:"sig,omitempty"`
	CreatedMs   int64  `json:"created_ms"`
	PublishedMs int64  `json:"published_ms,omitempty"`
	UpdatedMs   int64  `json:"updated_ms"`
	// Phases stage the rollout (RolloutPct is then unused).
	Phases []Phase `json:"phases,omitempty"`
	// CancelledMs is when the release was cancelled (0 = never).
	CancelledMs int64 `json:"cancelled_ms,omitempty"`
	// DeadlineMs is when the release becomes mandatory (unix ms, 0 = no
	// deadline).
	DeadlineMs int64 `json:"deadline_ms,omitempty"`
}

// ReleaseCreate is POST /v1/releases' body. Either SHA256 names an
// uploaded artifact (URL empty) or URL, SHA256 and Size describe an
// external one.
type ReleaseCreate struct {
	AppID     string   `json:"app_id"`
	Version   string   `json:"version"`
	SHA256    string   `json:"sha256"`
	Size      int64    `json:"size,omitempty"`
	URL       string   `json:"url,omitempty"`
	Notes     string   `json:"notes,omitempty"`
	Mandatory bool     `json:"mandatory,omitempty"`
	Models    []string `json:"models,omitempty"`
	Devices   []string `json:"devices,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	FromRange string   `json:"from_range,omitempty"`
	// RolloutPct defaults to 100 when nil.
	RolloutPct *int `json:"rollout_pct,omitempty"`
	// Phases stage the rollout instead of RolloutPct; zero fields of a
	// phase take the defaults (docs/upgrades.md, "Phases").
	Phases []Phase `json:"phases,omitempty"`
	// DeadlineMs makes the release mandatory from then on (unix ms; 0 =
	// no deadline; one already past makes it mandatory at once).
	DeadlineMs int64 `json:"deadline_ms,omitempty"`
}

// Deadline is PUT /v1/releases/{id}/deadline's body: unix ms, 0 clears it.
type Deadline struct {
	DeadlineMs int64 `json:"deadline_ms"`
}

// ReleaseList is GET /v1/releases.
type ReleaseList struct {
	Releases []Release `json:"releases"`
}

// Rollout is PUT /v1/releases/{id}/rollout's body.
type Rollout struct {
	Pct int `json:"pct"`
}

// Signature is PUT /v1/releases/{id}/signature's body: release_sig in hex.
type Signature struct {
	Sig string `json:"sig"`
}

// Retry is POST /v1/releases/{id}/retry's body: one device, or every
// device at the attempt cap (Failed).
type Retry struct {
	Device string `json:"device,omitempty"`
	// Failed: every device whose latest attempt failed or that is at the
	// attempt cap.
	Failed bool `json:"failed,omitempty"`
	// TimedOut: every device whose latest attempt timed out or reverted.
	TimedOut bool `json:"timed_out,omitempty"`
}

// RetryResult says how many devices were cleared for new attempts.
type RetryResult struct {
	Devices int `json:"devices"`
}

// ReleaseStatus is GET /v1/releases/{id}/status.
type ReleaseStatus struct {
	Release Release `json:"release"`
	// Assigned counts devices ever offered the release (frozen).
	Assigned int `json:"assigned"`
	// Stages counts devices by the stage of their latest attempt
	// ("downloading", ..., "succeeded", "failed", "rolled_back",
	// "timed_out", "reverted").
	Stages map[string]int `json:"stages"`
	// Succeeded and Failed count distinct devices whose latest attempt
	// succeeded or failed; FailureRate is Failed / (Succeeded + Failed).
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	FailureRate float64 `json:"failure_rate"`
	// AtCap counts devices that reached upgrade.max_attempts.
	AtCap int `json:"at_cap"`
	// Failures groups the failed devices by code × model × from-version.
	Failures []FailureGroup `json:"failures"`
}

// FailureGroup is the devices whose latest attempt failed with one code,
// on one model, from one version.
type FailureGroup struct {
	Stage       string   `json:"stage"`
	Code        uint64   `json:"code"`
	Model       string   `json:"model"`
	FromVersion string   `json:"from_version"`
	Count       int      `json:"count"`
	Devices     []string `json:"devices"`
}

// UpgradeAttempt is one device's attempt at a release (upgrade history).
type UpgradeAttempt struct {
	ReleaseID   string `json:"release_id"`
	AppID       string `json:"app_id"`
	Version     string `json:"version"`
	FromVersion string `json:"from_version"`
	Attempt     uint64 `json:"attempt"`
	Stage       string `json:"stage"`
	Progress    uint8  `json:"progress"`
	Code        uint64 `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	// StageMs maps each stage reached to when it was first reported (unix ms).
	StageMs   map[string]int64 `json:"stage_ms"`
	UpdatedMs int64            `json:"updated_ms"`
}

// AppVersion is a device's last known version of an app.
type AppVersion struct {
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	AtMs    int64  `json:"at_ms"`
}

// DeviceUpgrades is GET /v1/devices/{id}/upgrades.
type DeviceUpgrades struct {
	Apps     []AppVersion     `json:"apps"`
	Attempts []UpgradeAttempt `json:"attempts"`
	// Next is, per app in Apps, what the device's next UPGRADE_QUERY
	// with that version would be answered now.
	Next []NextOffer `json:"next"`
}

// NextOffer is what a device would be told for one app if it asked now:
// an offer, a campaign to schedule, or neither (with why not, when the
// attempt cap withheld an offer).
type NextOffer struct {
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	// ReleaseID and ReleaseVersion name the release offered ("" for
	// none); Assigned is true when the device was offered it before (its
	// assignment is frozen), false when this would be the first offer;
	// Mandatory as the offer would say (the release's flag or its
	// deadline passed).
	ReleaseID      string `json:"release_id,omitempty"`
	ReleaseVersion string `json:"release_version,omitempty"`
	Assigned       bool   `json:"assigned,omitempty"`
	Mandatory      bool   `json:"mandatory,omitempty"`
	// CampaignID is the campaign the device would be sent to schedule
	// through instead of an offer.
	CampaignID string `json:"campaign_id,omitempty"`
	// Capped is true when a release newer than Version is withheld
	// because the device reached upgrade.max_attempts on it.
	Capped bool `json:"capped,omitempty"`
}
