package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/servertest"
)

// serviceEnv is a real node (TGP and admin API) with service control: a
// daemon and a oneshot that prints and exits 3.
func serviceEnv(t *testing.T) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string { return servertest.Script(t, dir, name, body) }
	cfg := servertest.Config(t)
	cfg.Storage.Dir = dir
	cfg.Services = []config.Service{
		{ID: "spooler", Kind: config.KindDaemon, Command: write("d.sh", "exec sleep 600\n"),
			StartWait: config.D(50 * time.Millisecond), StopGrace: config.D(time.Second),
			ACL: []config.ACLRule{{Devices: []string{"pos-*"}}}},
		{ID: "sync", Kind: config.KindOneshot, Command: write("o.sh", "echo \"synced $1\"\nexit 3\n"),
			ArgPatterns: []string{`[0-9]{1,4}`}, ACL: []config.ACLRule{{Devices: []string{"pos-*"}}}},
	}
	var ctl *control.Controller
	n := servertest.Start(t, cfg, func(s *server.Server) {
		var err error
		ctl, err = control.Open(control.Options{Config: cfg, Audit: s.Store(), Bus: s.Bus, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Handle(protocol.TypeControl, ctl.Route())
		ctl.Start()
		closeAtEnd(t, ctl.Close)
	})
	return (&env{}).serveAdmin(t, n.Server, admin.Options{Bus: n.Bus, Services: ctl}), n.Addr
}

func TestControlServicesAudit(t *testing.T) {
	e, tgp := serviceEnv(t)
	term := []string{"control", "--addr-tgp", tgp, "--secret", servertest.FleetSecret, "--device", "pos-1"}

	out := e.mustRun(t, append(term, "sync", "start", "0042")...)
	for _, want := range []string{"state: failed\n", "exit_code: 3\n", "output:\nsynced 0042\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("control sync start lacks %q:\n%s", want, out)
		}
	}
	out = e.mustRun(t, append(term, "spooler", "start")...)
	if !strings.Contains(out, "state: running\n") {
		t.Errorf("control spooler start:\n%s", out)
	}
	_, _, err := e.run(nil, append(term, "sync", "start", "1; reboot")...)
	if err == nil || !strings.Contains(err.Error(), "BAD_REQUEST") {
		t.Errorf("bad arg: %v", err)
	}
	_, _, err = e.run(nil, "control", "--addr-tgp", tgp, "--secret", servertest.FleetSecret, "--device", "kiosk-1", "spooler", "stop")
	if err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Errorf("kiosk: %v", err)
	}
	if _, _, err = e.run(nil, append(term, "spooler", "reboot")...); err == nil {
		t.Error("unknown op accepted")
	}

	out = e.mustRun(t, "services")
	if !strings.Contains(out, "spooler  daemon   running") || !strings.Contains(out, "sync     oneshot  failed") {
		t.Errorf("services:\n%s", out)
	}
	out = e.mustRun(t, "service", "stop", "spooler")
	if !strings.Contains(out, "state:") || !strings.Contains(out, "stopped") {
		t.Errorf("service stop:\n%s", out)
	}
	if _, _, err := e.run(nil, "service", "start", "nope"); !isCode(err, "not_found") {
		t.Errorf("unknown service: %v", err)
	}
	out = e.mustRun(t, "audit")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{
		{"SEQ", "RESULT"},
		{"operator", "nope", "NOT_FOUND"},
		{"operator", "spooler", "stop", "OK", "stopped"},
		{"kiosk-1", "FORBIDDEN"},
		{"pos-1", "<1 args sha256:", "BAD_REQUEST"}, // a refusal keeps no args
		{"pos-1", "spooler", "start", "OK", "running"},
		{"pos-1", "spooler", "start", "started; outcome pending", "running"},
		{"pos-1", "sync", "0042", "OK", "failed", " 3 "},
		{"pos-1", "sync", "0042", "started; outcome pending", "running"},
	}
	if len(lines) != len(want) {
		t.Fatalf("audit has %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, ws := range want {
		for _, w := range ws {
			if !strings.Contains(lines[i], w) {
				t.Errorf("audit line %d lacks %q: %s", i, w, lines[i])
			}
		}
	}
	out = e.mustRun(t, "audit", "--device", "kiosk-1")
	if !strings.Contains(out, "FORBIDDEN") || strings.Count(out, "\n") != 2 {
		t.Errorf("audit --device:\n%s", out)
	}
}
