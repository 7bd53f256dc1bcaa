// Package server is termd's TGP/1 front end: the gnet event handler that
// frames, authenticates and dispatches terminal traffic, the per-loop
// timer wheel that enforces HELLO and heartbeat deadlines, and the glue
// that hands domain requests to a worker pool and their results back to
// the connection's loop. Domain logic lives in subpackages (presence,
// auth, admin, ...); storage lives in the top-level storage package.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/panjf2000/gnet/v2"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/auth"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// Server is one termd node's TGP front end.
type Server struct {
	gnet.BuiltinEventEngine

	cfg    config.Config
	log    *slog.Logger
	store  storage.Store
	secret []byte

	// Presence tracks which devices are online and their heartbeat flags.
	Presence *presence.Tracker
	// Bus carries every event (presence, services, features) to subscribers.
	Bus *events.Bus

	creds  *auth.Credentials
	nonces *auth.Nonces
	dups   *auth.Replacements
	// sources limits each address's connections in HELLO and HELLO rate;
	// sourceExempt are the CIDRs it does not apply to, proxyFrom the
	// CIDRs allowed to send PROXY headers (empty: any).
	sources      *auth.Sources
	sourceExempt []netip.Prefix
	proxyFrom    []netip.Prefix
	work         *workers
	routes       [64]*Route
	m            *serverMetrics

	eng   gnet.Engine
	loops sync.Map // gnet.EventLoop → *loop

	epoch          uint64 // boot epoch, high 32 bits of every session id
	sessSeq        atomic.Uint32
	startMs        int64 // server start, for the post-restart nonce rule
	nonceWindow    int64 // ms after start during which that rule applies
	tickMs         int64
	seenIntervalMs int64
	hbSecs         uint64 // hb_interval_s announced to terminals

	conns, pending, sessions atomic.Int64
	maxConns, maxSessions    int

	shutting atomic.Bool
	ready    atomic.Bool
	started  chan struct{}

	clock func() time.Time
}

// Options are what Open needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	// Store is the opened store; the server does not close it.
	Store storage.Store
	// Clock overrides time.Now (tests).
	Clock func() time.Time
	// History, if set, is the per-device hourly online history presence
	// marks (server/presence/history); the caller loads and saves it.
	History *history.History
	// HistorySweepInterval is how often the tracker checks for a new hour
	// to mark every online device in; <= 0: presence.DefaultSweepInterval.
	HistorySweepInterval time.Duration
}

