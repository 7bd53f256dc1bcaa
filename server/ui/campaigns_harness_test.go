package ui

// The harness of the campaign and group pages' unit tests: startConsole's
// node and console, with release management, upgrade scheduling (two
// clusters) and device groups wired as cmd/termd wires them.

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/server/schedule"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// schedConsole is a console over a node with scheduling and groups.
type schedConsole struct {
	*testConsole
	up  *upgrade.Service
	sc  *schedule.Service
	grp *groups.Service
}

// twoClusters: Frankfurt (fra-1, 40 a slot; fra-2, 20) and Warsaw
// (waw-1, 30), 15-minute slots.
func twoClusters(c *config.Config) {
	c.Schedule.SlotLength = config.D(15 * time.Minute)
	c.Schedule.Clusters = []config.Cluster{{ID: "fra", Region: "eu-central", Lat: 50.11, Lon: 8.68}, {ID: "waw", Lat: 52.23, Lon: 21.01}}
	c.Schedule.Nodes = []config.Node{
		{ID: "fra-1", Cluster: "fra", URL: "https://fra-1.dl.example", Secret: "fra-1-secret-0123456789", Capacity: 40},
		{ID: "fra-2", Cluster: "fra", URL: "https://fra-2.dl.example", Secret: "fra-2-secret-0123456789", Capacity: 20},
		{ID: "waw-1", Cluster: "waw", URL: "https://waw-1.dl.example", Secret: "waw-1-secret-0123456789", Capacity: 30},
	}
}

// startSchedConsole runs such a console on store (nil: in memory).
func startSchedConsole(t testing.TB, store *storage.Badger) *schedConsole {
	t.Helper()
	if store == nil {
		var err error
		if store, err = storage.OpenBadger("", storage.BadgerOptions{InMemory: true, Logger: quietLog}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
	}
	cfg := servertest.Config(t)
	twoClusters(&cfg)
	cfg.Upgrade.NoticeSpread = config.D(0)
	sc := &schedConsole{}
	log := slog.New(slog.DiscardHandler)
	setup := func(s *server.Server) {
		var err error
		if sc.grp, err = groups.Open(context.Background(), groups.Options{Store: store, Server: s, KeyFile: t.TempDir() + "/keys.json", Log: log}); err != nil {
			t.Fatal(err)
		}
		sc.grp.Routes(s)
		sc.grp.Start()
		if sc.up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: store, Server: s, Groups: sc.grp, Log: log}); err != nil {
			t.Fatal(err)
		}
		sc.up.Routes(s)
		sc.up.Start()
		if sc.sc, err = schedule.Open(schedule.Options{Config: cfg, Store: store, Server: s, Releases: sc.up,
			DownloadSecret: []byte("local-secret-0123456789"), Log: log}); err != nil {
			t.Fatal(err)
		}
		sc.sc.Routes(s)
		sc.sc.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = sc.sc.Close(ctx)
			_ = sc.up.Close(ctx)
			_ = sc.grp.Close(ctx)
		})
	}
	sc.testConsole = startConsoleWith(t, cfg, store, setup, func(o *admin.Options) {
		o.Releases, o.Schedule, o.Groups = sc.up, sc.sc, sc.grp
	})
	return sc
}

// release creates and publishes a release of app pos at version for
// models (an external URL: no artifact store here).
func (sc *schedConsole) release(t testing.TB, version string, models ...string) api.Release {
	t.Helper()
	rel, err := sc.up.CreateRelease(context.Background(), api.ReleaseCreate{AppID: "pos", Version: version, Models: models,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 1 << 20, URL: "https://origin.example/pos.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if rel, err = sc.up.Publish(context.Background(), rel.ID); err != nil {
		t.Fatal(err)
	}
	return rel
}

// startConsoleWith is startConsole with a config and a setup of the
// node's features (startConsole's node has none of them).
func startConsoleWith(t testing.TB, cfg config.Config, store *storage.Badger, setup func(*server.Server), mod func(*admin.Options)) *testConsole {
	t.Helper()
	node := servertest.StartStore(t, cfg, store, setup)
	opt := admin.Options{Bus: node.Bus, EventBuffer: cfg.Admin.EventBuffer, Outbox: store}
	mod(&opt)
	return serveConsole(t, node, opt)
}

// newMemBadger is an in-memory Badger store for the test.
func newMemBadger(t testing.TB) *storage.Badger {
	t.Helper()
	b, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
