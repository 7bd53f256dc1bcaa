package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// upgradeStopLimit bounds committing the queued upgrade reports at shutdown.
const upgradeStopLimit = 15 * time.Second

// startUpgrade opens release management, installs its routes and starts
// it; stop commits what is queued. Failures go to the notifier's outbox;
// releases of uploaded artifacts are served by the download node.
func startUpgrade(cfg config.Config, store storage.Upgrades, srv *server.Server, ntf *notify.Notifier, dl *downloadNode, grp upgrade.GroupDirectory, log *slog.Logger) (up *upgrade.Service, stop func(), err error) {
	opt := upgrade.Options{Config: cfg, Store: store, Server: srv, Notifier: ntf, Bus: srv.Bus, Groups: grp, Log: log}
	if dl.Server != nil {
		opt.Artifacts = dl.Server
	}
	up, err = upgrade.Open(opt)
	if err != nil {
		return nil, nil, err
	}
	up.Routes(srv)
	if dl.Server != nil {
		// Tokens of a cancelled release's artifact are refused (410).
		dl.SetRevoked(up.Revoked)
	}
	up.Start()
	return up, func() {
		ctx, cancel := context.WithTimeout(context.Background(), upgradeStopLimit)
		defer cancel()
		if err := up.Close(ctx); err != nil {
			log.Warn("upgrade shutdown", "err", err)
		}
	}, nil
}
