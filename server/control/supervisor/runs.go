package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/termd/termd/protocol"
)

// Oneshot runs have pidfiles too, services_dir/ID.PID.run (the same JSON
// as a daemon's ID.pid), written before the run is released from its gate
// and removed when it has ended. A termd killed during a run leaves the
// file; the next termd adopts the run if its process still runs (it
// counts against max_concurrent and STOP ends it), so a run is never
// started a second time beside it.

// runSuffix ends the name of a oneshot run's pidfile.
const runSuffix = ".run"

// runPidPath is the pidfile of the run with pid.
func (v *service) runPidPath(pid int) string {
	return filepath.Join(v.sup.dir, v.cfg.ID+"."+strconv.Itoa(pid)+runSuffix)
}

// writeRunPidfile writes the pidfile of the run with pid, durably.
func (v *service) writeRunPidfile(path string, pid int) error {
	st, err := readStat(pid)
	if err != nil {
		return fmt.Errorf("run start time: %w", err)
	}
	return writePidfile(path, pidfile{PID: pid, PGID: pid, StartTicks: st.start, Command: v.cfg.Command, StartedMs: v.sup.stamp()})
}

func removeFile(log *slog.Logger, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("pidfile not removed", "file", path, "err", err)
	}
}

// runPidfileOwner parses "ID.PID.run" into the service id; ok is false
// for any other name.
func runPidfileOwner(name string) (id string, ok bool) {
	base, ok := strings.CutSuffix(name, runSuffix)
	i := strings.LastIndexByte(base, '.')
	if !ok || i <= 0 {
		return "", false
	}
	if _, err := strconv.Atoi(base[i+1:]); err != nil {
		return "", false
	}
	return base[:i], true
}

// takeOverRuns adopts the oneshot runs an earlier termd left running and
// removes the pidfiles of those that ended.
func (s *Supervisor) takeOverRuns(cleanups *sync.WaitGroup) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := runPidfileOwner(e.Name())
		if !ok {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		v := s.svcs[id]
		if v == nil || v.daemon() {
			s.log.Warn("run pidfile of a service that is not a configured oneshot left alone", "file", path)
			continue
		}
		pf, err := readPidfile(path)
		switch {
		case err != nil:
			v.log.Warn("unreadable run pidfile removed", "err", err)
			removeFile(v.log, path)
		case !alive(pf.PID, pf.StartTicks):
			v.log.Info("stale run pidfile removed: its process is gone", "pid", pf.PID)
			cleanups.Go(func() { v.cleanLeftovers(pf) })
			removeFile(v.log, path)
		default:
			v.log.Warn("oneshot run adopted from an earlier termd: no new run until it ends", "pid", pf.PID)
			v.adoptRun(pf, path)
		}
	}
}

// adoptRun takes over a run an earlier termd started: it counts as a run
// in progress until its process ends (its output went to the earlier
// termd and is lost).
func (v *service) adoptRun(pf pidfile, path string) {
	v.mu.Lock()
	r := v.newRun(nil)
	r.pid = pf.PID
	v.mu.Unlock()
	v.change(func(st *State) {
		st.State, st.PID, st.ExitCode, st.Signal, st.SinceMs = protocol.StateRunning, pf.PID, 0, "", pf.StartedMs
	})
	v.sup.wg.Add(1)
	go v.watchRun(r, pf, path)
}

// watchRun waits for an adopted run to end by itself, be stopped, or
// pass its start_timeout (counted from when it began).
func (v *service) watchRun(r *run, pf pidfile, path string) {
	defer v.sup.wg.Done()
	defer close(r.finished)
	w := newExitWatch(pf.PID, pf.StartTicks, false, !v.sup.noPidfd)
	exited := make(chan struct{})
	v.sup.wg.Go(func() {
		defer w.close()
		for !w.wait(watchTick) {
		}
		close(exited)
	})
	left := time.Duration(pf.StartedMs+v.cfg.StartTimeout.Milliseconds()-v.sup.stamp()) * time.Millisecond
	timer := time.NewTimer(max(left, 0))
	defer timer.Stop()
	state := protocol.StateExited // how it ended is unknown: not termd's child
	select {
	case <-exited:
		cleanGroup(pf.PGID, v.cfg.StopGrace.Duration)
	case <-timer.C:
		v.log.Warn("adopted oneshot run passed its start_timeout; stopping it", "pid", pf.PID)
		terminate(pf.PGID, exited, v.cfg.StopGrace.Duration)
		state = protocol.StateFailed
	case <-r.stopReq:
		terminate(pf.PGID, exited, v.cfg.StopGrace.Duration)
		state = protocol.StateStopped
	}
	<-exited
	removeFile(v.log, path)
	v.runEnded(r, state, -1, "", "", false)
}

// cleanLeftovers stops what is left in the process group of a service
// whose leader ended while no termd watched it (killed with it, or ended
// while termd was down). Only when the leader's pid is unused: a process
// group id is not handed out again while the group has members, so
// members found then are the service's; a pid in use again means the old
// group is empty (its id was free to reuse) and -pgid may be another's.
func (v *service) cleanLeftovers(pf pidfile) {
	if pf.PGID != pf.PID {
		return // moved groups: the recorded one is not provably its own
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pf.PID)); !errors.Is(err, os.ErrNotExist) {
		return
	}
	if left, killed := cleanGroup(pf.PGID, v.cfg.StopGrace.Duration); left {
		v.log.Warn("processes left in the group of a service that ended while termd was away; stopped them", "pgid", pf.PGID, "killed", killed)
	}
}
