package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// historySaveInterval is how often the online history's snapshot is
// saved: a kill -9 loses at most the hours first marked in the last one.
const historySaveInterval = 10 * time.Minute

// historySaveLimit bounds the save at shutdown.
const historySaveLimit = 10 * time.Second

// openHistory returns the per-device hourly online history loaded from
// the store's last snapshot (a corrupt or unreadable one is logged and
// what loads is kept: the history helps planning, it is not a record).
func openHistory(ctx context.Context, st storage.OnlineHistoryStore, log *slog.Logger) *history.History {
	h := history.New(history.Options{})
	start := time.Now()
	if err := h.Load(ctx, st); err != nil {
		log.Warn("online history snapshot not fully loaded", "err", err)
	}
	log.Info("online history loaded", "devices", h.Len(), "took", time.Since(start).Round(time.Millisecond))
	return h
}

// startHistorySaves saves the history every historySaveInterval until
// ctx ends or stop is called. stop ends that loop and saves once more:
// call it after the engine stopped, so every session's end is in it.
func startHistorySaves(ctx context.Context, h *history.History, st storage.OnlineHistoryStore, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.Run(ctx, st, historySaveInterval, log) }()
	return func() {
		cancel()
		wg.Wait()
		sctx, cancel := context.WithTimeout(context.Background(), historySaveLimit)
		defer cancel()
		if err := h.Save(sctx, st); err != nil {
			log.Warn("online history not saved at shutdown", "err", err)
		}
	}
}
