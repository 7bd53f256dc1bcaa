package schedule_test

// What the operator console asks of scheduling: a plan's selection (the
// windows an operator picked on the planner's calendar) and a campaign's
// progress aggregates (checked in, due, no-shows, not reached yet).

import (
	"slices"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/schedule"
)

// query makes termd learn the device's version of pos (it is then
// targeted: the release is newer).
func query(t *testing.T, c *client.Conn) {
	t.Helper()
	var qa protocol.UpgradeQueryAck
	if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0"}, &qa); err != nil {
		t.Fatal(err)
	}
}

func TestPlanSelection(t *testing.T) {
	clk := &clock{}
	clk.set(t0)
	n := start(t, newStore(t), clk, threeClusters)
	n.campaign(t, api.CampaignCreate{})
	for _, id := range []string{"pos-1", "pos-2", "pos-3"} {
		query(t, n.dial(t, id, "P400"))
	}
	w := func(from, to time.Duration) api.Window {
		return api.Window{StartMs: t0.Add(from).UnixMilli(), EndMs: t0.Add(to).UnixMilli()}
	}
	q := schedule.PlanQuery{ReleaseID: n.rel.ID, FromMs: t0.UnixMilli(), ToMs: t0.Add(2 * time.Hour).UnixMilli(),
		// Two adjacent windows (merged), and one holding no whole
		// 10-minute slot (a slot must lie inside a window).
		Select: []api.Window{w(90*time.Minute, 100*time.Minute), w(time.Hour, 90*time.Minute), w(5*time.Minute, 15*time.Minute)}}
	p, err := n.sc.Plan(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if p.Targeted != 3 || p.Selection == nil {
		t.Fatalf("plan: targeted %d, selection %+v", p.Targeted, p.Selection)
	}
	sel := *p.Selection
	want := []api.Window{w(5*time.Minute, 15*time.Minute), w(time.Hour, 100*time.Minute)}
	// 4 slots (01:00 … 01:30) of 3 + 2 + 2 free places; the first takes
	// all 3 targeted terminals (no history: everyone shows up).
	if !slices.Equal(sel.Windows, want) || sel.Slots != 4 || sel.Free != 28 || sel.Covered != 3 {
		t.Fatalf("selection %+v, want windows %v, 4 slots, 28 free, 3 covered", sel, want)
	}
	// Only the fra cluster: 3 places a slot, so the selection covers 3
	// with the first slot, and 12 places in all.
	q.Clusters = []string{"fra"}
	if p, err = n.sc.Plan(t.Context(), q); err != nil || p.Selection.Free != 12 || p.Selection.Covered != 3 {
		t.Fatalf("fra only: %+v %v", p.Selection, err)
	}
	// A selection of one slot in the past takes nothing.
	clk.add(time.Hour + 20*time.Minute)
	q.Clusters, q.Select = nil, []api.Window{w(time.Hour, 70*time.Minute)}
	if p, err = n.sc.Plan(t.Context(), q); err != nil || p.Selection.Slots != 0 || p.Selection.Covered != 0 {
		t.Fatalf("past selection: %+v %v", p.Selection, err)
	}
	// Without a selection the plan has none.
	q.Select = nil
	if p, err = n.sc.Plan(t.Context(), q); err != nil || p.Selection != nil {
		t.Fatalf("no selection: %+v %v", p.Selection, err)
	}
	for name, sel := range map[string][]api.Window{
		"backwards": {w(2*time.Hour, time.Hour)},
		"too many":  make([]api.Window, 1001),
	} {
		q.Select = sel
		if _, err := n.sc.Plan(t.Context(), q); protocol.StatusOf(err) != protocol.BadRequest {
			t.Errorf("%s: %v, want BAD_REQUEST", name, err)
		}
	}
}

// Progress counts check-ins inside the slot, reservations past their
// check-in grace (due) and no-shows among them, and names the targeted
// terminals with no reservation.
func TestProgressAggregates(t *testing.T) {
	clk := &clock{}
	clk.set(t0)
	n := start(t, newStore(t), clk, threeClusters)
	camp := n.campaign(t, api.CampaignCreate{})
	a, b, c := n.dial(t, "pos-a", "P400"), n.dial(t, "pos-b", "P400"), n.dial(t, "pos-c", "P400")
	query(t, c) // known, never asks for a slot
	ra, err := schedule1(t, a, camp.ID, 50, 8)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := schedule1(t, b, camp.ID, 50, 8)
	if err != nil || rb.SlotStartMs != ra.SlotStartMs {
		t.Fatalf("b: %+v %v (a at %d)", rb, err, ra.SlotStartMs)
	}
	p, err := n.sc.Progress(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Totals.Reserved != 2 || p.Totals.Due != 0 || p.NoShowRate != 0 || p.Unreached != 1 || !slices.Equal(p.UnreachedSample, []string{"pos-c"}) {
		t.Fatalf("before the slot: %+v", p)
	}
	check := func(c *client.Conn, id string) protocol.UpgradeCheckAck {
		var ack protocol.UpgradeCheckAck
		if err := c.Do(t.Context(), &protocol.UpgradeCheck{ReservationID: id, Version: "1.0.0"}, &ack); err != nil {
			t.Fatal(err)
		}
		return ack
	}
	clk.set(time.UnixMilli(int64(ra.SlotStartMs)).Add(time.Minute))
	if ack := check(a, ra.ReservationID); ack.Decision != protocol.DecisionProceed {
		t.Fatalf("a: %+v", ack)
	}
	clk.set(time.UnixMilli(int64(rb.SlotEndMs)).Add(time.Minute))
	if ack := check(b, rb.ReservationID); ack.Decision != protocol.DecisionMissed {
		t.Fatalf("b: %+v", ack)
	}
	if p, err = n.sc.Progress(t.Context(), camp.ID); err != nil {
		t.Fatal(err)
	}
	tot := p.Totals
	if tot.Reserved != 2 || tot.CheckedIn != 1 || tot.Proceeded != 1 || tot.Missed != 1 || tot.Due != 2 || tot.NoShow != 1 || p.NoShowRate != 0.5 {
		t.Fatalf("after the slot: %+v rate %v", tot, p.NoShowRate)
	}
	var rows api.SlotProgress
	for _, r := range p.Slots {
		rows.Reserved += r.Reserved
		rows.Due += r.Due
		rows.NoShow += r.NoShow
		rows.CheckedIn += r.CheckedIn
	}
	if rows.Reserved != 2 || rows.Due != 2 || rows.NoShow != 1 || rows.CheckedIn != 1 {
		t.Fatalf("slot rows do not add up to the totals: %+v", p.Slots)
	}
	if p.Unreached != 1 || p.UnreachedSample[0] != "pos-c" {
		t.Fatalf("unreached %d %v", p.Unreached, p.UnreachedSample)
	}
}
