package storage

import (
	"context"
	"errors"
	"testing"
)

func TestScheduleContractMemory(t *testing.T)         { runScheduleContract(t, openMemory) }
func TestScheduleContractBadgerInMemory(t *testing.T) { runScheduleContract(t, openBadgerInMemory) }
func TestScheduleContractBadgerDir(t *testing.T)      { runScheduleContract(t, openBadgerDir) }

// runScheduleContract is what every Schedules implementation must do.
func runScheduleContract(t *testing.T, open func(t *testing.T) Store) {
	sch := func(s Store) Schedules { return s.(Schedules) }
	ctx := context.Background()
	t.Run("campaigns", func(t *testing.T) {
		s := sch(open(t))
		c := Campaign{ID: "c2", ReleaseID: "r1", AppID: "pos", Version: "2.0", Models: []string{"P400"}, State: CampaignDraft,
			Windows: []Window{{StartMs: 10, EndMs: 20}, {StartMs: 30, EndMs: 40}}, Clusters: []string{"eu"}}
		if err := s.PutCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.ID = "c1"
		if err := s.PutCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Windows[0].EndMs = 100 // the store kept a copy
		cs, err := s.ListCampaigns(ctx)
		if err != nil || len(cs) != 2 || cs[0].ID != "c1" || cs[1].Windows[0].EndMs != 20 || cs[0].EndMs() != 40 {
			t.Fatalf("campaigns %+v, %v", cs, err)
		}
		for _, bad := range []Campaign{
			{ID: "x", ReleaseID: "r", State: CampaignDraft},                                                                     // no window
			{ID: "x", ReleaseID: "r", State: "odd", Windows: []Window{{1, 2}}},                                                  // state
			{ID: "x", ReleaseID: "r", State: CampaignDraft, Windows: []Window{{StartMs: 5, EndMs: 9}, {StartMs: 8, EndMs: 12}}}, // overlap
			{ID: "", ReleaseID: "r", State: CampaignDraft, Windows: []Window{{1, 2}}},                                           // id
		} {
			if err := s.PutCampaign(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("campaign %+v: %v", bad, err)
			}
		}
	})
	t.Run("reservations and slot uses commit together", func(t *testing.T) {
		s := sch(open(t))
		r := Reservation{ID: "v1", CampaignID: "c1", DeviceID: "d1", ReleaseID: "r1", NodeID: "n1", Slot: 7, State: ResvReserved}
		err := s.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			u, err := tx.SlotUse("n1", 7)
			if err != nil || u.Count != 0 || u.Node != "n1" || u.Slot != 7 {
				t.Fatalf("fresh slot %+v %v", u, err)
			}
			u.Count, u.Bytes = 1, 300
			if err := tx.PutSlotUse(&u); err != nil {
				return err
			}
			if err := tx.PutReservation(&r); err != nil {
				return err
			}
			got, found, err := tx.DeviceReservation("c1", "d1")
			if err != nil || !found || got.ID != "v1" {
				t.Fatalf("read own write: %+v %v %v", got, found, err)
			}
			if u2, _ := tx.SlotUse("n1", 7); u2.Count != 1 {
				t.Fatalf("read own slot write %+v", u2)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = s.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			u, _ := tx.SlotUse("n1", 7)
			u.Count++
			_ = tx.PutSlotUse(&u)
			r2 := r
			r2.ID, r2.DeviceID = "v2", "d2"
			_ = tx.PutReservation(&r2)
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		var uses []SlotUse
		_ = s.SlotUses(ctx, func(u SlotUse) error { uses = append(uses, u); return nil })
		if len(uses) != 1 || uses[0].Count != 1 || uses[0].Bytes != 300 {
			t.Fatalf("slot uses after a failed transaction %+v", uses)
		}
		var rs []Reservation
		_ = s.Reservations(ctx, "c1", func(r Reservation) error { rs = append(rs, r); return nil })
		if len(rs) != 1 || rs[0].ID != "v1" {
			t.Fatalf("reservations %+v", rs)
		}
		// A newer reservation of the device is the one its index names;
		// a slot use back at zero is gone.
		err = s.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			r3 := r
			r3.ID, r3.Slot = "v3", 8
			if err := tx.PutReservation(&r3); err != nil {
				return err
			}
			return tx.PutSlotUse(&SlotUse{Node: "n1", Slot: 7})
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			if got, _, _ := tx.DeviceReservation("c1", "d1"); got.ID != "v3" {
				t.Fatalf("latest %+v", got)
			}
			if old, found, _ := tx.Reservation("v1"); !found || old.Slot != 7 {
				t.Fatalf("old reservation %+v", old)
			}
			return nil
		})
		// The same outside a transaction, as operators' views read it.
		if got, found, err := s.DeviceReservation(ctx, "c1", "d1"); err != nil || !found || got.ID != "v3" {
			t.Fatalf("DeviceReservation: %+v %v %v", got, found, err)
		}
		if _, found, err := s.DeviceReservation(ctx, "c1", "nobody"); err != nil || found {
			t.Fatalf("DeviceReservation of a device without one: %v %v", found, err)
		}
		uses = nil
		_ = s.SlotUses(ctx, func(u SlotUse) error { uses = append(uses, u); return nil })
		if len(uses) != 0 {
			t.Fatalf("zero slot use kept: %+v", uses)
		}
		all := 0
		_ = s.Reservations(ctx, "", func(Reservation) error { all++; return nil })
		if all != 2 {
			t.Fatalf("%d reservations in all", all)
		}
		if err := s.UpdateSchedule(ctx, func(tx ScheduleTx) error { return tx.PutSlotUse(&SlotUse{Node: "n1", Slot: 1, Count: -1}) }); !errors.Is(err, ErrInvalid) {
			t.Fatalf("negative use: %v", err)
		}
	})
	t.Run("old slot uses deleted, node states", func(t *testing.T) {
		s := sch(open(t))
		_ = s.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			for _, slot := range []int64{1, 2, 3, 10} {
				_ = tx.PutSlotUse(&SlotUse{Node: "n1", Slot: slot, Count: 1})
			}
			return tx.PutSlotUse(&SlotUse{Node: "n2", Slot: 1, Count: 1})
		})
		if err := s.DeleteSlotUses(ctx, "n1", 3); err != nil {
			t.Fatal(err)
		}
		var got []SlotUse
		_ = s.SlotUses(ctx, func(u SlotUse) error { got = append(got, u); return nil })
		if len(got) != 3 || got[0].Slot != 3 || got[1].Slot != 10 || got[2].Node != "n2" {
			t.Fatalf("after delete %+v", got)
		}
		if err := s.PutNodeState(ctx, NodeState{NodeID: "n2", Draining: true}); err != nil {
			t.Fatal(err)
		}
		if ns, err := s.NodeStates(ctx); err != nil || len(ns) != 1 || !ns[0].Draining {
			t.Fatalf("node states %+v %v", ns, err)
		}
		for _, l := range []DeviceLocation{{DeviceID: "d2", Lat: 40, Lon: -3}, {DeviceID: "d1", Lat: 50, Lon: 8}, {DeviceID: "d3", Lat: 1, Lon: 1}} {
			if err := s.PutDeviceLocation(ctx, l, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutDeviceLocation(ctx, DeviceLocation{DeviceID: "d3"}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDeviceLocation(ctx, DeviceLocation{DeviceID: "d4", Lat: 91}, false); !errors.Is(err, ErrInvalid) {
			t.Fatalf("latitude 91: %v", err)
		}
		var ls []DeviceLocation
		_ = s.DeviceLocations(ctx, func(l DeviceLocation) error { ls = append(ls, l); return nil })
		if len(ls) != 2 || ls[0].DeviceID != "d1" || ls[1].Lat != 40 {
			t.Fatalf("locations %+v", ls)
		}
	})
}
