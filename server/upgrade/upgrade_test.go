package upgrade_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

const testSHA = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

// notes records what the service hands its Notifier.
type notes struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (n *notes) Enqueue(_ context.Context, e notify.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, old := range n.evs {
		if old.ID == e.ID {
			return nil
		}
	}
	n.evs = append(n.evs, e)
	return nil
}

func (n *notes) kinds() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ks []string
	for _, e := range n.evs {
		ks = append(ks, e.Kind+":"+e.DeviceID)
	}
	return ks
}

type node struct {
	*servertest.Node
	up      *upgrade.Service
	notes   *notes
	closeUp func()
}

func startNode(t *testing.T, mod func(*config.Config)) *node {
	t.Helper()
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startOn(t, store, mod)
}

// startOn starts a node with release management on store (a second node
// on the first one's store is a restart).
func startOn(t *testing.T, store *storage.Badger, mod func(*config.Config)) *node {
	t.Helper()
	return startWrapped(t, store, mod, nil)
}

// startWrapped is startOn with the release service's store wrapped (to
// order its reads and commits in a test); wrap nil: not wrapped.
func startWrapped(t *testing.T, store *storage.Badger, mod func(*config.Config), wrap func(storage.Upgrades) storage.Upgrades) *node {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread = config.D(0)
	cfg.Upgrade.SweepInterval = config.D(20 * time.Millisecond)
	if mod != nil {
		mod(&cfg)
	}
	n := &node{notes: &notes{}}
	n.Node = servertest.StartStore(t, cfg, store, func(s *server.Server) {
		var ups storage.Upgrades = s.Store()
		if wrap != nil {
			ups = wrap(ups)
		}
		up, err := upgrade.Open(upgrade.Options{Config: cfg, Store: ups, Server: s, Notifier: n.notes, Bus: s.Bus, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		n.up = up
		n.closeUp = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := up.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		t.Cleanup(n.closeUp)
	})
	return n
}

// stop stops the node and its release service (the store stays open).
func (n *node) stop() {
	n.Stop()
	n.closeUp()
}

// terminal is a connected test terminal that records its notices.
type terminal struct {
	*client.Conn
	mu      sync.Mutex
	notices []protocol.UpgradeNotice
}

func (n *node) dial(t *testing.T, device, model string) *terminal {
	t.Helper()
	tm := &terminal{}
	c, err := client.Dial(t.Context(), client.Config{
		Addr: n.Addr, DeviceID: device, FleetSecret: []byte(servertest.FleetSecret),
		FW: "1.0", Model: model, NoHeartbeat: true,
		OnPush: func(typ byte, _ uint16, body []byte) {
			if typ != protocol.TypeUpgradeNotice {
				return
			}
			var nt protocol.UpgradeNotice
			if err := protocol.DecodeBody(protocol.NewReader(nil), body, &nt); err == nil {
				tm.mu.Lock()
				tm.notices = append(tm.notices, nt)
				tm.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tm.Conn = c
	return tm
}

func (tm *terminal) noticeIDs() []string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var ids []string
	for _, n := range tm.notices {
		ids = append(ids, n.ID)
	}
	return ids
}

func (tm *terminal) query(t *testing.T, app, version string, launch bool) *protocol.UpgradeQueryAck {
	t.Helper()
	var ack protocol.UpgradeQueryAck
	if err := tm.Do(t.Context(), &protocol.UpgradeQuery{AppID: app, Version: version, Launch: launch}, &ack); err != nil {
		t.Fatalf("query: %v", err)
	}
	return &ack
}

func (tm *terminal) report(t *testing.T, rel string, attempt uint64, stage uint8, code uint64, msg string) error {
	t.Helper()
	var ack protocol.Ack
	return tm.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel, Attempt: attempt, Stage: stage, Progress: 100, Code: code, Message: msg}, &ack)
}

func (tm *terminal) mustReport(t *testing.T, rel string, attempt uint64, stages ...uint8) {
	t.Helper()
	for _, st := range stages {
		if err := tm.report(t, rel, attempt, st, 0, ""); err != nil {
			t.Fatalf("report %s attempt %d stage %d: %v", rel, attempt, st, err)
		}
	}
}

func (n *node) release(t *testing.T, in api.ReleaseCreate, publish bool) api.Release {
	t.Helper()
	if in.AppID == "" {
		in.AppID = "pos"
	}
	if in.SHA256 == "" {
		in.SHA256, in.Size, in.URL = testSHA, 1<<20, "https://dl.example/pos.bin"
	}
	r, err := n.up.CreateRelease(t.Context(), in)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if publish {
		if r, err = n.up.Publish(t.Context(), r.ID); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code protocol.Code) {
	t.Helper()
	if protocol.StatusOf(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
}

// Publishing notifies the targeted online model only; the launch query
// gets the offer, the reports reach SUCCEEDED, the device's version is
// known and the next query offers nothing.
func TestPublishQueryReportSucceeded(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	b := n.dial(t, "pos-2", "P500")
	if ack := a.query(t, "pos", "1.0.0", true); ack.Offer != nil || ack.LastFailure != nil {
		t.Fatalf("before publish: %+v", ack)
	}
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P400"}, Notes: "fixes", Mandatory: true}, true)
	eventually(t, "notice to pos-1", func() bool { return len(a.noticeIDs()) == 1 })
	if a.noticeIDs()[0] != rel.ID {
		t.Fatalf("notice %v, want %s", a.noticeIDs(), rel.ID)
	}
	if _, err := a.Heartbeat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.LastFlags()&protocol.FlagUpgradePending == 0 {
		t.Fatalf("UPGRADE_PENDING not set after publish: flags %d", a.LastFlags())
	}
	ack := a.query(t, "pos", "1.0.0", true)
	o := ack.Offer
	if o == nil || o.ReleaseID != rel.ID || o.Version != "2.0.0" || o.URL != "https://dl.example/pos.bin" || o.Size != 1<<20 || !o.Mandatory || o.Notes != "fixes" {
		t.Fatalf("offer %+v", o)
	}
	if _, err := a.Heartbeat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.LastFlags()&protocol.FlagUpgradePending != 0 {
		t.Fatal("UPGRADE_PENDING still set after the query returned the offer")
	}
	if ack := b.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatalf("P500 offered %+v", ack.Offer)
	}
	if len(b.noticeIDs()) != 0 {
		t.Fatalf("P500 got notices %v", b.noticeIDs())
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded)
	h, err := n.up.DeviceUpgrades(t.Context(), "pos-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Apps) != 1 || h.Apps[0].Version != "2.0.0" || len(h.Attempts) != 1 || h.Attempts[0].Stage != "succeeded" || len(h.Attempts[0].StageMs) != 4 {
		t.Fatalf("history %+v", h)
	}
	if ack := a.query(t, "pos", "2.0.0", true); ack.Offer != nil || ack.LastFailure != nil {
		t.Fatalf("after success: %+v", ack)
	}
	st, err := n.up.Status(t.Context(), rel.ID)
	if err != nil || st.Assigned != 1 || st.Succeeded != 1 || st.Failed != 0 || st.Stages["succeeded"] != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// A FAILED report is notified before it is acknowledged, and the next
// launch query returns it exactly once; a query without launch does not.
func TestFailureNotifiedAndLastFailureOnce(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a.query(t, "pos", "1.0.0", true)
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading)
	if err := a.report(t, rel.ID, 1, protocol.StageFailed, 28, "no space left "+strings.Repeat("x", 200)); err != nil {
		t.Fatal(err)
	}
	if k := n.notes.kinds(); len(k) != 1 || k[0] != "upgrade_failed:pos-1" {
		t.Fatalf("notified %v when the report was acknowledged", k)
	}
	if ack := a.query(t, "pos", "1.0.0", false); ack.LastFailure != nil {
		t.Fatalf("last_failure without launch: %+v", ack.LastFailure)
	}
	ack := a.query(t, "pos", "1.0.0", true)
	f := ack.LastFailure
	if f == nil || f.ReleaseID != rel.ID || f.Version != "2.0.0" || f.Code != 28 || !strings.HasPrefix(f.Message, "no space left") || len(f.Message) != 214 || f.AtMs == 0 {
		t.Fatalf("last_failure %+v", f)
	}
	eventually(t, "delivered mark", func() bool {
		m, err := n.Store.FailureMark(t.Context(), "pos-1", "pos")
		return err == nil && m.Delivered
	})
	if ack := a.query(t, "pos", "1.0.0", true); ack.LastFailure != nil {
		t.Fatalf("last_failure returned twice: %+v", ack.LastFailure)
	}
	if ack.Offer == nil {
		t.Fatal("no offer for a second attempt after one failure")
	}
}

// A report for an unknown release is NOT_FOUND, for a release never
// offered FORBIDDEN; once offered, reports are accepted whatever happens
// to the rollout and the release state (frozen assignment).
func TestFrozenAssignment(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	other := n.dial(t, "pos-2", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P400"}}, true)
	wantCode(t, a.report(t, "r-nope", 1, protocol.StageDownloading, 0, ""), protocol.NotFound)
	wantCode(t, a.report(t, rel.ID, upgrade.MaxAttemptNumber+1, protocol.StageDownloading, 0, ""), protocol.BadRequest)
	wantCode(t, a.report(t, rel.ID, 1, protocol.StageDownloading, 0, ""), protocol.Forbidden)
	a.query(t, "pos", "1.0.0", true)
	if _, err := n.up.SetRollout(t.Context(), rel.ID, 0); err != nil {
		t.Fatal(err)
	}
	if ack := other.query(t, "pos", "1.0.0", false); ack.Offer != nil {
		t.Fatal("rollout 0 still offers to a new device")
	}
	if ack := a.query(t, "pos", "1.0.0", false); ack.Offer == nil {
		t.Fatal("an assigned device lost its offer when the rollout shrank")
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading)
	if _, err := n.up.Pause(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloaded)
	if _, err := n.up.Archive(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	a.mustReport(t, rel.ID, 1, protocol.StageInstalling, protocol.StageSucceeded)
	wantCode(t, other.report(t, rel.ID, 1, protocol.StageDownloading, 0, ""), protocol.Forbidden)
}

// Repeats are acknowledged without a second record, DOWNLOADING repeats
// update progress, out-of-order stages never move the state back, and a
// new attempt is its own record.
func TestStateMachine(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a.query(t, "pos", "1.0.0", true)
	var ack protocol.Ack
	for _, p := range []uint8{0, 50, 100} {
		if err := a.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: protocol.StageDownloading, Progress: p}, &ack); err != nil {
			t.Fatal(err)
		}
	}
	a.mustReport(t, rel.ID, 1, protocol.StageInstalling, protocol.StageDownloaded, protocol.StageInstalling)
	rs, err := n.Store.DeviceReports(t.Context(), "pos-1")
	if err != nil || len(rs) != 1 {
		t.Fatalf("reports %+v, %v", rs, err)
	}
	r := rs[0]
	if r.Stage != protocol.StageInstalling || r.StageMs[protocol.StageDownloaded] == 0 || r.StageMs[protocol.StageDownloading] == 0 {
		t.Fatalf("after an out-of-order DOWNLOADED: %+v", r)
	}
	a.mustReport(t, rel.ID, 1, protocol.StageFailed)
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading) // late: stored, state stays FAILED
	a.mustReport(t, rel.ID, 2, protocol.StageDownloading)
	rs, _ = n.Store.DeviceReports(t.Context(), "pos-1")
	if len(rs) != 2 || rs[0].Stage != protocol.StageFailed || rs[1].Attempt != 2 || rs[1].Stage != protocol.StageDownloading {
		t.Fatalf("reports %+v", rs)
	}
}

// After max_attempts failed attempts the device gets no offer until an
// operator retries it.
func TestRetryCap(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Upgrade.MaxAttempts = 3 })
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	for attempt := uint64(1); attempt <= 3; attempt++ {
		if ack := a.query(t, "pos", "1.0.0", true); ack.Offer == nil {
			t.Fatalf("no offer before attempt %d", attempt)
		}
		a.mustReport(t, rel.ID, attempt, protocol.StageDownloading, protocol.StageFailed)
	}
	if ack := a.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("a fourth attempt was offered after three failures")
	}
	st, _ := n.up.Status(t.Context(), rel.ID)
	if st.AtCap != 1 || st.Failed != 1 || st.FailureRate != 1 || len(st.Failures) != 1 || st.Failures[0].Count != 1 {
		t.Fatalf("status %+v", st)
	}
	if k := n.notes.kinds(); len(k) != 3 {
		t.Fatalf("notifications %v, want one per failed attempt", k)
	}
	if got, err := n.up.Retry(t.Context(), rel.ID, api.Retry{Failed: true}); err != nil || got != 1 {
		t.Fatalf("retry = %d, %v", got, err)
	}
	if ack := a.query(t, "pos", "1.0.0", true); ack.Offer == nil {
		t.Fatal("no offer after the operator's retry")
	}
}

