// Command termd is the terminal fleet server: it keeps terminals connected
// over TGP/1, tracks their presence in memory and in an embedded Badger
// store, and serves the operator API.
//
//	termd -dev                 # local development: 127.0.0.1, ./var, generated secrets
//	termd -config termd.toml   # production
//	termd -print-config        # the full default configuration (secrets redacted)
//	termd -hash-token < tok    # the sha256 of a token for [[admin.tokens]]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/gctune"
	"github.com/termd/termd/server/ui"
	"github.com/termd/termd/storage"
)

// Dev-mode files under the data dir; termctl reads them too.
const (
	secretFile = "fleet-secret"
	tokenFile  = "admin-token"
	dbDir      = "db"
	// controlStopLimit bounds stopping the services at shutdown (each
	// daemon's stop_grace runs in parallel; this is the ceiling).
	controlStopLimit = 2 * time.Minute
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "termd:", err)
		os.Exit(1)
	}
}

type flags struct {
	config, data, listen, admin, restore string
	dev, printConfig, hashToken          bool
}

// Dev-mode listen addresses: loopback only, unless the config file or a
// flag says otherwise.
const (
	devListen      = "127.0.0.1:7000"
	devAdminListen = "127.0.0.1:7080"
)

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	return runWith(args, getenv, os.Stdin, stdout)
}

func runWith(args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	var f flags
	fs := flag.NewFlagSet("termd", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "TOML config file")
	fs.BoolVar(&f.dev, "dev", false, "development mode: loopback addresses, data in ./var, generated fleet secret and admin token")
	fs.StringVar(&f.data, "data", "", "data directory (overrides storage.dir)")
	fs.StringVar(&f.listen, "listen", "", "TGP listen address (overrides server.listen)")
	fs.StringVar(&f.admin, "admin", "", "admin HTTP address (overrides admin.listen)")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration (defaults if no -config) and exit")
	fs.StringVar(&f.restore, "restore", "", "load a backup made by `termctl backup` into an empty data dir, then exit")
	fs.BoolVar(&f.hashToken, "hash-token", false, "read a token on stdin, print its sha256 for [[admin.tokens]], and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h asked for the usage, which the flag set printed
		}
		return err
	}
	if f.hashToken {
		return hashToken(stdin, stdout)
	}

	cfg, err := loadConfig(f, getenv)
	if err != nil {
		return err
	}
	if f.printConfig {
		b, err := cfg.Redact().Marshal()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	log := newLogger(cfg.Log)
	if _, set := os.LookupEnv("GOGC"); !set && cfg.Server.GCPercent > 0 {
		debug.SetGCPercent(cfg.Server.GCPercent)
	}
	// The data dir's lock comes before any banner: a second termd on the
	// same dir says so and nothing else.
	unlock, err := lockDataDir(cfg.Storage.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	if f.restore != "" {
		return restore(cfg, f.restore, log)
	}
	if f.dev {
		if err := devSecrets(&cfg, stdout); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration: " + w)
	}
	return serve(cfg, log)
}

// loadConfig builds the configuration: defaults (loopback addresses under
// -dev), the file's keys over them, the environment, then the flags.
func loadConfig(f flags, getenv func(string) string) (config.Config, error) {
	cfg := config.Defaults()
	if f.dev {
		cfg.Server.Listen = devListen
		cfg.Admin.Listen = devAdminListen
		devDownload(&cfg)
	}
	if f.config != "" {
		var err error
		if cfg, err = config.LoadOnto(cfg, f.config); err != nil {
			return cfg, err
		}
	}
	cfg.ApplyEnv(getenv)
	if f.data != "" {
		cfg.Storage.Dir = f.data
	}
	if f.listen != "" {
		cfg.Server.Listen = f.listen
	}
	if f.admin != "" {
		cfg.Admin.Listen = f.admin
	}
	return cfg, nil
}

// devSecrets loads, or creates on first start, the dev fleet secret and
// admin token under the data dir, and prints them.
func devSecrets(cfg *config.Config, out io.Writer) error {
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return err
	}
	load := func(name string, cur *string) (string, error) {
		path := filepath.Join(cfg.Storage.Dir, name)
		if *cur != "" {
			return path + " (not used: set by config or environment)", nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			var raw [24]byte
			_, _ = rand.Read(raw[:])
			b = []byte(hex.EncodeToString(raw[:]))
			if err = os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
				return "", err
			}
		} else if err != nil {
			return "", err
		}
		*cur = strings.TrimSpace(string(b))
		return path, nil
	}
	sp, err := load(secretFile, &cfg.Auth.FleetSecret)
	if err != nil {
		return err
	}
	tp, err := load(tokenFile, &cfg.Admin.Token)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "termd dev mode\n  fleet secret: %s   (%s)\n  admin token:  %s   (%s)\n  TGP:   %s\n  admin: http://%s\n  console: http://%s%s   (sign in with the admin token above)\n",
		cfg.Auth.FleetSecret, sp, cfg.Admin.Token, tp, cfg.Server.Listen, cfg.Admin.Listen, cfg.Admin.Listen, ui.Prefix)
	return nil
}

