package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"

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
		"-loops", "1", "-json", out,
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
