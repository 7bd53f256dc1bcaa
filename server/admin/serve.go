package admin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the admin listener.
const (
	// readHeaderTimeout bounds a request's header: a slow or idle client
	// cannot hold a connection open before saying anything.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections idle this long.
	idleTimeout = 2 * time.Minute
	// shutdownTimeout is how long a stopping listener waits for requests
	// in flight (a backup, say) before closing their connections.
	shutdownTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request's header block.
	maxHeaderBytes = 64 << 10
)

// streamStopKey is the context key of the channel that Serve closes when
// it starts to shut down.
type streamStopKey struct{}

// streamStop returns a channel closed when the listener serving the
// request begins to stop; nil (never ready) outside Serve. Event streams
// never end on their own, so they watch it: http.Server.Shutdown would
// otherwise wait on them for its whole timeout.
func streamStop(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(streamStopKey{}).(chan struct{})
	return c
}

// Serve listens on addr and serves h until ctx ends, then shuts down
// gracefully: event streams end at once, other requests get up to
// shutdownTimeout to finish. It returns the bound address (useful with
// port 0) and a channel that receives the listener's final error (nil
// after a clean stop) and is then closed.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (net.Addr, <-chan error, error) {
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := make(chan struct{})
	base := context.WithValue(context.Background(), streamStopKey{}, stop)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		select {
		case err := <-served: // the listener failed on its own
			errc <- err
			return
		case <-ctx.Done():
		}
		close(stop)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("admin API: requests still running at shutdown were cut off", "err", err)
			_ = srv.Close()
		}
		err := <-served
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	log.Info("admin API listening", "addr", ln.Addr().String())
	return ln.Addr(), errc, nil
}
