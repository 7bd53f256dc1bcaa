package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// A daemon's and a oneshot run's pidfile exist before the process does
// anything: its first action reads them. The started hook sees the pid
// before the process runs, and an error from it keeps the command from
// ever running.
func TestPidfileBeforeRun(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	dir := filepath.Join(t.TempDir(), "services")
	dSeen, oSeen := filepath.Join(out, "daemon"), filepath.Join(out, "oneshot")
	s := open(t, dir, nil,
		shService(t, "d", config.KindDaemon, "pidfile-first.sh", filepath.Join(dir, "d.pid"), dSeen, "d", "600"),
		shService(t, "o", config.KindOneshot, "pidfile-first.sh", dir, oSeen, "o", "0"))
	var hooked int
	o, err := s.DoStarted("d", config.OpStart, nil, "test", func(pid int) error {
		// The process is held: it has not read its pidfile yet.
		if _, err := os.Stat(dSeen); err == nil {
			return errors.New("the daemon ran before its started hook")
		}
		hooked = pid
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-o.Done()
	st := o.Result().State
	wantState(t, "daemon", st, protocol.StateRunning)
	killGroup(t, st.PID)
	if hooked != st.PID {
		t.Fatalf("started hook saw pid %d, the daemon is %d", hooked, st.PID)
	}
	waitFor(t, "daemon's copy of its pidfile", func() bool {
		b, _ := os.ReadFile(dSeen)
		return strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, st.PID))
	})
	r := s.do(t, "o", config.OpStart).State
	wantState(t, "oneshot", r, protocol.StateExited)
	if b, _ := os.ReadFile(oSeen); !strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, r.PID)) {
		t.Fatalf("the run's first action saw %q, want its pidfile with pid %d", b, r.PID)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("o.%d.run", r.PID))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run pidfile left after the run: %v", err)
	}

	// A hook that fails: the command never runs.
	os.Remove(oSeen)
	o, err = s.DoStarted("o", config.OpStart, nil, "test", func(int) error { return errors.New("audit is down") })
	if err != nil {
		t.Fatal(err)
	}
	<-o.Done()
	if res := o.Result(); res.Err == nil || res.State.State != protocol.StateFailed {
		t.Fatalf("run whose hook failed: %+v", res)
	}
	if _, err := os.Stat(oSeen); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command ran although its hook failed: %v", err)
	}
}

// A oneshot run an earlier termd left (its pidfile ID.PID.run, its
// process alive) is adopted: it counts against max_concurrent, so a START
// is ErrBusy, until it ends; then its pidfile is gone and START runs. A
// run pidfile whose process is gone is removed.
func TestOneshotRunAdopted(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "services")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	left := exec.Command("sleep", "600")
	left.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	pid := left.Process.Pid
	killGroup(t, pid)
	ended := make(chan struct{})
	go func() { _ = left.Wait(); close(ended) }()
	st, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("o.%d.run", pid))
	if err := writePidfile(path, pidfile{PID: pid, PGID: pid, StartTicks: st.start, Command: "sleep", StartedMs: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "o.999999999.run")
	if err := writePidfile(stale, pidfile{PID: 999999999, PGID: 999999999, StartTicks: 1}); err != nil {
		t.Fatal(err)
	}
	svc := shService(t, "o", config.KindOneshot, "ok.sh")
	svc.StartTimeout = config.D(2 * waitLimit) // counted from StartedMs
	s := open(t, dir, nil, svc)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale run pidfile kept: %v", err)
	}
	got := s.status(t, "o")
	if got.State != protocol.StateRunning || got.PID != pid || got.Running != 1 {
		t.Fatalf("adopted run: %+v, want running as %d", got, pid)
	}
	if _, err := s.Do("o", config.OpStart, nil, "test"); !errors.Is(err, ErrBusy) {
		t.Fatalf("START beside the adopted run: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-ended
	waitFor(t, "adopted run over", func() bool { return s.status(t, "o").Running == 0 })
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run pidfile kept after the run: %v", err)
	}
	wantState(t, "new run", s.do(t, "o", config.OpStart).State, protocol.StateExited)
}
