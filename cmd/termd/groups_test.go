package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/servertest"
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

// Service ACLs by group, with a real termd: an ACL naming an open group
// is refused at startup with the reason; one naming an operator-only
// group lets exactly its members control the service; the group cannot
// be deleted while the ACL names it.
func TestGroupACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()
	n.post("/v1/groups", api.GroupCreate{ID: "lobby", Policy: "open"}, nil)
	n.post("/v1/groups", api.GroupCreate{ID: "techs"}, nil)
	req, _ := http.NewRequest("PUT", "http://"+n.adminAddr+"/v1/groups/techs/members/K9-tech", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("add: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	_ = n.cmd.Wait()

	script := servertest.Script(t, t.TempDir(), "once.sh", "echo ok\n")
	withACL := func(group string) string {
		return fmt.Sprintf(`
[[services]]
id = "drawer"
kind = "oneshot"
command = %q
  [[services.acl]]
  groups = [%q]
`, script, group)
	}
	// The open group: termd refuses to start, naming the reason.
	rewriteConfig(t, n, withACL("lobby"))
	cmd := exec.Command(os.Args[0], "-config", n.cfgPath)
	cmd.Env = append(os.Environ(), "TERMD_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `group "lobby" can be joined by terminals themselves`) {
		t.Fatalf("termd started with an ACL naming an open group: %v\n%s", err, out)
	}
	rewriteConfig(t, n, withACL("techs"))
	n.start()
	for dev, want := range map[string]protocol.Code{"K9-tech": protocol.OK, "K9-other": protocol.Forbidden} {
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: dev, FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		var ack protocol.ControlAck
		err = c.Do(t.Context(), &protocol.Control{ServiceID: "drawer", Op: protocol.OpStart}, &ack)
		c.Close()
		if protocol.StatusOf(err) != want {
			t.Fatalf("%s: %v, want %v", dev, err, want)
		}
	}
	req, _ = http.NewRequest("DELETE", "http://"+n.adminAddr+"/v1/groups/techs", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "service drawer acl") {
		t.Fatalf("delete of a group an ACL names: %d %s", resp.StatusCode, body)
	}
}

// rewriteConfig replaces the extra part of n's config.
func rewriteConfig(t *testing.T, n *node, extra string) {
	t.Helper()
	b, err := os.ReadFile(n.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if i := strings.Index(s, "\n[[services]]"); i >= 0 {
		s = s[:i]
	}
	if err := os.WriteFile(n.cfgPath, []byte(s+extra), 0o600); err != nil {
		t.Fatal(err)
	}
}
