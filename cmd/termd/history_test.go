package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence/history"
)

// onlineHours returns the hour starts a device's history has online.
func (n *node) onlineHours(id string) map[int64]bool {
	n.t.Helper()
	var v api.OnlineHours
	n.get("/v1/devices/"+id+"/online-hours", &v)
	if v.DeviceID != id || len(v.Hours) != history.Hours {
		n.t.Fatalf("online-hours of %s: %s with %d hours", id, v.DeviceID, len(v.Hours))
	}
	on := map[int64]bool{}
	for _, h := range v.Hours {
		if h.Online {
			on[h.StartMs] = true
		}
	}
	return on
}

// The online history survives a restart of a real termd on Badger: the
// hours terminals were online before a graceful stop are still online
// after the start (the snapshot is saved at shutdown and loaded at
// start); a device that was never online has none.
func TestOnlineHistorySurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	hourStart := time.Now().UnixMilli() / history.HourMs * history.HourMs
	const terminals = 5
	for i := range terminals {
		c, err := client.Dial(t.Context(), client.Config{
			Addr: n.tgp, DeviceID: fmt.Sprintf("H-%d", i), FleetSecret: []byte(testSecret),
			FW: "1.0.0", Model: "P400", HBMin: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// A device the registry knows (blocked by an operator) but that never connected.
	n.post("/v1/devices/H-never/block", nil, nil)
	hourEnd := time.Now().UnixMilli() / history.HourMs * history.HourMs
	before := n.onlineHours("H-0")
	if !before[hourStart] || !before[hourEnd] {
		t.Fatalf("before the restart: %v (hours %d, %d)", before, hourStart, hourEnd)
	}

	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Wait(); err != nil {
		t.Fatalf("termd exit: %v\n%s", err, n.out.String())
	}
	n.start()
	for i := range terminals {
		id := fmt.Sprintf("H-%d", i)
		after := n.onlineHours(id)
		if !after[hourStart] || !after[hourEnd] {
			t.Fatalf("%s after the restart: %v, want hours %d and %d", id, after, hourStart, hourEnd)
		}
	}
	if never := n.onlineHours("H-never"); len(never) != 0 {
		t.Fatalf("a device never online has hours %v", never)
	}
}
