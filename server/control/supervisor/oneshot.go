package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
)

// outputDrain is how long a finished run's output is still read: a
// process the run left behind may hold the pipe open, and must not hold
// the result.
const outputDrain = 100 * time.Millisecond

// run is one run of a oneshot, from the START that reserved it until it
// ended.
type run struct {
	v        *service
	args     []string
	seq      uint64        // order of the runs, newest highest
	stopReq  chan struct{} // closed to stop the run (STOP, RESTART, Shutdown)
	stopOnce sync.Once
	finished chan struct{} // closed when the run is over

	pid  int  // 0 until spawned; under service.mu
	over bool // under service.mu

	// started is called with the pid before the process is released
	// (see Supervisor.DoStarted); nil: nothing to call.
	started func(pid int) error
}

// newRun reserves a run; v.mu is held. It counts as in progress (and can
// be stopped) from now on.
func (v *service) newRun(args []string) *run {
	v.runSeq++
	r := &run{
		v: v, args: slices.Clone(args), seq: v.runSeq,
		stopReq: make(chan struct{}), finished: make(chan struct{}),
	}
	v.runs[r] = struct{}{}
	return r
}

func (r *run) stop() { r.stopOnce.Do(func() { close(r.stopReq) }) }

// current is the state for Op.Current: the service's, with this run's
// pid (0 until it is spawned, never another run's) until it is over.
func (r *run) current() State {
	r.v.mu.Lock()
	defer r.v.mu.Unlock()
	st := r.v.snapshot()
	if !r.over {
		st.PID = r.pid
		if r.pid != 0 {
			st.State = protocol.StateRunning
		}
	}
	return st
}

// runOp is a oneshot START: the run, its result the op's.
func (v *service) runOp(r *run, o *Op) {
	defer v.sup.wg.Done()
	o.finish(v.execRun(r))
}

// execRun spawns the run, collects its output tail and waits for it to
// end: by itself, killed at start_timeout (failed, TimedOut) or stopped.
func (v *service) execRun(r *run) Result {
	defer close(r.finished)
	select {
	case <-r.stopReq:
		return v.runEnded(r, protocol.StateStopped, 0, "", "", false)
	default:
	}
	cmd, g, gr, err := v.command(r.args)
	if err != nil {
		return v.runFailed(r, err, errOf(err) != nil)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		g.shut()
		gr.Close()
		return v.runFailed(r, fmt.Errorf("output pipe: %w", err), true)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	gr.Close()
	if err != nil {
		g.shut()
		pr.Close()
		return v.runFailed(r, err, false)
	}
	pid := cmd.Process.Pid
	// Like a daemon's, the run is held at its gate until its pidfile is
	// durable and started has accepted it: a next termd then knows of it
	// (and does not start a run too many) whenever termd dies.
	pidPath := v.runPidPath(pid)
	err = v.writeRunPidfile(pidPath, pid)
	if err == nil && r.started != nil {
		err = r.started(pid)
	}
	if err == nil {
		err = g.open()
	}
	if err != nil {
		g.shut()
		_ = cmd.Wait()
		pr.Close()
		removeFile(v.log, pidPath)
		return v.runFailed(r, fmt.Errorf("run not released: %w", err), true)
	}
	defer removeFile(v.log, pidPath)
	out := newTail(v.cfg.OutputMax)
	copied, exited := make(chan struct{}), make(chan struct{})
	v.sup.wg.Add(2)
	go func() {
		defer v.sup.wg.Done()
		defer close(copied)
		_, _ = io.Copy(out, pr)
	}()
	go func() {
		defer v.sup.wg.Done()
		defer close(exited)
		_ = cmd.Wait() // the exit status is in ProcessState
	}()
	since := v.sup.stamp()
	v.change(func(st *State) {
		r.pid = pid
		if st.State != protocol.StateRunning {
			st.State, st.ExitCode, st.Signal, st.SinceMs = protocol.StateRunning, 0, "", since
		}
		st.PID = pid
	})
	v.log.Info("oneshot run started", "pid", pid)

	timer := time.NewTimer(v.cfg.StartTimeout.Duration)
	defer timer.Stop()
	var timedOut, stopped bool
	select {
	case <-exited:
	case <-timer.C:
		timedOut = true
		v.log.Warn("oneshot run passed its start_timeout; stopping it", "pid", pid, "timeout", v.cfg.StartTimeout.Duration)
		terminate(pid, exited, v.cfg.StopGrace.Duration)
	case <-r.stopReq:
		stopped = true
		terminate(pid, exited, v.cfg.StopGrace.Duration)
	}
	<-exited
	if !timedOut && !stopped { // else terminate has emptied the group
		if left, killed := cleanGroup(pid, v.cfg.StopGrace.Duration); left {
			v.log.Warn("oneshot run ended leaving processes in its group; stopped them", "pid", pid, "killed", killed)
		}
	}
	_ = pr.SetReadDeadline(time.Now().Add(outputDrain))
	<-copied
	pr.Close()
	code, sig := exitOf(cmd.ProcessState)
	state := protocol.StateFailed
	switch {
	case stopped:
		state = protocol.StateStopped
	case !timedOut && code == 0 && sig == "":
		state = protocol.StateExited
	}
	return v.runEnded(r, state, code, sig, out.String(), timedOut)
}

// startFailedOutput is a failed start's output as terminals see it: the
// cause without the path an exec error names (the log has it all).
func startFailedOutput(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "the program could not be started: " + pe.Err.Error()
	}
	return "the program could not be started (termd's log has the cause)"
}

