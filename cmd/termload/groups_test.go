package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// The groups scenario against a real node: the storm keeps every
// terminal in exactly one group and B within its limit, and every
// reading member receives every message.
func TestGroupsScenario(t *testing.T) {
	cfg := servertest.Config(t)
	cfg.Server.FrameRate, cfg.Server.FrameBurst = 1000, 1000
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
	adm := httptest.NewServer(admin.New(n.Server, admin.Options{Token: "tok", Groups: g, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(adm.Close)
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"-scenario", "groups", "-addr", n.Addr, "-admin", adm.URL, "-token", "tok",
		"-secret", servertest.FleetSecret, "-n", "20", "-limit", "8", "-duration", "1s", "-messages", "3", "-slow", "1", "-probes", "2"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	o := out.String()
	if !strings.Contains(o, "in both 0, in neither 0 (never joined 0): OK") || !strings.Contains(o, "received 57;") {
		t.Fatalf("output:\n%s", o)
	}
}
