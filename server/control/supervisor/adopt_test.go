package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// leaveDaemon is a daemon that outlives its supervisor. Its first arg is
// a marker unique to the test (see countProcs).
func leaveDaemon(t *testing.T, onStart string) config.Service {
	svc := shService(t, "d", config.KindDaemon, "marked.sh", t.TempDir())
	svc.OnShutdown, svc.OnStart = config.ShutdownLeave, onStart
	return svc
}

// startLeft runs supervisor A on dir, starts the daemon and shuts A down
// leaving it running. It returns A's view of the daemon.
func startLeft(t *testing.T, dir string, svc config.Service, pidfd bool) State {
	t.Helper()
	a := open(t, dir, func(o *Options) { o.noPidfd = !pidfd }, svc)
	st := a.do(t, "d", config.OpStart).State
	wantState(t, "A start", st, protocol.StateRunning)
	killGroup(t, st.PID)
	shutdown(t, a.Supervisor)
	if !exists(st.PID) || zombie(st.PID) {
		t.Fatal("on_shutdown leave: the daemon did not survive the shutdown")
	}
	if _, err := a.Do("d", config.OpStart, nil, "test"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Do after shutdown: %v", err)
	}
	return st
}

// Supervisor B adopts what A left (same pid, Adopted, A's since); START
// spawns nothing; STOP kills it by its group.
func TestAdopt(t *testing.T) {
	t.Parallel()
	for _, pidfd := range []bool{true, false} {
		t.Run(map[bool]string{true: "pidfd", false: "polling"}[pidfd], func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "services")
			svc := leaveDaemon(t, config.StartAdopt)
			left := startLeft(t, dir, svc, pidfd)

			b := open(t, dir, func(o *Options) { o.noPidfd = !pidfd }, svc)
			st := b.status(t, "d")
			if st.State != protocol.StateRunning || st.PID != left.PID || !st.Adopted || st.SinceMs != left.SinceMs {
				t.Fatalf("B: %+v (A: %+v)", st, left)
			}
			again := b.do(t, "d", config.OpStart).State
			marker := svc.Args[1]
			if again.PID != left.PID || countProcs(t, marker) != 1 {
				t.Fatalf("START of the adopted daemon: %+v, %d processes", again, countProcs(t, marker))
			}
			r := b.do(t, "d", config.OpStop).State
			if r.State != protocol.StateStopped || r.ExitCode != -1 || r.Adopted {
				t.Fatalf("stop: %+v", r)
			}
			waitEnded(t, left.PID)
			reap(t, left.PID)
			if _, err := os.Stat(filepath.Join(dir, "d.pid")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pidfile after stop: %v", err)
			}
			if got := b.rec.states("d"); len(got) != 2 || got[0] != "running" || got[1] != "stopped" {
				t.Fatalf("B notified %v", got)
			}
		})
	}
}

// An adopted daemon that ends by itself: exited with an unknown code.
func TestAdoptedEnds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "services")
	svc := leaveDaemon(t, config.StartAdopt)
	left := startLeft(t, dir, svc, true)
	b := open(t, dir, nil, svc)
	wantState(t, "adopted", b.status(t, "d"), protocol.StateRunning)
	if err := unix.Kill(-left.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the end noticed", func() bool { return b.status(t, "d").State != protocol.StateRunning })
	reap(t, left.PID)
	st := b.status(t, "d")
	if st.State != protocol.StateExited || st.ExitCode != -1 || st.PID != 0 || st.Adopted {
		t.Fatalf("after its end: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile: %v", err)
	}
}