// Open prepares a server: it loads the credential index, takes a new boot
// epoch (so session ids keep increasing across restarts) and marks the
// devices a previous run left online as offline with reason `restart` at
// that run's last alive mark.
func Open(ctx context.Context, cfg config.Config, opt Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    opt.Logger,
		store:  opt.Store,
		secret: []byte(cfg.Auth.FleetSecret),
		Bus:    events.NewBus(),
		creds:  auth.NewCredentials(),
		nonces: auth.NewNonces(cfg.Auth.NonceCapacity, cfg.Auth.NonceRetention.Milliseconds()),
		dups: auth.NewReplacements(cfg.Auth.ReplaceLimit, cfg.Auth.ReplaceWindow.Milliseconds(),
			cfg.Auth.DuplicateCooldown.Milliseconds()),
		sources: auth.NewSources(cfg.Server.MaxPendingPerSource, cfg.Server.HelloRatePerSource, cfg.Server.HelloBurstPerSource),
		clock:   opt.Clock,
		tickMs:  max(cfg.Server.TickInterval.Milliseconds(), 1),
		started: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.startMs = s.nowMs()
	s.seenIntervalMs = cfg.Storage.SeenInterval.Milliseconds()
	s.hbSecs = hbSeconds(cfg.Heartbeat.Interval.Duration)
	s.nonceWindow = cfg.Auth.NonceRetention.Milliseconds()
	s.maxConns, s.maxSessions = connectionCaps(cfg.Server)
	s.sourceExempt, _ = config.ParsePrefixes(cfg.Server.SourceLimitExempt) // validated
	s.proxyFrom, _ = config.ParsePrefixes(cfg.Server.ProxyTrusted)

	if err := s.store.Credentials(ctx, func(id string, key []byte, blocked bool) error {
		s.creds.SetKey(id, key)
		s.creds.SetBlocked(id, blocked)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	alive, err := s.store.AliveMark(ctx)
	if err != nil {
		return nil, fmt.Errorf("read alive mark: %w", err)
	}
	if alive == 0 {
		alive = s.startMs
	}
	// On a disk below its reserve the node starts with durable writes
	// refused: the restart marks wait for a start with room (the alive
	// mark is not moved meanwhile, so they keep their time) and the boot
	// epoch is taken without being stored.
	n, err := s.store.MarkOnlineOffline(ctx, presence.ReasonRestart.String(), alive)
	if errors.Is(err, storage.ErrDiskFull) {
		s.log.Warn("disk space low: devices online at the last run stay marked online until a start with room", "err", err)
		n, err = 0, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mark restart: %w", err)
	}
	epoch, err := s.store.NextBootEpoch(ctx)
	if errors.Is(err, storage.ErrDiskFull) {
		s.log.Warn("disk space low: boot epoch not stored", "epoch", epoch)
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("boot epoch: %w", err)
	}
	s.epoch = uint64(epoch) << 32
	if n > 0 {
		s.log.Info("devices online at the last run marked offline", "count", n, "reason", presence.ReasonRestart, "at_ms", alive)
	}

	workers := cfg.Server.Workers
	if workers <= 0 {
		workers = 4 * runtime.NumCPU()
	}
	s.work = newWorkers(workers, max(cfg.Server.WorkQueue, 1), cfg.Server.RouteShare)
	s.m = newServerMetrics(s)
	s.Presence = presence.NewTracker(presence.TrackerOptions{
		Registry: s.store, FlushInterval: cfg.Storage.FlushInterval.Duration,
		Bus: s.Bus, Metrics: s.m.set, Log: s.log,
		History: opt.History, Clock: s.clock, SweepInterval: opt.HistorySweepInterval,
	})
	s.Presence.Restarted(n)
	s.registerDefaultRoutes()
	return s, nil
}

// connectionCaps derives the connection and session caps: by default the
// process's open-file limit minus a reserve, because EMFILE on accept can
// stop the engine.
func connectionCaps(c config.Server) (conns, sessions int) {
	conns = c.MaxConnections
	if conns <= 0 {
		var rl syscall.Rlimit
		limit := 1024
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<31 {
			limit = int(rl.Cur)
		}
		conns = max(limit-c.FDReserve, 64)
	}
	sessions = c.MaxSessions
	if sessions <= 0 {
		sessions = max(conns-64, 1)
	}
	return conns, min(sessions, conns)
}

func (s *Server) now() time.Time { return s.clock() }
func (s *Server) nowMs() int64   { return s.clock().UnixMilli() }

// Metrics is the TGP layer's metric set, for the /metrics endpoint.
func (s *Server) Metrics() *metrics.Set { return s.m.set }

// Ready reports whether the TGP listener is accepting.
func (s *Server) Ready() bool { return s.ready.Load() && !s.shutting.Load() }

// Writable reports whether the store accepts durable writes
// (storage.ErrDiskFull while its disk is below the reserve).
func (s *Server) Writable() error { return s.store.Writable() }

// Started is closed once the listener accepts connections.
func (s *Server) Started() <-chan struct{} { return s.started }

// Limits reports the effective connection and session caps.
func (s *Server) Limits() (maxConns, maxSessions int) { return s.maxConns, s.maxSessions }

// Run serves TGP on cfg.Server.Listen until ctx ends, then shuts down:
// GOAWAY to every session, stop the engine, flush presence. It does not
// close the store.
func (s *Server) Run(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.Presence.Run(bg) }()
	go func() { defer wg.Done(); s.tickLoop(bg) }()
	go func() { defer wg.Done(); s.aliveLoop(bg) }()

	loops := s.cfg.Server.EventLoops
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(s, "tcp://"+s.cfg.Server.Listen,
			gnet.WithMulticore(loops <= 0),
			gnet.WithNumEventLoop(max(loops, 0)),
			gnet.WithReusePort(false),
			// A restart after a crash must rebind while the dead process's
			// connections sit in TIME_WAIT.
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReadBufferCap(4096),
			gnet.WithWriteBufferCap(4096),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()
	var runErr error
	select {
	case runErr = <-errc:
	case <-ctx.Done():
		s.shutdown()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.eng.Stop(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("engine stop", "err", err)
		}
		cancel()
		runErr = <-errc
	}
	s.ready.Store(false)
	// Connections are closed now (OnClose has queued their offline
	// updates): stop the background loops, which flush on the way out.
	stopBG()
	wg.Wait()
	s.work.close()
	return runErr
}

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	s.ready.Store(true)
	close(s.started)
	s.log.Info("TGP listening", "addr", s.cfg.Server.Listen, "max_connections", s.maxConns, "max_sessions", s.maxSessions)
	return gnet.None
}

// shutdown ends every session with GOAWAY [7, "shutdown", retry_after_ms],
// the retry spread at random so the fleet does not return in step.
func (s *Server) shutdown() {
	s.shutting.Store(true)
	spread := max(s.cfg.Server.ShutdownGrace.Milliseconds(), 1)
	var kicked sync.WaitGroup
	s.Presence.Each(func(e *presence.Entry) bool {
		kicked.Add(1)
		if c, ok := e.Owner.(*conn); ok {
			retry := uint64(1000 + randN(spread*10))
			c.l.post(func() {
				defer kicked.Done()
				c.kickNow(e.SessionID, uint8(protocol.Unavailable), "shutdown", presence.ReasonShutdown, retry)
			})
		} else {
			kicked.Done()
		}
		return true
	})
	done := make(chan struct{})
	go func() { kicked.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("shutdown: some sessions did not take their GOAWAY in time")
	}
}

func (s *Server) tickLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(s.tickMs) * time.Millisecond)
	defer t.Stop()
	sweep := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tick := s.nowMs() / s.tickMs
		s.loops.Range(func(_, v any) bool {
			if l := v.(*loop); l.needsTick(tick) {
				l.post(l.tickFn)
			}
			return true
		})
		if sweep++; sweep%600 == 0 {
			s.dups.Sweep(s.nowMs())
			s.sources.Sweep(s.nowMs())
		}
	}
}

// aliveLoop writes the node-alive mark: after a crash, devices that were
// online are taken offline at the last mark. A failure is logged when it
// starts and when it ends, not every interval.
func (s *Server) aliveLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Storage.AliveInterval.Duration)
	defer t.Stop()
	failing := false
	for {
		err := s.store.SetAliveMark(ctx, s.nowMs())
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("alive mark not written (logged again when it recovers)", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("alive mark written again")
			failing = false
		}
		select {
		case <-ctx.Done():
			// Final mark and flush: a clean stop is as precise as a crash.
			_ = s.Presence.Flush(context.Background())
			_ = s.store.SetAliveMark(context.Background(), s.nowMs())
			return
		case <-t.C:
		}
	}
}

// loopOf returns the state of gnet loop el, creating it on first use.
func (s *Server) loopOf(el gnet.EventLoop) *loop {
	if v, ok := s.loops.Load(el); ok {
		return v.(*loop)
	}
	v, _ := s.loops.LoadOrStore(el, newLoop(s, el))
	return v.(*loop)
}

// newSessionID returns a session id above every id of earlier boots.
func (s *Server) newSessionID() uint64 { return s.epoch | uint64(s.sessSeq.Add(1)) }
