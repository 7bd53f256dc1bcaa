package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// The group commands against a real node: a terminal added by termctl is
// told by GROUP_SYNC and receives `group send`'s text.
func TestGroupCommands(t *testing.T) {
	cfg := servertest.Config(t)
	var g *groups.Service
	n := servertest.Start(t, cfg, func(s *server.Server) {
		var err error
		if g, err = groups.Open(context.Background(), groups.Options{Store: s.Store().(storage.Groups), Server: s, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		g.Routes(s)
		g.Start()
		t.Cleanup(func() { _ = g.Close(context.Background()) })
	})
	e := &env{}
	e.srv = httptest.NewServer(admin.New(n.Server, admin.Options{Token: testToken, Bus: n.Bus, Groups: g, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(e.srv.Close)

	var mu sync.Mutex
	var pushes []string
	c, err := client.Dial(t.Context(), client.Config{Addr: n.Addr, DeviceID: "T1", FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: "P400", NoHeartbeat: true,
		OnPush: func(typ byte, _ uint16, body []byte) {
			mu.Lock()
			defer mu.Unlock()
			switch typ {
			case protocol.TypeGroupSync:
				pushes = append(pushes, "sync")
			case protocol.TypeGroupMessage:
				var m protocol.GroupMessage
				if protocol.DecodeBody(protocol.NewReader(nil), body, &m) == nil {
					pushes = append(pushes, "msg:"+string(m.Payload))
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	out := e.mustRun(t, "--json", "group", "create", "store-12", "--name", "Store 12", "--policy", "open", "--limit", "5")
	var gr api.Group
	if err := json.Unmarshal([]byte(out), &gr); err != nil || gr.ID != "store-12" || gr.Policy != "open" || gr.Limit != 5 {
		t.Fatalf("create: %v %s", err, out)
	}
	e.mustRun(t, "group", "create", "ops")
	if out := e.mustRun(t, "group", "add", "ops", "T1", "--role", "moderator"); !strings.Contains(out, "group_version:") {
		t.Fatalf("add: %s", out)
	}
	out = e.mustRun(t, "group", "members", "ops")
	if !strings.Contains(out, "T1") || !strings.Contains(out, "moderator") || !strings.Contains(out, "operator:") || !strings.Contains(out, "true") {
		t.Fatalf("members: %s", out)
	}
	out = e.mustRun(t, "group", "list")
	if !strings.Contains(out, "store-12") || !strings.Contains(out, "Store 12") || !strings.Contains(out, "operator") {
		t.Fatalf("list: %s", out)
	}
	if out := e.mustRun(t, "--json", "group", "list"); !strings.HasPrefix(out, `{"groups":[`) {
		t.Fatalf("list --json: %s", out)
	}
	if out := e.mustRun(t, "group", "send", "ops", "--text", "close at 6"); !strings.Contains(out, "delivered:") {
		t.Fatalf("send: %s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(pushes, ",")
		mu.Unlock()
		if got == "sync,msg:close at 6" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes %q", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := e.run(nil, "group", "send", "ops"); err == nil {
		t.Fatal("send without --text accepted")
	}
	if _, _, err := e.run(nil, "group", "create", "x", "--policy", "anyone"); err == nil {
		t.Fatal("bad policy accepted")
	}
	e.mustRun(t, "group", "remove", "ops", "T1")
	e.mustRun(t, "group", "rotate-key")
	e.mustRun(t, "group", "delete", "ops")
	if _, _, err := e.run(nil, "group", "show", "ops"); err == nil {
		t.Fatal("deleted group shown")
	}
}
