package upgrade

// The release index: every release in memory, the published ones by
// app_id newest first, so UPGRADE_QUERY is answered without a storage
// scan; targeting and the stable rollout hash.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/storage"
)

// rolloutBuckets is the resolution of the rollout hash: a device is in a
// rollout of p percent when its bucket is below p × rolloutBuckets/100.
const rolloutBuckets = 10000

// release is a stored release with what queries need parsed.
type release struct {
	storage.Release
	norm    string // normalised version
	sha     [protocol.SHA256Size]byte
	models  map[string]bool // nil: every model
	devices map[string]bool // nil: every device
	from    []constraint    // nil: every installed version
	// phaseSets are the device lists of the phases (nil for a percent phase).
	phaseSets []phaseSet
	// inGroup evaluates Groups (Options.Groups); nil: no device is in any.
	inGroup func(group, device string) bool
}

// newReleaseIn is newRelease with group targeting evaluated by s's
// group directory.
func (s *Service) newReleaseIn(r storage.Release) (*release, error) {
	rel, err := newRelease(r)
	if err == nil && s.groups != nil {
		rel.inGroup = s.groups.IsMember
	}
	return rel, err
}

// inAnyGroup reports whether the device is in one of the release's groups
// now (memberships change the targeting at once, docs/groups.md).
func (r *release) inAnyGroup(device string) bool {
	if r.inGroup == nil {
		return false
	}
	for _, g := range r.Groups {
		if r.inGroup(g, device) {
			return true
		}
	}
	return false
}

func newRelease(r storage.Release) (*release, error) {
	rel := &release{Release: r}
	var err error
	if rel.norm, err = protocol.NormalizeVersion(r.Version); err != nil {
		return nil, fmt.Errorf("version %q: %w", r.Version, err)
	}
	b, err := hex.DecodeString(r.SHA256)
	if err != nil || len(b) != protocol.SHA256Size {
		return nil, fmt.Errorf("sha256 %q: want 64 hex digits", r.SHA256)
	}
	copy(rel.sha[:], b)
	if len(r.Models) > 0 {
		rel.models = make(map[string]bool, len(r.Models))
		for _, m := range r.Models {
			rel.models[m] = true
		}
	}
	if len(r.Devices) > 0 {
		rel.devices = make(map[string]bool, len(r.Devices))
		for _, d := range r.Devices {
			rel.devices[d] = true
		}
	}
	if rel.from, err = parseRange(r.FromRange); err != nil {
		return nil, err
	}
	for _, p := range r.Phases {
		var set phaseSet
		if len(p.Devices) > 0 {
			set = make(phaseSet, len(p.Devices))
			for _, d := range p.Devices {
				set[d] = true
			}
		}
		rel.phaseSets = append(rel.phaseSets, set)
	}
	return rel, nil
}

// inRollout reports whether device falls in the first pct percent of the
// release's stable hash order: raising pct only ever adds devices.
func inRollout(releaseID, deviceID string, pct int) bool {
	if pct >= 100 {
		return true
	}
	if pct <= 0 {
		return false
	}
	h := sha256.Sum256([]byte(releaseID + "\x00" + deviceID))
	return binary.BigEndian.Uint64(h[:8])%rolloutBuckets < uint64(pct*rolloutBuckets/100)
}

// targets reports whether the release targets a device of model running
// version, at rollout pct. A release that names groups targets their
// members at the time of the question (an offer or a notice).
func (r *release) targets(deviceID, model, version string, pct int) bool {
	if len(r.Groups) > 0 && !r.inAnyGroup(deviceID) {
		return false
	}
	if r.models != nil && !r.models[model] {
		return false
	}
	if r.devices != nil && !r.devices[deviceID] {
		return false
	}
	if r.from != nil && !inRange(r.from, version) {
		return false
	}
	return inRollout(r.ID, deviceID, pct)
}

// newerThan reports whether the release is newer than the installed
// version. An installed version that does not parse is older than every
// release (docs/upgrades.md: such a terminal is upgraded to a proper one).
func (r *release) newerThan(installed string) bool {
	c, err := protocol.CompareVersions(r.norm, installed)
	return err != nil || c > 0
}

// constraint is one comparison of a from-range: op version.
type constraint struct {
	op      string
	version string
}

// rangeOps are the comparisons a from-range may use, longest first.
var rangeOps = []string{">=", "<=", "!=", ">", "<", "="}

// parseRange reads a from-range: comparisons separated by spaces or
// commas, all of which must hold ("\u003e=1.2 <2"); a bare version means =.
func parseRange(s string) ([]constraint, error) {
	var cs []constraint
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		op := "="
		for _, o := range rangeOps {
			if strings.HasPrefix(f, o) {
				op, f = o, f[len(o):]
				break
			}
		}
		v, err := protocol.NormalizeVersion(f)
		if err != nil {
			return nil, fmt.Errorf("from_range %q: version %q: %w", s, f, err)
		}
		cs = append(cs, constraint{op, v})
	}
	return cs, nil
}

// inRange reports whether version satisfies every constraint; a version
// that does not parse satisfies none.
func inRange(cs []constraint, version string) bool {
	for _, c := range cs {
		n, err := protocol.CompareVersions(version, c.version)
		if err != nil {
			return false
		}
		ok := false
		switch c.op {
		case ">=":
			ok = n >= 0
		case "<=":
			ok = n <= 0
		case ">":
			ok = n > 0
		case "<":
			ok = n < 0
		case "!=":
			ok = n != 0
		default:
			ok = n == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// newestFirst orders published releases of one app by version, newest
// first (ties by id, so the order is stable).
func newestFirst(a, b *release) int {
	c, _ := protocol.CompareVersions(b.norm, a.norm) // both parse: checked at creation
	if c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// reindex rebuilds byApp from rels. The caller holds s.mu.
func (s *Service) reindex() {
	byApp := map[string][]*release{}
	for _, r := range s.rels {
		if r.State == storage.ReleasePublished {
			byApp[r.AppID] = append(byApp[r.AppID], r)
		}
	}
	for _, rs := range byApp {
		slices.SortFunc(rs, newestFirst)
	}
	s.byApp = byApp
}
