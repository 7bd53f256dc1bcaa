package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// START, STATUS, a START that starts nothing, RESTART with a new pid (the
// old one gone), STOP; the pidfile lives while the daemon does; Notify
// sees the changes in order.
func TestDaemonLifecycle(t *testing.T) {
	t.Parallel()
	s := open(t, "", nil, shService(t, "d", config.KindDaemon, "daemon.sh", "fixed"))
	wantState(t, "before start", s.status(t, "d"), protocol.StateStopped)

	a := s.do(t, "d", config.OpStart, "extra").State
	wantState(t, "start", a, protocol.StateRunning)
	if a.PID == 0 || !exists(a.PID) || a.SinceMs == 0 || a.Busy != "" {
		t.Fatalf("start: %+v", a)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "d.pid")); err != nil {
		t.Fatalf("no pidfile while running: %v", err)
	}
	again := s.do(t, "d", config.OpStart).State
	if again.PID != a.PID {
		t.Fatalf("second start: pid %d, first %d", again.PID, a.PID)
	}
	if n := countProcs(t, script(t, "daemon.sh")); n > 1 { // exec'd sleep no longer names it
		t.Fatalf("%d processes of the daemon", n)
	}
	st := s.status(t, "d")
	if st.State != protocol.StateRunning || st.PID != a.PID || st.SinceMs != a.SinceMs {
		t.Fatalf("status: %+v (start %+v)", st, a)
	}

	r := s.do(t, "d", config.OpRestart).State
	wantState(t, "restart", r, protocol.StateRunning)
	if r.PID == a.PID || !exists(r.PID) {
		t.Fatalf("restart: pid %d (old %d)", r.PID, a.PID)
	}
	waitReaped(t, a.PID)

	stop := s.do(t, "d", config.OpStop).State
	wantState(t, "stop", stop, protocol.StateStopped)
	if stop.Signal != "terminated" || stop.ExitCode != -1 || stop.PID != r.PID {
		t.Fatalf("stop result: %+v", stop)
	}
	waitReaped(t, r.PID)
	st = s.status(t, "d")
	if st.State != protocol.StateStopped || st.PID != 0 || st.Busy != "" {
		t.Fatalf("status after stop: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "d.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile after stop: %v", err)
	}
	again = s.do(t, "d", config.OpStop).State
	wantState(t, "stop of a stopped daemon", again, protocol.StateStopped)

	want := []string{"running", "stopped", "running", "stopped"}
	if got := s.rec.states("d"); !slices.Equal(got, want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "d.log"))
	if !strings.Contains(string(log), "args: fixed extra") {
		t.Fatalf("log %q lacks the first run's args", log)
	}
}

// A daemon that exits within start_wait is reported failed with its exit
// code; one that cannot be executed is failed with -1.
func TestDaemonStartFails(t *testing.T) {
	t.Parallel()
	crash := shService(t, "crash", config.KindDaemon, "crash.sh")
	crash.StartWait = config.D(2 * time.Second)
	missing := config.Service{ID: "missing", Kind: config.KindDaemon, Command: "/nonexistent/daemon"}
	s := open(t, "", nil, crash, missing)

	start := time.Now()
	r := s.do(t, "crash", config.OpStart).State
	if r.State != protocol.StateFailed || r.ExitCode != 7 || r.PID == 0 {
		t.Fatalf("crash: %+v", r)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the result waited %v, not the exit", took)
	}
	waitReaped(t, r.PID)
	if st := s.status(t, "crash"); st.State != protocol.StateFailed || st.PID != 0 || st.ExitCode != 7 {
		t.Fatalf("status: %+v", st)
	}
	m := s.do(t, "missing", config.OpStart).State
	if m.State != protocol.StateFailed || m.ExitCode != -1 {
		t.Fatalf("missing: %+v", m)
	}
}

