package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

func TestOnlineHours(t *testing.T) {
	hist := history.New(history.Options{})
	f := newFixture(t, func(o *Options) { o.OnlineHistory = hist })
	f.node.add(server.DeviceView{Device: storage.Device{ID: "POS-1"}})
	f.node.add(server.DeviceView{Device: storage.Device{ID: "POS-2"}})
	now := time.Now().UnixMilli()
	hist.Mark("POS-1", now)
	hist.Mark("POS-1", now-5*history.HourMs)
	hist.Mark("POS-1", now-200*history.HourMs) // outside the week

	resp := f.do(t, "GET", "/v1/devices/POS-1/online-hours", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got api.OnlineHours
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	cur := now / history.HourMs * history.HourMs
	if got.DeviceID != "POS-1" || len(got.Hours) != history.Hours {
		t.Fatalf("%s with %d hours", got.DeviceID, len(got.Hours))
	}
	if got.Hours[0].StartMs != cur-(history.Hours-1)*history.HourMs || got.Hours[history.Hours-1].StartMs != cur {
		t.Fatalf("hours from %d to %d, current hour %d", got.Hours[0].StartMs, got.Hours[history.Hours-1].StartMs, cur)
	}
	on := 0
	for _, x := range got.Hours {
		if x.Online {
			on++
			if x.StartMs != cur && x.StartMs != cur-5*history.HourMs {
				t.Fatalf("online at %d", x.StartMs)
			}
		}
	}
	if on != 2 {
		t.Fatalf("%d online hours, want 2", on)
	}
	// Known but never online: 168 hours, all false.
	var bare api.OnlineHours
	if err := json.NewDecoder(f.do(t, "GET", "/v1/devices/POS-2/online-hours", testToken, "").Body).Decode(&bare); err != nil {
		t.Fatal(err)
	}
	if len(bare.Hours) != history.Hours || bare.Hours[history.Hours-1].Online {
		t.Fatalf("bare device %+v", bare.Hours[history.Hours-1])
	}
	expectError(t, f.do(t, "GET", "/v1/devices/NOPE/online-hours", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "GET", "/v1/devices/bad%20id/online-hours", testToken, ""), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "GET", "/v1/devices/POS-1/online-hours", "", ""), 401, api.CodeUnauthorized)

	// No history on the node: 503.
	f2 := newFixture(t, nil)
	f2.node.add(server.DeviceView{Device: storage.Device{ID: "POS-1"}})
	expectError(t, f2.do(t, "GET", "/v1/devices/POS-1/online-hours", testToken, ""), 503, api.CodeUnavailable)
}
