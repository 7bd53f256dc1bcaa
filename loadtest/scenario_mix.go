package loadtest

import (
	"fmt"
	"strconv"
	"strings"
)

// Request kinds of the mixed scenario, as named in -mix, in
// Result.Latency and in the "answered:<kind>:<STATUS>" counts.
const (
	KindHeartbeat    = "heartbeat"
	KindUpgradeQuery = "upgrade_query"
	KindControl      = "control"
	KindGroupList    = "group_list"
	KindGroupChange  = "group_change"
	KindGroupAuth    = "group_auth"
	// KindUpgradeReport is the upgrade scenario's UPGRADE_REPORT (a
	// terminal without an offered release cannot send it).
	KindUpgradeReport = "upgrade_report"
	// KindSchedule and KindUpgradeCheck are the campaign scenario's
	// SCHEDULE_REQUEST and UPGRADE_CHECK (a terminal without a campaign
	// cannot send them).
	KindSchedule     = "schedule_request"
	KindUpgradeCheck = "upgrade_check"
)

// Kind indices (pending.kind) into mixKinds.
const (
	kindHeartbeat = iota
	kindUpgradeQuery
	kindControl
	kindGroupList
	kindGroupChange
	kindGroupAuth
	kindUpgradeReport
	kindSchedule
	kindUpgradeCheck
	numKinds
)

// mixKinds names the kinds by index.
var mixKinds = [numKinds]string{
	KindHeartbeat, KindUpgradeQuery, KindControl, KindGroupList, KindGroupChange, KindGroupAuth, KindUpgradeReport,
	KindSchedule, KindUpgradeCheck,
}

// skippedTypeKey is the count of slots whose kind the protocol cannot
// send, by kind (built once: counting must not build strings).
var skippedTypeKey = func() (k [numKinds]string) {
	for i, n := range mixKinds {
		k[i] = "skipped_type:" + n
	}
	return k
}()

// DefaultMix is the mixed scenario's default proportions.
const DefaultMix = "heartbeat=70,upgrade_query=15,control=10,group_list=5"

// Mix is the proportions of request kinds in the mixed scenario.
type Mix struct {
	// cum[i] is the sum of the weights of kinds 0..i.
	cum   [numKinds]uint32
	total uint32
}

// ParseMix reads "kind=weight,..." (weights are non-negative integers,
// not necessarily summing to 100).
func ParseMix(s string) (*Mix, error) {
	var w [numKinds]uint32
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-mix %q: want kind=weight,... with kinds %s", s, strings.Join(mixKinds[:], ", "))
		}
		k := kindIndex(strings.TrimSpace(name))
		if k < 0 {
			return nil, fmt.Errorf("-mix: unknown kind %q (kinds: %s)", name, strings.Join(mixKinds[:], ", "))
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("-mix: weight of %s: %q is not an integer 0..65535", name, val)
		}
		w[k] = uint32(v)
	}
	m := &Mix{}
	for i, v := range w {
		m.total += v
		m.cum[i] = m.total
	}
	if m.total == 0 {
		return nil, fmt.Errorf("-mix %q: all weights are 0", s)
	}
	return m, nil
}

func kindIndex(name string) int {
	for i, n := range mixKinds {
		if n == name {
			return i
		}
	}
	return -1
}

// pick maps a uniform random number to a kind by weight.
func (m *Mix) pick(r uint32) uint8 {
	x := uint32(uint64(r) * uint64(m.total) >> 32)
	for i, c := range m.cum {
		if x < c {
			return uint8(i)
		}
	}
	return kindHeartbeat
}

// String is the mix as -mix would take it.
func (m *Mix) String() string {
	var b strings.Builder
	prev := uint32(0)
	for i, c := range m.cum {
		if w := c - prev; w > 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%d", mixKinds[i], w)
		}
		prev = c
	}
	return b.String()
}
