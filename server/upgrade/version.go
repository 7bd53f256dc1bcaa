package upgrade

// Version order (spec §6.1): SemVer 2.0 precedence after a lenient
// normalisation, through golang.org/x/mod/semver. These mirror
// protocol.NormalizeVersion and protocol.CompareVersions (shared with the
// Go SDK), which replace them when that package lands.

import (
	"errors"
	"strings"

	"golang.org/x/mod/semver"
)

// errVersion: a version that does not parse even after normalisation.
var errVersion = errors.New("version does not parse (want MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD])")

// maxVersionParts is MAJOR.MINOR.PATCH.
const maxVersionParts = 3

// normalizeVersion returns v as SemVer 2.0 without the "v": an optional
// leading "v" or "V" dropped, a missing minor or patch read as 0, leading
// zeros of the numbers dropped. Anything else that is not SemVer (four
// numbers, letters glued to a number such as "2.14.03b") is an error.
func normalizeVersion(v string) (string, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V")
	core, rest := s, ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core, rest = s[:i], s[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) > maxVersionParts {
		return "", errVersion
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return "", errVersion
		}
		if p = strings.TrimLeft(p, "0"); p == "" {
			p = "0"
		}
		parts[i] = p
	}
	for len(parts) < maxVersionParts {
		parts = append(parts, "0")
	}
	out := strings.Join(parts, ".") + rest
	if !semver.IsValid("v" + out) {
		return "", errVersion
	}
	return out, nil
}

// compareVersions orders a and b by SemVer precedence after
// normalisation: -1, 0 or +1. An error names a version that does not
// parse; callers decide what such a version means (docs/upgrades.md,
// "Version order").
func compareVersions(a, b string) (int, error) {
	na, err := normalizeVersion(a)
	if err != nil {
		return 0, err
	}
	nb, err := normalizeVersion(b)
	if err != nil {
		return 0, err
	}
	return semver.Compare("v"+na, "v"+nb), nil
}
