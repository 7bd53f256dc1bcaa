package upgrade_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/storage"
)

// pilot runs a phased release whose first phase is a list of `pilot`
// devices (error condition 5 %, success 95 %, no soak) and whose second
// is every device; `fail` pilot devices report FAILED and the others
// SUCCEEDED, all at once over real sessions. An outsider (not in the
// pilot) is online throughout.
func pilot(t *testing.T, pilotN, fail int) (*node, api.Release, *terminal, []*terminal) {
	t.Helper()
	n := startNode(t, func(c *config.Config) {
		c.Server.HelloRatePerSource = 0 // the whole pilot dials from 127.0.0.1
	})
	var devs []string
	for i := range pilotN {
		devs = append(devs, fmt.Sprintf("pilot-%03d", i))
	}
	rel, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{
			{Devices: devs, SoakS: new(int64), SuccessPct: 95, ErrorPct: 5, MinDevices: pilotN},
			{Percent: 100},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	outsider := n.dial(t, "outsider", "P400")
	if ack := outsider.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("a device outside the pilot was offered the release")
	}
	terms := make([]*terminal, pilotN)
	for i, d := range devs {
		terms[i] = n.dial(t, d, "P400")
		if ack := terms[i].query(t, "pos", "1.0.0", true); ack.Offer == nil || ack.Offer.ReleaseID != rel.ID {
			t.Fatalf("pilot device %s got no offer", d)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, pilotN)
	for i, tm := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := protocol.StageSucceeded
			if failing(i, pilotN, fail) {
				last = protocol.StageFailed
			}
			for _, st := range []uint8{protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, last} {
				var ack protocol.Ack
				if err := tm.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 100}, &ack); err != nil {
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
	return n, rel, outsider, terms
}

// failing spreads `fail` failing devices over the pilot.
func failing(i, pilotN, fail int) bool { return i%(pilotN/fail) == 0 && i/(pilotN/fail) < fail }

// Eleven of 200 pilot devices fail (5.5 % > 5 %) while 189 succeed
// (below the 95 % = 190 needed): the rollout pauses with a notification,
// never advances, and the outsider is never offered the release.
func TestPilotPausesAboveErrorCondition(t *testing.T) {
	n, rel, outsider, terms := pilot(t, 200, 11)
	st, err := n.up.RolloutStatus(t.Context(), rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "paused" || st.Phase != 1 || st.Phases[0].Failed != 11 || st.Phases[0].Succeeded != 189 || st.Phases[0].Offered != 200 {
		t.Fatalf("rollout %+v", st)
	}
	if !hasNoteKind(n.notes.kinds(), notify.KindRolloutPaused) {
		t.Fatalf("no rollout_paused notification: %v", n.notes.kinds())
	}
	if ack := outsider.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("outsider offered the release of a paused pilot")
	}
	var buf bytes.Buffer
	n.up.Metrics().WritePrometheus(&buf)
	for _, line := range []string{
		fmt.Sprintf("termd_rollout_paused{release=%q} 1\n", rel.ID),
		fmt.Sprintf("termd_rollout_phase{release=%q} 1\n", rel.ID),
		fmt.Sprintf("termd_rollout_devices{release=%q,phase=\"1\",outcome=\"failed\"} 11\n", rel.ID),
		fmt.Sprintf("termd_rollout_devices{release=%q,phase=\"1\",outcome=\"succeeded\"} 189\n", rel.ID),
		"termd_upgrade_rollout_transitions_total{event=\"paused\"} 1\n",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if ids := outsider.noticeIDs(); len(ids) != 0 {
		t.Fatalf("outsider got notices %v", ids)
	}
	// Fixed: the operator retries the failed devices (the pilot counts
	// their next attempt, the rollout stays paused) and resumes; their
	// second attempts succeed, the pilot's success condition holds, and
	// the rollout advances: the outsider gets UPGRADE_NOTICE.
	if got, err := n.up.Retry(t.Context(), rel.ID, api.Retry{Failed: true}); err != nil || got != 11 {
		t.Fatalf("retry: %d, %v", got, err)
	}
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.State != "paused" || st.Phases[0].Failed != 0 {
		t.Fatalf("after retry %+v", st)
	}
	if st, err := n.up.RolloutResume(t.Context(), rel.ID); err != nil || st.State != "running" || st.Phase != 1 {
		t.Fatalf("after resume %+v, %v", st, err)
	}
	for i, tm := range terms {
		if failing(i, 200, 11) {
			if ack := tm.query(t, "pos", "1.0.0", true); ack.Offer == nil {
				t.Fatalf("retried device %d not offered", i)
			}
			tm.mustReport(t, rel.ID, 2, protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded)
		}
	}
	eventually(t, "the advance", func() bool {
		st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
		return st.Phase == 2
	})
	eventually(t, "the outsider's notice", func() bool { return slices.Contains(outsider.noticeIDs(), rel.ID) })
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.Phases[0].Succeeded != 200 || st.Phases[0].Failed != 0 {
		t.Fatalf("pilot counts %+v", st.Phases[0])
	}
}

// A thousand pilot devices report at once, 4,000 reports and 1,000
// first offers straddling the thresholds: 51 failures (5.1 %) pause it
// and it never advances (949 successes < 950); 50 failures (5.0 %) never
// pause it and it advances at the 950th success. Each run's counts are
// the exact tallies.
func TestPilotThresholdsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sessions")
	}
	for _, tc := range []struct {
		fail   int
		paused bool
	}{{51, true}, {50, false}} {
		t.Run(fmt.Sprint(tc.fail, " failures"), func(t *testing.T) {
			n, rel, outsider, _ := pilot(t, 1000, tc.fail)
			if tc.paused {
				st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
				if st.State != "paused" || st.Phase != 1 || st.Phases[0].Failed != tc.fail || st.Phases[0].Succeeded != 1000-tc.fail {
					t.Fatalf("rollout %+v", st)
				}
				if ack := outsider.query(t, "pos", "1.0.0", true); ack.Offer != nil {
					t.Fatal("outsider offered")
				}
				return
			}
			eventually(t, "the advance", func() bool {
				st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
				return st.Phase == 2
			})
			st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
			if st.State != "running" || st.Phases[0].Failed != tc.fail || st.Phases[0].Succeeded != 1000-tc.fail || hasNoteKind(n.notes.kinds(), notify.KindRolloutPaused) {
				t.Fatalf("rollout %+v", st)
			}
		})
	}
}

