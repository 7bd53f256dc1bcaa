// Package upgrade is termd's release management (spec §6.1): operators
// create, sign, publish and roll out releases; terminals ask at launch
// whether one applies (UPGRADE_QUERY), get told when one is published
// (UPGRADE_NOTICE, the UPGRADE_PENDING heartbeat flag), and report their
// progress (UPGRADE_REPORT), which is committed durably in groups before
// it is acknowledged. Terminals that go silent are recorded TIMED_OUT or
// REVERTED; failures go to the operators through a Notifier.
package upgrade

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/internal/lifecycle"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/storage"
)

// Bounds of the service.
const (
	// jobQueue bounds the reports and queries waiting for the committer;
	// past it requests are answered UNAVAILABLE (busyRetryMs).
	jobQueue = 16384
	// busyRetryMs is retry_after_ms when the committer queue is full.
	busyRetryMs = 1000
	// commitTimeout bounds one group commit.
	commitTimeout = 10 * time.Second
	// enqueueTimeout bounds one notification enqueue.
	enqueueTimeout = 5 * time.Second
	// closeTimeout bounds draining the committer at Close.
	closeTimeout = 10 * time.Second
)

// Notifier delivers failures to the operators (the notify package's
// outbox): Enqueue commits e durably before it returns and ignores an ID
// it already holds.
type Notifier interface {
	Enqueue(ctx context.Context, e notify.Event) error
}

// Artifacts is termd's artifact store and download node (the download
// package).
type Artifacts interface {
	// Stat reports an uploaded artifact's size.
	Stat(sha [32]byte) (size int64, ok bool)
	// URL is a signed, expiring download URL of sha for deviceID (≤ 256 bytes).
	URL(sha [32]byte, deviceID string) string
	// ShortURL returns u itself when ≤ 256 bytes, else a short redirect URL to u.
	ShortURL(u string) (string, error)
}

// Options configures a Service.
type Options struct {
	// Config supplies [upgrade].
	Config config.Config
	// Store keeps releases, assignments and reports.
	Store storage.Upgrades
	// Server sends notices and sets heartbeat flags; required.
	Server *server.Server
	// Notifier receives failures; nil: none are notified.
	Notifier Notifier
	// Artifacts serves uploaded artifacts; nil: releases must use an
	// external URL.
	Artifacts Artifacts
	// Bus receives release and report events; nil: none.
	Bus *events.Bus
	// Log receives operational messages; nil: slog.Default().
	Log *slog.Logger
	// Now overrides time.Now (tests).
	Now func() time.Time
	// Groups evaluates release targeting by group from memory; nil: a
	// release naming groups is refused (docs/groups.md).
	Groups GroupDirectory
}

// GroupDirectory is what group targeting needs of device groups
// (*groups.Service implements it).
type GroupDirectory interface {
	// Exists reports whether the group exists.
	Exists(group string) bool
	// SelfJoinable reports whether terminals can join it by themselves
	// (open or allowlist): such a group never targets a release.
	SelfJoinable(group string) bool
	// IsMember reports whether device is in group now.
	IsMember(group, device string) bool
}

// Service serves UPGRADE_QUERY and UPGRADE_REPORT and the operators'
// release endpoints.
type Service struct {
	// sent holds the last_failures written to terminals whose delivered
	// mark is not committed yet (devApp → storage.UpgradeFailureMark);
	// an entry lives only until its job is answered.
	sent      sync.Map
	cfg       config.Upgrade
	store     storage.Upgrades
	srv       *server.Server
	notifier  Notifier
	artifacts Artifacts
	bus       *events.Bus
	log       *slog.Logger
	now       func() time.Time
	keys      []*ecdsa.PublicKey
	m         *upMetrics
	groups    GroupDirectory // nil: no group targeting

	// opMu serialises operator changes to releases (read-modify-write of
	// one release record and the index).
	opMu sync.Mutex
	// mu guards the in-memory state below.
	mu    sync.RWMutex
	rels  map[string]*release
	byApp map[string][]*release
	// apps is every app_id some release (of any state) is for.
	apps map[string]bool
	// assigned is the frozen assignments of releases not archived:
	// release id → device id → attempt counts.
	assigned map[string]map[string]*assignState
	// vers is each device's last known version per app.
	vers map[devApp]verInfo
	// open is the attempts not finished, for stuck detection.
	open map[attemptKey]*openAttempt
	// installing is each device's attempt in INSTALLING per app, for
	// REVERTED detection at its next query.
	installing map[devApp]attemptKey
	// rollouts is the committed state of phased rollouts (rollout.go),
	// replaced by the committer after each commit that changed one.
	rollouts map[string]*storage.RolloutState
	// campaigns is the scheduling hook (campaigns.go), or nil.
	campaigns Campaigns

	// pending is, per device, the apps with an offer waiting that no
	// query asked about yet (UPGRADE_PENDING), under pendMu.
	pendMu  sync.Mutex
	pending map[string]map[string]bool

	// closing, under closeMu, stops new notice spreaders once Close began.
	closeMu sync.Mutex
	closing bool

	jobs    chan *job
	stop    chan struct{}
	stopped chan struct{} // the committer ended
	wg      sync.WaitGroup
	once    sync.Once

	// withdrawn is the cancelled releases' download revocation state
	// (cancel.go), under mu.
	withdrawn map[string]*withdrawal
	// fired is, per published release, the deadline whose notices were
	// sent (deadline.go), under mu; deadlineKick wakes deadlineLoop.
	fired        map[string]int64
	deadlineKick chan struct{}
}

type devApp struct{ device, app string }

type verInfo struct{ version, model string }

type assignState struct{ failures, forgiven int }

type attemptKey struct {
	release, device string
	attempt         uint64
}

