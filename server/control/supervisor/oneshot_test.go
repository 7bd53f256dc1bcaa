package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// A oneshot's result is its exit: failed with the code and both streams
// in the output, or exited; STATUS keeps the last run.
func TestOneshotResult(t *testing.T) {
	t.Parallel()
	missing := config.Service{ID: "missing", Kind: config.KindOneshot, Command: "/nonexistent/program"}
	s := open(t, "", nil,
		shService(t, "out", config.KindOneshot, "output.sh"),
		shService(t, "ok", config.KindOneshot, "ok.sh"), missing)

	r := s.do(t, "out", config.OpStart).State
	if r.State != protocol.StateFailed || r.ExitCode != 3 || r.PID == 0 || r.Signal != "" {
		t.Fatalf("out: %+v", r)
	}
	if !strings.Contains(r.Output, "to stdout") || !strings.Contains(r.Output, "to stderr") {
		t.Fatalf("output %q lacks a stream", r.Output)
	}
	waitReaped(t, r.PID)
	st := s.status(t, "out")
	if st.State != protocol.StateFailed || st.ExitCode != 3 || st.Output != r.Output || st.PID != 0 || st.Running != 0 {
		t.Fatalf("status: %+v", st)
	}

	ok := s.do(t, "ok", config.OpStart).State
	if ok.State != protocol.StateExited || ok.ExitCode != 0 || ok.Output != "all fine\n" {
		t.Fatalf("ok: %+v", ok)
	}

	m := s.do(t, "missing", config.OpStart).State
	if m.State != protocol.StateFailed || m.ExitCode != -1 || !strings.Contains(m.Output, "no such file") {
		t.Fatalf("missing: %+v", m)
	}
	if got := s.rec.states("ok"); len(got) != 2 || got[0] != "running" || got[1] != "exited" {
		t.Fatalf("notified %v", got)
	}
}

// Output beyond output_max keeps its tail.
func TestOneshotOutputTail(t *testing.T) {
	t.Parallel()
	svc := shService(t, "lines", config.KindOneshot, "lines.sh", "5000")
	svc.OutputMax = 1024
	s := open(t, "", nil, svc)
	out := s.do(t, "lines", config.OpStart).State.Output
	if len(out) != 1024 || !strings.HasSuffix(out, "line 4999\n") {
		t.Fatalf("output: %d bytes, ends %q", len(out), out[max(0, len(out)-20):])
	}
	var full strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&full, "line %d\n", i)
	}
	if want := full.String(); out != want[len(want)-1024:] {
		t.Fatalf("output is not the tail")
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	for _, writes := range [][]string{
		{"ab", "cd"}, {"abcdefgh"}, {"abc", "defghij", "k"}, {"abcde", "f", "g", "hijklmnop", "q"}, {"a", "b", "c", "d", "e", "f"},
	} {
		tl := newTail(5)
		all := ""
		for _, w := range writes {
			if n, _ := tl.Write([]byte(w)); n != len(w) {
				t.Fatalf("short write")
			}
			all += w
		}
		if want := all[max(0, len(all)-5):]; tl.String() != want {
			t.Errorf("%q: tail %q, want %q", writes, tl.String(), want)
		}
	}
}

// A run past start_timeout is killed (TERM, grace, KILL) and the result
// is failed and TimedOut.
func TestOneshotStartTimeout(t *testing.T) {
	t.Parallel()
	svc := shService(t, "stuck", config.KindOneshot, "stubborn-run.sh")
	svc.StartTimeout = config.D(200 * time.Millisecond)
	s := open(t, "", nil, svc)
	start := time.Now()
	o, err := s.Do("stuck", config.OpStart, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the run", func() bool { return o.Current().PID != 0 })
	cur := o.Current()
	if cur.State != protocol.StateRunning || cur.Running != 1 || cur.Busy != config.OpStart {
		t.Fatalf("current: %+v", cur)
	}
	<-o.Done()
	r := o.Result()
	took := time.Since(start)
	if !r.TimedOut || r.State.State != protocol.StateFailed || r.State.Signal != "killed" || r.State.PID != cur.PID {
		t.Fatalf("result: %+v", r)
	}
	if !strings.Contains(r.State.Output, "started") {
		t.Fatalf("output %q", r.State.Output)
	}
	if took < 200*time.Millisecond+testGrace {
		t.Fatalf("took %v: killed before timeout+grace", took)
	}
	waitReaped(t, cur.PID)
}

// At most max_concurrent runs; STOP kills them (stopped) and STATUS
// counts them meanwhile.
func TestOneshotConcurrencyAndStop(t *testing.T) {
	t.Parallel()
	svc := shService(t, "slow", config.KindOneshot, "sleep.sh", "30")
	svc.MaxConcurrent = 2
	s := open(t, "", nil, svc)
	var ops []*Op
	for range 2 {
		o, err := s.Do("slow", config.OpStart, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, o)
	}
	if _, err := s.Do("slow", config.OpStart, nil, "test"); !errors.Is(err, ErrBusy) {
		t.Fatalf("third run: %v, want ErrBusy", err)
	}
	waitFor(t, "two runs", func() bool {
		st := s.status(t, "slow")
		return st.Running == 2 && st.State == protocol.StateRunning && st.PID != 0
	})
	pids := []int{}
	for _, o := range ops {
		waitFor(t, "run pid", func() bool { return o.Current().PID != 0 })
		pids = append(pids, o.Current().PID)
	}
	if pids[0] == pids[1] {
		t.Fatalf("both runs have pid %d", pids[0])
	}
	r := s.do(t, "slow", config.OpStop).State
	if r.State != protocol.StateStopped || r.Running != 0 {
		t.Fatalf("stop: %+v", r)
	}
	for i, o := range ops {
		<-o.Done()
		if st := o.Result().State; st.State != protocol.StateStopped || st.Signal != "terminated" {
			t.Fatalf("run %d: %+v", i, st)
		}
		waitReaped(t, pids[i])
	}
	if _, err := s.Do("slow", config.OpStart, nil, "test"); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
}

// RESTART of a oneshot stops its runs and starts one; other ops are busy
// meanwhile.
func TestOneshotRestart(t *testing.T) {
	t.Parallel()
	s := open(t, "", nil, shService(t, "slow", config.KindOneshot, "sleep.sh", "0.3"))
	first, err := s.Do("slow", config.OpStart, []string{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first run", func() bool { return first.Current().PID != 0 })
	o, err := s.Do("slow", config.OpRestart, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	wantState(t, "first run", first.Result().State, protocol.StateStopped)
	if _, err := s.Do("slow", config.OpStart, nil, "test"); !errors.Is(err, ErrBusy) {
		t.Fatalf("start during restart: %v", err)
	}
	<-o.Done()
	r := o.Result().State
	if r.State != protocol.StateExited || r.Output != "slept 0.3\n" || r.PID == first.Result().State.PID {
		t.Fatalf("restart: %+v", r)
	}
}