// A phase that needs approval waits for it; pause and resume by an
// operator; the state survives a restart on the same store.
func TestApprovalPauseResumeAndRestart(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	n := startOn(t, store, nil)
	zero := int64(0)
	rel, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{
			{Devices: []string{"a", "b"}, SoakS: &zero, SuccessPct: 100, ErrorPct: 50, MinDevices: 2, Approval: true},
			{Percent: 100, SoakS: &zero},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.RolloutApprove(t.Context(), rel.ID); protocol.StatusOf(err) != protocol.Conflict {
		t.Fatalf("approve before the condition: %v", err)
	}
	for _, bad := range [][]api.Phase{
		{{Group: "store-12"}, {Percent: 100}},         // no groups on this node
		{{Percent: 10}, {Percent: 5}, {Percent: 100}}, // decreasing
		{{Percent: 10}, {Percent: 50}},                // does not end at 100
		{{Percent: 10, Devices: []string{"a"}}},       // both
	} {
		if _, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.1", SHA256: testSHA, Size: 1 << 20,
			URL: "https://dl.example/pos.bin", Phases: bad}); protocol.StatusOf(err) != protocol.BadRequest {
			t.Errorf("phases %+v: %v", bad, err)
		}
	}
	if _, err := n.up.SetRollout(t.Context(), rel.ID, 50); protocol.StatusOf(err) != protocol.Conflict {
		t.Fatalf("percentage of a phased release: %v", err)
	}
	for _, d := range []string{"a", "b"} {
		tm := n.dial(t, d, "P400")
		if ack := tm.query(t, "pos", "1.0.0", true); ack.Offer == nil {
			t.Fatalf("%s not offered", d)
		}
		tm.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageInstalling, protocol.StageSucceeded)
	}
	st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
	if st.State != "waiting_approval" || st.Phase != 1 {
		t.Fatalf("before approval %+v", st)
	}
	c := n.dial(t, "c", "P400")
	if ack := c.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("offered before approval")
	}

	// Restart on the same store: the state is what was committed.
	n.stop()
	n = startOn(t, store, nil)
	if st2, _ := n.up.RolloutStatus(t.Context(), rel.ID); st2.State != st.State || st2.Phase != 1 || st2.Phases[0].Succeeded != 2 {
		t.Fatalf("after restart %+v", st2)
	}
	if st, err := n.up.RolloutApprove(t.Context(), rel.ID); err != nil || st.Phase != 2 || st.State != "running" {
		t.Fatalf("approve: %+v, %v", st, err)
	}
	if st, err := n.up.RolloutPause(t.Context(), rel.ID); err != nil || st.State != "paused" {
		t.Fatalf("pause: %+v, %v", st, err)
	}
	c = n.dial(t, "c", "P400")
	if ack := c.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("offered while paused")
	}
	if _, err := n.up.RolloutResume(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if ack := c.query(t, "pos", "1.0.0", true); ack.Offer == nil {
		t.Fatal("not offered after resume")
	}
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.Phases[1].Offered != 1 || st.Funnel["succeeded"] != 2 {
		t.Fatalf("second phase %+v funnel %v", st.Phases[1], st.Funnel)
	}
}

