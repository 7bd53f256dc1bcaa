package protocol

// Bounds that spec §1 leaves implicit, named so no decoder carries a bare
// number.
const (
	// MaxGrant bounds a group grant (GROUP_AUTH_ACK, GROUP_CHANGE). The
	// spec does not size the grant; it binds two ids, a role and two
	// timestamps plus the server's signature, well under this, and the
	// bound keeps a hostile grant from filling the 4 KiB frame.
	MaxGrant = 512
	// MaxProgress is UPGRADE_REPORT's progress when done, in percent.
	MaxProgress = 100
	// MaxReportMessage bounds UPGRADE_REPORT's message and the
	// last_failure message that repeats it (spec §6.1), in bytes: longer
	// than MaxMessage because an installer's error text is the operators'
	// main clue.
	MaxReportMessage = 256
)
