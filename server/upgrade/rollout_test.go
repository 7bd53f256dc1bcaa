package upgrade_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/notify"
)

// pilot runs a phased release whose first phase is a list of `pilot`
// devices (error condition 5 %, success 95 %, no soak) and whose second
// is every device; `fail` pilot devices report FAILED and the others
// SUCCEEDED, all at once over real sessions. An outsider (not in the
// pilot) is online throughout.
func pilot(t *testing.T, pilotN, fail int) (*node, api.Release, *terminal) {
	t.Helper()
	n := startNode(t, nil)
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
			if i%(pilotN/fail) == 0 && i/(pilotN/fail) < fail {
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
	return n, rel, outsider
}

// Twelve of 220 pilot devices fail (5.45 % > 5 %) while 208 succeed
// (below the 95 % = 209 needed): the rollout pauses with a notification,
// never advances, and the outsider is never offered the release.
func TestPilotPausesAboveErrorCondition(t *testing.T) {
	n, rel, outsider := pilot(t, 220, 12)
	st, err := n.up.RolloutStatus(t.Context(), rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "paused" || st.Phase != 1 || st.Phases[0].Failed != 12 || st.Phases[0].Succeeded != 208 || st.Phases[0].Offered != 220 {
		t.Fatalf("rollout %+v", st)
	}
	if !hasKind(n.notes.kinds(), notify.KindRolloutPaused) {
		t.Fatalf("no rollout_paused notification: %v", n.notes.kinds())
	}
	if ack := outsider.query(t, "pos", "1.0.0", true); ack.Offer != nil {
		t.Fatal("outsider offered the release of a paused pilot")
	}
	if ids := outsider.noticeIDs(); len(ids) != 0 {
		t.Fatalf("outsider got notices %v", ids)
	}
	// Resumed, the twelve failures are accepted: the rollout runs again
	// (still in the pilot: 208 successes are below its success condition).
	if _, err := n.up.RolloutResume(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.up.RolloutStatus(t.Context(), rel.ID); st.State != "running" || st.Phase != 1 {
		t.Fatalf("after resume %+v", st)
	}
}

// Eleven of 220 fail (5.0 %, not above 5 %) and 209 succeed (95 %): the
// rollout never pauses, advances to every device, and the online
// outsider gets UPGRADE_NOTICE and then the offer.
func TestPilotAdvancesAtSuccessCondition(t *testing.T) {
	n, rel, outsider := pilot(t, 220, 11)
	eventually(t, "the advance", func() bool {
		st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
		return st.Phase == 2
	})
	st, _ := n.up.RolloutStatus(t.Context(), rel.ID)
	if st.State != "running" || st.Phases[0].Failed != 11 || st.Phases[0].Succeeded != 209 || st.Phases[0].State != "done" {
		t.Fatalf("rollout %+v", st)
	}
	if hasKind(n.notes.kinds(), notify.KindRolloutPaused) {
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

func hasKind(kinds []string, kind string) bool {
	return slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, kind+":") })
}
