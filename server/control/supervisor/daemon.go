package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// watchTick bounds how long a daemon's watcher waits for the process to
// end before it checks the log size and whether to let go of the process.
const watchTick = 250 * time.Millisecond

// proc is a daemon process: termd's child, or one adopted from an earlier
// termd (then cmd is nil and its exit code cannot be read).
type proc struct {
	pid, pgid int
	ticks     uint64    // start time in clock ticks after boot (/proc/PID/stat)
	began     time.Time // for the run length (restart delay reset)
	adopted   bool
	cmd       *exec.Cmd
	w         *exitWatch

	done    chan struct{} // closed once it ended (and was reaped); final is set
	final   State         // the state it ended in, with its pid
	detach  chan struct{} // closed to let go of it (on_shutdown "leave")
	watched chan struct{} // closed when its watcher returned

	stopping bool // termd is stopping it: it ends "stopped"; under service.mu
}

// startDaemon is START: nothing when it runs; else spawn it and watch it
// for start_wait.
func (v *service) startDaemon(args []string, started func(int) error) Result {
	v.settle()
	v.mu.Lock()
	v.cancelRetryLocked() // a START during the restart delay starts now
	if v.cur != nil {
		st := v.snapshot()
		v.mu.Unlock()
		return Result{State: st}
	}
	v.lastArgs = slices.Clone(args)
	v.mu.Unlock()
	p, err := v.spawn(args, false, started)
	if err != nil {
		return Result{State: v.state(), Err: errOf(err)}
	}
	t := time.NewTimer(v.cfg.StartWait.Duration)
	defer t.Stop()
	select {
	case <-p.done:
		return Result{State: p.final}
	case <-t.C:
		return Result{State: v.state()}
	}
}

// stopDaemon is STOP: cancel a pending restart, and stop the process if
// one runs.
func (v *service) stopDaemon() Result {
	v.settle()
	v.mu.Lock()
	v.cancelRetryLocked()
	v.fails = 0
	p := v.cur
	st := v.snapshot()
	v.mu.Unlock()
	if p == nil {
		return Result{State: st}
	}
	return Result{State: v.stopProc(p)}
}

// restartDaemon is RESTART: stop if running, then start.
func (v *service) restartDaemon(args []string, started func(int) error) Result {
	v.settle()
	v.mu.Lock()
	v.cancelRetryLocked()
	p := v.cur
	v.mu.Unlock()
	if p != nil {
		v.stopProc(p)
	}
	return v.startDaemon(args, started)
}

// stopProc signals p's process group (SIGTERM, stop_grace, SIGKILL) and
// returns the state it ended in, once it is gone.
func (v *service) stopProc(p *proc) State {
	v.mu.Lock()
	p.stopping = true
	v.mu.Unlock()
	v.log.Info("stopping daemon", "pid", p.pid, "grace", v.cfg.StopGrace.Duration)
	if terminate(p.pgid, p.done, v.cfg.StopGrace.Duration) {
		v.log.Warn("daemon killed after its stop grace", "pid", p.pid)
	}
	<-p.done
	return p.final
}

