package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/servertest"
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

// Cancel through a real termd and its download node: a terminal that
// was downloading gets UPGRADE_NOTICE kind 3 and its download URL is
// refused (410); one already INSTALLING gets no notice, and its reports
// are still accepted.
func TestCancelRevokesDownloads(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	dl := servertest.FreePort(t)
	n := newNode(t, fmt.Sprintf("[download]\nlisten = %q\n[upgrade]\nnotice_spread = \"0s\"\n", dl))
	n.start()
	img := bytes.Repeat([]byte("pos image "), 30000)
	req, _ := http.NewRequest("POST", "http://"+n.adminAddr+"/v1/artifacts", bytes.NewReader(img))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sum := sha256.Sum256(img)
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: hex.EncodeToString(sum[:])}, &rel)
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)

	type term struct {
		c       *client.Conn
		url     string
		notices atomic.Int32
	}
	dial := func(id string) *term {
		tm := &term{}
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: id, FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true,
			OnPush: func(typ byte, _ uint16, body []byte) {
				var nt protocol.UpgradeNotice
				if typ == protocol.TypeUpgradeNotice && protocol.DecodeBody(protocol.NewReader(nil), body, &nt) == nil && nt.Kind == protocol.NoticeWithdrawn {
					tm.notices.Add(1)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		tm.c = c
		var qa protocol.UpgradeQueryAck
		if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil || qa.Offer == nil {
			t.Fatalf("query %s: %+v %v", id, qa, err)
		}
		tm.url = qa.Offer.URL
		return tm
	}
	report := func(tm *term, st uint8) error {
		var ack protocol.Ack
		return tm.c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 50}, &ack)
	}
	get := func(u string) int {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", "bytes=0-999")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	downloading, installing := dial("CX-1"), dial("CX-2")
	if err := report(downloading, protocol.StageDownloading); err != nil {
		t.Fatal(err)
	}
	if err := report(installing, protocol.StageInstalling); err != nil {
		t.Fatal(err)
	}
	if code := get(downloading.url); code != http.StatusPartialContent {
		t.Fatalf("download before cancel: %d", code)
	}
	n.post("/v1/releases/"+rel.ID+"/cancel", nil, nil)
	deadline := time.Now().Add(10 * time.Second)
	for downloading.notices.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if downloading.notices.Load() != 1 || installing.notices.Load() != 0 {
		t.Fatalf("withdrawn notices: downloading %d, installing %d", downloading.notices.Load(), installing.notices.Load())
	}
	if code := get(downloading.url); code != http.StatusGone {
		t.Fatalf("download after cancel: %d, want 410", code)
	}
	if err := report(installing, protocol.StageSucceeded); err != nil {
		t.Fatalf("the installing terminal's report after cancel: %v", err)
	}
}
