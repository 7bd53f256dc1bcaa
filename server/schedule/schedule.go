// Package schedule is termd's upgrade scheduling (spec §6.2,
// docs/scheduling.md): download nodes grouped in clusters, each with a
// capacity per time slot; campaigns that roll a release out in windows;
// placement of each terminal in the nearest cluster's best node and
// earliest free slot (SCHEDULE_REQUEST); check-in at the slot
// (UPGRADE_CHECK); an availability planner for operators.
//
// Every change to reservations and slot counters goes through one group
// committer, like upgrade reports: the committer is the only writer of
// the capacity counters, reads and writes them inside one storage
// transaction per batch with the reservations they count, and so no slot
// is ever overbooked, however many requests arrive on however many event
// loops, and the counters survive kill -9 with the reservations.
package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/internal/lifecycle"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// Bounds of the service.
const (
	jobQueue      = 16384
	commitBatch   = 256
	busyRetryMs   = 1000
	commitTimeout = 10 * time.Second
	closeTimeout  = 10 * time.Second
	// sweepEvery bounds how often lapsed reservations and past slots are
	// cleaned up.
	sweepEvery = 5 * time.Second
)

// Downloads is termd's own download node (server/download).
type Downloads interface {
	URLUntil(sha [32]byte, deviceID string, exp time.Time) (url, token string)
	// InFlight is the downloads it serves now: its live load.
	InFlight() int64
}

// Options configures a Service.
type Options struct {
	Config   config.Config
	Store    storage.Schedules
	Server   *server.Server
	Releases *upgrade.Service
	// Downloads is termd's own node; nil: only configured external nodes.
	Downloads Downloads
	// DownloadSecret signs tokens of external nodes that set no secret.
	DownloadSecret []byte
	// LocalURL is termd's own download listener's base URL ("" = none).
	LocalURL string
	Bus      *events.Bus
	Log      *slog.Logger
	Now      func() time.Time
}

// Service serves SCHEDULE_REQUEST and UPGRADE_CHECK and the operators'
// campaign, node and plan endpoints.
type Service struct {
	cfg      config.Schedule
	store    storage.Schedules
	srv      *server.Server
	rels     *upgrade.Service
	dl       Downloads
	dlSecret []byte
	bus      *events.Bus
	log      *slog.Logger
	now      func() time.Time
	m        *metricsSet
	history  History
	locs     locations

	nodes    []*node // configuration order
	byNode   map[string]*node
	clusters []*cluster

	// opMu serialises operator changes to campaigns.
	opMu sync.Mutex
	// mu guards camps.
	mu    sync.RWMutex
	camps map[string]*campaign

	// useMu guards use: the committed slot uses (written by the committer
	// after each commit, read by the planner and metrics).
	useMu sync.RWMutex
	use   map[slotKey]storage.SlotUse
	// holding is the reservations that hold capacity, by id, for the
	// sweep (committer goroutine only).
	holding map[string]holdInfo

	jobs    chan *job
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	stopped chan struct{}
}

type slotKey struct {
	node string
	slot int64
}

type holdInfo struct {
	campaign, node string
	slot           int64
	bytes          int64
	startMs, endMs int64
	checkedIn      bool
}

// Open loads campaigns, node states and slot uses. Start must follow.
func Open(opt Options) (*Service, error) {
	if opt.Server == nil || opt.Store == nil || opt.Releases == nil {
		return nil, errors.New("schedule: Server, Store and Releases are required")
	}
	s := &Service{
		cfg: opt.Config.Schedule, store: opt.Store, srv: opt.Server, rels: opt.Releases, dl: opt.Downloads,
		dlSecret: opt.DownloadSecret, bus: opt.Bus, log: opt.Log, now: opt.Now,
		camps: map[string]*campaign{}, use: map[slotKey]storage.SlotUse{}, holding: map[string]holdInfo{},
		jobs: make(chan *job, jobQueue), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "schedule")
	if s.now == nil {
		s.now = time.Now
	}
	if opt.Downloads == nil && opt.LocalURL == "" && len(s.cfg.Nodes) == 0 {
		s.log.Info("no download node: campaigns can be created but nobody can be placed (configure [download] listen or [[schedule.nodes]])")
	}
	s.buildNodes(opt.LocalURL)
	if err := s.load(context.Background()); err != nil {
		return nil, err
	}
	s.m = newMetrics(s)
	return s, nil
}

func (s *Service) load(ctx context.Context) error {
	cs, err := s.store.ListCampaigns(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		pc, err := newCampaign(c)
		if err != nil {
			return err
		}
		pc.inGroups = s.rels.InAnyGroup
		s.camps[c.ID] = pc
	}
	if err := s.loadLocations(ctx); err != nil {
		return err
	}
	ns, err := s.store.NodeStates(ctx)
	if err != nil {
		return err
	}
	for _, st := range ns {
		if n := s.byNode[st.NodeID]; n != nil {
			n.draining.Store(st.Draining || n.cfgDraining)
		}
	}
	if err := s.store.SlotUses(ctx, func(u storage.SlotUse) error {
		s.use[slotKey{u.Node, u.Slot}] = u
		return nil
	}); err != nil {
		return err
	}
	return s.store.Reservations(ctx, "", func(r storage.Reservation) error {
		if r.Holds() {
			s.holding[r.ID] = holdInfo{campaign: r.CampaignID, node: r.NodeID, slot: r.Slot, bytes: r.Bytes,
				startMs: r.SlotStartMs, endMs: r.SlotEndMs, checkedIn: r.State == storage.ResvCheckedIn}
		}
		return nil
	})
}

// Start begins the committer and the sweep, and installs the query hook.
func (s *Service) Start() {
	s.rels.SetCampaigns(s)
	s.wg.Add(2)
	go s.committer()
	go s.sweepLoop()
}

// Close stops accepting work and drains the committer (bounded by ctx).
func (s *Service) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	return lifecycle.Wait(ctx, &s.wg)
}

// Routes installs SCHEDULE_REQUEST and UPGRADE_CHECK.
func (s *Service) Routes(srv *server.Server) {
	srv.Handle(protocol.TypeScheduleReq, &server.Route{
		New:    func() protocol.Message { return &protocol.ScheduleRequest{} },
		Start:  s.serveSchedule,
		Class:  "schedule",
		Writes: true,
	})
	srv.Handle(protocol.TypeUpgradeCheck, &server.Route{
		New:    func() protocol.Message { return &protocol.UpgradeCheck{} },
		Start:  s.serveCheck,
		Class:  "schedule",
		Writes: true,
	})
}

// Metrics are the scheduling metrics (metrics.go).
func (s *Service) Metrics() *metrics.Set { return s.m.set }

func (s *Service) publish(ev events.Event) {
	if s.bus != nil {
		ev.At = s.now().UnixMilli()
		s.bus.Publish(ev)
	}
}
