package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/servertest"
)

// workerEnv makes the test binary run as a termload worker: -procs
// re-executes os.Args[0], which in tests is this binary.
const workerEnv = "TERMLOAD_TEST_WORKER=1"

func TestMain(m *testing.M) {
	if os.Getenv("TERMLOAD_TEST_WORKER") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := (&CLI{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, os.Args[1:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestProcsMergesWorkers(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	out := filepath.Join(t.TempDir(), "res.json")
	var stdout, stderr bytes.Buffer
	cli := &CLI{Stdout: &stdout, Stderr: &stderr, Self: os.Args[0], WorkerEnv: []string{workerEnv}}
	err := cli.Run(context.Background(), []string{
		"-scenario", "heartbeat", "-n", "41", "-procs", "2", "-rate", "5", "-duration", "2s",
		"-addr", node.Addr, "-secret", servertest.FleetSecret, "-metrics", "off", "-src", "off",
		"-loops", "1", "-json", out, "-server-pid", strconv.Itoa(os.Getpid()), // the node runs here
	})
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	res, err := ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Procs != 2 || res.Terminals != 41 {
		t.Errorf("procs %d terminals %d", res.Procs, res.Terminals)
	}
	// Distinct id ranges: 41 sessions, none replaced or refused.
	if res.Counts["connect_ok"] != 41 || len(res.Errors) != 0 || res.Counts["replaced"] != 0 {
		t.Errorf("counts %v errors %v", res.Counts, res.Errors)
	}
	within(t, "answered", res.Counts["answered"], 410, 0.1)
	if h := res.Latency[KindHeartbeat]; h == nil || h.Count() != int64(res.Counts["answered"]) {
		t.Errorf("merged heartbeat histogram: %v", h)
	}
	if res.ClientCPU <= 0 || len(res.Timeline) == 0 {
		t.Errorf("client cpu %v, timeline %d points", res.ClientCPU, len(res.Timeline))
	}
	// The parent sampled the server at the merged marks and moved them
	// onto those samples.
	if !res.RampEnd.After(res.Started) || !res.MeasureEnd.After(res.RampEnd) ||
		!sampledAt(res, res.RampEnd) || !sampledAt(res, res.MeasureEnd) {
		t.Errorf("started %v, ramp end %v, measure end %v; samples %+v", res.Started, res.RampEnd, res.MeasureEnd, res.Server)
	}
	if !strings.Contains(stdout.String(), "answered") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "heartbeat [") {
		t.Errorf("no aggregated progress on stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	}
}

func TestShare(t *testing.T) {
	cfg := Config{N: 10, Scenario: ScenarioChurn, Rate: 3}
	var next int
	for i := range 3 {
		s := share(cfg, 3, i)
		if s.IDOffset != next || s.Rate != 1 {
			t.Errorf("worker %d: offset %d rate %v", i, s.IDOffset, s.Rate)
		}
		next += s.N
	}
	if next != 10 {
		t.Errorf("shares add to %d", next)
	}
}

func TestMarkSampler(t *testing.T) {
	r := &runner{sampler: NewSampler("", os.Getpid(), time.Second)}
	m := newMarkSampler(context.Background(), r, 3)
	count := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.extra)
	}
	m.note(0, MarkRampEnd)
	m.note(1, MarkRampEnd)
	if count() != 0 || !m.moment(MarkRampEnd).IsZero() {
		t.Fatal("sampled before the last worker's ramp ended")
	}
	// The first worker's phase ends: sample at once.
	m.note(0, MarkMeasureEnd)
	if count() != 1 || m.moment(MarkMeasureEnd).IsZero() {
		t.Fatal("no sample at the first phase end")
	}
	// A worker that is gone does not hold the ramp's end back.
	m.note(2, "")
	if count() != 2 || m.moment(MarkRampEnd).IsZero() {
		t.Fatal("no sample once every worker was past its ramp")
	}
	m.note(1, MarkMeasureEnd)
	m.note(1, "")
	m.note(0, "")
	if count() != 2 {
		t.Errorf("%d samples, want 2: one per merged mark", count())
	}
	r.mu.Lock()
	extra := r.extra
	r.mu.Unlock()
	if !extra[0].At.Equal(m.moment(MarkMeasureEnd)) || !extra[1].At.Equal(m.moment(MarkRampEnd)) {
		t.Errorf("samples %+v, moments %v %v", extra, m.moment(MarkRampEnd), m.moment(MarkMeasureEnd))
	}
	// Workers that all ended without a ramp: no ramp sample.
	m = newMarkSampler(context.Background(), r, 2)
	m.note(0, "")
	m.note(1, "")
	if !m.moment(MarkRampEnd).IsZero() {
		t.Error("ramp sample without any ramp")
	}
}
