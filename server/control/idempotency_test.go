package control_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// counted adds a oneshot "count" to cfg that appends a line to a file per
// run and prints the run number, and returns the file.
func counted(t *testing.T, dir string, cfg *config.Config) string {
	t.Helper()
	runs := filepath.Join(dir, "runs")
	script := servertest.Script(t, dir, "count.sh", "echo run >> '"+runs+"'\necho \"run $(wc -l < '"+runs+"')\"\n")
	cfg.Services = append(cfg.Services, config.Service{
		ID: "count", Kind: config.KindOneshot, Command: script, MaxConcurrent: 4,
		ACL: []config.ACLRule{{Devices: []string{"pos-*"}}},
	})
	return runs
}

func runCount(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// Refused requests do not use up a device's request_id memory; once the
// device's quota of remembered request_ids is full, a new request_id is
// answered UNAVAILABLE with retry_after_ms and runs nothing, while
// repeats of remembered ones still get their first answer without a
// second run, and other devices are unaffected.
func TestRequestIDQuota(t *testing.T) {
	const quota = 5
	var runs string
	n := startNode(t, func(c *config.Config) {
		c.Control.RequestIDsPerDevice = quota
		runs = counted(t, c.Storage.Dir, c)
	})
	c := n.dial(t, "pos-1", "till-a")
	// Far more refusals with request_ids than the quota: none claims one.
	for i := range uint64(3 * quota) {
		_, err := do(t, c, protocol.Control{ServiceID: "no-such", Op: protocol.OpStart, RequestID: 1000 + i, HasRequestID: true})
		wantCode(t, err, protocol.NotFound)
		_, err = do(t, c, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStop, RequestID: 2000 + i, HasRequestID: true})
		wantCode(t, err, protocol.Forbidden)
	}
	for i := range uint64(quota) {
		a := mustAck(t, c, protocol.Control{ServiceID: "count", Op: protocol.OpStart, RequestID: i, HasRequestID: true})
		if a.State != protocol.StateExited {
			t.Fatalf("run %d: %+v", i, a)
		}
	}
	if got := runCount(t, runs); got != quota {
		t.Fatalf("%d runs, want %d", got, quota)
	}
	_, err := do(t, c, protocol.Control{ServiceID: "count", Op: protocol.OpStart, RequestID: 99, HasRequestID: true})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.Unavailable || pe.RetryAfterMs < 1000 {
		t.Fatalf("request over the quota: %v, want UNAVAILABLE with retry_after_ms", err)
	}
	for i := range uint64(quota) {
		a := mustAck(t, c, protocol.Control{ServiceID: "count", Op: protocol.OpStart, RequestID: i, HasRequestID: true})
		if want := "run "; !strings.HasPrefix(a.Output, want) {
			t.Fatalf("repeat %d: %+v", i, a)
		}
	}
	if got := runCount(t, runs); got != quota {
		t.Fatalf("%d runs after the refused request and the repeats, want %d", got, quota)
	}
	// Another device has its own quota.
	other := n.dial(t, "pos-2", "till-a")
	mustAck(t, other, protocol.Control{ServiceID: "count", Op: protocol.OpStart, RequestID: 99, HasRequestID: true})
	if got := runCount(t, runs); got != quota+1 {
		t.Fatalf("%d runs, want %d", got, quota+1)
	}
}

// ctlNode runs a node on store with service control, returning a stop
// function that stops the server and closes the controller, as a restart
// of termd does.
func ctlNode(t *testing.T, cfg config.Config, store *storage.Badger) (*servertest.Node, func()) {
	t.Helper()
	var ctl *control.Controller
	nd := servertest.StartStore(t, cfg, store, func(s *server.Server) {
		var err error
		ctl, err = control.Open(control.Options{Config: cfg, Audit: s.Store(), Bus: s.Bus, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Handle(protocol.TypeControl, ctl.Route())
		ctl.Start()
	})
	stop := func() {
		nd.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ctl.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(stop)
	return nd, stop
}

// After a restart, a genuine repeat gets its first answer from the audit
// even when a later request reused its request_id and was refused (that
// refusal must not take over the request_id's index), and runs nothing.
func TestRequestIDRepeatAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config(t)
	cfg.Storage.Dir = dir
	cfg.Services = services(t, dir)
	runs := counted(t, dir, &cfg)
	store, err := storage.OpenBadger(filepath.Join(dir, "db"), storage.BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	n1, stop := ctlNode(t, cfg, store)
	c := (&node{Node: n1}).dial(t, "pos-1", "till-a")
	req := protocol.Control{ServiceID: "count", Op: protocol.OpStart, RequestID: 5, HasRequestID: true}
	first := mustAck(t, c, req)
	_, err = do(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus, RequestID: 5, HasRequestID: true})
	wantCode(t, err, protocol.Conflict)
	_, err = do(t, c, protocol.Control{ServiceID: "no-such", Op: protocol.OpStatus, RequestID: 5, HasRequestID: true})
	wantCode(t, err, protocol.NotFound)
	c.Close()
	stop()

	cfg.Server.Listen = servertest.FreePort(t)
	n2, _ := ctlNode(t, cfg, store)
	c2 := (&node{Node: n2}).dial(t, "pos-1", "till-a")
	again := mustAck(t, c2, req)
	if again.PID != first.PID || again.Output != first.Output || again.State != first.State {
		t.Fatalf("repeat after restart: %+v, want %+v", again, first)
	}
	if got := runCount(t, runs); got != 1 {
		t.Fatalf("%d runs, want 1", got)
	}
}