// Ten of 200 fail (5.0 %, not above 5 %) and 190 succeed (95 %): the
// rollout never pauses, advances to every device, and the online
// outsider gets UPGRADE_NOTICE and then the offer.
func TestPilotAdvancesAtSuccessCondition(t *testing.T) {
	n, rel, outsider, _ := pilot(t, 200, 10)
	eventually(t, "the advance", func() bool {
		st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
		return st.Phase == 2
	})
	st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
	if st.State != "running" || st.Phases[0].Failed != 10 || st.Phases[0].Succeeded != 190 || st.Phases[0].State != "done" {
		t.Fatalf("rollout %+v", st)
	}
	if hasNoteKind(n.notes.kinds(), notify.KindRolloutPaused) {
		t.Fatal("paused below the error condition")
	}
	eventually(t, "the outsider's notice", func() bool { return slices.Contains(outsider.noticeIDs(), rel.ID) })
	if ack := outsider.query(t, "pos", "1.0.0", true); ack.Offer == nil {
		t.Fatal("outsider not offered after the advance")
	}
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.Phases[1].Offered != 1 {
		t.Fatalf("second phase counts %+v", st.Phases[1])
	}
}

func hasNoteKind(kinds []string, kind string) bool {
	return slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, kind+":") })
}

// A phase whose success condition holds does not advance before its
// soak has passed.
func TestSoakHoldsThePhase(t *testing.T) {
	n := startNode(t, nil)
	hour := int64(3600)
	rel, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{{Devices: []string{"a", "b"}, SoakS: &hour}, {Percent: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b"} {
		tm := n.dial(t, d, "P400")
		if ack := tm.query(t, "pos", "1.0.0", true); ack.Offer == nil {
			t.Fatalf("%s not offered", d)
		}
		tm.mustReport(t, rel.ID, 1, protocol.StageDownloading, protocol.StageSucceeded)
	}
	time.Sleep(100 * time.Millisecond) // several sweeps (20 ms)
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.Phase != 1 || st.State != "running" || st.Phases[0].Succeeded != 2 {
		t.Fatalf("advanced before the soak: %+v", st)
	}
}
