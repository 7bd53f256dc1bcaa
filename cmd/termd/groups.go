package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/storage"
)

// groupsStopLimit bounds stopping the groups feature's background work.
const groupsStopLimit = 5 * time.Second

// groupKeysFile is where the grant signing keys live, under storage.dir.
const groupKeysFile = "group-keys.json"

// startGroups opens device groups (docs/groups.md) and installs their
// routes; stop ends its background work.
func startGroups(ctx context.Context, cfg config.Config, store storage.Groups, srv *server.Server, log *slog.Logger) (g *groups.Service, stop func(), err error) {
	g, err = groups.Open(ctx, groups.Options{
		Store: store, Server: srv, KeyFile: filepath.Join(cfg.Storage.Dir, groupKeysFile), Log: log,
		SendSizeLimit: cfg.Groups.SendSizeLimit, SendRate: cfg.Groups.SendRate, SendBurst: cfg.Groups.SendBurst,
		SyncRate: cfg.Groups.SyncRate, KeyRotation: cfg.Groups.KeyRotation.Duration,
	})
	if err != nil {
		return nil, nil, err
	}
	g.Routes(srv)
	g.Start()
	return g, func() {
		sctx, cancel := context.WithTimeout(context.Background(), groupsStopLimit)
		defer cancel()
		if err := g.Close(sctx); err != nil {
			log.Warn("groups shutdown", "err", err)
		}
	}, nil
}