// A stop of a daemon that ignores SIGTERM ends with SIGKILL to the whole
// group after stop_grace; a second STOP meanwhile is ErrBusy, and STATUS
// is answered at once.
func TestStopKillsGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s := open(t, "", nil, shService(t, "stubborn", config.KindDaemon, "stubborn.sh", pidFile))
	a := s.do(t, "stubborn", config.OpStart).State
	wantState(t, "start", a, protocol.StateRunning)
	child := readPid(t, pidFile)

	start := time.Now()
	o, err := s.Do("stubborn", config.OpStop, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("stubborn", config.OpStop, nil, "test"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second stop: %v, want ErrBusy", err)
	}
	if _, err := s.Do("stubborn", config.OpStart, nil, "test"); !errors.Is(err, ErrBusy) {
		t.Fatalf("start during stop: %v, want ErrBusy", err)
	}
	t0 := time.Now()
	st := s.status(t, "stubborn")
	if d := time.Since(t0); d > 50*time.Millisecond || st.Busy != config.OpStop || st.State != protocol.StateRunning {
		t.Fatalf("status during the stop took %v: %+v", d, st)
	}
	if cur := o.Current(); cur.Busy != config.OpStop || cur.PID != a.PID {
		t.Fatalf("current: %+v", cur)
	}
	<-o.Done()
	took := time.Since(start)
	r := o.Result()
	if r.State.State != protocol.StateStopped || r.State.Signal != "killed" || r.TimedOut {
		t.Fatalf("stop: %+v", r)
	}
	if took < testGrace {
		t.Fatalf("stop took %v, less than the grace %v", took, testGrace)
	}
	waitReaped(t, a.PID)
	waitEnded(t, child)
}

// Two STOPs at once: exactly one runs, the other is ErrBusy. (The daemon
// ignores SIGTERM so that the first STOP lasts its grace.)
func TestConcurrentStops(t *testing.T) {
	t.Parallel()
	svc := shService(t, "d", config.KindDaemon, "stubborn.sh", filepath.Join(t.TempDir(), "child.pid"))
	svc.StopGrace = config.D(500 * time.Millisecond)
	s := open(t, "", nil, svc)
	s.do(t, "d", config.OpStart)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ops := make([]*Op, 2)
	for i := range 2 {
		wg.Go(func() { ops[i], errs[i] = s.Do("d", config.OpStop, nil, "test") })
	}
	wg.Wait()
	busy, ok := 0, 0
	for i := range 2 {
		switch {
		case errors.Is(errs[i], ErrBusy):
			busy++
		case errs[i] == nil:
			<-ops[i].Done()
			wantState(t, "stop", ops[i].Result().State, protocol.StateStopped)
			ok++
		}
	}
	if busy != 1 || ok != 1 {
		t.Fatalf("%d busy, %d done: %v", busy, ok, errs)
	}
}