// spawn starts the daemon with its output appended to its log file,
// writes its pidfile and watches it. The daemon is held at its gate until
// the pidfile is durable and started (if set) has accepted its pid: a
// crash of termd at any moment leaves either no process or one a next
// termd finds. A daemon that cannot be started is "failed" (exit code
// -1), and the restart policy applies.
func (v *service) spawn(args []string, restart bool, started func(pid int) error) (*proc, error) {
	if v.sup.closing.Load() {
		return nil, ErrShutdown
	}
	cmd, g, gr, err := v.command(args)
	if err != nil {
		return nil, v.startFailed(err, restart)
	}
	// The daemon gets the file itself (O_APPEND), not a pipe: it must
	// keep logging when termd is gone (on_shutdown "leave", kill -9).
	f, err := os.OpenFile(v.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		g.shut()
		gr.Close()
		return nil, v.startFailed(fmt.Errorf("log file: %w", err), restart)
	}
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close()
	gr.Close()
	if err != nil {
		g.shut()
		return nil, v.startFailed(execError{err}, restart)
	}
	pid := cmd.Process.Pid
	p := &proc{
		pid: pid, pgid: pid, began: time.Now(), cmd: cmd,
		done: make(chan struct{}), detach: make(chan struct{}), watched: make(chan struct{}),
	}
	since := v.sup.stamp()
	ps, err := readStat(pid)
	if err == nil {
		p.ticks = ps.start
		pf := pidfile{PID: pid, PGID: p.pgid, StartTicks: p.ticks, Command: v.cfg.Command, StartedMs: since}
		err = writePidfile(v.pidPath, pf)
	}
	if err == nil && started != nil {
		err = started(pid)
	}
	if err == nil {
		err = g.open()
	}
	if err != nil {
		// Never released: it exits without running the command.
		g.shut()
		_ = cmd.Wait()
		v.removePidfile()
		return nil, v.startFailed(fmt.Errorf("daemon not released: %w", err), restart)
	}
	p.w = newExitWatch(pid, p.ticks, true, !v.sup.noPidfd)
	v.change(func(st *State) {
		v.cur = p
		st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs, st.Adopted = protocol.StateRunning, pid, 0, "", since, false
		if restart {
			st.Restarts++
		}
	})
	v.log.Info("daemon started", "pid", pid, "restart", restart)
	v.sup.wg.Add(1)
	go v.watch(p)
	return p, nil
}

// execError marks an error of the process start itself (as opposed to
// termd's own files): the state says failed and Result.Err stays nil.
type execError struct{ error }

func (e execError) Unwrap() error { return e.error }

// errOf is the Result.Err of a start error: nil for a program that could
// not be executed (the state tells), the error for termd's own faults.
func errOf(err error) error {
	if _, ok := err.(execError); ok {
		return nil
	}
	return err
}

// startFailed records a start that did not happen and returns err.
func (v *service) startFailed(err error, restart bool) error {
	v.log.Error("daemon could not be started", "err", err)
	v.change(func(st *State) {
		st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs, st.Adopted = protocol.StateFailed, 0, -1, "", v.sup.stamp(), false
		if restart {
			st.Restarts++
		}
		v.scheduleRetry(0)
	})
	return err
}

// adopt takes over a daemon an earlier termd started. announce: it
// becomes the service's running state (on_start "adopt"); else it is only
// watched until stopped (on_start "stop").
func (v *service) adopt(pf pidfile, announce bool) *proc {
	p := &proc{
		pid: pf.PID, pgid: pf.PGID, ticks: pf.StartTicks, began: time.Now(), adopted: true,
		done: make(chan struct{}), detach: make(chan struct{}), watched: make(chan struct{}),
	}
	p.w = newExitWatch(p.pid, p.ticks, false, !v.sup.noPidfd)
	if announce {
		v.change(func(st *State) {
			v.cur = p
			st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs, st.Adopted = protocol.StateRunning, p.pid, 0, "", pf.StartedMs, true
		})
	} else {
		v.mu.Lock()
		v.cur = p
		v.mu.Unlock()
	}
	v.sup.wg.Add(1)
	go v.watch(p)
	return p
}

// watch waits for p to end, rotating the log file meanwhile, unless
// Shutdown lets go of p first.
func (v *service) watch(p *proc) {
	defer v.sup.wg.Done()
	defer close(p.watched)
	defer p.w.close()
	for {
		select {
		case <-p.detach:
			if p.cmd != nil {
				_ = p.cmd.Process.Release()
			}
			return
		default:
		}
		if p.w.wait(watchTick) {
			break
		}
		v.rotateLog()
	}
	v.ended(p)
}

