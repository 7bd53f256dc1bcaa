package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

// A scheduled campaign through a real termd and its download node, as a
// firmware runs it with the Go SDK: three terminals, a node of capacity
// one per 2-second slot; each is placed in its own slot in time order,
// checks in at it, downloads the signed artifact from termd's node with
// the slot's token, verifies it and reports DOWNLOADED under the
// campaign's release; the progress shows three proceeded reservations.
func TestCampaignEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, pubPEM, _ := protocol.MarshalReleaseKeys(key)
	pubPath := filepath.Join(t.TempDir(), "release.pub")
	if err := os.WriteFile(pubPath, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dl := servertest.FreePort(t)
	n := newNode(t, fmt.Sprintf("[download]\nlisten = %q\n[upgrade]\nrelease_public_keys = [%q]\n[schedule]\nslot_length = \"2s\"\ncapacity = 1\ncheckin_grace = \"1s\"\n", dl, pubPath))
	n.start()
	art := make([]byte, 200<<10)
	_, _ = rand.Read(art)
	sum := sha256.Sum256(art)
	req, _ := http.NewRequest("POST", "http://"+n.adminAddr+"/v1/artifacts", bytes.NewReader(art))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: hex.EncodeToString(sum[:])}, &rel)
	sig, _ := protocol.SignRelease(key, "pos", "2.0.0", sum, uint64(len(art)))
	n.put("/v1/releases/"+rel.ID+"/signature", api.Signature{Sig: hex.EncodeToString(sig)})
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)
	now := time.Now()
	var camp api.Campaign
	n.post("/v1/campaigns", api.CampaignCreate{ReleaseID: rel.ID, Windows: []api.Window{{StartMs: now.UnixMilli(), EndMs: now.Add(time.Minute).UnixMilli()}}}, &camp)
	n.post("/v1/campaigns/"+camp.ID+"/publish", nil, nil)

	var wg sync.WaitGroup
	slots := make([]uint64, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: fmt.Sprintf("CE-%d", i), FleetSecret: []byte(testSecret), FW: "1", Model: "P400"})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var qa protocol.UpgradeQueryAck
			if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil || qa.Campaign == nil {
				t.Errorf("query %d: %+v %v", i, qa, err)
				return
			}
			k, _ := protocol.ParseReleasePublicKey(pubPEM)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			res, err := client.RunCampaign(ctx, c, qa.Campaign, client.CampaignParams{AppID: "pos", Running: "1.0.0", SystemID: "pos",
				Keys: []*ecdsa.PublicKey{k}, Path: filepath.Join(t.TempDir(), "fw.bin"), Attempt: 1})
			if err != nil {
				t.Errorf("campaign %d: %v", i, err)
				return
			}
			slots[i] = res.Reservation.SlotStartMs
			got, _ := os.ReadFile(res.Path)
			if !bytes.Equal(got, art) {
				t.Errorf("terminal %d downloaded %d bytes that differ", i, len(got))
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := map[uint64]bool{}
	for _, s := range slots {
		if seen[s] {
			t.Fatalf("two terminals in one slot of capacity 1: %v", slots)
		}
		seen[s] = true
	}
	var p api.CampaignProgress
	n.get("/v1/campaigns/"+camp.ID+"/progress", &p)
	if p.Totals.Reserved != 3 || p.Totals.Proceeded != 3 {
		t.Fatalf("progress %+v", p.Totals)
	}
	var h api.DeviceUpgrades
	n.get("/v1/devices/CE-0/upgrades", &h)
	if len(h.Attempts) != 1 || h.Attempts[0].Stage != "downloaded" || h.Attempts[0].ReleaseID != rel.ID {
		t.Fatalf("CE-0's history: %+v", h.Attempts)
	}
}