// runFailed ends a run that could not be started: failed, exit code -1,
// the error as its output. fault: termd's own (Result.Err), not the
// program's.
func (v *service) runFailed(r *run, err error, fault bool) Result {
	v.log.Error("oneshot could not be started", "err", err)
	// The output goes to terminals: never the error text, which names
	// server paths. The log above has it.
	res := v.runEnded(r, protocol.StateFailed, -1, "", startFailedOutput(err), false)
	if fault {
		res.Err = err
	}
	return res
}

// runEnded records the end of r and returns its result. While other runs
// are in progress the service stays running (with the newest one's pid)
// and only its output changes.
func (v *service) runEnded(r *run, state string, code int, sig, output string, timedOut bool) Result {
	now := v.sup.stamp()
	var res State
	v.change(func(st *State) {
		delete(v.runs, r)
		r.over = true
		st.Output = output
		if n := v.newestRun(); n != nil {
			st.PID = n.pid
		} else {
			st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs = state, 0, code, sig, now
		}
		res = v.snapshot()
		res.State, res.PID, res.ExitCode, res.Signal, res.Output, res.SinceMs = state, r.pid, code, sig, output, now
	})
	if r.pid != 0 {
		v.log.Info("oneshot run ended", "pid", r.pid, "state", state, "exit_code", code, "signal", sig, "timed_out", timedOut)
	}
	return Result{State: res, TimedOut: timedOut}
}

// newestRun is the newest run that has a process, or nil; v.mu is held.
func (v *service) newestRun() *run {
	var n *run
	for r := range v.runs {
		if r.pid != 0 && (n == nil || r.seq > n.seq) {
			n = r
		}
	}
	return n
}

// stopRuns is a oneshot's STOP: stop every run (SIGTERM, stop_grace,
// SIGKILL) and wait until all are over.
func (v *service) stopRuns() Result {
	v.mu.Lock()
	rs := make([]*run, 0, len(v.runs))
	for r := range v.runs {
		rs = append(rs, r)
	}
	st := v.snapshot()
	v.mu.Unlock()
	if len(rs) == 0 {
		return Result{State: st}
	}
	v.log.Info("stopping oneshot runs", "runs", len(rs))
	for _, r := range rs {
		r.stop()
	}
	for _, r := range rs {
		<-r.finished
	}
	return Result{State: v.state()}
}

// restartOneshot is a oneshot's RESTART: stop its runs, then one new run.
func (v *service) restartOneshot(args []string, started func(int) error) Result {
	v.stopRuns()
	v.mu.Lock()
	if v.sup.closing.Load() {
		st := v.snapshot()
		v.mu.Unlock()
		return Result{State: st, Err: ErrShutdown}
	}
	r := v.newRun(args)
	r.started = started
	v.mu.Unlock()
	return v.execRun(r)
}

// tail keeps the last max bytes written to it, in a ring.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []byte // grows to max, then is a ring starting at start
	start int
}

func newTail(max int) *tail { return &tail{max: max} }

// Write implements io.Writer; it never fails.
func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.start = 0
		return n, nil
	}
	if room := t.max - len(t.buf); room > 0 {
		k := min(room, len(p))
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		c := copy(t.buf[t.start:], p)
		p = p[c:]
		t.start = (t.start + c) % t.max
	}
	return n, nil
}

// String is the kept bytes, oldest first.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf[t.start:]) + string(t.buf[:t.start])
}