// on_start "stop": New stops what A left.
func TestOnStartStop(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "services")
	svc := leaveDaemon(t, config.StartStop)
	left := startLeft(t, dir, svc, true)
	b := open(t, dir, nil, svc)
	waitEnded(t, left.PID) // New returned after the stop: at most a zombie
	reap(t, left.PID)
	st := b.status(t, "d")
	if st.State != protocol.StateStopped || st.PID != 0 || st.Adopted {
		t.Fatalf("B: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile: %v", err)
	}
	r := b.do(t, "d", config.OpStart).State
	killGroup(t, r.PID)
	if r.State != protocol.StateRunning || r.PID == left.PID {
		t.Fatalf("start: %+v", r)
	}
	wantState(t, "stop", b.do(t, "d", config.OpStop).State, protocol.StateStopped) // on_shutdown is leave
	waitReaped(t, r.PID)
}

// Stale pidfiles (process gone; pid reused by another process; garbage)
// are removed, and START works.
func TestStalePidfile(t *testing.T) {
	t.Parallel()
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]pidfile{
		"gone":   {PID: dead.Process.Pid, PGID: dead.Process.Pid, StartTicks: 1, Command: "/bin/sh"},
		"reused": {PID: os.Getpid(), PGID: os.Getpid(), StartTicks: self.start + 1, Command: "/bin/sh"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "services")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := writePidfile(filepath.Join(dir, "d.pid"), content); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "g.pid"), []byte("{garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			g := shService(t, "g", config.KindDaemon, "daemon.sh")
			s := open(t, dir, nil, shService(t, "d", config.KindDaemon, "daemon.sh"), g)
			for _, id := range []string{"d", "g"} {
				if _, err := os.Stat(filepath.Join(dir, id+".pid")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s: stale pidfile kept: %v", id, err)
				}
				wantState(t, id, s.status(t, id), protocol.StateStopped)
			}
			r := s.do(t, "d", config.OpStart).State
			if r.State != protocol.StateRunning || r.PID == content.PID {
				t.Fatalf("start: %+v", r)
			}
		})
	}
}

// Shutdown stops every daemon (on_shutdown stop) and oneshot run, reaps
// them, and leaves no goroutine behind; Do is ErrShutdown afterwards.
// Not parallel: it counts goroutines.
func TestShutdownStopsAll(t *testing.T) {
	before := runtime.NumGoroutine()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	crashy := shService(t, "crashy", config.KindDaemon, "crash.sh")
	crashy.Restart, crashy.RestartDelay = config.RestartOnFailure, config.D(time.Hour) // pending at shutdown
	auto := shService(t, "auto", config.KindDaemon, "daemon.sh")
	auto.Autostart = true
	s, err := New(Options{
		Dir: filepath.Join(t.TempDir(), "services"), Log: slog.New(slog.DiscardHandler),
		Services: []config.Service{
			auto, crashy,
			shService(t, "stubborn", config.KindDaemon, "stubborn.sh", pidFile),
			shService(t, "slow", config.KindOneshot, "sleep.sh", "30"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ts := &testSup{Supervisor: s}
	waitFor(t, "autostart", func() bool { return ts.status(t, "auto").State == protocol.StateRunning })
	pids := []int{ts.status(t, "auto").PID, ts.do(t, "stubborn", config.OpStart).State.PID}
	child := readPid(t, pidFile)
	ts.do(t, "crashy", config.OpStart)
	run, err := s.Do("slow", config.OpStart, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "run", func() bool { return run.Current().PID != 0 })
	pids = append(pids, run.Current().PID)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < testGrace || took > 3*time.Second {
		t.Fatalf("shutdown took %v (grace %v, in parallel)", took, testGrace)
	}
	for _, pid := range pids {
		if exists(pid) {
			t.Fatalf("pid %d not reaped (zombie %v)", pid, zombie(pid))
		}
	}
	waitEnded(t, child)
	for _, st := range s.Services() {
		if st.State == protocol.StateRunning || st.Busy != "" {
			t.Fatalf("after shutdown: %+v", st)
		}
	}
	select {
	case <-run.Done():
		wantState(t, "run", run.Result().State, protocol.StateStopped)
	default:
		t.Fatal("the run's op is not done")
	}
	if _, err := s.Do("auto", config.OpStart, nil, "test"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Do after shutdown: %v", err)
	}
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
