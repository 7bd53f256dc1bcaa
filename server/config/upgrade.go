package config

import (
	"os"
	"path/filepath"
	"time"
)

// Upgrade defaults and bounds.
const (
	// DefaultMaxAttempts is upgrade.max_attempts' default.
	DefaultMaxAttempts = 3
	// MaxMaxAttempts bounds upgrade.max_attempts.
	MaxMaxAttempts = 1000
	// DefaultCommitBatch is upgrade.commit_batch's default: reports per
	// group commit.
	DefaultCommitBatch = 256
	// MaxCommitBatch bounds upgrade.commit_batch: a Badger transaction
	// must stay well under its size limit (a report is ~400 bytes).
	MaxCommitBatch = 4096
	// minUpgradeTimeout bounds the stage and offline timeouts from below
	// (short ones only make sense in tests and demos).
	minUpgradeTimeout = 100 * time.Millisecond
)

// Upgrade is the [upgrade] section: releases, reports and stuck
// detection (docs/upgrades.md).
type Upgrade struct {
	// MaxAttempts is how many failed attempts at one release a device may
	// make before it is offered that release no more, until an operator
	// runs `termctl release retry`. Default 3.
	MaxAttempts int `toml:"max_attempts" comment:"failed attempts per device and release before offers stop (until release retry)"`
	// StageTimeout* are how long a device may stay in a stage without a
	// further report before it is recorded TIMED_OUT (flat keys, so
	// `termd -print-config` lists each). Downloading: default 2h (a slow
	// link at fleet scale). Downloaded: default 24h (a terminal may wait
	// for an idle hour to install). Installing: default 30m.
	StageTimeoutDownloading Duration `toml:"stage_timeout_downloading" comment:"in DOWNLOADING this long without a report: TIMED_OUT"`
	StageTimeoutDownloaded  Duration `toml:"stage_timeout_downloaded" comment:"in DOWNLOADED this long without a report: TIMED_OUT"`
	StageTimeoutInstalling  Duration `toml:"stage_timeout_installing" comment:"in INSTALLING this long without a report: TIMED_OUT"`
	// OfflineTimeout is how long a device that reported INSTALLING may
	// stay offline before it is recorded TIMED_OUT (it may be bricked).
	// Default 20m: longer than an install's reboot.
	OfflineTimeout Duration `toml:"offline_timeout" comment:"offline this long after INSTALLING: TIMED_OUT"`
	// SweepInterval is how often stuck attempts are looked for. Default 30s.
	SweepInterval Duration `toml:"sweep_interval" comment:"how often stuck attempts are looked for"`
	// NoticeSpread spreads the UPGRADE_NOTICE pushes of one publication
	// (publish, resume, rollout growth) over this period, so a fleet does
	// not download all at once. Default 60s; 0 sends at once.
	NoticeSpread Duration `toml:"notice_spread" comment:"UPGRADE_NOTICE pushes of one publication are spread over this"`
	// CommitBatch bounds the reports committed in one transaction.
	// Default 256.
	CommitBatch int `toml:"commit_batch" comment:"most reports committed in one transaction (group commit)"`
	// ReleasePublicKeys are PEM files of the release public keys
	// (`termctl keygen` writes KEYFILE.pub); a release signature must
	// verify with one of them. Default none. Relative paths are relative
	// to the config file.
	ReleasePublicKeys []string `toml:"release_public_keys" comment:"PEM files of release public keys; signatures must verify with one"`
	// RequireSignature refuses to publish a release without a verified
	// signature. Default false.
	RequireSignature bool `toml:"require_signature" comment:"refuse to publish unsigned releases"`
}

// DefaultUpgrade is the [upgrade] section's defaults.
func DefaultUpgrade() Upgrade {
	return Upgrade{
		MaxAttempts:             DefaultMaxAttempts,
		StageTimeoutDownloading: D(2 * time.Hour), StageTimeoutDownloaded: D(24 * time.Hour),
		StageTimeoutInstalling: D(30 * time.Minute),
		OfflineTimeout:         D(20 * time.Minute), SweepInterval: D(30 * time.Second),
		NoticeSpread: D(60 * time.Second), CommitBatch: DefaultCommitBatch,
	}
}

// resolveUpgradePaths makes release key paths relative to the config file's dir.
func (u *Upgrade) resolveUpgradePaths(dir string) {
	for i, p := range u.ReleasePublicKeys {
		if p != "" && !filepath.IsAbs(p) {
			u.ReleasePublicKeys[i] = filepath.Join(dir, p)
		}
	}
}

// validateUpgrade appends the problems of the [upgrade] section.
func (c *Config) validateUpgrade(add func(string, ...any)) {
	u := &c.Upgrade
	if u.MaxAttempts < 1 || u.MaxAttempts > MaxMaxAttempts {
		add("upgrade.max_attempts must be 1-%d, not %d", MaxMaxAttempts, u.MaxAttempts)
	}
	for _, st := range []struct {
		key string
		d   time.Duration
	}{
		{"stage_timeout_downloading", u.StageTimeoutDownloading.Duration},
		{"stage_timeout_downloaded", u.StageTimeoutDownloaded.Duration},
		{"stage_timeout_installing", u.StageTimeoutInstalling.Duration},
	} {
		if st.d < minUpgradeTimeout {
			add("upgrade.%s must be at least %s, not %s", st.key, minUpgradeTimeout, st.d)
		}
	}
	if u.OfflineTimeout.Duration < minUpgradeTimeout {
		add("upgrade.offline_timeout must be at least %s, not %s", minUpgradeTimeout, u.OfflineTimeout.Duration)
	}
	if u.SweepInterval.Duration < 10*time.Millisecond || u.SweepInterval.Duration > time.Hour {
		add("upgrade.sweep_interval must be 10ms-1h, not %s", u.SweepInterval.Duration)
	}
	if u.NoticeSpread.Duration < 0 || u.NoticeSpread.Duration > time.Hour {
		add("upgrade.notice_spread must be 0-1h, not %s", u.NoticeSpread.Duration)
	}
	if u.CommitBatch < 1 || u.CommitBatch > MaxCommitBatch {
		add("upgrade.commit_batch must be 1-%d, not %d", MaxCommitBatch, u.CommitBatch)
	}
	for _, p := range u.ReleasePublicKeys {
		if _, err := os.Stat(p); err != nil {
			add("upgrade.release_public_keys: %q: %v", p, err)
		}
	}
	if u.RequireSignature && len(u.ReleasePublicKeys) == 0 {
		add("upgrade.require_signature is set but upgrade.release_public_keys is empty (no signature could verify)")
	}
}
