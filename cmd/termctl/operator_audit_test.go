package main

import (
	"strings"
	"testing"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// TestOperatorAuditCommand: termctl's own state-changing requests show
// up in `termctl audit operator`, with their filters.
func TestOperatorAuditCommand(t *testing.T) {
	e := &env{node: newFakeNode(), bus: events.NewBus()}
	e.serveAdmin(t, e.node, admin.Options{Bus: e.bus, OperatorAudit: storage.NewMemory()})
	e.mustRun(t, "block", "pos-1")
	e.mustRun(t, "unblock", "pos-2")
	_, _, _ = e.run(nil, "disconnect", "pos-9") // not online: 404

	out := e.mustRun(t, "audit", "operator")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("audit operator:\n%s", out)
	}
	for i, want := range []string{"POST /v1/devices/pos-9/disconnect", "POST /v1/devices/pos-2/unblock", "POST /v1/devices/pos-1/block"} {
		if !strings.Contains(lines[i+1], want) || !strings.Contains(lines[i+1], "admin") {
			t.Errorf("line %d %q lacks %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[1], "404 (device is not online)") || !strings.Contains(lines[3], "204") {
		t.Errorf("statuses:\n%s", out)
	}
	out = e.mustRun(t, "audit", "operator", "--target", "pos-1")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "pos-1/block") {
		t.Errorf("--target pos-1:\n%s", out)
	}
	out = e.mustRun(t, "audit", "operator", "--result", "failed", "--limit", "5")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "pos-9") {
		t.Errorf("--result failed:\n%s", out)
	}
	if _, _, err := e.run(nil, "audit", "operator", "--result", "meh"); err == nil {
		t.Error("--result meh was accepted")
	}
	// The query itself was not recorded (a GET).
	if out := e.mustRun(t, "audit", "operator", "--json"); strings.Count(out, `"seq"`) != 3 {
		t.Errorf("--json: %s", out)
	}
}