// A device silent in INSTALLING is recorded TIMED_OUT and notified; one
// that comes back with its old version is recorded REVERTED.
func TestStuckTimedOutAndReverted(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Upgrade.StageTimeoutInstalling = config.D(300 * time.Millisecond) })
	a := n.dial(t, "pos-1", "P400")
	b := n.dial(t, "pos-2", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a.query(t, "pos", "1.0.0", true)
	b.query(t, "pos", "1.0.0", true)
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling)
	b.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling)
	ack := b.query(t, "pos", "1.0.0", true) // back on the old version
	eventually(t, "TIMED_OUT of pos-1", func() bool {
		rs, _ := n.Store.DeviceReports(t.Context(), "pos-1")
		return len(rs) == 1 && rs[0].Stage == storage.StageTimedOut
	})
	rs, _ := n.Store.DeviceReports(t.Context(), "pos-2")
	if len(rs) != 1 || rs[0].Stage != storage.StageReverted {
		t.Fatalf("pos-2 reports %+v", rs)
	}
	if ack.LastFailure != nil {
		t.Fatal("the query that found the revert already carried it as last_failure")
	}
	if f := a.query(t, "pos", "1.0.0", true).LastFailure; f == nil {
		t.Fatal("no last_failure after TIMED_OUT")
	}
	eventually(t, "notifications", func() bool { return len(n.notes.kinds()) == 2 })
	got := fmt.Sprint(n.notes.kinds())
	if !strings.Contains(got, "upgrade_timed_out:pos-1") || !strings.Contains(got, "upgrade_reverted:pos-2") {
		t.Fatalf("notified %s", got)
	}
}

