package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

func TestOutboxCommand(t *testing.T) {
	store := storage.NewMemory()
	ctx := context.Background()
	for i := range 3 {
		e := storage.OutboxEntry{ID: fmt.Sprintf("report/r1/POS-%d/1/7", i), Group: "r1", Kind: "upgrade_failed", At: 1700000000000,
			Channels: []string{"smtp", "webhook:ops"}, Payload: []byte(`{}`)}
		if _, err := store.EnqueueOutbox(ctx, e, 1700000060000); err != nil {
			t.Fatal(err)
		}
	}
	c, _, _ := store.ClaimOutbox(ctx, "webhook:ops", 1700000060000, 0)
	if _, err := store.SettleOutbox(ctx, "webhook:ops", c.Batch, storage.OutboxResult{At: 1700000070000, Error: "webhook answered 500", NextAt: 1700000090000}); err != nil {
		t.Fatal(err)
	}
	e := (&env{}).serveAdmin(t, newFakeNode(), admin.Options{Outbox: store})

	out, stderr, err := e.run(nil, "outbox")
	if err != nil {
		t.Fatal(err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "CHANNEL") {
		t.Fatalf("outbox table:\n%s", out)
	}
	if !strings.Contains(out, "webhook answered 500") || !strings.Contains(out, c.Batch) || !strings.Contains(stderr, "webhook:ops: 3 pending, 0 failed") {
		t.Fatalf("outbox table lacks the failed attempt:\n%s\n%s", out, stderr)
	}
	if out := e.mustRun(t, "outbox", "--failed"); strings.Count(out, "\n") != 1 {
		t.Fatalf("--failed with nothing given up:\n%s", out)
	}
	var page api.OutboxList
	if err := json.Unmarshal([]byte(e.mustRun(t, "outbox", "--json", "--channel", "smtp")), &page); err != nil || len(page.Deliveries) != 3 || page.Deliveries[0].Channel != "smtp" {
		t.Fatalf("--json --channel smtp: %+v, %v", page, err)
	}
	if _, _, err := e.run(nil, "outbox", "--failed", "--pending"); err == nil {
		t.Fatal("--failed --pending accepted")
	}
}

func TestWatchPrintsFailureDigest(t *testing.T) {
	e := newEnv(t)
	var out syncBuffer
	stop := e.startWatch(t, &out)
	e.bus.Publish(events.Event{Kind: events.KindUpgradeFailure, At: 1700000000000,
		Digest: &events.FailureDigest{ID: "d1", ReleaseID: "rel-1", AppID: "pos", Version: "2.0", Failures: 5000, Devices: 4990}})
	waitFor(t, "the digest line", func() bool { return strings.Count(out.String(), "\n") >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := "2023-11-14 22:13:20.000  upgrade_failure  rel-1  app=pos version=2.0 failures=5000 devices=4990 delivery=d1\n"
	if out.String() != want {
		t.Fatalf("watch printed %q, want %q", out.String(), want)
	}
}
