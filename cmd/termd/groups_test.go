package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

// Memberships survive kill -9 of a real termd: every GROUP_CHANGE that was
// answered (joins and switches of many terminals at once) and every
// operator change is there after the restart, with the same
// group_version; a replayed request_id gets its first answer; grants
// signed before the kill still verify.
func TestGroupsKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	for _, g := range []api.GroupCreate{{ID: "A", Policy: "open"}, {ID: "B", Policy: "open", Limit: 15}, {ID: "ops"}} {
		n.post("/v1/groups", g, nil)
	}
	dial := func(id string) *client.Conn {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: id, FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const devices = 30
	type answer struct {
		version uint64
		groups  string
		grantB  []byte
	}
	answers := make([]answer, devices)
	conns := make([]*client.Conn, devices)
	var wg sync.WaitGroup
	for i := range devices {
		conns[i] = dial(fmt.Sprintf("K9-%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var a, b protocol.GroupAuthAck
			var ack protocol.GroupChangeAck
			if err := c.Do(ctx, &protocol.GroupAuth{GroupID: "A"}, &a); err != nil {
				t.Error(err)
				return
			}
			if err := c.Do(ctx, &protocol.GroupChange{RequestID: 1, Op: protocol.GroupJoin, To: "A", Grant: a.Grant}, &ack); err != nil {
				t.Error(err)
				return
			}
			answers[i] = answer{ack.GroupVersion, fmt.Sprint(ack.Groups), nil}
			if err := c.Do(ctx, &protocol.GroupAuth{GroupID: "B"}, &b); err != nil {
				t.Error(err)
				return
			}
			err := c.Do(ctx, &protocol.GroupChange{RequestID: 2, Op: protocol.GroupSwitch, From: "A", To: "B", Grant: b.Grant}, &ack)
			if err != nil && protocol.StatusOf(err) != protocol.Unavailable {
				t.Error(err)
				return
			}
			if err == nil {
				answers[i] = answer{ack.GroupVersion, fmt.Sprint(ack.Groups), b.Grant}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	req, _ := http.NewRequest("PUT", "http://"+n.adminAddr+"/v1/groups/ops/members/K9-00", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("add: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	n.start()

	var b api.Group
	n.get("/v1/groups/B", &b)
	if b.Members != 15 {
		t.Fatalf("B has %d members after the restart, want its limit 15", b.Members)
	}
	inB := 0
	for i := range devices {
		id := fmt.Sprintf("K9-%02d", i)
		var dg api.DeviceGroups
		n.get("/v1/devices/"+id+"/groups", &dg)
		if len(dg.Groups) == 0 {
			t.Fatalf("%s lost its memberships: %+v", id, dg)
		}
		want := answers[i]
		if i == 0 {
			want.version++ // the operator's add
		}
		if dg.GroupVersion != want.version {
			t.Fatalf("%s: group_version %d after the restart, %d answered before", id, dg.GroupVersion, want.version)
		}
		if dg.Groups[0].DeviceID == "B" {
			inB++
		}
	}
	if inB != 15 {
		t.Fatalf("%d devices in B, want 15", inB)
	}
	// Device 0 in the operator's group too; a replay and an old grant.
	var dg api.DeviceGroups
	n.get("/v1/devices/K9-00/groups", &dg)
	if len(dg.Groups) != 2 || dg.Groups[1].DeviceID != "ops" || dg.Groups[1].By != "operator:admin" {
		t.Fatalf("K9-00 after the restart: %+v", dg)
	}
	for i := 1; i < devices; i++ { // K9-00 has the operator's change on top
		if answers[i].groups != "[{B member}]" {
			continue
		}
		c := dial(fmt.Sprintf("K9-%02d", i))
		defer c.Close()
		var ack protocol.GroupChangeAck
		if err := c.Do(t.Context(), &protocol.GroupChange{RequestID: 2, Op: protocol.GroupSwitch, From: "A", To: "B", Grant: answers[i].grantB}, &ack); err != nil ||
			ack.GroupVersion != answers[i].version || fmt.Sprint(ack.Groups) != answers[i].groups {
			t.Fatalf("replay after kill -9: %+v %v, first answer %+v", ack, err, answers[i])
		}
		var hb protocol.HeartbeatAck
		if err := c.Do(t.Context(), &protocol.Heartbeat{GroupVersion: ack.GroupVersion}, &hb); err != nil || hb.Flags&1 != 0 {
			t.Fatalf("heartbeat after the restart: flags %b %v", hb.Flags, err)
		}
		if err := c.Do(t.Context(), &protocol.GroupChange{RequestID: 3, Op: protocol.GroupLeave, From: "B"}, &ack); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(t.Context(), &protocol.GroupChange{RequestID: 4, Op: protocol.GroupJoin, To: "B", Grant: answers[i].grantB}, &ack); err != nil {
			t.Fatalf("a grant signed before the kill: %v", err)
		}
		break
	}
}
