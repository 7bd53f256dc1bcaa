// Package control is service control (spec §5): terminals send CONTROL to
// start, stop, restart or query a service termd runs, and operators do the
// same through the admin API. It checks each request against the
// service's policy (ops, ACL, arg patterns), keeps request_id answers for
// idempotent repeats, hands the operation to the supervisor, waits for it
// without holding a worker, and commits an audit record before any answer
// leaves.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control/supervisor"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/internal/lifecycle"
	"github.com/termd/termd/storage"
)

// Bounds of the controller.
const (
	// auditAttempts is how often an audit record is tried before the
	// answer becomes INTERNAL; auditTimeout bounds one attempt and
	// auditRetryPause × n is the pause before the n-th retry.
	auditAttempts   = 3
	auditTimeout    = 5 * time.Second
	auditRetryPause = 100 * time.Millisecond
	// pruneEvery is the period of the audit retention sweep; trimEvery
	// that of the check against control.audit_max_records.
	pruneEvery = time.Hour
	trimEvery  = time.Minute
	// shutdownRetryMs is retry_after_ms of requests refused while termd stops.
	shutdownRetryMs = 5000
)

// Options configures a Controller.
type Options struct {
	// Config supplies [control], [[services]] and storage.dir.
	Config config.Config
	// Audit stores the audit log (and answers request_id repeats after a
	// restart).
	Audit storage.Audit
	// Bus receives service state changes; nil: none are published.
	Bus *events.Bus
	// Log receives operational messages; nil: slog.Default().
	Log *slog.Logger
	// Now overrides time.Now (tests).
	Now func() time.Time
	// Groups evaluates ACL rules that name device groups; nil: such a
	// rule refuses to open.
	Groups GroupDirectory
}

// GroupDirectory is what ACL rules need of device groups
// (*groups.Service implements it).
type GroupDirectory interface {
	Exists(group string) bool
	// SelfJoinable: terminals can join the group by themselves (open or
	// allowlist), so it must never grant a right.
	SelfJoinable(group string) bool
	IsMember(group, device string) bool
}

// Controller serves CONTROL and the operators' service endpoints.
type Controller struct {
	ctl   config.Control
	sup   *supervisor.Supervisor
	pols  map[string]*policy
	ids   []string
	audit storage.Audit
	bus   *events.Bus
	log   *slog.Logger
	now   func() time.Time
	idem  *idemCache
	m     *ctlMetrics
	// openedMs is when this node's request_id memory began (unix ms).
	openedMs int64

	wg   sync.WaitGroup // waiters of operations still running
	stop chan struct{}
	once sync.Once
}

// Open compiles the services' policies and opens the supervisor, which
// re-adopts (or stops) daemons an earlier termd left running. Start must
// follow before requests are served.
func Open(opt Options) (*Controller, error) {
	c := &Controller{
		ctl:   opt.Config.Control.Effective(opt.Config.Storage.Dir),
		pols:  make(map[string]*policy),
		audit: opt.Audit,
		bus:   opt.Bus,
		log:   opt.Log,
		now:   opt.Now,
		stop:  make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "control")
	if c.now == nil {
		c.now = time.Now
	}
	c.openedMs = c.now().UnixMilli()
	for _, s := range opt.Config.Services {
		p, err := newPolicy(s)
		if err != nil {
			return nil, fmt.Errorf("control: service %q: %w", s.ID, err)
		}
		if err := checkACLGroups(s, opt.Groups); err != nil {
			return nil, fmt.Errorf("control: service %q: %w", s.ID, err)
		}
		if opt.Groups != nil {
			p.inGroup = opt.Groups.IsMember
		}
		c.pols[s.ID] = p
		c.ids = append(c.ids, s.ID)
	}
	sort.Strings(c.ids)
	c.idem = newIdemCache(c.ctl.RequestIDWindow.Milliseconds(), config.MaxRequestIDs, c.ctl.RequestIDsPerDevice)
	c.m = newMetrics(c.ids, c)
	sup, err := supervisor.New(supervisor.Options{
		Services: opt.Config.Services,
		Dir:      c.ctl.ServicesDir,
		Log:      c.log,
		Notify:   c.notify,
		Now:      c.now,
	})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	c.sup = sup
	return c, nil
}

// Start autostarts daemons, enables restart policies and begins the audit
// retention sweep.
func (c *Controller) Start() {
	c.sup.Start()
	c.wg.Add(1)
	go c.pruneLoop()
}

// Close stops or leaves the daemons as configured (bounded by ctx) and
// waits for the operations still being answered.
func (c *Controller) Close(ctx context.Context) error {
	c.once.Do(func() { close(c.stop) })
	err := c.sup.Shutdown(ctx)
	if werr := lifecycle.Wait(ctx, &c.wg); werr != nil {
		err = errors.Join(err, werr)
	}
	return err
}

// Metrics is the control metric set.
func (c *Controller) Metrics() *metrics.Set { return c.m.set }

// Route is the CONTROL route for server.Handle.
func (c *Controller) Route() *server.Route {
	return &server.Route{
		New:    func() protocol.Message { return &protocol.Control{} },
		Start:  c.serveTerminal,
		Class:  "control",
		Writes: true, // every request is audited
	}
}

