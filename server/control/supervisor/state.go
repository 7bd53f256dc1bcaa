package supervisor

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// State is what is known of a service at one moment.
type State struct {
	// Service is the service id; Kind is "daemon" or "oneshot".
	Service, Kind string
	// State is "running", "stopped", "exited" or "failed"
	// (protocol.StateRunning etc.).
	State string
	// PID is the process that runs (a oneshot: its newest run), 0 when
	// none. In an operation's Result it is the process the operation
	// started or ended.
	PID int
	// ExitCode is the last exit code: -1 when a signal ended the process,
	// it could not be started, or the code is unknown (an adopted daemon
	// is not termd's child). 0 while running.
	ExitCode int
	// Signal names the signal that ended the process ("killed",
	// "terminated"), "" otherwise.
	Signal string
	// SinceMs is when the service entered State, unix ms.
	SinceMs int64
	// Output is a oneshot's output (stdout and stderr interleaved) of its
	// last finished run, at most output_max bytes, raw; "" for daemons.
	Output string
	// Running is the number of a oneshot's runs in progress.
	Running int
	// Restarts counts a daemon's restarts by its restart policy since
	// this termd started.
	Restarts int
	// Busy names the operation in progress ("start", "stop",
	// "restart"), "" when none.
	Busy string
	// Adopted: the daemon was started by an earlier termd.
	Adopted bool
}

// Result is how an operation ended.
type Result struct {
	// State is the service's state when the operation ended (see
	// State.PID).
	State State
	// TimedOut: the operation passed its timeout (start_timeout,
	// stop_timeout or restart_timeout). State is what was known then;
	// the supervisor still finishes the work (a stop keeps killing, a
	// restart still starts) in the background.
	TimedOut bool
	// Err is a fault of termd's own (the log file could not be opened,
	// ...), not a process outcome: a process that fails is State "failed".
	Err error
}

// Op is an operation begun by Do.
type Op struct {
	done    chan struct{}
	once    sync.Once
	res     Result
	current func() State
}

func newOp(current func() State) *Op {
	return &Op{done: make(chan struct{}), current: current}
}

// doneOp is an Op that is already over.
func doneOp(r Result) *Op {
	o := &Op{done: make(chan struct{})}
	o.finish(r)
	return o
}

// finish completes o with r; later calls do nothing (the first outcome,
// such as a timeout, stands).
func (o *Op) finish(r Result) {
	o.once.Do(func() {
		o.res = r
		close(o.done)
	})
}

// Done is closed when the operation is over (or has timed out).
func (o *Op) Done() <-chan struct{} { return o.done }

// Result is the outcome; the zero Result until Done is closed.
func (o *Op) Result() Result {
	select {
	case <-o.done:
		return o.res
	default:
		return Result{}
	}
}

// Current is what is known now: the result's state once done, else the
// live state of the service (for a oneshot run, with its pid).
func (o *Op) Current() State {
	select {
	case <-o.done:
		return o.res.State
	default:
		return o.current()
	}
}

// service is one configured service and what runs of it.
type service struct {
	cfg     config.Service // effective
	sup     *Supervisor
	log     *slog.Logger
	pidPath string
	logPath string

	mu       sync.Mutex
	st       State // Busy and Running are filled in by snapshot
	busy     string
	busyDone chan struct{} // closed when the exclusive operation ends
	// daemon
	cur      *proc         // the process that runs, nil when none
	lastArgs []string      // terminal args of the last start, for restarts
	fails    int           // consecutive failed runs, for the restart delay
	retry    *time.Timer   // pending restart of the restart policy
	retryGen uint64        // bumped when a pending restart is cancelled
	spawning chan struct{} // closed when the policy's restart has spawned
	// oneshot
	runs   map[*run]struct{} // runs in progress or being spawned
	runSeq uint64
	// Notify delivery, in order
	pending    []State
	delivering bool
}

func newService(s *Supervisor, c config.Service) *service {
	return &service{
		cfg: c, sup: s, log: s.log.With("service", c.ID),
		pidPath: filepath.Join(s.dir, c.ID+".pid"),
		logPath: filepath.Join(s.dir, c.ID+".log"),
		st:      State{Service: c.ID, Kind: c.Kind, State: protocol.StateStopped},
		runs:    make(map[*run]struct{}),
	}
}

func (v *service) daemon() bool { return v.cfg.Kind == config.KindDaemon }

// state is the current state, under the service's lock only.
func (v *service) state() State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snapshot()
}

