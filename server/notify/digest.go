package notify

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// buildDigest summarises a claimed batch: counts over every member and
// the first events.MaxDigestItems in detail, oldest first.
func buildDigest(c storage.OutboxClaim) *events.FailureDigest {
	d := &events.FailureDigest{
		ID: c.Batch, ByKind: map[string]int{}, ByCode: map[string]int{}, ByModel: map[string]int{},
		Items: []events.FailureItem{},
	}
	evs := make([]Event, len(c.Entries))
	for i, e := range c.Entries {
		if err := json.Unmarshal(e.Payload, &evs[i]); err != nil || evs[i].ID == "" {
			// Stored by a newer or broken termd: still tell what we know.
			evs[i] = Event{ID: e.ID, Kind: e.Kind, ReleaseID: e.Group, AtMs: e.At, Message: "unreadable notification payload"}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].AtMs < evs[j].AtMs })
	devices := map[string]bool{}
	for i, e := range evs {
		if d.ReleaseID == "" {
			d.ReleaseID, d.AppID, d.Version = e.ReleaseID, e.AppID, e.Version
		}
		d.ByKind[e.Kind]++
		if e.Kind == KindRolloutPaused {
			d.RolloutPaused = e.Message
		} else {
			d.Failures++
		}
		if e.Code != 0 {
			d.ByCode[strconv.FormatUint(e.Code, 10)]++
		}
		if e.Model != "" {
			d.ByModel[e.Model]++
		}
		if e.DeviceID != "" {
			devices[e.DeviceID] = true
		}
		if i == 0 || e.AtMs < d.FirstAtMs {
			d.FirstAtMs = e.AtMs
		}
		d.LastAtMs = max(d.LastAtMs, e.AtMs)
		if len(d.Items) < events.MaxDigestItems {
			d.Items = append(d.Items, events.FailureItem{
				ID: e.ID, Kind: e.Kind, DeviceID: e.DeviceID, Model: e.Model, FromVersion: e.FromVersion,
				Attempt: e.Attempt, Stage: e.Stage, Code: e.Code, Message: e.Message, AtMs: e.AtMs,
			})
		} else {
			d.Omitted++
		}
	}
	d.Devices = len(devices)
	return d
}

// subject is the digest's one-line summary (email subject, SMS text).
func subject(d *events.FailureDigest) string {
	what := "upgrade failure"
	if len(d.ByKind) == 1 && d.ByKind[KindDeliveryFailed] > 0 {
		what = "notification delivery problem"
	}
	if d.Failures != 1 {
		what += "s"
	}
	s := fmt.Sprintf("[termd] %d %s", d.Failures, what)
	if d.RolloutPaused != "" {
		s = fmt.Sprintf("[termd] ROLLOUT PAUSED (%s), %d %s", d.RolloutPaused, d.Failures, what)
	}
	if d.ReleaseID != "" {
		s += fmt.Sprintf(": %s %s (release %s, %d device(s))", d.AppID, d.Version, d.ReleaseID, d.Devices)
	}
	return s
}

// text renders d as the plain-text email body.
func text(d *events.FailureDigest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", subject(d))
	if d.ReleaseID != "" {
		fmt.Fprintf(&b, "Release:  %s (app %s, version %s)\n", d.ReleaseID, d.AppID, d.Version)
	}
	fmt.Fprintf(&b, "Failures: %d from %d device(s), %s to %s\n", d.Failures, d.Devices, fmtMs(d.FirstAtMs), fmtMs(d.LastAtMs))
	writeCounts(&b, "By kind", d.ByKind)
	writeCounts(&b, "By code", d.ByCode)
	writeCounts(&b, "By model", d.ByModel)
	fmt.Fprintf(&b, "\n%-24s %-24s %-12s %-12s %7s %5s %5s  %s\n", "TIME", "DEVICE", "MODEL", "FROM", "ATTEMPT", "STAGE", "CODE", "KIND / MESSAGE")
	for _, it := range d.Items {
		fmt.Fprintf(&b, "%-24s %-24s %-12s %-12s %7d %5d %5d  %s", fmtMs(it.AtMs), it.DeviceID, it.Model, it.FromVersion, it.Attempt, it.Stage, it.Code, it.Kind)
		if it.Message != "" {
			fmt.Fprintf(&b, ": %s", it.Message)
		}
		b.WriteByte('\n')
	}
	if d.Omitted > 0 {
		fmt.Fprintf(&b, "... and %d more (termctl release status %s)\n", d.Omitted, d.ReleaseID)
	}
	fmt.Fprintf(&b, "\nDelivery id: %s\n", d.ID)
	return b.String()
}

func writeCounts(b *strings.Builder, title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "%s:", title)
	for _, k := range keys {
		fmt.Fprintf(b, " %s=%d", k, m[k])
	}
	b.WriteByte('\n')
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
