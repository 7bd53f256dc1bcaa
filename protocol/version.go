package protocol

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
)

// ErrVersionUnparsable is returned (wrapped) by NormalizeVersion and
// CompareVersions for a version that does not parse even after the
// lenient normalisation of spec §6.1.
var ErrVersionUnparsable = errors.New("version does not parse")

// maxVersionLen bounds a version string: TGP/1 strings are short, and a
// bound keeps normalisation cheap on untrusted input.
const maxVersionLen = 256

// revisionMark is the pre-release identifier that a trailing letter
// revision (2.14.03b) is mapped behind: "0" is the lowest identifier
// SemVer has, so X.Y.Zr sorts after X.Y.Z and before X.Y.(Z+1) and its
// real pre-releases (docs/upgrades.md, "Version order").
const revisionMark = "0"

// NormalizeVersion returns the canonical SemVer 2.0 form ("v" prefix,
// three numeric parts) by which v is ordered, after the lenient
// normalisation of spec §6.1: an optional leading "v" or "V", a missing
// minor or patch read as 0, leading zeros ignored (also in numeric
// pre-release identifiers). A trailing run of letters on the last
// numeric part, as POS firmware writes revisions ("2.14.03b"), is a
// revision after that version: X.Y.Zr orders as vX.Y.(Z+1)-0.r, i.e.
// after X.Y.Z and every earlier revision, before X.Y.(Z+1) and its
// pre-releases. The result is a comparison key, not a display form:
// show the version as it was written.
//
// A version that still does not parse returns ErrVersionUnparsable.
func NormalizeVersion(v string) (string, error) {
	if len(v) > maxVersionLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrVersionUnparsable, maxVersionLen)
	}
	s := strings.TrimSpace(v)
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	core, build, hasBuild := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return "", fmt.Errorf("%w: %q has more than three numeric parts", ErrVersionUnparsable, v)
	}
	// A letter revision may only end the last part written.
	last := parts[len(parts)-1]
	digits := strings.TrimRight(last, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
	revision := strings.ToLower(last[len(digits):])
	parts[len(parts)-1] = digits
	if revision != "" && hasPre {
		return "", fmt.Errorf("%w: %q has both a letter revision and a pre-release", ErrVersionUnparsable, v)
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	for i, p := range parts {
		if !allDigits(p) {
			return "", fmt.Errorf("%w: %q: part %d is not a number", ErrVersionUnparsable, v, i+1)
		}
		parts[i] = trimZeros(p)
	}
	if revision != "" {
		parts[2] = incDecimal(parts[2])
		pre, hasPre = revisionMark+"."+revision, true
	}
	out := "v" + strings.Join(parts, ".")
	if hasPre {
		ids := strings.Split(pre, ".")
		for i, id := range ids {
			if allDigits(id) {
				ids[i] = trimZeros(id)
			}
		}
		out += "-" + strings.Join(ids, ".")
	}
	if hasBuild {
		out += "+" + build
	}
	if !semver.IsValid(out) {
		return "", fmt.Errorf("%w: %q", ErrVersionUnparsable, v)
	}
	return out, nil
}

// CompareVersions orders two versions as spec §6.1 says: -1 when a is
// older than b, 0 when they have the same precedence (build metadata is
// ignored, as SemVer says), +1 when a is newer. Precedence is
// golang.org/x/mod/semver's on NormalizeVersion's keys.
//
// The order is total and defined even when a version does not parse, and
// err then wraps ErrVersionUnparsable naming it: an unparsable version is
// older than every parsable one (a terminal reporting a version termd
// cannot read is offered the newest release rather than nothing, and the
// empty string, "nothing installed", is the oldest), and unparsable
// versions are ordered among themselves by their bytes.
func CompareVersions(a, b string) (int, error) {
	na, errA := NormalizeVersion(a)
	nb, errB := NormalizeVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b), errors.Join(errA, errB)
	case errA != nil:
		return -1, errA
	case errB != nil:
		return 1, errB
	}
	return semver.Compare(na, nb), nil
}

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// trimZeros drops leading zeros of a decimal number, keeping one digit.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// incDecimal adds one to a decimal number of any length (SemVer numbers
// are unbounded, so no integer type is assumed).
func incDecimal(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}