// Open loads the releases, assignments, known versions and unfinished
// attempts. Start must follow before requests are served.
func Open(opt Options) (*Service, error) {
	if opt.Server == nil || opt.Store == nil {
		return nil, errors.New("upgrade: Server and Store are required")
	}
	s := &Service{
		cfg: opt.Config.Upgrade, store: opt.Store, srv: opt.Server, notifier: opt.Notifier,
		artifacts: opt.Artifacts, bus: opt.Bus, log: opt.Log, now: opt.Now, groups: opt.Groups,
		rels: map[string]*release{}, apps: map[string]bool{}, assigned: map[string]map[string]*assignState{},
		vers: map[devApp]verInfo{}, open: map[attemptKey]*openAttempt{}, installing: map[devApp]attemptKey{}, rollouts: map[string]*storage.RolloutState{}, pending: map[string]map[string]bool{},
		jobs: make(chan *job, jobQueue), stop: make(chan struct{}), stopped: make(chan struct{}),
		withdrawn: map[string]*withdrawal{}, fired: map[string]int64{}, deadlineKick: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "upgrade")
	if s.now == nil {
		s.now = time.Now
	}
	for _, p := range s.cfg.ReleasePublicKeys {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("upgrade: release public key: %w", err)
		}
		k, err := protocol.ParseReleasePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("upgrade: release public key %s: %w", p, err)
		}
		s.keys = append(s.keys, k)
	}
	if err := s.load(context.Background()); err != nil {
		return nil, fmt.Errorf("upgrade: load: %w", err)
	}
	if err := s.loadCancelled(context.Background()); err != nil {
		return nil, fmt.Errorf("upgrade: load cancelled releases: %w", err)
	}
	s.m = newMetrics(s)
	return s, nil
}

// load reads the store into memory.
func (s *Service) load(ctx context.Context) error {
	rels, err := s.store.ListReleases(ctx)
	if err != nil {
		return err
	}
	for _, r := range rels {
		rel, err := s.newReleaseIn(r)
		if err != nil {
			return fmt.Errorf("release %s: %w", r.ID, err)
		}
		s.rels[r.ID] = rel
		s.apps[r.AppID] = true
		if r.State == storage.ReleaseArchived {
			continue
		}
		devs := map[string]*assignState{}
		err = s.store.Assignments(ctx, r.ID, func(a storage.UpgradeAssignment) error {
			devs[a.DeviceID] = &assignState{failures: a.Failures, forgiven: a.Forgiven}
			return nil
		})
		if err != nil {
			return err
		}
		s.assigned[r.ID] = devs
	}
	s.reindex()
	rs, err := s.store.Rollouts(ctx)
	if err != nil {
		return err
	}
	for _, st := range rs {
		if r := s.rels[st.ReleaseID]; r != nil && len(st.Counts) == len(r.Phases) {
			s.rollouts[st.ReleaseID] = &st
		}
	}
	vs, err := s.store.AppVersions(ctx, "")
	if err != nil {
		return err
	}
	for _, v := range vs {
		s.vers[devApp{v.DeviceID, v.AppID}] = verInfo{v.Version, v.Model}
	}
	// Reports come in (release, device, attempt) order: only a device's
	// latest attempt at a release is watched.
	var prev attemptKey
	return s.store.Reports(ctx, "", func(r storage.UpgradeReport) error {
		k := attemptKey{r.ReleaseID, r.DeviceID, r.Attempt}
		if prev.release == k.release && prev.device == k.device {
			delete(s.open, prev)
			if da := (devApp{r.DeviceID, r.AppID}); s.installing[da] == prev {
				delete(s.installing, da)
			}
		}
		prev = k
		if isOpen(r.Stage) {
			s.open[k] = &openAttempt{stage: r.Stage, sinceMs: r.UpdatedMs}
			if r.Stage == protocol.StageInstalling {
				s.installing[devApp{r.DeviceID, r.AppID}] = k
			}
		}
		return nil
	})
}

// Start begins the committer and the stuck-attempt sweep, re-enqueues
// failure notifications a crash left behind, and sets UPGRADE_PENDING for
// the devices published releases target.
func (s *Service) Start() {
	s.wg.Add(3)
	go s.committer()
	go s.sweepLoop()
	go s.deadlineLoop()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reenqueue()
	}()
	s.mu.RLock()
	for _, rs := range s.byApp {
		for _, r := range rs {
			s.flagPendingLocked(r, -1)
		}
	}
	s.mu.RUnlock()
}

// Close stops accepting work, commits what is queued (bounded by ctx)
// and stops the background work.
func (s *Service) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.closeMu.Lock()
		s.closing = true
		s.closeMu.Unlock()
		close(s.stop)
	})
	return lifecycle.Wait(ctx, &s.wg)
}

// Routes installs the UPGRADE_QUERY and UPGRADE_REPORT routes.
func (s *Service) Routes(srv *server.Server) {
	srv.Handle(protocol.TypeUpgradeQuery, &server.Route{
		New:   func() protocol.Message { return &protocol.UpgradeQuery{} },
		Start: s.serveQuery,
		Class: "upgrade",
		// Not Writes: most queries write nothing and are answered while
		// the disk is full; one that must record a first offer gets the
		// store's UNAVAILABLE from its commit.
	})
	srv.Handle(protocol.TypeUpgradeReport, &server.Route{
		New:    func() protocol.Message { return &protocol.UpgradeReport{} },
		Start:  s.serveReport,
		Class:  "upgrade",
		Writes: true,
	})
}

// publish sends an event to the bus, if any.
func (s *Service) publish(ev events.Event) {
	if s.bus != nil {
		ev.At = s.now().UnixMilli()
		s.bus.Publish(ev)
	}
}
