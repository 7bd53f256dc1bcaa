package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
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
	e := (&env{}).serveAdmin(t, n.Server, admin.Options{Bus: n.Bus, Groups: g})

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
	if out := e.mustRun(t, "--json", "group", "create", "p4", "--policy", "dynamic", "--filter-model", "P4*", "--filter-fw", "1*"); !strings.Contains(out, `"filter":{"models":["P4*"],"fw":["1*"]}`) {
		t.Fatalf("create dynamic: %s", out)
	}
	if out := e.mustRun(t, "group", "members", "p4"); !strings.Contains(out, "T1") || !strings.Contains(out, "filter") {
		t.Fatalf("dynamic members: %s", out)
	}
	e.mustRun(t, "group", "delete", "p4")
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
	// Import: a header, two good rows, a bad role, an unknown group and a
	// short row; the good ones land, the rest are reported by line.
	csvPath := filepath.Join(t.TempDir(), "m.csv")
	if err := os.WriteFile(csvPath, []byte("group,device,role\nstore-12,T7\nstore-12,T8,moderator\nstore-12,T9,boss\nnope,T7\nstore-12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := e.run(nil, "group", "import", csvPath)
	if err == nil || !strings.Contains(out, "2 memberships added, 3 rows failed") ||
		!strings.Contains(stderr, "line 4:") || !strings.Contains(stderr, "line 5:") || !strings.Contains(stderr, "line 6:") {
		t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
	}
	ms, err := g.Members("store-12", "", 0)
	if err != nil || len(ms.Members) != 2 || ms.Members[1].Role != "moderator" {
		t.Fatalf("after import: %+v %v", ms, err)
	}
	if out := e.mustRun(t, "group", "import", "--remove", writeTemp(t, "store-12,T7\nstore-12,T8\n")); !strings.Contains(out, "2 memberships removed, 0 rows failed") {
		t.Fatalf("import --remove: %s", out)
	}
	if ms, _ := g.Members("store-12", "", 0); len(ms.Members) != 0 {
		t.Fatalf("after import --remove: %+v", ms)
	}
	e.mustRun(t, "group", "remove", "ops", "T1")
	e.mustRun(t, "group", "rotate-key")
	e.mustRun(t, "group", "delete", "ops")
	if _, _, err := e.run(nil, "group", "show", "ops"); err == nil {
		t.Fatal("deleted group shown")
	}
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
