package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// upgradeStopLimit bounds committing the queued upgrade reports at shutdown.
const upgradeStopLimit = 15 * time.Second

// startUpgrade opens release management, installs its routes and starts
// it; stop commits what is queued. Without the notify and download
// branches' pieces it runs with no notifier (failures are stored and
// shown, not sent) and no artifact store (releases use external URLs).
func startUpgrade(cfg config.Config, store storage.Upgrades, srv *server.Server, log *slog.Logger) (up *upgrade.Service, stop func(), err error) {
	up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: store, Server: srv, Bus: srv.Bus, Log: log})
	if err != nil {
		return nil, nil, err
	}
	up.Routes(srv)
	up.Start()
	return up, func() {
		ctx, cancel := context.WithTimeout(context.Background(), upgradeStopLimit)
		defer cancel()
		if err := up.Close(ctx); err != nil {
			log.Warn("upgrade shutdown", "err", err)
		}
	}, nil
}