// Raising the rollout only adds devices, and notifies just those.
func TestRolloutGrowthNotifiesAddedDevices(t *testing.T) {
	n := startNode(t, nil)
	const fleet = 40
	var ts []*terminal
	for i := range fleet {
		ts = append(ts, n.dial(t, fmt.Sprintf("pos-%02d", i), "P400"))
	}
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", RolloutPct: new(int)}, false)
	if _, err := n.up.SetRollout(t.Context(), rel.ID, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	first := map[string]bool{}
	time.Sleep(200 * time.Millisecond)
	for i, tm := range ts {
		if len(tm.noticeIDs()) > 0 {
			first[fmt.Sprintf("pos-%02d", i)] = true
		}
	}
	if len(first) == 0 || len(first) == fleet {
		t.Fatalf("30%% rollout notified %d of %d", len(first), fleet)
	}
	if _, err := n.up.SetRollout(t.Context(), rel.ID, 100); err != nil {
		t.Fatal(err)
	}
	eventually(t, "notices to the added devices", func() bool {
		for _, tm := range ts {
			if len(tm.noticeIDs()) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond)
	for i, tm := range ts {
		if got := len(tm.noticeIDs()); got != 1 {
			t.Fatalf("pos-%02d got %d notices (first wave %v)", i, got, first[fmt.Sprintf("pos-%02d", i)])
		}
		if ack := tm.query(t, "pos", "1.0.0", false); ack.Offer == nil {
			t.Fatalf("pos-%02d not offered at 100%%", i)
		}
	}
}

// Many terminals reporting at once are all acknowledged and stored.
func TestConcurrentReportsCommitted(t *testing.T) {
	n := startNode(t, nil)
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	const fleet = 30
	var wg sync.WaitGroup
	errs := make(chan error, fleet)
	for i := range fleet {
		tm := n.dial(t, fmt.Sprintf("pos-%02d", i), "P400")
		tm.query(t, "pos", "1.0.0", true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, st := range []uint8{protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded} {
				var ack protocol.Ack
				if err := tm.Do(context.Background(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 100}, &ack); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := n.up.Status(t.Context(), rel.ID)
	if err != nil || st.Succeeded != fleet {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// The device page's next offer: what a query with each known version
// would be answered now, decided from memory without a write: the first
// offer of a targeting release, the frozen one after it was offered, a
// mandatory one, none on the newest version, and the attempt cap.
func TestNextOffer(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Upgrade.MaxAttempts = 1 })
	a := n.dial(t, "pos-1", "P400")
	next := func() api.NextOffer {
		t.Helper()
		h, err := n.up.DeviceUpgrades(t.Context(), "pos-1")
		if err != nil || len(h.Next) != len(h.Apps) || len(h.Next) != 1 {
			t.Fatalf("device upgrades %+v, %v", h, err)
		}
		return h.Next[0]
	}
	a.query(t, "pos", "1.0.0", true) // the version is known once a release exists
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0", Models: []string{"P400"}, Mandatory: true}, true)
	a.query(t, "pos", "1.0.0", false)
	// That query was the first offer: the assignment is frozen now.
	if got := next(); got != (api.NextOffer{AppID: "pos", Version: "1.0.0", ReleaseID: rel.ID, ReleaseVersion: "2.0.0", Assigned: true, Mandatory: true}) {
		t.Fatalf("after the offer: %+v", got)
	}
	rel2 := n.release(t, api.ReleaseCreate{Version: "2.1.0", Models: []string{"P400"}}, true)
	if got := next(); got.ReleaseID != rel2.ID || got.Assigned || got.Mandatory {
		t.Fatalf("a newer release not offered yet: %+v", got)
	}
	a.query(t, "pos", "2.1.0", false)
	if got := next(); got != (api.NextOffer{AppID: "pos", Version: "2.1.0"}) {
		t.Fatalf("on the newest version: %+v", got)
	}
	// Back on 1.0.0, the newer release fails once: at the cap, 2.0.0
	// (assigned, not failed) is offered instead; then it fails too.
	a.query(t, "pos", "1.0.0", false)
	a.mustReport(t, rel2.ID, 1, protocol.StageDownloading, protocol.StageFailed)
	if got := next(); got.ReleaseID != rel.ID {
		t.Fatalf("2.1.0 at the cap: %+v", got)
	}
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageFailed)
	if got := next(); got.ReleaseID != "" || !got.Capped {
		t.Fatalf("both at the cap: %+v", got)
	}
}
