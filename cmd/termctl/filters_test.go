package main

import (
	"strings"
	"testing"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// TestFiltersCommand: save, list, replace and delete saved device
// searches, and run one with devices --filter (with --where over it).
func TestFiltersCommand(t *testing.T) {
	store, err := storage.OpenBadger(t.TempDir(), storage.BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &env{node: newFakeNode(), bus: events.NewBus()}
	e.addDevices()
	e.serveAdmin(t, e.node, admin.Options{Bus: e.bus, DeviceFilters: store})

	out := e.mustRun(t, "filters", "save", "P400 blocked", "model=P400&blocked=true")
	if !strings.Contains(out, "blocked=true&model=P400") {
		t.Fatalf("save printed:\n%s", out)
	}
	e.mustRun(t, "filters", "save", "fw 2.1", "fw=2.1.0")
	out = e.mustRun(t, "filters")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "P400 blocked") ||
		!strings.Contains(lines[2], "fw=2.1.0") || !strings.Contains(lines[2], "admin") {
		t.Fatalf("filters:\n%s", out)
	}

	out = e.mustRun(t, "devices", "--filter", "P400 blocked")
	if !strings.Contains(out, "POS-2") || strings.Contains(out, "POS-1") || strings.Contains(out, "POS-3") {
		t.Fatalf("devices --filter 'P400 blocked':\n%s", out)
	}
	// --where narrows or overrides a saved filter's keys.
	out = e.mustRun(t, "devices", "--filter", "P400 blocked", "--where", "blocked=false")
	if !strings.Contains(out, "POS-1") || strings.Contains(out, "POS-2") {
		t.Fatalf("--where blocked=false over the filter:\n%s", out)
	}
	out = e.mustRun(t, "devices", "--where", "fw=2.0.9", "--json")
	if !strings.Contains(out, `"POS-2"`) || strings.Contains(out, `"POS-1"`) {
		t.Fatalf("--where fw=2.0.9 --json:\n%s", out)
	}

	// Refusals come back with the API's message.
	if _, _, err := e.run(nil, "filters", "save", "typo", "modle=P400"); err == nil || !strings.Contains(err.Error(), "not a device search filter") {
		t.Errorf("a misspelt key: %v", err)
	}
	if _, _, err := e.run(nil, "devices", "--filter", "nope"); err == nil || !strings.Contains(err.Error(), `no saved device filter "nope"`) {
		t.Errorf("an unknown filter: %v", err)
	}

	e.mustRun(t, "filters", "delete", "fw 2.1")
	if out := e.mustRun(t, "filters"); strings.Contains(out, "fw 2.1") || !strings.Contains(out, "P400 blocked") {
		t.Fatalf("after delete:\n%s", out)
	}
	if _, _, err := e.run(nil, "filters", "delete", "fw 2.1"); err == nil {
		t.Error("a second delete succeeded")
	}
}
