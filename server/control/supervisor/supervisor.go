// Package supervisor runs the services of termd's configuration as child
// processes: daemons (long-running, with pidfiles, log files, re-adoption
// by the next termd and a restart policy) and oneshots (runs whose exit
// code and output are the result). It knows nothing of terminals, ACLs or
// the audit; package control decides who may ask and answers them.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/internal/lifecycle"
)

// Errors of Do and Status.
var (
	// ErrUnknown: no service has that id.
	ErrUnknown = errors.New("supervisor: unknown service")
	// ErrBusy: another start, stop or restart of the service is in
	// progress, or a oneshot already has max_concurrent runs.
	ErrBusy = errors.New("supervisor: operation in progress")
	// ErrShutdown: Shutdown has begun; no operation starts any more.
	ErrShutdown = errors.New("supervisor: shutting down")
	// ErrBadOp: the op is not start, stop, restart or status.
	ErrBadOp = errors.New("supervisor: unknown operation")
)

// Options configures a Supervisor.
type Options struct {
	// Services are the configured services; each is used through its
	// Effective() defaults.
	Services []config.Service
	// Dir is the services dir (pidfiles, daemon logs, default working
	// directory). It is created 0700 if missing.
	Dir string
	// Log receives operational messages; nil: slog.Default().
	Log *slog.Logger
	// Notify, if set, is called on every state change (started, exited,
	// stopped, failed, adopted, restarted), in order per service, from
	// any goroutine and without the supervisor's locks held. It must not
	// block long: it delays the service's next transition.
	Notify func(State)
	// Now overrides time.Now for the timestamps in states and pidfiles
	// (timers always use the real clock).
	Now func() time.Time
	// Environ looks up the variables named by env_inherit; nil: os.Getenv.
	// An empty value counts as unset and is not passed.
	Environ func(string) string

	// noPidfd makes process watching poll instead of using pidfds (tests
	// of the fallback).
	noPidfd bool
}

// Supervisor owns the configured services and their processes.
type Supervisor struct {
	dir     string
	log     *slog.Logger
	notify  func(State)
	now     func() time.Time
	environ func(string) string
	noPidfd bool

	svcs map[string]*service
	ids  []string // sorted

	mu      sync.Mutex // orders Do's wg.Add before Shutdown's wg.Wait
	started atomic.Bool
	closing atomic.Bool
	wg      sync.WaitGroup // every goroutine the supervisor starts
}

var serviceIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// New checks the services, creates the services dir and takes over what
// an earlier termd left: for every daemon with a pidfile whose process
// still runs, it adopts the process or stops it (on_start); stale
// pidfiles are removed. It starts no process; Start does.
func New(opt Options) (*Supervisor, error) {
	if opt.Dir == "" {
		return nil, errors.New("supervisor: no services dir")
	}
	s := &Supervisor{
		dir: opt.Dir, log: opt.Log, notify: opt.Notify, now: opt.Now, environ: opt.Environ,
		noPidfd: opt.noPidfd, svcs: make(map[string]*service),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.environ == nil {
		s.environ = os.Getenv
	}
	for _, raw := range opt.Services {
		c := raw.Effective()
		if err := check(c); err != nil {
			return nil, err
		}
		if s.svcs[c.ID] != nil {
			return nil, fmt.Errorf("supervisor: service %q: id is used twice", c.ID)
		}
		s.svcs[c.ID] = newService(s, c)
		s.ids = append(s.ids, c.ID)
	}
	sort.Strings(s.ids)
	if err := inheritedFDs(); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: services dir: %w", err)
	}
	s.takeOver()
	return s, nil
}