// auditName is a service id a terminal or operator named that is not
// configured, made storable and readable: configured ids use only
// [A-Za-z0-9._-], so anything else shows as '?'.
func auditName(id string) string {
	if id == "" {
		return "?"
	}
	if len(id) > config.MaxServiceID {
		id = id[:config.MaxServiceID]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '?'
	}, id)
}

// requestWait is the request's timeout_ms as the server applies it:
// default 30 s, clamped to control.max_timeout.
func (c *Controller) requestWait(ms uint64) time.Duration {
	if ms == 0 {
		ms = protocol.DefaultControlTimeoutMs
	}
	d := time.Duration(min(ms, uint64(c.ctl.MaxTimeout.Milliseconds()))) * time.Millisecond
	return d
}

// commit writes rec with a's outcome to the audit before a is sent. A
// record that cannot be written turns the answer into INTERNAL: nothing
// is acknowledged that the audit does not hold. It retries in the
// caller's goroutine, so it is for callers off the worker pool.
func (c *Controller) commit(rec *storage.AuditRecord, a answer, start time.Time) (answer, error) {
	c.record(rec, a, start)
	err := c.appendAudit(rec, false)
	if err == nil {
		return a, nil
	}
	return c.persist(rec, a, err, false)
}

// record fills rec with a's outcome and counts the request.
func (c *Controller) record(rec *storage.AuditRecord, a answer, start time.Time) {
	d := c.now().Sub(start)
	fillRecord(rec, a)
	rec.DurationMs = d.Milliseconds()
	c.m.observe(rec.Service, rec.Op, rec.Status, d)
}

// appendAudit makes one attempt to write rec; a refusal is stored
// coalesced, without args.
func (c *Controller) appendAudit(rec *storage.AuditRecord, refusal bool) error {
	if c.audit == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	if refusal {
		_, coalesced, err := c.audit.AppendRefusal(ctx, *rec, c.ctl.RefusalWindow.Milliseconds())
		if coalesced {
			c.m.coalesced.Inc()
		}
		return err
	}
	_, err := c.audit.AppendAudit(ctx, *rec)
	return err
}

// persist retries writing rec after a first attempt failed with err,
// with a growing pause, until auditAttempts in all; a record that cannot
// be written turns a into INTERNAL.
func (c *Controller) persist(rec *storage.AuditRecord, a answer, err error, refusal bool) (answer, error) {
	for i := 1; i < auditAttempts && !errors.Is(err, storage.ErrClosed) && !errors.Is(err, storage.ErrInvalid); i++ {
		time.Sleep(time.Duration(i) * auditRetryPause)
		if err = c.appendAudit(rec, refusal); err == nil {
			return a, nil
		}
	}
	c.m.auditErrors.Inc()
	c.log.Error("control request not audited; answered INTERNAL",
		"device", rec.DeviceID, "service", rec.Service, "op", rec.Op, "status", rec.Status, "state", rec.State, "err", err)
	return answer{err: ErrNotAudited}, ErrNotAudited
}

// doError maps a supervisor refusal to the wire.
func (c *Controller) doError(err error) answer {
	switch {
	case errors.Is(err, supervisor.ErrUnknown):
		return answer{err: ErrUnknownService}
	case errors.Is(err, supervisor.ErrBusy):
		return refuse(protocol.Conflict, "operation in progress")
	case errors.Is(err, supervisor.ErrShutdown):
		return answer{err: &protocol.Error{Code: protocol.Unavailable, Message: "shutting down", RetryAfterMs: shutdownRetryMs}}
	}
	c.log.Error("control operation could not start", "err", err)
	return refuse(protocol.Internal, "operation could not start")
}

// notify publishes a service state change.
func (c *Controller) notify(st supervisor.State) {
	if c.bus == nil {
		return
	}
	code := st.ExitCode
	c.bus.Publish(events.Event{
		Kind: events.KindService, At: c.now().UnixMilli(),
		Service: st.Service, State: st.State, PID: st.PID, ExitCode: &code,
	})
}

// pruneLoop deletes records past audit_retention every pruneEvery and
// the oldest beyond audit_max_records every trimEvery.
func (c *Controller) pruneLoop() {
	defer c.wg.Done()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	trim := time.NewTicker(trimEvery)
	defer trim.Stop()
	c.prune()
	c.trim()
	for {
		select {
		case <-c.stop:
			return
		case <-prune.C:
			c.prune()
		case <-trim.C:
			c.trim()
		}
	}
}

func (c *Controller) prune() {
	if c.audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := c.now().Add(-c.ctl.AuditRetention.Duration).UnixMilli()
	n, err := c.audit.PruneAudit(ctx, before)
	c.m.pruned.Add(n)
	switch {
	case err != nil && !errors.Is(err, storage.ErrClosed):
		c.log.Warn("audit retention sweep failed", "err", err)
	case n > 0:
		c.log.Info("audit records past retention deleted", "count", n)
	}
}

// trim keeps the audit within control.audit_max_records.
func (c *Controller) trim() {
	if c.audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := c.audit.TrimAudit(ctx, c.ctl.AuditMaxRecords)
	c.m.pruned.Add(n)
	switch {
	case err != nil && !errors.Is(err, storage.ErrClosed):
		c.log.Warn("audit cap sweep failed", "err", err)
	case n > 0:
		c.log.Warn("oldest audit records deleted: control.audit_max_records reached", "count", n, "max", c.ctl.AuditMaxRecords)
	}
}