// ended records that p ended: reaps it (if termd's child), removes the
// pidfile, sets the state and applies the restart policy.
func (v *service) ended(p *proc) {
	code, sig := -1, ""
	if p.cmd != nil {
		_ = p.cmd.Wait() // the exit status is in ProcessState
		code, sig = exitOf(p.cmd.ProcessState)
	}
	v.mu.Lock()
	stopping := p.stopping
	v.mu.Unlock()
	if !stopping { // a stop empties the group itself
		if left, killed := cleanGroup(p.pgid, v.cfg.StopGrace.Duration); left {
			v.log.Warn("daemon ended leaving processes in its group; stopped them", "pid", p.pid, "killed", killed)
		}
	}
	if err := os.Remove(v.pidPath); err != nil && !os.IsNotExist(err) {
		v.log.Warn("daemon pidfile not removed", "err", err)
	}
	lived := time.Since(p.began)
	var state string
	v.change(func(st *State) {
		switch {
		case p.stopping:
			state = protocol.StateStopped
		case p.adopted:
			// Not termd's child: how it ended is unknown. The restart
			// policy still applies (below), since it may have failed.
			state = protocol.StateExited
		case code == 0 && sig == "":
			state = protocol.StateExited
		default:
			state = protocol.StateFailed
		}
		v.cur = nil
		st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs, st.Adopted = state, 0, code, sig, v.sup.stamp(), false
		if !p.stopping && (state == protocol.StateFailed || p.adopted) {
			v.scheduleRetry(lived)
		}
		p.final = v.snapshot()
		p.final.PID, p.final.Busy = p.pid, ""
	})
	close(p.done)
	v.log.Info("daemon ended", "pid", p.pid, "state", state, "exit_code", code, "signal", sig, "ran", lived.Round(time.Millisecond))
}

// scheduleRetry arms the restart policy after a failure of a run that
// lasted lived: restart_delay, doubled per consecutive failure up to
// restart_delay_max; a run that lasted restart_delay_max resets the count.
// v.mu is held. Nothing before Start, during Shutdown, or while a retry
// is already armed.
func (v *service) scheduleRetry(lived time.Duration) {
	if v.cfg.Restart != config.RestartOnFailure || !v.sup.started.Load() || v.sup.closing.Load() || v.retry != nil {
		return
	}
	if lived >= v.cfg.RestartDelayMax.Duration {
		v.fails = 0
	}
	v.fails++
	d := backoff(v.cfg.RestartDelay.Duration, v.cfg.RestartDelayMax.Duration, v.fails)
	v.retryGen++
	gen := v.retryGen
	v.sup.wg.Add(1)
	v.retry = time.AfterFunc(d, func() { v.retryNow(gen) })
	v.log.Info("daemon restart scheduled", "in", d, "failures", v.fails)
}

// backoff is the delay before the restart after the fails-th consecutive
// failure: base, doubled per failure, at most most.
func backoff(base, most time.Duration, fails int) time.Duration {
	most = max(most, base)
	d := base
	for i := 1; i < fails && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// cancelRetryLocked disarms a pending restart; v.mu is held.
func (v *service) cancelRetryLocked() {
	if v.retry == nil {
		return
	}
	if v.retry.Stop() {
		v.sup.wg.Done() // the callback will not run
	}
	// Else the callback is running: it sees the new generation and does
	// nothing but wg.Done.
	v.retry = nil
	v.retryGen++
}

func (v *service) cancelRetry() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cancelRetryLocked()
}

// retryNow is the restart policy's timer: restart the daemon unless the
// retry was cancelled, an operation has the service, or termd stops.
func (v *service) retryNow(gen uint64) {
	defer v.sup.wg.Done()
	v.mu.Lock()
	if gen != v.retryGen {
		v.mu.Unlock()
		return
	}
	v.retry = nil
	if v.sup.closing.Load() || v.busy != "" || v.cur != nil || v.spawning != nil {
		v.mu.Unlock()
		return
	}
	// Not v.busy: an operation asked for meanwhile must not fail with
	// ErrBusy because of this; it waits for the spawn instead (settle).
	spawning := make(chan struct{})
	v.spawning = spawning
	args := v.lastArgs
	v.mu.Unlock()
	_, _ = v.spawn(args, true, nil)
	v.mu.Lock()
	v.spawning = nil
	v.mu.Unlock()
	close(spawning)
}

// settle waits for a restart by the policy that is spawning the daemon.
// The caller holds the service (v.busy), so no other begins.
func (v *service) settle() {
	v.mu.Lock()
	ch := v.spawning
	v.mu.Unlock()
	if ch != nil {
		<-ch
	}
}
