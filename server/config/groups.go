package config

import "time"

// Groups is the [groups] section: device groups (docs/groups.md). Every
// field's zero value means its default.
type Groups struct {
	// SendSizeLimit: groups with more members accept GROUP_SEND from
	// moderators and operators only. 0 = 1000 (spec §7's default).
	SendSizeLimit int `toml:"send_size_limit" comment:"groups above this many members take messages from moderators and operators only, 0 = 1000"`
	// SendRate and SendBurst are each sender's GROUP_SEND budget.
	// 0 = 1 message/s, burst 10.
	SendRate  float64 `toml:"send_rate" comment:"GROUP_SEND messages per second per sender, 0 = 1"`
	SendBurst int     `toml:"send_burst" comment:"GROUP_SEND burst per sender, 0 = 10"`
	// SyncRate paces the GROUP_SYNC pushes of operators' changes.
	// 0 = 2000 per second.
	SyncRate int `toml:"sync_rate" comment:"GROUP_SYNC pushes per second, 0 = 2000"`
	// KeyRotation is how often the grant signing key is replaced.
	// 0 = 24h; at least 10m.
	KeyRotation Duration `toml:"key_rotation" comment:"grant signing key rotation period, 0 = 24h"`
}

// minKeyRotation bounds groups.key_rotation from below: at most 4 keys
// are kept, and each must outlive the grants it signed (300 s).
const minKeyRotation = 10 * time.Minute

// validateGroups appends the problems of the [groups] section.
func (c *Config) validateGroups(add func(string, ...any)) {
	g := &c.Groups
	if g.SendSizeLimit < 0 || g.SendRate < 0 || g.SendBurst < 0 || g.SyncRate < 0 {
		add("groups: send_size_limit, send_rate, send_burst and sync_rate must not be negative")
	}
	if d := g.KeyRotation.Duration; d != 0 && d < minKeyRotation {
		add("groups.key_rotation must be at least %s, not %s", minKeyRotation, d)
	}
}
