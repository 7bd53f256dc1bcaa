package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/download"
	"github.com/termd/termd/storage"
)

// devDownloadListen is the download listener of -dev when the config
// sets none (examples/dev.toml sets the same).
const devDownloadListen = "127.0.0.1:7081"

// devDownload gives -dev its download listener.
func devDownload(cfg *config.Config) {
	if cfg.Download.Listen == "" {
		cfg.Download.Listen = devDownloadListen
	}
}

// downloadNode is the artifact store and the download listener serving
// it (when [download] listen is set).
type downloadNode struct {
	*download.Server
	Artifacts *storage.Artifacts
	done      chan struct{}
}

// startDownload opens the artifact store under the data dir (guarded by
// the disk reserve) and the download node, and serves the listener until
// ctx ends. The store exists without a listener too, so operators can
// upload before terminals are pointed at a node.
func startDownload(ctx context.Context, cfg config.Config, space *storage.SpaceGuard, log *slog.Logger) (*downloadNode, error) {
	arts, err := storage.OpenArtifacts(cfg.Storage.Dir, space)
	if err != nil {
		return nil, err
	}
	srv, err := download.Open(download.Options{
		Config: cfg.Download, DataDir: cfg.Storage.Dir, Artifacts: arts, Space: space, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("download node: %w", err)
	}
	d := &downloadNode{Server: srv, Artifacts: arts, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		if err := srv.Serve(ctx); err != nil {
			log.Error("download listener failed; terminals cannot download from this node", "err", err)
		}
	}()
	return d, nil
}

// wait returns once the listener has stopped (after ctx ended).
func (d *downloadNode) wait() { <-d.done }
