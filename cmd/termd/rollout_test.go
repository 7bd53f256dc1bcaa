package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

// A phased rollout's counts and state survive kill -9 of a real termd in
// the middle of a burst of reports: after the restart the pilot's counts
// are exactly the devices' committed outcomes (as the release status
// tallies them from the stored reports), the rollout is paused if and
// only if those counts cross its error condition, and once every device
// has re-sent its reports (repeats are acknowledged, not counted twice)
// the counts are the full tally and the rollout is paused.
func TestRolloutKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	const pilotN, fails = 80, 5 // pauses above 4 failures; advancing needs 76 successes
	var devs []string
	for i := range pilotN {
		devs = append(devs, fmt.Sprintf("RK-%02d", i))
	}
	zero := int64(0)
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: fmt.Sprintf("%064x", 1), Size: 4096,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{
			{Devices: devs, SoakS: &zero, SuccessPct: 95, ErrorPct: 5, MinDevices: pilotN},
			{Percent: 100},
		}}, &rel)
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)

	dial := func(id string) *client.Conn {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: id, FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	final := func(i int) uint8 {
		if i%(pilotN/fails) == 0 {
			return protocol.StageFailed
		}
		return protocol.StageSucceeded
	}
	var conns []*client.Conn
	for _, d := range devs {
		c := dial(d)
		conns = append(conns, c)
		var qa protocol.UpgradeQueryAck
		if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil || qa.Offer == nil {
			t.Fatalf("query %s: %+v %v", d, qa, err)
		}
	}
	// The burst; termd is killed once about half the reports were acked.
	var acked atomic.Int32
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, st := range []uint8{protocol.StageDownloading, protocol.StageInstalling, final(i)} {
				var ack protocol.Ack
				if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 100}, &ack); err != nil {
					return // the kill
				}
				acked.Add(1)
			}
		}()
	}
	for acked.Load() < pilotN*3/2 {
		time.Sleep(time.Millisecond)
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	n.start()

	check := func(when string) api.RolloutStatus {
		t.Helper()
		var ro api.RolloutStatus
		n.get("/v1/releases/"+rel.ID+"/rollout", &ro)
		var st api.ReleaseStatus
		n.get("/v1/releases/"+rel.ID+"/status", &st)
		p := ro.Phases[0]
		if p.Offered != pilotN || p.Succeeded != st.Stages["succeeded"] || p.Failed != st.Stages["failed"] {
			t.Fatalf("%s: pilot counts %+v, stored outcomes %v", when, p, st.Stages)
		}
		if paused := p.Failed*100 > 5*pilotN; (ro.State == "paused") != paused || ro.Phase != 1 {
			t.Fatalf("%s: rollout %s in phase %d with %d failures", when, ro.State, ro.Phase, p.Failed)
		}
		return ro
	}
	ro0 := check("after kill -9")
	t.Logf("after kill -9 (%d reports acked): %s, pilot offered %d, succeeded %d, failed %d", acked.Load(), ro0.State, ro0.Phases[0].Offered, ro0.Phases[0].Succeeded, ro0.Phases[0].Failed)

	// Every device sends its reports again, from the first.
	for i, d := range devs {
		c := dial(d)
		for _, st := range []uint8{protocol.StageDownloading, protocol.StageInstalling, final(i)} {
			var ack protocol.Ack
			if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 100}, &ack); err != nil {
				t.Fatalf("%s stage %d after the restart: %v", d, st, err)
			}
		}
		c.Close()
	}
	ro := check("after the re-sends")
	if ro.Phases[0].Failed != fails || ro.Phases[0].Succeeded != pilotN-fails || ro.State != "paused" {
		t.Fatalf("final rollout %+v", ro)
	}
}
