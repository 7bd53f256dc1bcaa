package upgrade_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

func (tm *terminal) kinds(id string) []uint8 {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var ks []uint8
	for _, n := range tm.notices {
		if n.ID == id {
			ks = append(ks, n.Kind)
		}
	}
	return ks
}

func hasKind(ks []uint8, k uint8) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Cancelling a published release: offers stop, the online assigned
// device that has only downloaded is told to withdraw (kind 3), the one
// installing is not and its reports are still accepted, an offline one
// is not pushed, UPGRADE_PENDING is cleared, download tokens are revoked
// for the devices below INSTALLING (also after a restart), stuck
// detection leaves the withdrawn attempt alone, and cancelled is final.
func TestCancel(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	slow := func(c *config.Config) { c.Upgrade.StageTimeoutDownloaded = config.D(time.Second) }
	n := startOn(t, store, slow)
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P400"}}, false)
	sha, _ := hex.DecodeString(testSHA)
	a := n.dial(t, "pos-1", "P400") // downloaded
	b := n.dial(t, "pos-2", "P400") // installing
	c := n.dial(t, "pos-3", "P400") // assigned, offline at the cancel
	e := n.dial(t, "pos-5", "P400") // targeted, never queried after the publication
	e.query(t, "pos", "1.0.0", false)
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	for _, tm := range []*terminal{a, b, c} {
		if ack := tm.query(t, "pos", "1.0.0", true); ack.Offer == nil {
			t.Fatal("no offer")
		}
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded)
	b.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling)
	c.Close()
	// c is offline before the cancel, or it would be an online assigned
	// device below INSTALLING and get the notice too.
	eventually(t, "pos-3 offline", func() bool { return n.Presence.Get("pos-3") == nil })
	if !e.pending(t) {
		t.Fatal("no UPGRADE_PENDING after the publication")
	}
	if n.up.Revoked([32]byte(sha), "pos-1") {
		t.Fatal("revoked before any cancel")
	}
	if _, err := n.up.Cancel(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "withdrawn notice", func() bool { return hasKind(a.kinds(rel.ID), protocol.NoticeWithdrawn) })
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer != nil {
		t.Fatal("a cancelled release was offered")
	}
	if e.pending(t) {
		t.Fatal("UPGRADE_PENDING still set for a cancelled release")
	}
	b.mustReport(t, rel.ID, 1, protocol.StageSucceeded)
	if !n.up.Revoked([32]byte(sha), "pos-1") || !n.up.Revoked([32]byte(sha), "pos-3") || n.up.Revoked([32]byte(sha), "pos-2") ||
		n.up.Revoked([32]byte(sha), "pos-5") {
		t.Fatal("revocation: want pos-1 and pos-3 (below INSTALLING) only")
	}
	if hasKind(b.kinds(rel.ID), protocol.NoticeWithdrawn) || hasKind(e.kinds(rel.ID), protocol.NoticeWithdrawn) {
		t.Fatal("withdrawn notice to a device installing or not assigned")
	}
	var mt bytes.Buffer
	n.up.Metrics().WritePrometheus(&mt)
	if !strings.Contains(mt.String(), "termd_upgrade_withdrawn_notices_total 1\n") {
		t.Fatalf("metric:\n%s", mt.String())
	}
	for name, op := range map[string]func() (api.Release, error){
		"resume":  func() (api.Release, error) { return n.up.Resume(t.Context(), rel.ID) },
		"publish": func() (api.Release, error) { return n.up.Publish(t.Context(), rel.ID) },
		"rollout": func() (api.Release, error) { return n.up.SetRollout(t.Context(), rel.ID, 50) },
		"cancel":  func() (api.Release, error) { return n.up.Cancel(t.Context(), rel.ID) },
	} {
		_, err := op()
		wantCode(t, err, protocol.Conflict)
		if !strings.Contains(err.Error(), "cancelled") {
			t.Errorf("%s: %v", name, err)
		}
	}
	draft := n.release(t, api.ReleaseCreate{Version: "3.0.0"}, false)
	_, err = n.up.Cancel(t.Context(), draft.ID)
	wantCode(t, err, protocol.Conflict)
	time.Sleep(1500 * time.Millisecond) // past stage_timeout_downloaded
	if ks := n.notes.kinds(); len(ks) != 0 {
		t.Fatalf("withdrawn attempt recorded as a failure: %v", ks)
	}
	a.Close()
	b.Close()
	e.Close()
	n.stop()

	n = startOn(t, store, slow)
	if !n.up.Revoked([32]byte(sha), "pos-1") || n.up.Revoked([32]byte(sha), "pos-2") {
		t.Fatal("revocation not rebuilt at start")
	}
	got, err := n.up.Release(t.Context(), rel.ID)
	if err != nil || got.State != storage.ReleaseCancelled || got.CancelledMs == 0 {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
	a = n.dial(t, "pos-1", "P400")
	a.mustReport(t, rel.ID, 1, protocol.StageInstalling) // frozen assignment: still accepted
	if n.up.Revoked([32]byte(sha), "pos-1") {
		t.Fatal("still revoked after the device reported INSTALLING")
	}
	if _, err := n.up.Archive(t.Context(), rel.ID); err != nil {
		t.Fatalf("archive a cancelled release: %v", err)
	}
}

// A paused release can be cancelled; another release still serving the
// same artifact to the device keeps its download good.
func TestCancelPausedSharedArtifact(t *testing.T) {
	n := startNode(t, nil)
	sha, _ := hex.DecodeString(testSHA)
	old := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a := n.dial(t, "pos-1", "P400")
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil || ack.Offer.ReleaseID != old.ID {
		t.Fatal("no offer")
	}
	if _, err := n.up.Pause(t.Context(), old.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Cancel(t.Context(), old.ID); err != nil {
		t.Fatalf("cancel paused: %v", err)
	}
	if !n.up.Revoked([32]byte(sha), "pos-1") {
		t.Fatal("not revoked")
	}
	same := n.release(t, api.ReleaseCreate{Version: "2.0.1"}, true) // same artifact
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil || ack.Offer.ReleaseID != same.ID {
		t.Fatal("no offer of the new release")
	}
	if n.up.Revoked([32]byte(sha), "pos-1") {
		t.Fatal("revoked while a published release serves the artifact to the device")
	}
}
