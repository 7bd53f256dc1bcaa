package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

// post sends a JSON body to the node's admin API and decodes the answer.
func (n *node) post(path string, body, v any) {
	n.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+n.adminAddr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		n.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			n.t.Fatal(err)
		}
	}
}

// Every acknowledged UPGRADE_REPORT survives kill -9 of a real termd: the
// reports of many terminals committed in groups, a failure's
// last_failure, and the frozen assignments (reports still accepted after
// the restart).
func TestUpgradeReportsKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: fmt.Sprintf("%064x", 1), Size: 4096, URL: "https://dl.example/pos.bin"}, &rel)
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)

	const fleet = 24
	stages := []uint8{protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded}
	dial := func(i int) *client.Conn {
		c, err := client.Dial(t.Context(), client.Config{
			Addr: n.tgp, DeviceID: fmt.Sprintf("K9-%02d", i), FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	acked := make([]uint8, fleet) // the last stage acknowledged per device
	var wg sync.WaitGroup
	var conns []*client.Conn
	for i := range fleet {
		c := dial(i)
		conns = append(conns, c)
		var qa protocol.UpgradeQueryAck
		if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil || qa.Offer == nil {
			t.Fatalf("query %d: %+v %v", i, qa, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, st := range stages[:1+i%len(stages)] {
				if i%8 == 7 && st == protocol.StageInstalling {
					st = protocol.StageFailed
				}
				var ack protocol.Ack
				if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: st, Progress: 100, Code: 7, Message: "flash error"}, &ack); err != nil {
					t.Errorf("report %d: %v", i, err)
					return
				}
				acked[i] = st
				if st == protocol.StageFailed {
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	n.start()

	failed := 0
	for i := range fleet {
		var h api.DeviceUpgrades
		n.get(fmt.Sprintf("/v1/devices/K9-%02d/upgrades", i), &h)
		want := map[uint8]string{1: "downloading", 2: "downloaded", 3: "installing", 4: "succeeded", 5: "failed"}[acked[i]]
		if len(h.Attempts) != 1 || h.Attempts[0].Stage != want {
			t.Fatalf("K9-%02d after kill -9: %+v, want stage %s", i, h.Attempts, want)
		}
		if acked[i] == protocol.StageSucceeded && (len(h.Apps) != 1 || h.Apps[0].Version != "2.0.0") {
			t.Fatalf("K9-%02d app versions after kill -9: %+v", i, h.Apps)
		}
		if acked[i] == protocol.StageFailed {
			failed++
		}
	}
	var st api.ReleaseStatus
	n.get("/v1/releases/"+rel.ID+"/status", &st)
	if st.Assigned != fleet || st.Failed != failed || st.Release.State != "published" {
		t.Fatalf("status after kill -9: %+v (failed %d)", st, failed)
	}
	c := dial(7) // its attempt failed before the kill
	defer c.Close()
	var qa protocol.UpgradeQueryAck
	if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil {
		t.Fatal(err)
	}
	if qa.LastFailure == nil || qa.LastFailure.Code != 7 || qa.LastFailure.Message != "flash error" {
		t.Fatalf("last_failure after kill -9: %+v", qa.LastFailure)
	}
	var ack protocol.Ack
	if err := c.Do(t.Context(), &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 2, Stage: protocol.StageDownloading}, &ack); err != nil {
		t.Fatalf("report after the restart: %v", err)
	}
}