// Placements burst while termd is SIGKILLed: after the restart no slot
// holds more than its capacity, the stored slot uses equal the
// reservations that hold capacity, and every placement acknowledged
// before the kill is still there, answered again with the same slot.
func TestPlacementsKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "[schedule]\nslot_length = \"1m\"\ncapacity = 5\n[download]\nurl_base = \"http://127.0.0.1:9\"\n")
	n.start()
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: fmt.Sprintf("%064x", 1), Size: 4096, URL: "https://dl.example/pos.bin"}, &rel)
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)
	now := time.Now().Truncate(time.Minute) // windows on slot boundaries: 60 whole slots
	var camp api.Campaign
	n.post("/v1/campaigns", api.CampaignCreate{ReleaseID: rel.ID, Windows: []api.Window{{StartMs: now.Add(time.Hour).UnixMilli(), EndMs: now.Add(2 * time.Hour).UnixMilli()}}}, &camp)
	n.post("/v1/campaigns/"+camp.ID+"/publish", nil, nil)

	const fleet = 400 // 60 slots × 5 = 300 places: 100 are refused
	acked := make([]*protocol.ScheduleAck, fleet)
	var count atomic.Int32
	var wg sync.WaitGroup
	var conns []*client.Conn
	for i := range fleet {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: fmt.Sprintf("PK-%03d", i), FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ack protocol.ScheduleAck
			if err := c.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", SystemID: "pos"}, &ack); err == nil {
				acked[i] = &ack
				count.Add(1)
			}
		}()
	}
	for count.Load() < 40 {
		time.Sleep(time.Millisecond)
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	n.start()
	t.Logf("%d placements acknowledged before the kill", count.Load())
	// Every terminal asks after the restart: the acknowledged ones get
	// their reservation back, the others new ones counted against the
	// slot uses loaded from the store.
	for i, a := range acked {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: fmt.Sprintf("PK-%03d", i), FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		var again protocol.ScheduleAck
		err = c.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", SystemID: "pos"}, &again)
		c.Close()
		if a == nil && protocol.StatusOf(err) == protocol.Unavailable {
			continue // full
		}
		if err != nil || a != nil && (again.ReservationID != a.ReservationID || again.SlotStartMs != a.SlotStartMs) {
			t.Fatalf("PK-%03d after kill -9: %+v %v, acknowledged %+v", i, again, err, a)
		}
	}
	var p api.CampaignProgress
	n.get("/v1/campaigns/"+camp.ID+"/progress", &p)
	perSlot := map[int64]int{}
	for _, s := range p.Slots {
		perSlot[s.StartMs] += s.Reserved
		if s.Reserved > 5 {
			t.Fatalf("slot %d holds %d, capacity 5", s.StartMs, s.Reserved)
		}
	}
	if p.Totals.Reserved != 300 {
		t.Fatalf("%d reservations after the restart, want every place (300) taken", p.Totals.Reserved)
	}
}

// put sends a JSON body with PUT to the node's admin API.
func (n *node) put(path string, body any) {
	n.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("PUT", "http://"+n.adminAddr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		n.t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

// A campaign targeted at an operator-only group reaches exactly its
// members; an open group is refused as a target; the group cannot be
// deleted while the campaign names it.
func TestCampaignGroupTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	n.post("/v1/groups", api.GroupCreate{ID: "store-12"}, nil)
	n.post("/v1/groups", api.GroupCreate{ID: "lobby", Policy: "open"}, nil)
	n.put("/v1/groups/store-12/members/GT-1", struct{}{})
	var rel api.Release
	n.post("/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: fmt.Sprintf("%064x", 1), Size: 4096, URL: "https://dl.example/pos.bin", RolloutPct: new(int)}, &rel)
	n.post("/v1/releases/"+rel.ID+"/publish", nil, nil)
	now := time.Now()
	win := []api.Window{{StartMs: now.UnixMilli(), EndMs: now.Add(time.Hour).UnixMilli()}}
	body, _ := json.Marshal(api.CampaignCreate{ReleaseID: rel.ID, Groups: []string{"lobby"}, Windows: win})
	req, _ := http.NewRequest("POST", "http://"+n.adminAddr+"/v1/campaigns", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a campaign on an open group: %s", resp.Status)
	}
	var camp api.Campaign
	n.post("/v1/campaigns", api.CampaignCreate{ReleaseID: rel.ID, Groups: []string{"store-12"}, Windows: win}, &camp)
	n.post("/v1/campaigns/"+camp.ID+"/publish", nil, nil)
	for dev, want := range map[string]bool{"GT-1": true, "GT-2": false} {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: dev, FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		var qa protocol.UpgradeQueryAck
		err = c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa)
		c.Close()
		if err != nil || (qa.Campaign != nil) != want {
			t.Fatalf("%s: campaign %+v, want %v (%v)", dev, qa.Campaign, want, err)
		}
	}
	req, _ = http.NewRequest("DELETE", "http://"+n.adminAddr+"/v1/groups/store-12", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("delete of a group a campaign names: %s", resp.Status)
	}
}
