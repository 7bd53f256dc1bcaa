package upgrade_test

import (
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// When a published release's deadline passes, its offers become
// mandatory, a device it still applies to is flagged and notified again
// (kind 1), and one that succeeded is not.
func TestDeadlinePasses(t *testing.T) {
	n := startNode(t, nil)
	deadline := time.Now().Add(700 * time.Millisecond)
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", DeadlineMs: deadline.UnixMilli()}, true)
	if rel.DeadlineMs != deadline.UnixMilli() {
		t.Fatalf("deadline_ms = %d", rel.DeadlineMs)
	}
	a := n.dial(t, "pos-1", "P400")
	b := n.dial(t, "pos-2", "P400")
	if ack := a.query(t, "pos", "1.0.0", true); ack.Offer == nil || ack.Offer.Mandatory {
		t.Fatalf("before the deadline: %+v", ack.Offer)
	}
	if ack := b.query(t, "pos", "1.0.0", true); ack.Offer == nil {
		t.Fatal("no offer")
	}
	b.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded)
	if a.pending(t) || len(a.kinds(rel.ID)) != 0 {
		t.Fatal("pending or notified before the deadline")
	}
	eventually(t, "deadline notice", func() bool { return hasKind(a.kinds(rel.ID), protocol.NoticeRelease) })
	if time.Now().Before(deadline) {
		t.Fatal("notified before the deadline")
	}
	if !a.pending(t) {
		t.Fatal("UPGRADE_PENDING not set again at the deadline")
	}
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil || !ack.Offer.Mandatory {
		t.Fatalf("after the deadline: %+v", ack.Offer)
	}
	time.Sleep(100 * time.Millisecond)
	if len(b.kinds(rel.ID)) != 0 || len(a.kinds(rel.ID)) != 1 {
		t.Fatalf("notices: succeeded device %v, pending device %v", b.kinds(rel.ID), a.kinds(rel.ID))
	}
}

// A deadline already past at creation makes the release mandatory at
// once, with the publication's notice only; deadlines are set and
// cleared by SetDeadline, bad ones refused.
func TestDeadlineSetAndPast(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	a.query(t, "pos", "1.0.0", false)
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", DeadlineMs: 1}, true)
	eventually(t, "publication notice", func() bool { return len(a.kinds(rel.ID)) == 1 })
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil || !ack.Offer.Mandatory {
		t.Fatalf("past deadline at creation: %+v", ack.Offer)
	}
	time.Sleep(200 * time.Millisecond)
	if ks := a.kinds(rel.ID); len(ks) != 1 {
		t.Fatalf("a past deadline added a notice to the publication's: %v", ks)
	}
	if r, err := n.up.SetDeadline(t.Context(), rel.ID, 0); err != nil || r.DeadlineMs != 0 {
		t.Fatalf("clear: %+v, %v", r, err)
	}
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil || ack.Offer.Mandatory {
		t.Fatalf("deadline cleared: %+v", ack.Offer)
	}
	// Set on a published release, already past: devices learn it at once.
	if _, err := n.up.SetDeadline(t.Context(), rel.ID, time.Now().Add(-time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "notice of a deadline set in the past", func() bool { return len(a.kinds(rel.ID)) == 2 })
	_, err := n.up.SetDeadline(t.Context(), rel.ID, -1)
	wantCode(t, err, protocol.BadRequest)
	_, err = n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "3.0.0", SHA256: testSHA, Size: 1, URL: "https://x/y", DeadlineMs: 1 << 62})
	wantCode(t, err, protocol.BadRequest)
	_, err = n.up.SetDeadline(t.Context(), "r-nope", 1)
	wantCode(t, err, protocol.NotFound)
	if _, err := n.up.Cancel(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	_, err = n.up.SetDeadline(t.Context(), rel.ID, 1)
	wantCode(t, err, protocol.Conflict)
}
