// Package groups is device groups (spec §7, issue 14): operators define
// groups and their policies, terminals get signed grants (GROUP_AUTH) and
// join, leave or atomically switch (GROUP_CHANGE), list their memberships
// (GROUP_LIST) and message a group's online members (GROUP_SEND); the
// heartbeat's GROUP_STALE and the GROUP_SYNC push keep terminals in step
// with operators' changes. The whole directory is held in memory and
// every change is committed to the store before it is answered.
package groups

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/internal/lifecycle"
	"github.com/termd/termd/storage"
)

// Defaults (spec §7 and issue 14).
const (
	// DefaultGrantTTL is how long a grant is valid (the spec's maximum).
	DefaultGrantTTL = 300 * time.Second
	// DefaultKeyRotation is how often the grant signing key is replaced.
	DefaultKeyRotation = 24 * time.Hour
	// IdemWindow is how long a GROUP_CHANGE answer is kept for repeats.
	IdemWindow = 10 * time.Minute
	// DefaultIdemPerDevice bounds a device's remembered answers.
	DefaultIdemPerDevice = 256
	// DefaultSendSizeLimit: groups with more members accept messages
	// only from operators and moderators.
	DefaultSendSizeLimit = 1000
	// DefaultSendRate and DefaultSendBurst are each sender's budget.
	DefaultSendRate  = 1.0
	DefaultSendBurst = 10
	// DefaultSyncRate bounds GROUP_SYNC pushes per second, so one
	// operation that changes thousands of members is spread over time.
	DefaultSyncRate = 2000
	// stripes is how many device locks changes are serialized on.
	stripes = 256
)

// Options configures a Service.
type Options struct {
	// Store keeps groups, memberships and request_id answers.
	Store storage.Groups
	// Server pushes GROUP_SYNC and GROUP_MESSAGE and holds presence; nil
	// in store-only tests (then nothing is pushed).
	Server *server.Server
	// KeyFile is where the grant keys live ("": memory only; termd uses
	// <storage.dir>/group-keys.json).
	KeyFile string
	// GrantTTL is a grant's life (0: DefaultGrantTTL; at most 300 s).
	GrantTTL time.Duration
	// KeyRotation is how often the signing key rotates (0: default).
	KeyRotation time.Duration
	// SendSizeLimit (0: DefaultSendSizeLimit), SendRate (0:
	// DefaultSendRate, per second) and SendBurst (0: DefaultSendBurst)
	// are GROUP_SEND's rules.
	SendSizeLimit int
	SendRate      float64
	SendBurst     int
	// SyncRate is GROUP_SYNC pushes per second (0: DefaultSyncRate).
	SyncRate int
	// IdemPerDevice bounds a device's remembered answers (0: default).
	IdemPerDevice int
	// Log receives operational messages; nil: slog.Default().
	Log *slog.Logger
	// Now overrides time.Now (tests).
	Now func() time.Time
}

// Service is the groups feature.
type Service struct {
	opt   Options
	store storage.Groups
	srv   *server.Server
	keys  *keyRing
	log   *slog.Logger
	now   func() time.Time
	ttlMs int64
	m     *groupMetrics

	seed  maphash.Seed
	locks [stripes]sync.Mutex // device stripes: one change of a device at a time

	mu     sync.RWMutex
	groups map[string]*group
	devs   map[string]*storage.DeviceGroups
	// refs names, per group, what refers to it (selectors); deleting a
	// referenced group is refused.
	refs func(group string) []string

	idem   *idemCache
	budget *budgets
	syncer *syncer

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// group is a group's definition and members in memory.
type group struct {
	def     storage.Group
	members map[string]string // device → role
	msgID   atomic.Uint64
}

// Open loads the directory and the recent request_id answers and copies
// every device's group_version into presence.
func Open(ctx context.Context, opt Options) (*Service, error) {
	s := &Service{opt: opt, store: opt.Store, srv: opt.Server, log: opt.Log, now: opt.Now, seed: maphash.MakeSeed(),
		groups: map[string]*group{}, devs: map[string]*storage.DeviceGroups{}, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "groups")
	if s.now == nil {
		s.now = time.Now
	}
	ttl := opt.GrantTTL
	if ttl <= 0 || ttl > DefaultGrantTTL {
		ttl = DefaultGrantTTL
	}
	s.ttlMs = ttl.Milliseconds()
	if s.opt.KeyRotation <= 0 {
		s.opt.KeyRotation = DefaultKeyRotation
	}
	if s.opt.SendSizeLimit <= 0 {
		s.opt.SendSizeLimit = DefaultSendSizeLimit
	}
	if s.opt.SendRate <= 0 {
		s.opt.SendRate = DefaultSendRate
	}
	if s.opt.SendBurst <= 0 {
		s.opt.SendBurst = DefaultSendBurst
	}
	if s.opt.SyncRate <= 0 {
		s.opt.SyncRate = DefaultSyncRate
	}
	if s.opt.IdemPerDevice <= 0 {
		s.opt.IdemPerDevice = DefaultIdemPerDevice
	}
	nowMs := s.nowMs()
	keys, err := openKeyRing(opt.KeyFile, s.ttlMs, nowMs)
	if err != nil {
		return nil, err
	}
	s.keys = keys
	gs, ds, err := s.store.LoadGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("load groups: %w", err)
	}
	// msg_id increases per group across restarts: each run starts its
	// counters at the start time in ms × 1024, above any id the previous
	// run could have reached unless it sent over 1024 messages per ms.
	base := uint64(nowMs) << 10
	for _, g := range gs {
		gr := &group{def: g, members: map[string]string{}}
		gr.msgID.Store(base)
		s.groups[g.ID] = gr
	}
	for i := range ds {
		d := &ds[i]
		s.devs[d.DeviceID] = d
		for _, m := range d.Members {
			if g := s.groups[m.GroupID]; g != nil {
				g.members[d.DeviceID] = m.Role
			}
		}
		if s.srv != nil {
			s.srv.Presence.SetGroupVersion(d.DeviceID, d.Version)
		}
	}
	s.idem = newIdemCache(IdemWindow.Milliseconds(), s.opt.IdemPerDevice)
	recent, err := s.store.LoadGroupIdem(ctx, nowMs-IdemWindow.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("load group request ids: %w", err)
	}
	sort.Slice(recent, func(i, j int) bool { return recent[i].AtMs < recent[j].AtMs })
	for _, e := range recent {
		s.idem.put(e)
	}
	s.budget = newBudgets(s.opt.SendRate, s.opt.SendBurst)
	s.m = newMetrics(s)
	s.syncer = newSyncer(s, s.opt.SyncRate)
	return s, nil
}

