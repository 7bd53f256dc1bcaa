package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/schedule"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// scheduleStopLimit bounds committing the queued placements at shutdown.
const scheduleStopLimit = 10 * time.Second

// startSchedule opens upgrade scheduling on top of release management
// and termd's own download node, installs its routes and starts it.
func startSchedule(cfg config.Config, store storage.Schedules, srv *server.Server, up *upgrade.Service, dl *downloadNode, log *slog.Logger) (*schedule.Service, func(), error) {
	opt := schedule.Options{Config: cfg, Store: store, Server: srv, Releases: up, Bus: srv.Bus, Log: log}
	if dl.Server != nil {
		opt.Downloads, opt.LocalURL, opt.DownloadSecret = dl.Server, dl.Base(), dl.TokenSecret()
	}
	sc, err := schedule.Open(opt)
	if err != nil {
		return nil, nil, err
	}
	sc.Routes(srv)
	sc.Start()
	return sc, func() {
		ctx, cancel := context.WithTimeout(context.Background(), scheduleStopLimit)
		defer cancel()
		if err := sc.Close(ctx); err != nil {
			log.Warn("schedule shutdown", "err", err)
		}
	}, nil
}
