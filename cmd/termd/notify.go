package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/notify"
)

// notifyStopLimit bounds how long shutdown waits for notification
// attempts in flight; what is not delivered stays pending in the outbox.
const notifyStopLimit = 5 * time.Second

// startNotify opens the notification outbox's delivery loops over store
// and starts them: deliveries left pending by an earlier run (a crash,
// kill -9) go out first. The Notifier is what the upgrade feature
// enqueues failures into; stop closes it (before the store closes).
func startNotify(cfg config.Config, store *guardedStore, bus *events.Bus, log *slog.Logger) (n *notify.Notifier, stop func(), err error) {
	n, err = notify.Open(notify.Options{Config: cfg.Notify, Store: store, Bus: bus, Log: log})
	if err != nil {
		return nil, nil, err
	}
	n.Start()
	if chs := n.Channels(); len(chs) > 0 {
		log.Info("notifications", "channels", chs, "digest_window", cfg.Notify.DigestWindow.Duration)
	}
	return n, func() {
		ctx, cancel := context.WithTimeout(context.Background(), notifyStopLimit)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			log.Warn("notifications shutdown", "err", err)
		}
	}, nil
}
