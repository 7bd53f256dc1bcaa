package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/termd/termd/server/config"
)

// Short timings for tests.
const (
	testGrace = 200 * time.Millisecond
	testWait  = 100 * time.Millisecond
	waitLimit = 10 * time.Second // poll-until deadline
)

// script is the absolute path of testdata/name.
func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// shService runs testdata/name through /bin/sh with args.
func shService(t *testing.T, id, kind, name string, args ...string) config.Service {
	return config.Service{
		ID: id, Kind: kind, Command: "/bin/sh", Args: append([]string{script(t, name)}, args...),
		StopGrace: config.D(testGrace), StartWait: config.D(testWait),
	}
}

// recorder collects the Notify calls.
type recorder struct {
	mu  sync.Mutex
	sts []State
}

func (r *recorder) notify(st State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sts = append(r.sts, st)
}

// states is the sequence of states notified for service id.
func (r *recorder) states(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, st := range r.sts {
		if st.Service == id {
			out = append(out, st.State)
		}
	}
	return out
}

type testSup struct {
	*Supervisor
	dir string
	rec *recorder
}

// open starts a supervisor on dir (a new temp dir when ""), shut down at
// the end of the test.
func open(t *testing.T, dir string, mod func(*Options), svcs ...config.Service) *testSup {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "services")
	}
	rec := &recorder{}
	opt := Options{Services: svcs, Dir: dir, Log: slog.New(slog.DiscardHandler), Notify: rec.notify}
	if testing.Verbose() {
		opt.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&opt)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { shutdown(t, s) })
	return &testSup{Supervisor: s, dir: dir, rec: rec}
}

func shutdown(t *testing.T, s *Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// do runs op and waits for its result.
func (s *testSup) do(t *testing.T, id, op string, args ...string) Result {
	t.Helper()
	o, err := s.Do(id, op, args, "test")
	if err != nil {
		t.Fatalf("%s %s: %v", op, id, err)
	}
	select {
	case <-o.Done():
	case <-time.After(waitLimit):
		t.Fatalf("%s %s: no result in %v", op, id, waitLimit)
	}
	r := o.Result()
	if r.Err != nil {
		t.Fatalf("%s %s: %v", op, id, r.Err)
	}
	return r
}

func (s *testSup) status(t *testing.T, id string) State {
	t.Helper()
	st, err := s.Status(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exists: /proc has pid (running or a zombie).
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// zombie: pid has ended but was not reaped.
func zombie(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.ended()
}

// waitReaped waits until our child pid is gone from /proc: ended and
// reaped by the supervisor (a zombie fails the test after the deadline).
func waitReaped(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pid %d reaped (zombie: %v)", pid, zombie(pid)), func() bool { return !exists(pid) })
}

// waitEnded waits until pid (not our child) ended: gone or a zombie of
// whatever reaps orphans.
func waitEnded(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pid %d ended", pid), func() bool { return !exists(pid) || zombie(pid) })
}

// reap reaps pid, a child of the test process the supervisor let go of
// (on_shutdown leave), once it ended.
func reap(t *testing.T, pid int) {
	t.Helper()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil && !errors.Is(err, unix.ECHILD) {
		t.Errorf("wait4 %d: %v", pid, err)
	}
}

// killGroup is a cleanup for the process group of a daemon a test lets
// outlive its supervisor.
func killGroup(t *testing.T, pid int) {
	t.Cleanup(func() {
		if groupAlive(pid) {
			_ = unix.Kill(-pid, unix.SIGKILL)
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	})
}

// readPid reads a pid a script wrote to file.
func readPid(t *testing.T, file string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid in "+file, func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// countProcs counts live processes whose command line contains marker.
func countProcs(t *testing.T, marker string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || zombie(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(marker)) {
			n++
		}
	}
	return n
}

func wantState(t *testing.T, what string, st State, state string) {
	t.Helper()
	if st.State != state {
		t.Fatalf("%s: state %q, want %q (%+v)", what, st.State, state, st)
	}
}
