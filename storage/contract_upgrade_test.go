package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestUpgradeContractMemory(t *testing.T)         { runUpgradeContract(t, openMemory) }
func TestUpgradeContractBadgerInMemory(t *testing.T) { runUpgradeContract(t, openBadgerInMemory) }
func TestUpgradeContractBadgerDir(t *testing.T)      { runUpgradeContract(t, openBadgerDir) }

// runUpgradeContract is what every Upgrades implementation must do.
func runUpgradeContract(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"releases", upContractReleases},
		{"transaction commits all or nothing", upContractAtomic},
		{"reads see the transaction's writes", upContractReadOwnWrites},
		{"reports by release and by device", upContractReports},
		{"assignments", upContractAssignments},
		{"failure marks and app versions", upContractMarks},
		{"rollout states", upContractRollouts},
		{"invalid ids", upContractInvalid},
		{"closed", upContractClosed},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func testRelease(id string) Release {
	return Release{ID: id, AppID: "pos", Version: "2.0.0", SHA256: fmt.Sprintf("%064x", 7), Size: 1024,
		State: ReleaseDraft, Models: []string{"P400"}, RolloutPct: 100, CreatedMs: 1, UpdatedMs: 1}
}

func upContractReleases(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.GetRelease(ctx, "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRelease missing: %v", err)
	}
	r2, r1 := testRelease("r2"), testRelease("r1")
	r1.Sig = make([]byte, 64)
	for _, r := range []Release{r2, r1} {
		if err := s.PutRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r1.State, r1.RolloutPct = ReleasePublished, 10
	if err := s.PutRelease(ctx, r1); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "r1")
	if err != nil || !reflect.DeepEqual(got, r1) {
		t.Fatalf("GetRelease = %+v, %v; want %+v", got, err, r1)
	}
	got.Models[0] = "scribbled" // the store's copy must not change
	list, err := s.ListReleases(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "r1" || list[1].ID != "r2" || list[0].Models[0] != "P400" {
		t.Fatalf("ListReleases = %+v, %v", list, err)
	}
	bad := testRelease("r3")
	bad.State = "live"
	if err := s.PutRelease(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutRelease with bad state: %v", err)
	}
	bad = testRelease("r3")
	bad.RolloutPct = 101
	if err := s.PutRelease(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutRelease with rollout 101: %v", err)
	}
}

func report(rel, dev string, attempt uint64, stage uint8) UpgradeReport {
	r := UpgradeReport{ReleaseID: rel, DeviceID: dev, Attempt: attempt, AppID: "pos", Version: "2.0.0", FromVersion: "1.0.0", Stage: stage, UpdatedMs: 5}
	r.StageMs[stage] = 5
	return r
}