// A stop that passes stop_timeout answers TimedOut with the state known
// then, and the kill still completes in the background.
func TestStopTimeout(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	svc := shService(t, "stubborn", config.KindDaemon, "stubborn.sh", pidFile)
	svc.StopGrace = config.D(400 * time.Millisecond)
	svc.StopTimeout = config.D(100 * time.Millisecond)
	s := open(t, "", nil, svc)
	a := s.do(t, "stubborn", config.OpStart).State
	o, err := s.Do("stubborn", config.OpStop, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	<-o.Done()
	r := o.Result()
	if !r.TimedOut || r.State.State != protocol.StateRunning || r.State.Busy != config.OpStop {
		t.Fatalf("stop past its timeout: %+v", r)
	}
	waitReaped(t, a.PID)
	waitFor(t, "stopped state", func() bool {
		st := s.status(t, "stubborn")
		return st.State == protocol.StateStopped && st.Busy == ""
	})
}

// on-failure restarts a crashing daemon after restart_delay, doubling up
// to restart_delay_max; STOP ends it.
func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	starts := filepath.Join(t.TempDir(), "starts")
	svc := shService(t, "crashy", config.KindDaemon, "crashloop.sh", starts)
	svc.StartWait = config.D(10 * time.Millisecond)
	svc.Restart = config.RestartOnFailure
	svc.RestartDelay = config.D(100 * time.Millisecond)
	svc.RestartDelayMax = config.D(400 * time.Millisecond)
	s := open(t, "", nil, svc)
	s.do(t, "crashy", config.OpStart)
	waitFor(t, "4 starts", func() bool {
		b, _ := os.ReadFile(starts)
		return len(strings.Fields(string(b))) >= 4
	})
	r := s.do(t, "crashy", config.OpStop).State
	if r.Restarts < 3 || r.Busy != "" {
		t.Fatalf("stop: %+v", r)
	}
	b, _ := os.ReadFile(starts)
	times := strings.Fields(string(b))
	if len(times) < 4 {
		t.Fatalf("%d starts recorded", len(times))
	}
	// Each gap is the run (≥ 50ms) plus the delay: 100, 200, 400ms.
	for i, min := range []time.Duration{150, 250, 450} {
		gap := ns(t, times[i+1]) - ns(t, times[i])
		if gap < min*time.Millisecond {
			t.Fatalf("gap %d is %v, want ≥ %v (%v)", i, gap, min*time.Millisecond, times)
		}
	}
	// No restart after the STOP (the next would be due within 450ms).
	n := len(times)
	time.Sleep(700 * time.Millisecond)
	b, _ = os.ReadFile(starts)
	if got := len(strings.Fields(string(b))); got != n {
		t.Fatalf("%d starts after STOP, had %d", got, n)
	}
	if st := s.status(t, "crashy"); st.State == protocol.StateRunning || st.Busy != "" {
		t.Fatalf("after stop: %+v", st)
	}
}

// A START while a restart is pending starts at once (not a restart);
// the pending one is dropped.
func TestStartDuringRestartDelay(t *testing.T) {
	t.Parallel()
	starts := filepath.Join(t.TempDir(), "starts")
	svc := shService(t, "crashy", config.KindDaemon, "crashloop.sh", starts)
	svc.StartWait = config.D(10 * time.Millisecond)
	svc.Restart, svc.RestartDelay = config.RestartOnFailure, config.D(time.Hour)
	s := open(t, "", nil, svc)
	first := s.do(t, "crashy", config.OpStart).State
	waitFor(t, "the crash", func() bool { return s.status(t, "crashy").State == protocol.StateFailed })
	r := s.do(t, "crashy", config.OpStart).State
	if r.PID == first.PID || r.Restarts != 0 {
		t.Fatalf("start during the delay: %+v (first pid %d)", r, first.PID)
	}
	v := s.svcs["crashy"]
	waitFor(t, "the second crash", func() bool { return s.status(t, "crashy").State == protocol.StateFailed })
	v.mu.Lock()
	armed := v.retry != nil
	v.mu.Unlock()
	if !armed {
		t.Fatal("no restart pending after the second crash")
	}
	if st := s.do(t, "crashy", config.OpStop).State; st.State != protocol.StateFailed {
		t.Fatalf("stop of a failed daemon changed its state: %+v", st)
	}
	v.mu.Lock()
	armed = v.retry != nil
	v.mu.Unlock()
	if armed {
		t.Fatal("STOP left the restart pending")
	}
}

func ns(t *testing.T, s string) time.Duration {
	t.Helper()
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a time: %q", s)
		}
		v = v*10 + int64(c-'0')
	}
	return time.Duration(v)
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, most := time.Second, time.Minute
	for fails, want := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second, 7: time.Minute, 100: time.Minute,
	} {
		if got := backoff(base, most, fails); got != want {
			t.Errorf("backoff(%d) = %v, want %v", fails, got, want)
		}
	}
	if got := backoff(time.Second, 0, 3); got != time.Second {
		t.Errorf("max below base: %v", got)
	}
}

