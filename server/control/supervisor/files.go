package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/termd/termd/server/config"
)

// The services dir holds, per daemon, ID.pid while it runs and its log
// ID.log (with ID.log.1, the previous part).

// pidfile is the content of ID.pid (JSON): enough to find the daemon
// again after termd restarts and to tell it from a process that reused
// its pid.
type pidfile struct {
	PID        int    `json:"pid"`
	PGID       int    `json:"pgid"`
	StartTicks uint64 `json:"start_ticks"` // /proc/PID/stat field 22
	Command    string `json:"command"`
	StartedMs  int64  `json:"started_ms"`
}

// writePidfile writes pf to path atomically and durably: a temp file,
// fsync, rename, fsync of the directory.
func writePidfile(path string, pf pidfile) error {
	b, err := json.Marshal(pf)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pidfile: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func readPidfile(path string) (pidfile, error) {
	var pf pidfile
	b, err := os.ReadFile(path)
	if err != nil {
		return pf, err
	}
	if err := json.Unmarshal(b, &pf); err != nil {
		return pf, fmt.Errorf("pidfile %s: %w", path, err)
	}
	if pf.PID <= 1 || pf.PGID <= 1 {
		return pf, fmt.Errorf("pidfile %s: bad pid %d or pgid %d", path, pf.PID, pf.PGID)
	}
	return pf, nil
}

// takeOver handles the pidfiles an earlier termd left: a daemon whose
// process still runs (same start time) is adopted, or stopped when its
// on_start says so (all such stops in parallel, before New returns);
// other pidfiles are removed, and what their processes left in their
// groups is stopped (cleanLeftovers). Oneshot runs: takeOverRuns.
func (s *Supervisor) takeOver() {
	var stops sync.WaitGroup
	for _, id := range s.ids {
		v := s.svcs[id]
		pf, err := readPidfile(v.pidPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			v.log.Warn("unreadable pidfile removed", "err", err)
			v.removePidfile()
			continue
		case !v.daemon():
			v.log.Warn("pidfile of a service that is no longer a daemon left alone", "pid", pf.PID)
			continue
		case !alive(pf.PID, pf.StartTicks):
			v.log.Info("stale pidfile removed: its process is gone", "pid", pf.PID, "command", pf.Command)
			stops.Go(func() { v.cleanLeftovers(pf) })
			v.removePidfile()
			continue
		}
		if st, err := readStat(pf.PID); err == nil && st.pgrp != pf.PGID && st.pgrp > 1 {
			// It moved to another group (setpgid); signal the one it is in.
			v.log.Warn("daemon changed its process group", "pid", pf.PID, "pgid", pf.PGID, "now", st.pgrp)
			pf.PGID = st.pgrp
		}
		if v.cfg.OnStart == config.StartStop {
			v.log.Info("stopping a daemon an earlier termd left running", "pid", pf.PID, "command", pf.Command)
			p := v.adopt(pf, false)
			stops.Go(func() { v.stopProc(p) })
			continue
		}
		v.log.Info("daemon adopted from an earlier termd", "pid", pf.PID, "command", pf.Command)
		v.adopt(pf, true)
	}
	s.takeOverRuns(&stops)
	stops.Wait()
	s.unknownPidfiles()
}

// unknownPidfiles logs pidfiles of services no longer configured: their
// daemons may still run, and termd will not touch them.
func (s *Supervisor) unknownPidfiles() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".pid")
		if ok && s.svcs[id] == nil {
			s.log.Warn("pidfile of a service that is not configured left alone", "file", filepath.Join(s.dir, e.Name()))
		}
	}
}

func (v *service) removePidfile() {
	if err := os.Remove(v.pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		v.log.Warn("pidfile not removed", "err", err)
	}
}

// rotateLog moves ID.log to ID.log.1 once it is larger than output_max,
// by copy and truncate: the daemon holds the file open with O_APPEND
// (termd does not, and an adopted daemon's descriptor cannot be reopened),
// so after the truncation its writes go to the start of the same file.
// Renaming would leave it writing to ID.log.1 forever. What it writes
// between the copy and the truncation is lost; the file may pass
// output_max by what is written in one watchTick.
func (v *service) rotateLog() {
	fi, err := os.Stat(v.logPath)
	if err != nil || fi.Size() <= int64(v.cfg.OutputMax) {
		return
	}
	if err := copyFile(v.logPath, v.logPath+".1"); err != nil {
		v.log.Warn("daemon log not rotated", "err", err)
		return
	}
	if err := os.Truncate(v.logPath, 0); err != nil {
		v.log.Warn("daemon log not truncated after its copy", "err", err)
	}
}

// copyFile copies src over dst through a temp file and a rename, so dst
// is always a whole copy.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err = errors.Join(err, out.Close()); err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
