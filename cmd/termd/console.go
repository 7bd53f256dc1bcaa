package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/ui"
)

// consoleStopLimit bounds waiting for the console's live streams at
// shutdown (they end as soon as they notice).
const consoleStopLimit = 5 * time.Second

// openConsole opens the operator console (server/ui) over the admin API
// handler that newAPI returns, and returns the admin listener's handler:
// the console under /ui/, the API everywhere else. newAPI gets the
// console's metric set for /metrics; the console calls the API only
// after both exist, so the late binding is never observed.
func openConsole(newAPI func(consoleMetrics *ui.UI) http.Handler, log *slog.Logger) (http.Handler, func(), error) {
	var apiH http.Handler
	con, err := ui.Open(ui.Options{Logger: log, API: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiH.ServeHTTP(w, r)
	})})
	if err != nil {
		return nil, nil, err
	}
	apiH = newAPI(con)
	mux := http.NewServeMux()
	mux.Handle(ui.Prefix, con)
	mux.Handle("/ui", http.RedirectHandler(ui.Prefix, http.StatusMovedPermanently))
	mux.Handle("/", apiH)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), consoleStopLimit)
		defer cancel()
		if err := con.Close(ctx); err != nil {
			log.Warn("console streams still open at shutdown", "err", err)
		}
	}
	return mux, stop, nil
}

// startTrend samples the online count once a minute for the console's
// 24 h trend (GET /v1/stats/online-trend) until ctx ends.
func startTrend(ctx context.Context, online func() int) *presence.Trend {
	t := presence.NewTrend()
	go t.Run(ctx, presence.TrendInterval, online)
	return t
}