// The daemon writes its log file itself; past output_max it is rotated to
// ID.log.1 (copy and truncate) while the daemon keeps running and keeps
// writing to ID.log.
func TestDaemonLogRotation(t *testing.T) {
	t.Parallel()
	svc := shService(t, "logger", config.KindDaemon, "logger.sh")
	svc.OutputMax = 4096
	s := open(t, "", nil, svc)
	a := s.do(t, "logger", config.OpStart).State
	logPath := filepath.Join(s.dir, "logger.log")
	waitFor(t, "rotated log", func() bool {
		fi, err := os.Stat(logPath + ".1")
		return err == nil && fi.Size() > 4096
	})
	old, _ := os.ReadFile(logPath + ".1")
	last := lastLine(string(old))
	waitFor(t, "lines after the rotation in the log", func() bool {
		b, _ := os.ReadFile(logPath)
		cur := string(b)
		return strings.Contains(cur, "log line ") && lineNo(lastLine(cur)) > lineNo(last)
	})
	b, _ := os.ReadFile(logPath)
	if strings.ContainsRune(string(b), 0) {
		t.Fatal("the log has a hole: the daemon does not append")
	}
	st := s.status(t, "logger")
	if st.State != protocol.StateRunning || st.PID != a.PID {
		t.Fatalf("daemon after rotation: %+v", st)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func lineNo(l string) int {
	n := 0
	f := strings.Fields(l)
	if len(f) < 3 {
		return -1
	}
	for _, c := range f[2] {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// The child sees only env and env_inherit (no PATH unless set).
func TestEnvironment(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"INHERITED": "from termd", "EMPTY": ""}
	svc := config.Service{
		ID: "env", Kind: config.KindOneshot, Command: "/usr/bin/env",
		Env: []string{"FOO=bar", "INHERITED=overridden?"}, EnvInherit: []string{"INHERITED", "EMPTY", "UNSET"},
	}
	svc2 := svc
	svc2.ID, svc2.Env = "env2", []string{"FOO=bar"}
	s := open(t, "", func(o *Options) { o.Environ = func(k string) string { return vars[k] } }, svc, svc2)

	got := strings.Split(strings.TrimSpace(s.do(t, "env", config.OpStart).State.Output), "\n")
	slices.Sort(got)
	if want := []string{"FOO=bar", "INHERITED=overridden?"}; !slices.Equal(got, want) { // env wins
		t.Fatalf("env: %q, want %q", got, want)
	}
	got = strings.Split(strings.TrimSpace(s.do(t, "env2", config.OpStart).State.Output), "\n")
	slices.Sort(got)
	if want := []string{"FOO=bar", "INHERITED=from termd"}; !slices.Equal(got, want) {
		t.Fatalf("env2: %q, want %q", got, want)
	}
}

// Configured args come first, the terminal's follow, each one argv entry.
func TestArgsAppended(t *testing.T) {
	t.Parallel()
	s := open(t, "", nil, shService(t, "args", config.KindOneshot, "args.sh", "fixed one"))
	out := s.do(t, "args", config.OpStart, "a b", "$(touch x); y").State.Output
	if want := "[fixed one][a b][$(touch x); y]"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}

// Unknown services and ops.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s := open(t, "", nil, shService(t, "d", config.KindDaemon, "daemon.sh"))
	if _, err := s.Do("nope", config.OpStart, nil, "test"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := s.Status("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("status unknown: %v", err)
	}
	if _, err := s.Do("d", "reboot", nil, "test"); !errors.Is(err, ErrBadOp) {
		t.Fatalf("bad op: %v", err)
	}
	o, err := s.Do("d", config.OpStatus, nil, "test")
	if err != nil || o.Result().State.State != protocol.StateStopped {
		t.Fatalf("status op: %v %+v", err, o.Result())
	}
	for _, bad := range [][]config.Service{
		{{ID: "x", Kind: config.KindDaemon, Command: "rel/path"}},
		{{ID: "x", Kind: "cron", Command: "/bin/true"}},
		{{ID: "x y", Kind: config.KindDaemon, Command: "/bin/true"}},
		{{ID: "x", Kind: config.KindDaemon, Command: "/bin/true"}, {ID: "x", Kind: config.KindOneshot, Command: "/bin/true"}},
	} {
		if _, err := New(Options{Services: bad, Dir: t.TempDir()}); err == nil {
			t.Fatalf("New accepted %+v", bad)
		}
	}
}