// check refuses a service the supervisor could not run. The full
// validation (with every problem named) is config.Validate's; this only
// guards the assumptions of this package.
func check(c config.Service) error {
	switch {
	case !serviceIDRe.MatchString(c.ID):
		return fmt.Errorf("supervisor: service id %q: must be 1-64 letters, digits, '.', '_' or '-'", c.ID)
	case c.Kind != config.KindDaemon && c.Kind != config.KindOneshot:
		return fmt.Errorf("supervisor: service %q: unknown kind %q", c.ID, c.Kind)
	case !filepath.IsAbs(c.Command):
		return fmt.Errorf("supervisor: service %q: command %q is not an absolute path", c.ID, c.Command)
	case c.Dir != "" && !filepath.IsAbs(c.Dir):
		return fmt.Errorf("supervisor: service %q: dir %q is not an absolute path", c.ID, c.Dir)
	case c.MaxConcurrent < 1 || c.OutputMax < 1:
		return fmt.Errorf("supervisor: service %q: max_concurrent and output_max must be positive", c.ID)
	case c.StopGrace.Duration <= 0 || c.StartWait.Duration <= 0 || c.RestartDelay.Duration <= 0:
		return fmt.Errorf("supervisor: service %q: stop_grace, start_wait and restart_delay must be positive", c.ID)
	}
	return nil
}

// Start starts the autostart daemons that are not already running
// (adopted) and enables the restart policies. Calls after the first, or
// after Shutdown, do nothing.
func (s *Supervisor) Start() {
	if s.closing.Load() || s.started.Swap(true) {
		return
	}
	for _, id := range s.ids {
		v := s.svcs[id]
		if v.cfg.Kind != config.KindDaemon || !v.cfg.Autostart {
			continue
		}
		if _, err := s.Do(id, config.OpStart, nil, "autostart"); err != nil && !errors.Is(err, ErrShutdown) {
			v.log.Warn("autostart not done", "err", err)
		}
	}
}

// Shutdown stops every oneshot run and every daemon with on_shutdown
// "stop" (in parallel, each SIGTERM, stop_grace, SIGKILL, after the
// operation in progress on it ends), and lets go of the daemons with
// "leave", whose pidfiles stay for the next termd to adopt. It returns
// when all of that is done and every goroutine of the supervisor has
// ended, or with ctx's error when ctx ends first (the stops go on in the
// background). Afterwards Do returns ErrShutdown.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing.Swap(true)
	if first {
		for _, id := range s.ids {
			s.wg.Add(1)
			go s.svcs[id].shutdown()
		}
	}
	s.mu.Unlock()
	if err := lifecycle.Wait(ctx, &s.wg); err != nil {
		return fmt.Errorf("supervisor: shutdown: %w", err)
	}
	return nil
}

// Services returns the state of every service, sorted by id.
func (s *Supervisor) Services() []State {
	out := make([]State, 0, len(s.ids))
	for _, id := range s.ids {
		out = append(out, s.svcs[id].state())
	}
	return out
}

// Status returns the state of service id, or ErrUnknown. It never waits
// for an operation in progress.
func (s *Supervisor) Status(id string) (State, error) {
	v := s.svcs[id]
	if v == nil {
		return State{}, ErrUnknown
	}
	return v.state(), nil
}

// Do begins op ("start", "stop", "restart" or "status") on service id and
// returns at once; the Op tells when it is done and how it went. args
// (start and restart only) follow the configured args; src names who
// asked, for the log. Errors: ErrUnknown, ErrBadOp, ErrBusy (another
// start, stop or restart in progress, or a oneshot at max_concurrent),
// ErrShutdown.
func (s *Supervisor) Do(id, op string, args []string, src string) (*Op, error) {
	return s.DoStarted(id, op, args, src, nil)
}

// DoStarted is Do with started, which is called with the pid of each
// process the operation starts after its pidfile is durable and before
// the process runs the command (it is held at a gate until then). An
// error from started keeps the process from running: the operation ends
// with Result.Err. Callers use it to commit a record of the run first.
func (s *Supervisor) DoStarted(id, op string, args []string, src string, started func(pid int) error) (*Op, error) {
	v := s.svcs[id]
	if v == nil {
		return nil, ErrUnknown
	}
	switch op {
	case config.OpStatus:
		return doneOp(Result{State: v.state()}), nil
	case config.OpStart, config.OpStop, config.OpRestart:
	default:
		return nil, fmt.Errorf("%w %q", ErrBadOp, op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil, ErrShutdown
	}
	o, err := v.begin(op, args, started)
	if err != nil {
		return nil, err
	}
	v.log.Debug("service operation", "op", op, "src", src, "args", len(args))
	return o, nil
}

// stamp is the current time in unix ms, from the configured clock.
func (s *Supervisor) stamp() int64 { return s.now().UnixMilli() }