func upContractAtomic(t *testing.T, s Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		r := report("r1", "d1", 1, 1)
		if err := tx.PutReport(&r); err != nil {
			return err
		}
		if err := tx.PutAssignment(&UpgradeAssignment{ReleaseID: "r1", DeviceID: "d1", AppID: "pos"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateUpgrades = %v, want fn's error", err)
	}
	if _, err := s.Assignment(ctx, "r1", "d1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("assignment of a failed transaction: %v", err)
	}
	if rs, _ := s.DeviceReports(ctx, "d1"); len(rs) != 0 {
		t.Fatalf("reports of a failed transaction: %+v", rs)
	}
	// A batch of many reports in one transaction (group commit).
	err = s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		for i := range 300 {
			r := report("r1", fmt.Sprintf("d%03d", i), 1, 1)
			if err := tx.PutReport(&r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.Reports(ctx, "r1", func(UpgradeReport) error { n++; return nil }); err != nil || n != 300 {
		t.Fatalf("Reports after a batch of 300: %d, %v", n, err)
	}
}

func upContractReadOwnWrites(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		r := report("r1", "d1", 2, 3)
		if err := tx.PutReport(&r); err != nil {
			return err
		}
		got, found, err := tx.Report("r1", "d1", 2)
		if err != nil || !found || got.Stage != 3 {
			return fmt.Errorf("Report in tx = %+v, %v, %v", got, found, err)
		}
		if err := tx.PutFailureMark(&UpgradeFailureMark{DeviceID: "d1", AppID: "pos", ReleaseID: "r1"}); err != nil {
			return err
		}
		if _, found, _ := tx.FailureMark("d1", "pos"); !found {
			return errors.New("mark not visible in tx")
		}
		if err := tx.DeleteFailureMark("d1", "pos"); err != nil {
			return err
		}
		if _, found, _ := tx.FailureMark("d1", "pos"); found {
			return errors.New("deleted mark visible in tx")
		}
		if err := tx.PutAssignment(&UpgradeAssignment{ReleaseID: "r1", DeviceID: "d1", Failures: 2}); err != nil {
			return err
		}
		if a, found, _ := tx.Assignment("r1", "d1"); !found || a.Failures != 2 {
			return errors.New("assignment not visible in tx")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailureMark(ctx, "d1", "pos"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted mark after commit: %v", err)
	}
}

func upContractReports(t *testing.T, s Store) {
	ctx := context.Background()
	var want []UpgradeReport
	err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		for _, r := range []UpgradeReport{report("r2", "d1", 1, 5), report("r1", "d1", 2, 4), report("r1", "d1", 1, 5), report("r1", "d2", 1, 1), report("r1", "d1", 256, 1)} {
			r.Message = "m-" + r.ReleaseID
			if err := tx.PutReport(&r); err != nil {
				return err
			}
			if r.DeviceID == "d1" {
				want = append(want, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceReports(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	order := func(rs []UpgradeReport) (o []string) {
		for _, r := range rs {
			o = append(o, fmt.Sprintf("%s/%d", r.ReleaseID, r.Attempt))
		}
		return o
	}
	if fmt.Sprint(order(got)) != "[r1/1 r1/2 r1/256 r2/1]" {
		t.Fatalf("DeviceReports order = %v", order(got))
	}
	for _, g := range got {
		if g.ReleaseID == "r2" && !reflect.DeepEqual(g, want[0]) {
			t.Fatalf("stored report %+v, want %+v", g, want[0])
		}
	}
	var all []UpgradeReport
	if err := s.Reports(ctx, "", func(r UpgradeReport) error { all = append(all, r); return nil }); err != nil || len(all) != 5 {
		t.Fatalf("Reports(all) = %d, %v", len(all), err)
	}
	var r1 []string
	if err := s.Reports(ctx, "r1", func(r UpgradeReport) error { r1 = append(r1, r.DeviceID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r1) != "[d1 d1 d1 d2]" {
		t.Fatalf("Reports(r1) = %v", r1)
	}
	// "r1" must not match "r10"'s reports (NUL ends ids in keys).
	err = s.UpdateUpgrades(ctx, func(tx UpgradeTx) error { r := report("r10", "d9", 1, 1); return tx.PutReport(&r) })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = s.Reports(ctx, "r1", func(UpgradeReport) error { n++; return nil })
	if n != 4 {
		t.Fatalf("Reports(r1) sees %d records, want 4 (r10 must not match)", n)
	}
	stop := errors.New("stop")
	if err := s.Reports(ctx, "", func(UpgradeReport) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Reports passes fn's error: %v", err)
	}
}

func upContractAssignments(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		for _, d := range []string{"d2", "d1", "d3"} {
			if err := tx.PutAssignment(&UpgradeAssignment{ReleaseID: "r1", DeviceID: d, AppID: "pos", FromVersion: "1.0", AtMs: 9}); err != nil {
				return err
			}
		}
		return tx.PutAssignment(&UpgradeAssignment{ReleaseID: "r11", DeviceID: "d1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Assignment(ctx, "r1", "d2")
	if err != nil || a.FromVersion != "1.0" || a.AtMs != 9 {
		t.Fatalf("Assignment = %+v, %v", a, err)
	}
	var ds []string
	if err := s.Assignments(ctx, "r1", func(a UpgradeAssignment) error { ds = append(ds, a.DeviceID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ds) != "[d1 d2 d3]" {
		t.Fatalf("Assignments = %v", ds)
	}
}

func upContractMarks(t *testing.T, s Store) {
	ctx := context.Background()
	mark := UpgradeFailureMark{DeviceID: "d1", AppID: "pos", ReleaseID: "r1", Version: "2.0.0", Attempt: 1, Code: 28, Message: "disk full", AtMs: 7}
	err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		if err := tx.PutFailureMark(&mark); err != nil {
			return err
		}
		for _, v := range []AppVersion{{DeviceID: "d2", AppID: "pos", Version: "1.0"}, {DeviceID: "d1", AppID: "pos", Version: "1.1"}, {DeviceID: "d1", AppID: "emv", Version: "3"}} {
			if err := tx.PutAppVersion(&v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.FailureMark(ctx, "d1", "pos")
	if err != nil || got != mark {
		t.Fatalf("FailureMark = %+v, %v", got, err)
	}
	if _, err := s.FailureMark(ctx, "d1", "emv"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FailureMark missing: %v", err)
	}
	vs, err := s.AppVersions(ctx, "d1")
	if err != nil || len(vs) != 2 || vs[0].AppID != "emv" || vs[1].Version != "1.1" {
		t.Fatalf("AppVersions(d1) = %+v, %v", vs, err)
	}
	all, err := s.AppVersions(ctx, "")
	if err != nil || len(all) != 3 || all[2].DeviceID != "d2" {
		t.Fatalf("AppVersions(all) = %+v, %v", all, err)
	}
}

func upContractInvalid(t *testing.T, s Store) {
	ctx := context.Background()
	for _, r := range []UpgradeReport{report("", "d1", 1, 1), report("r1", "", 1, 1), report("r\x00x", "d1", 1, 1), report("r1", "d1", 0, 1), report("r1", "d1", 1, 1)} {
		if r.Attempt == 1 && r.ReleaseID == "r1" && r.DeviceID == "d1" {
			r.Stage = StageCount
		}
		err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error { return tx.PutReport(&r) })
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("PutReport(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	if err := s.PutRelease(ctx, Release{ID: "x", State: ReleaseDraft}); !errors.Is(err, ErrInvalid) {
		t.Errorf("PutRelease without app id: %v", err)
	}
}

func upContractClosed(t *testing.T, s Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.PutRelease(ctx, testRelease("r1")); !errors.Is(err, ErrClosed) {
		t.Errorf("PutRelease after Close: %v", err)
	}
	if err := s.UpdateUpgrades(ctx, func(UpgradeTx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateUpgrades after Close: %v", err)
	}
	if _, err := s.ListReleases(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("ListReleases after Close: %v", err)
	}
}

// helperUpgradeBatches × helperUpgradeBatch reports the kill -9 child
// commits, in group commits like the upgrade committer's.
const (
	helperUpgradeBatches = 8
	helperUpgradeBatch   = 64
)

// helperUpgrades is the kill -9 child's share of upgrade writes: a
// release, then batches of reports with their assignments, failure marks
// and app versions, each batch acknowledged (returned) before the next.
func helperUpgrades(b *Badger) error {
	ctx := context.Background()
	if err := b.PutRelease(ctx, testRelease("k9-rel")); err != nil {
		return err
	}
	for batch := range helperUpgradeBatches {
		err := b.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
			for i := range helperUpgradeBatch {
				dev := fmt.Sprintf("k9-%03d", batch*helperUpgradeBatch+i)
				if err := tx.PutAssignment(&UpgradeAssignment{ReleaseID: "k9-rel", DeviceID: dev, AppID: "pos", FromVersion: "1.0.0"}); err != nil {
					return err
				}
				r := report("k9-rel", dev, 1, uint8(1+i%6))
				if err := tx.PutReport(&r); err != nil {
					return err
				}
				if r.Failed() {
					if err := tx.PutFailureMark(&UpgradeFailureMark{DeviceID: dev, AppID: "pos", ReleaseID: "k9-rel", Attempt: 1}); err != nil {
						return err
					}
				}
				if err := tx.PutAppVersion(&AppVersion{DeviceID: dev, AppID: "pos", Version: "1.0.0"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkHelperUpgrades checks every acknowledged upgrade write survived kill -9.
func checkHelperUpgrades(t *testing.T, b *Badger) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.GetRelease(ctx, "k9-rel"); err != nil {
		t.Fatalf("release after kill -9: %v", err)
	}
	n := 0
	err := b.Reports(ctx, "k9-rel", func(r UpgradeReport) error {
		want := report("k9-rel", r.DeviceID, 1, r.Stage)
		if !reflect.DeepEqual(r, want) {
			return fmt.Errorf("report %+v, want %+v", r, want)
		}
		n++
		return nil
	})
	if err != nil || n != helperUpgradeBatches*helperUpgradeBatch {
		t.Fatalf("reports after kill -9: %d, %v; want %d", n, err, helperUpgradeBatches*helperUpgradeBatch)
	}
	for i := range helperUpgradeBatches * helperUpgradeBatch {
		dev := fmt.Sprintf("k9-%03d", i)
		if _, err := b.Assignment(ctx, "k9-rel", dev); err != nil {
			t.Fatalf("assignment of %s after kill -9: %v", dev, err)
		}
		_, err := b.FailureMark(ctx, dev, "pos")
		if failed := StageFailed(uint8(1 + i%helperUpgradeBatch%6)); failed != (err == nil) {
			t.Fatalf("failure mark of %s after kill -9: %v (failed %v)", dev, err, failed)
		}
	}
	if vs, err := b.AppVersions(ctx, ""); err != nil || len(vs) != helperUpgradeBatches*helperUpgradeBatch {
		t.Fatalf("app versions after kill -9: %d, %v", len(vs), err)
	}
}

// upContractRollouts: rollout states are written in transactions (all or
// nothing, read-own-writes), listed in release order, and a release's
// phases round-trip; bad phases and states are refused.
func upContractRollouts(t *testing.T, s Store) {
	ctx := context.Background()
	r := testRelease("r1")
	r.Phases = []Phase{{Devices: []string{"d1", "d2"}, SoakMs: 60000, SuccessPct: 95, ErrorPct: 5, MinDevices: 2, Approval: true}, {Percent: 100, SuccessPct: 95, ErrorPct: 5}}
	if err := s.PutRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "r1")
	if err != nil || !reflect.DeepEqual(got.Phases, r.Phases) {
		t.Fatalf("phases %+v, %v", got.Phases, err)
	}
	bad := testRelease("r2")
	bad.Phases = []Phase{{Percent: 10, Devices: []string{"d"}}}
	if err := s.PutRelease(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("phase with percent and devices: %v", err)
	}
	st := RolloutState{ReleaseID: "r1", Counts: make([]PhaseCounts, 2), UpdatedMs: 5}
	err = s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		if _, found, err := tx.Rollout("r1"); err != nil || found {
			t.Fatalf("before: found %v, %v", found, err)
		}
		st.Counts[0].Devices = 3
		if err := tx.PutRollout(&st); err != nil {
			return err
		}
		st.Counts[0].Devices = 99 // the store kept a copy
		in, found, err := tx.Rollout("r1")
		if err != nil || !found || in.Counts[0].Devices != 3 {
			t.Fatalf("read own write: %+v %v %v", in, found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed transaction leaves the committed state.
	boom := errors.New("boom")
	err = s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		st := RolloutState{ReleaseID: "r1", Phase: 1, Counts: make([]PhaseCounts, 2), Paused: true}
		if err := tx.PutRollout(&st); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		return tx.PutRollout(&RolloutState{ReleaseID: "r0", Counts: make([]PhaseCounts, 1)})
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Rollouts(ctx)
	if err != nil || len(all) != 2 || all[0].ReleaseID != "r0" || all[1].ReleaseID != "r1" || all[1].Phase != 0 || all[1].Paused || all[1].Counts[0].Devices != 3 {
		t.Fatalf("rollouts %+v, %v", all, err)
	}
	err = s.UpdateUpgrades(ctx, func(tx UpgradeTx) error {
		return tx.PutRollout(&RolloutState{ReleaseID: "r1", Phase: 2, Counts: make([]PhaseCounts, 2)})
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("phase out of range: %v", err)
	}
}