// hashToken prints the hex SHA-256 of the token on in's first line, for
// an [[admin.tokens]] sha256. The token comes on stdin, never as an
// argument, so it stays out of shell history and ps.
func hashToken(in io.Reader, out io.Writer) error {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return errors.New("-hash-token: no token on stdin (e.g. `printf %s \"$TOKEN\" | termd -hash-token`)")
	}
	if len(tok) < minTokenLen {
		return fmt.Errorf("-hash-token: the token is %d bytes; use at least %d (e.g. `openssl rand -hex 24`)", len(tok), minTokenLen)
	}
	sum := sha256.Sum256([]byte(tok))
	_, err = fmt.Fprintln(out, hex.EncodeToString(sum[:]))
	return err
}

// warnExposedAdmin warns when the admin API is reachable from other
// hosts: termd serves it without TLS.
func warnExposedAdmin(log *slog.Logger, addr string) {
	if !config.IsLoopback(addr) {
		log.Warn("the admin API listens on a non-loopback address without TLS: bearer tokens and backups cross the network in clear; bind it to loopback or put a TLS proxy in front",
			"admin.listen", addr)
	}
}

// minTokenLen is the shortest token -hash-token accepts, in bytes: a
// token is a bearer credential, so it must resist guessing.
const minTokenLen = 16

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func openStore(cfg config.Config, log *slog.Logger) (*storage.Badger, error) {
	return storage.OpenBadger(filepath.Join(cfg.Storage.Dir, dbDir), storage.BadgerOptions{
		SyncWrites: cfg.Storage.SyncWrites,
		Logger:     log,
		GCInterval: cfg.Storage.GCInterval.Duration,
	})
}

// startGCTuner runs the GC percentage tuner (server/gctune) until ctx
// ends, unless the GOGC environment variable fixes the percentage.
func startGCTuner(ctx context.Context, cfg config.Config, srv *server.Server) *metrics.Set {
	if _, set := os.LookupEnv("GOGC"); set || cfg.Server.GCPercent <= 0 {
		return metrics.NewSet()
	}
	t := gctune.New(gctune.Config{Base: cfg.Server.GCPercent, Max: cfg.Server.GCPercentMax,
		Sessions: func() int64 { return srv.Stats().Sessions }})
	go t.Run(ctx)
	return t.Metrics()
}