// Start runs the background work: GROUP_SYNC pushes, key rotation and
// the expiry of request_id answers.
func (s *Service) Start() {
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.syncer.run(s.stop) }()
	go func() { defer s.wg.Done(); s.housekeep() }()
}

// Close stops the background work.
func (s *Service) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	return lifecycle.Wait(ctx, &s.wg)
}

// SetReferences installs what names the selectors that refer to a group
// (release targeting, rollout phases, ACLs); a referenced group cannot be
// deleted.
func (s *Service) SetReferences(fn func(group string) []string) {
	s.mu.Lock()
	s.refs = fn
	s.mu.Unlock()
}

func (s *Service) housekeep() {
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	rotate := time.NewTicker(s.opt.KeyRotation)
	defer rotate.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-prune.C:
			now := s.nowMs()
			s.idem.expire(now)
			s.budget.sweep(s.now())
			if _, err := s.store.PruneGroupIdem(context.Background(), now-IdemWindow.Milliseconds()); err != nil {
				s.log.Warn("prune group request ids", "err", err)
			}
		case <-rotate.C:
			if err := s.RotateKey(); err != nil {
				s.log.Warn("rotate group grant key", "err", err)
			}
		}
	}
}

// RotateKey replaces the grant signing key now; unexpired grants stay
// valid.
func (s *Service) RotateKey() error {
	err := s.keys.Rotate(s.nowMs())
	if err == nil {
		s.log.Info("group grant key rotated", "key_id", s.keys.CurrentID())
	}
	return err
}

func (s *Service) nowMs() int64 { return s.now().UnixMilli() }

// lockDevice serializes changes of one device (and of the devices that
// share its stripe).
func (s *Service) lockDevice(id string) func() {
	l := &s.locks[maphash.String(s.seed, id)%stripes]
	l.Lock()
	return l.Unlock
}

// Routes installs GROUP_AUTH, GROUP_CHANGE, GROUP_LIST and GROUP_SEND.
func (s *Service) Routes(srv *server.Server) {
	srv.Handle(protocol.TypeGroupAuth, &server.Route{
		New: func() protocol.Message { return &protocol.GroupAuth{} }, Serve: s.serveAuth, Class: "groups"})
	srv.Handle(protocol.TypeGroupChange, &server.Route{
		New: func() protocol.Message { return &protocol.GroupChange{} }, Serve: s.serveChange, Class: "groups", Writes: true})
	srv.Handle(protocol.TypeGroupList, &server.Route{
		New: func() protocol.Message { return &protocol.GroupList{} }, Serve: s.serveList, Class: "groups"})
	srv.Handle(protocol.TypeGroupSend, &server.Route{
		New: func() protocol.Message { return &protocol.GroupSend{} }, Start: s.startSend, Class: "groups"})
}

// allows reports whether g's policy lets device (of model) join by itself.
func allows(g *storage.Group, device, model string) bool {
	switch g.Policy {
	case storage.PolicyOpen:
		return true
	case storage.PolicyAllowlist:
		for _, a := range g.Allow {
			var pat, v string
			if p, ok := cutPrefix(a, "device:"); ok {
				pat, v = p, device
			} else if p, ok := cutPrefix(a, "model:"); ok {
				pat, v = p, model
			}
			if ok, _ := path.Match(pat, v); ok && pat != "" {
				return true
			}
		}
	}
	return false
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// SelfJoinable reports whether terminals can join group by themselves
// (open or allowlist): such a group must never be used to grant rights
// (ACLs, targeting). Unknown groups are not self-joinable, nor are
// dynamic ones: their filter reads the HELLO fields (device id, model,
// fw) that ACLs already trust.
func (s *Service) SelfJoinable(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	return g != nil && (g.def.Policy == storage.PolicyOpen || g.def.Policy == storage.PolicyAllowlist)
}

// IsMember reports whether device is in group now (from memory).
func (s *Service) IsMember(id, device string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	if g == nil {
		return false
	}
	if isDynamic(g) {
		return s.srv != nil && matches(g, s.srv.Presence.Get(device))
	}
	_, ok := g.members[device]
	return ok
}

// Exists reports whether the group exists.
func (s *Service) Exists(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	return g != nil && g.def.ID != ""
}

// memberships returns the device's memberships for the wire (nil when none).
func memberships(d *storage.DeviceGroups) []protocol.Membership {
	if d == nil || len(d.Members) == 0 {
		return nil
	}
	out := make([]protocol.Membership, len(d.Members))
	for i, m := range d.Members {
		out[i] = protocol.Membership{GroupID: m.GroupID, Role: m.Role}
	}
	return out
}
