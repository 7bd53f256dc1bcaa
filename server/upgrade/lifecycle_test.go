package upgrade_test

import (
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

func (tm *terminal) pending(t *testing.T) bool {
	t.Helper()
	if _, err := tm.Heartbeat(t.Context()); err != nil {
		t.Fatal(err)
	}
	return tm.LastFlags()&protocol.FlagUpgradePending != 0
}

// UPGRADE_PENDING reaches a device that was offline at the publication
// (at its next session) and, after a restart, every device whose version
// termd knows; a query clears it also when the release was paused
// meanwhile (nothing applies any more).
func TestPendingFlag(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n := startOn(t, store, nil)
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P400"}}, false)
	a := n.dial(t, "pos-1", "P400")
	a.query(t, "pos", "1.0.0", false)
	a.Close()
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	a = n.dial(t, "pos-1", "P400")
	if !a.pending(t) {
		t.Fatal("no UPGRADE_PENDING for a device offline at the publication")
	}
	b := n.dial(t, "pos-2", "P500")
	b.query(t, "pos", "1.0.0", false)
	a.Close()
	b.Close()
	n.stop()

	n = startOn(t, store, nil)
	a = n.dial(t, "pos-1", "P400")
	b = n.dial(t, "pos-2", "P500")
	if !a.pending(t) || b.pending(t) {
		t.Fatal("after a restart UPGRADE_PENDING is not set for the targeted device only")
	}
	if _, err := n.up.Pause(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer != nil {
		t.Fatal("a paused release was offered")
	}
	if a.pending(t) {
		t.Fatal("UPGRADE_PENDING still set after a query found nothing applies")
	}
}

// A device that goes offline after INSTALLING is recorded TIMED_OUT after
// offline_timeout; one that stays online is not (its stage timeout is long).
func TestOfflineAfterInstallingTimedOut(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Upgrade.OfflineTimeout = config.D(200 * time.Millisecond) })
	a := n.dial(t, "pos-1", "P400")
	b := n.dial(t, "pos-2", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	for _, tm := range []*terminal{a, b} {
		tm.query(t, "pos", "1.0.0", true)
		tm.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling)
	}
	a.Close()
	eventually(t, "TIMED_OUT of the offline device", func() bool {
		rs, _ := n.Store.DeviceReports(t.Context(), "pos-1")
		return len(rs) == 1 && rs[0].Stage == storage.StageTimedOut && strings.Contains(rs[0].Message, "offline")
	})
	rs, _ := n.Store.DeviceReports(t.Context(), "pos-2")
	if len(rs) != 1 || rs[0].Stage != protocol.StageInstalling {
		t.Fatalf("online device: %+v", rs)
	}
	if k := n.notes.kinds(); len(k) != 1 || k[0] != "upgrade_timed_out:pos-1" {
		t.Fatalf("notified %v", k)
	}
	b.mustReport(t, rel.ID, 1, protocol.StageSucceeded) // still accepted and recorded
}

// A new attempt supersedes an earlier one stuck in a stage: the earlier
// one is not timed out into a failure (which would become last_failure
// while the new attempt goes on), also after a restart.
func TestNewAttemptSupersedesStuckOne(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	slow := func(c *config.Config) { c.Upgrade.StageTimeoutDownloading = config.D(400 * time.Millisecond) }
	n := startOn(t, store, slow)
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a.query(t, "pos", "1.0.0", true)
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading)
	a.mustReport(t, rel.ID, 2, protocol.StageDownloading, protocol.StageDownloaded)
	check := func(when string) {
		time.Sleep(800 * time.Millisecond) // two downloading timeouts
		rs, _ := n.Store.DeviceReports(t.Context(), "pos-1")
		if len(rs) != 2 || rs[0].Stage != protocol.StageDownloading || rs[1].Stage != protocol.StageDownloaded {
			t.Fatalf("%s: reports %+v", when, rs)
		}
		if k := n.notes.kinds(); len(k) != 0 {
			t.Fatalf("%s: notified %v", when, k)
		}
	}
	check("running")
	a.Close()
	n.stop()
	n = startOn(t, store, slow)
	check("after a restart")
}

// Versions are recorded only for apps some release is for: a terminal
// cannot fill the store with made-up app ids.
func TestUnknownAppNotRecorded(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	n.release(t, api.ReleaseCreate{Version: "2.0.0"}, false) // app "pos", a draft
	for i := range 20 {
		if ack := a.query(t, "junk-"+strings.Repeat("x", i), "1.0.0", true); ack.Offer != nil || ack.LastFailure != nil {
			t.Fatalf("unknown app answered %+v", ack)
		}
	}
	a.query(t, "pos", "1.0.0", true)
	vs, err := n.Store.AppVersions(t.Context(), "pos-1")
	if err != nil || len(vs) != 1 || vs[0].AppID != "pos" || vs[0].Version != "1.0.0" {
		t.Fatalf("versions %+v, %v", vs, err)
	}
}

// Assign (a campaign placing a device) freezes the assignment like a
// first offer: the device's reports are accepted.
func TestAssignAcceptsReports(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P999"}}, true)
	wantCode(t, a.report(t, rel.ID, 1, protocol.StageDownloading, 0, ""), protocol.Forbidden)
	if err := n.up.Assign(t.Context(), rel.ID, "pos-1", "1.0.0", "P400"); err != nil {
		t.Fatal(err)
	}
	if err := n.up.Assign(t.Context(), "r-nope", "pos-1", "1.0.0", "P400"); protocol.StatusOf(err) != protocol.NotFound {
		t.Fatalf("assign to an unknown release: %v", err)
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageSucceeded)
	if st, err := n.up.Status(t.Context(), rel.ID); err != nil || st.Assigned != 1 || st.Succeeded != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// A failure committed but not yet enqueued (termd killed between the two)
// is enqueued at the next start and then marked.
func TestFailureReenqueuedAtStart(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = store.UpdateUpgrades(t.Context(), func(tx storage.UpgradeTx) error {
		r := storage.UpgradeReport{ReleaseID: "r-1", DeviceID: "pos-1", Attempt: 2, AppID: "pos", Version: "2.0.0",
			Stage: protocol.StageFailed, Code: 9, Message: "boom"}
		r.StageMs[protocol.StageFailed] = 5
		if err := tx.PutReport(&r); err != nil {
			return err
		}
		done := r
		done.DeviceID, done.Enqueued = "pos-2", true // already in the outbox
		return tx.PutReport(&done)
	})
	if err != nil {
		t.Fatal(err)
	}
	n := startOn(t, store, nil)
	eventually(t, "the re-enqueued failure", func() bool { return len(n.notes.kinds()) == 1 })
	if k := n.notes.kinds(); k[0] != "upgrade_failed:pos-1" {
		t.Fatalf("enqueued %v", k)
	}
	n.notes.mu.Lock()
	ev := n.notes.evs[0]
	n.notes.mu.Unlock()
	if ev.ID != "report/r-1/pos-1/2/5" || ev.Code != 9 || ev.Message != "boom" || ev.Attempt != 2 || ev.AtMs != 5 {
		t.Fatalf("event %+v", ev)
	}
	eventually(t, "the enqueued mark", func() bool {
		rs, _ := store.DeviceReports(t.Context(), "pos-1")
		return len(rs) == 1 && rs[0].Enqueued
	})
}
