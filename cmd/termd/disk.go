package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// spaceCheckInterval is how often free disk space is read when nothing
// writes (writes read it themselves, at most every 100 ms).
const spaceCheckInterval = time.Second

const mib = 1 << 20

// guardedStore is the node's store with its disk-space guard.
type guardedStore struct {
	*storage.Badger
	space *storage.SpaceGuard
	bus   atomic.Pointer[events.Bus] // set once the server exists
	stop  chan struct{}
}

// openGuardedStore opens the store with writes refused below
// storage.min_free_mb. On a disk already below it, the ballast is
// released first so that Badger can open (replaying its log touches a few
// pages, and a memory-mapped write with no free block is SIGBUS) and the
// node serves terminals with durable writes refused until space is freed.
func openGuardedStore(cfg config.Config, log *slog.Logger) (*guardedStore, error) {
	dir := cfg.Storage.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	minFree := uint64(cfg.Storage.MinFreeMB) * mib
	ballast := uint64(cfg.Storage.BallastMB) * mib
	if free, err := storage.FreeBytes(dir); err == nil && free < minFree {
		n, rerr := storage.ReleaseBallast(dir)
		log.Warn("disk space below storage.min_free_mb at start: durable writes are refused until space is freed",
			"free_mib", free/mib, "min_free_mib", cfg.Storage.MinFreeMB, "ballast_released_mib", n/mib, "err", rerr)
	}
	g := &guardedStore{stop: make(chan struct{})}
	space, err := storage.NewSpaceGuard(dir, minFree, func(low bool, free uint64) {
		state := "writable"
		if low {
			state = "writes_refused"
			log.Error("disk space below storage.min_free_mb: durable writes refused (terminals get UNAVAILABLE, operators 503)",
				"dir", dir, "free_mib", free/mib, "min_free_mib", cfg.Storage.MinFreeMB)
		} else {
			log.Info("disk space back above the reserve: durable writes accepted again", "free_mib", free/mib)
		}
		if b := g.bus.Load(); b != nil {
			b.Publish(events.Event{Kind: events.KindStorage, At: time.Now().UnixMilli(), State: state})
		}
	})
	if err != nil {
		return nil, err
	}
	g.space = space
	g.Badger, err = storage.OpenBadger(filepath.Join(dir, dbDir), storage.BadgerOptions{
		SyncWrites: cfg.Storage.SyncWrites,
		Logger:     log,
		GCInterval: cfg.Storage.GCInterval.Duration,
		Space:      space,
	})
	if err != nil {
		return nil, err
	}
	if space.Writable() == nil && ballast > 0 {
		if err := storage.EnsureBallast(dir, ballast); err != nil {
			log.Warn("could not allocate the ballast file", "mib", cfg.Storage.BallastMB, "err", err)
		}
	}
	go space.Run(g.stop, spaceCheckInterval, ballast)
	return g, nil
}

// Close stops the guard, then closes the store.
func (g *guardedStore) Close() error {
	close(g.stop)
	return g.Badger.Close()
}

// metrics is the store's metric set: Badger's sizes and the disk guard.
func (g *guardedStore) metrics() *metrics.Set {
	set := metrics.NewSet()
	set.NewGauge("termd_badger_lsm_bytes", func() float64 { l, _ := g.Sizes(); return float64(l) })
	set.NewGauge("termd_badger_vlog_bytes", func() float64 { _, v := g.Sizes(); return float64(v) })
	set.NewGauge("termd_storage_free_bytes", func() float64 { return float64(g.space.Free()) })
	set.NewGauge("termd_storage_min_free_bytes", func() float64 { return float64(g.space.MinFree()) })
	set.NewGauge("termd_storage_writable", func() float64 {
		if g.space.Writable() != nil {
			return 0
		}
		return 1
	})
	set.NewGauge("termd_storage_writes_refused_total", func() float64 { return float64(g.space.Refused()) })
	return set
}