// snapshot is the state; v.mu must be held.
func (v *service) snapshot() State {
	st := v.st
	st.Busy = v.busy
	if !v.daemon() {
		st.Running = len(v.runs)
		if st.Busy == "" && st.Running > 0 {
			st.Busy = config.OpStart
		}
	}
	return st
}

// change applies f under the service's lock, then delivers the new state
// to Notify and returns it.
func (v *service) change(f func(st *State)) State {
	v.mu.Lock()
	f(&v.st)
	st := v.snapshot()
	v.pending = append(v.pending, st)
	v.mu.Unlock()
	v.flush()
	return st
}

// flush delivers the pending states in order. Only one goroutine
// delivers at a time; the others leave their states to it.
func (v *service) flush() {
	v.mu.Lock()
	if v.delivering {
		v.mu.Unlock()
		return
	}
	v.delivering = true
	for len(v.pending) > 0 {
		batch := v.pending
		v.pending = nil
		v.mu.Unlock()
		if v.sup.notify != nil {
			for _, st := range batch {
				v.sup.notify(st)
			}
		}
		v.mu.Lock()
	}
	v.delivering = false
	v.mu.Unlock()
}

// begin claims the service for op and starts it on its own goroutine.
// The caller holds s.mu (so the goroutine is counted before a Shutdown
// waits).
func (v *service) begin(op string, args []string, started func(int) error) (*Op, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.busy != "" {
		return nil, ErrBusy
	}
	if !v.daemon() && op == config.OpStart {
		if len(v.runs) >= v.cfg.MaxConcurrent {
			return nil, ErrBusy
		}
		r := v.newRun(args)
		r.started = started
		o := newOp(r.current)
		v.sup.wg.Add(1)
		go v.runOp(r, o)
		return o, nil
	}
	v.busy, v.busyDone = op, make(chan struct{})
	o := newOp(v.state)
	v.sup.wg.Add(1)
	go v.exclusive(op, args, started, o)
	return o, nil
}

// exclusive runs a start, stop or restart that has the service to
// itself, bounded by the op's timeout.
func (v *service) exclusive(op string, args []string, started func(int) error, o *Op) {
	defer v.sup.wg.Done()
	t := time.AfterFunc(v.timeout(op), func() {
		o.finish(Result{State: v.state(), TimedOut: true})
	})
	var r Result
	switch {
	case v.daemon() && op == config.OpStart:
		r = v.startDaemon(args, started)
	case v.daemon() && op == config.OpStop:
		r = v.stopDaemon()
	case v.daemon():
		r = v.restartDaemon(args, started)
	case op == config.OpStop:
		r = v.stopRuns()
	default:
		r = v.restartOneshot(args, started)
	}
	t.Stop()
	// Free the service before the result is out: whoever sees Done may
	// begin the next operation at once.
	v.release()
	r.State.Busy = ""
	o.finish(r)
}

// timeout is the service's timeout for op.
func (v *service) timeout(op string) time.Duration {
	switch op {
	case config.OpStart:
		return v.cfg.StartTimeout.Duration
	case config.OpStop:
		return v.cfg.StopTimeout.Duration
	}
	return v.cfg.RestartTimeout.Duration
}

// release ends the exclusive operation.
func (v *service) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.busy = ""
	if v.busyDone != nil {
		close(v.busyDone)
		v.busyDone = nil
	}
}

// claim waits until no exclusive operation runs and takes the service
// for op (Shutdown, which must not fail with ErrBusy).
func (v *service) claim(op string) {
	for {
		v.mu.Lock()
		if v.busy == "" {
			v.busy, v.busyDone = op, make(chan struct{})
			v.mu.Unlock()
			return
		}
		ch := v.busyDone
		v.mu.Unlock()
		<-ch
	}
}

// shutdown is the service's part of Supervisor.Shutdown.
func (v *service) shutdown() {
	defer v.sup.wg.Done()
	if !v.daemon() {
		// Not claimed: a restart in progress holds the service until its
		// run ends, and this kills that run too. No run begins any more
		// (Do refuses, a restart's new run sees the stop request).
		v.stopRuns()
		return
	}
	v.cancelRetry()
	v.claim(config.OpStop)
	defer v.release()
	v.settle()
	v.mu.Lock()
	p := v.cur
	v.mu.Unlock()
	if p == nil {
		return
	}
	if v.cfg.OnShutdown == config.ShutdownLeave {
		close(p.detach)
		<-p.watched
		v.log.Info("daemon left running for the next termd", "pid", p.pid)
		return
	}
	v.stopProc(p)
}