func serve(cfg config.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := openGuardedStore(cfg, log)
	if err != nil {
		return fmt.Errorf("open store under %s: %w", cfg.Storage.Dir, err)
	}
	// Badger is closed only after the engine has stopped and presence is
	// flushed: gnet's OnShutdown runs before connections close.
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	hist := openHistory(ctx, store, log)
	srv, err := server.Open(ctx, cfg, server.Options{Logger: log, Store: store, History: hist})
	if err != nil {
		return err
	}
	stopHistory := startHistorySaves(ctx, hist, store, log)
	defer stopHistory() // after the engine stopped, before the store closes
	store.bus.Store(srv.Bus)
	// Device groups first: service ACLs and release targeting name them.
	grp, stopGroups, err := startGroups(ctx, cfg, store, srv, log)
	if err != nil {
		return err
	}
	defer stopGroups()
	// Service control: the supervisor re-adopts (or stops) daemons an
	// earlier run left, before terminals can ask for anything.
	ctl, err := control.Open(control.Options{Config: cfg, Audit: store, Bus: srv.Bus, Groups: grp, Log: log})
	if err != nil {
		return err
	}
	srv.Handle(protocol.TypeControl, ctl.Route())
	ctl.Start()
	defer func() {
		// After the engine stopped: daemons are stopped (or left) as
		// configured, and the answers still owed are audited before the
		// store closes.
		sctx, cancel := context.WithTimeout(context.Background(), controlStopLimit)
		defer cancel()
		if err := ctl.Close(sctx); err != nil {
			log.Warn("service control shutdown", "err", err)
		}
	}()
	dl, err := startDownload(ctx, cfg, store.space, log)
	if err != nil {
		return err
	}
	defer dl.wait()
	// Upgrade failure notifications (handed to the upgrade feature).
	ntf, stopNotify, err := startNotify(cfg, store, srv.Bus, log)
	if err != nil {
		return err
	}
	defer stopNotify()
	up, stopUpgrade, err := startUpgrade(cfg, store, srv, ntf, dl, grp, log)
	if err != nil {
		return err
	}
	defer stopUpgrade() // after the engine stopped: no report arrives any more
	sc, stopSchedule, err := startSchedule(cfg, store, srv, up, dl, log)
	if err != nil {
		return err
	}
	defer stopSchedule() // before stopUpgrade (deferred earlier, runs later)
	sc.SetHistory(hist)  // the planner weighs slots by who was online then
	grp.SetReferences(func(g string) []string {
		return append(append(ctl.GroupReferences(g), up.GroupReferences(g)...), sc.GroupReferences(g)...)
	})
	storeMetrics := store.metrics()
	gcMetrics := startGCTuner(ctx, cfg, srv)
	tokens, err := admin.TokensFromConfig(cfg.Admin)
	if err != nil {
		return err
	}
	trend := startTrend(ctx, srv.Presence.Online)
	h, stopConsole, err := openConsole(func(con *ui.UI) http.Handler {
		return admin.New(srv, admin.Options{
			Tokens: tokens, OpenProbes: cfg.Admin.OpenProbes, EventBuffer: cfg.Admin.EventBuffer,
			Bus: srv.Bus, Backup: store.Backup, Metrics: []*metrics.Set{srv.Metrics(), ctl.Metrics(), up.Metrics(), grp.Metrics(), storeMetrics, dl.Metrics(), ntf.Metrics(), gcMetrics, sc.Metrics(), con.Metrics()}, Logger: log,
			Services: ctl, Artifacts: dl.Artifacts, ArtifactInUse: up.ArtifactInUse, Outbox: store, Releases: up, Schedule: sc, Groups: grp,
			OnlineHistory: hist, Trend: trend, Versions: store, Cooldowns: srv.Cooldowns, OperatorAudit: store,
			DeviceFilters: store,
		})
	}, log)
	if err != nil {
		return err
	}
	defer stopConsole()
	warnExposedAdmin(log, cfg.Admin.Listen)
	_, adminErr, err := admin.Serve(ctx, cfg.Admin.Listen, h, log)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	log.Info("operator console", "url", "http://"+cfg.Admin.Listen+ui.Prefix)
	maxConns, maxSessions := srv.Limits()
	log.Info("starting", "tgp", cfg.Server.Listen, "data", cfg.Storage.Dir, "max_connections", maxConns, "max_sessions", maxSessions)

	runErr := srv.Run(ctx)
	stop()
	if err := <-adminErr; err != nil {
		log.Warn("admin listener", "err", err)
	}
	log.Info("TGP engine stopped; stopping services, closing the store")
	return runErr
}

// restore loads a backup into an empty data dir.
func restore(cfg config.Config, file string, log *slog.Logger) error {
	dir := filepath.Join(cfg.Storage.Dir, dbDir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("refusing to restore into %s: it is not empty (move it away first)", dir)
	}
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	store, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	if err := store.Restore(in); err != nil {
		store.Close()
		return fmt.Errorf("restore %s: %w", file, err)
	}
	if err := store.Close(); err != nil {
		return err
	}
	log.Info("restored", "from", file, "into", dir)
	return nil
}
