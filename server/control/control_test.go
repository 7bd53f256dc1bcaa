package control_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// node is a test node with service control over real sockets.
type node struct {
	*servertest.Node
	ctl *control.Controller
	dir string
}

// services is the test fleet's configuration: a sleeping daemon, a oneshot
// that prints and exits 3, one that ignores SIGTERM, a slow oneshot and
// one that echoes its args.
func services(t *testing.T, dir string) []config.Service {
	t.Helper()
	daemon := servertest.Script(t, dir, "daemon.sh", "exec sleep 600\n")
	oneshot := servertest.Script(t, dir, "oneshot.sh", "echo \"synced $*\"\necho oops >&2\nexit 3\n")
	stubborn := servertest.Script(t, dir, "stubborn.sh", "trap '' TERM\nwhile :; do sleep 0.05; done\n")
	slow := servertest.Script(t, dir, "slow.sh", "sleep 1\necho done\n")
	echo := servertest.Script(t, dir, "echo.sh", "printf '%s|' \"$@\"\n")
	all := []config.ACLRule{{Devices: []string{"pos-*"}}}
	return []config.Service{
		{ID: "spooler", Kind: config.KindDaemon, Command: daemon, ACL: all,
			StopGrace: config.D(2 * time.Second), StartWait: config.D(100 * time.Millisecond)},
		{ID: "price-sync", Kind: config.KindOneshot, Command: oneshot, ACL: all},
		{ID: "stubborn", Kind: config.KindDaemon, Command: stubborn, ACL: all,
			StopGrace: config.D(300 * time.Millisecond), StartWait: config.D(100 * time.Millisecond)},
		{ID: "slow", Kind: config.KindOneshot, Command: slow, ACL: all, Ops: config.AllOps},
		{ID: "echo", Kind: config.KindOneshot, Command: echo, ArgPatterns: []string{`[0-9]{1,4}`, `[a-z]+`},
			ACL: []config.ACLRule{{Devices: []string{"pos-*"}, Models: []string{"till-*"}, Ops: []string{"start"}}}},
	}
}

// startNode runs a node whose services live in a temp dir, with audit in
// the node's store.
func startNode(t *testing.T, mod func(*config.Config)) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := servertest.Config(t)
	cfg.Storage.Dir = dir
	cfg.Services = services(t, dir)
	if mod != nil {
		mod(&cfg)
	}
	n := &node{dir: dir}
	n.Node = servertest.Start(t, cfg, func(s *server.Server) {
		ctl, err := control.Open(control.Options{Config: cfg, Audit: s.Store(), Bus: s.Bus, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Handle(protocol.TypeControl, ctl.Route())
		ctl.Start()
		n.ctl = ctl
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ctl.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	})
	return n
}

func (n *node) dial(t *testing.T, device, model string) *client.Conn {
	t.Helper()
	c, err := client.Dial(t.Context(), client.Config{
		Addr: n.Addr, DeviceID: device, FleetSecret: []byte(servertest.FleetSecret),
		FW: "1.0", Model: model, NoHeartbeat: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *client.Conn, req protocol.Control) (*protocol.ControlAck, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var ack protocol.ControlAck
	err := c.Do(ctx, &req, &ack)
	return &ack, err
}

func mustAck(t *testing.T, c *client.Conn, req protocol.Control) *protocol.ControlAck {
	t.Helper()
	ack, err := do(t, c, req)
	if err != nil {
		t.Fatalf("%s op %d: %v", req.ServiceID, req.Op, err)
	}
	return ack
}

func wantCode(t *testing.T, err error, code protocol.Code) {
	t.Helper()
	if protocol.StatusOf(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
}

func alive(pid uint64) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// The daemon's life over TGP: START, STATUS, a second START that starts
// nothing, RESTART with a new pid, STOP, STATUS.
func TestDaemonLifecycle(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial(t, "pos-1", "till-a")
	st := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus})
	if st.State != protocol.StateStopped || st.PID != 0 {
		t.Fatalf("before start: %+v", st)
	}
	a := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	if a.State != protocol.StateRunning || a.PID == 0 || !alive(a.PID) {
		t.Fatalf("start: %+v", a)
	}
	again := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	if again.PID != a.PID {
		t.Fatalf("second start spawned pid %d (first %d)", again.PID, a.PID)
	}
	st = mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus})
	if st.State != protocol.StateRunning || st.PID != a.PID || st.SinceMs == 0 {
		t.Fatalf("status: %+v", st)
	}
	r := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpRestart})
	if r.State != protocol.StateRunning || r.PID == a.PID || !alive(r.PID) {
		t.Fatalf("restart: %+v (old pid %d)", r, a.PID)
	}
	waitGone(t, a.PID)
	s := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStop})
	if s.State != protocol.StateStopped {
		t.Fatalf("stop: %+v", s)
	}
	waitGone(t, r.PID)
	st = mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus})
	if st.State != protocol.StateStopped {
		t.Fatalf("status after stop: %+v", st)
	}
}

func waitGone(t *testing.T, pid uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			t.Fatalf("pid %d is a zombie: not reaped", pid)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The oneshot's exit code and output come back; a run with args passes
// them as argv entries.
func TestOneshotResult(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial(t, "pos-2", "till-b")
	a := mustAck(t, c, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStart})
	if a.State != protocol.StateFailed || a.ExitCode != 3 {
		t.Fatalf("oneshot: %+v", a)
	}
	if !strings.Contains(a.Output, "synced") || !strings.Contains(a.Output, "oops") {
		t.Fatalf("output %q lacks stdout or stderr", a.Output)
	}
	e := mustAck(t, c, protocol.Control{ServiceID: "echo", Op: protocol.OpStart, Args: []string{"0042", "north"}})
	if e.State != protocol.StateExited || e.ExitCode != 0 || e.Output != "0042|north|" {
		t.Fatalf("echo: %+v", e)
	}
}

// Refusals: unknown service, a device or model the ACL does not name, an
// op the service does not allow, and args that do not match (which never
// reach a process).
func TestRefusals(t *testing.T) {
	n := startNode(t, nil)
	pos := n.dial(t, "pos-3", "till-c")
	kiosk := n.dial(t, "kiosk-1", "till-c")
	other := n.dial(t, "pos-4", "scale-9")

	_, err := do(t, pos, protocol.Control{ServiceID: "no-such", Op: protocol.OpStatus})
	wantCode(t, err, protocol.NotFound)
	_, err = do(t, kiosk, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	wantCode(t, err, protocol.Forbidden)
	_, err = do(t, other, protocol.Control{ServiceID: "echo", Op: protocol.OpStart, Args: []string{"1"}})
	wantCode(t, err, protocol.Forbidden) // model scale-9 is not till-*
	_, err = do(t, pos, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStop})
	wantCode(t, err, protocol.Forbidden) // a oneshot allows start and status only
	_, err = do(t, pos, protocol.Control{ServiceID: "echo", Op: protocol.OpStatus})
	wantCode(t, err, protocol.Forbidden) // the ACL names start only

	marker := filepath.Join(n.dir, "pwned")
	for _, args := range [][]string{
		{"12; touch " + marker},
		{"$(touch " + marker + ")"},
		{"12345"},           // five digits
		{"1", "north", "x"}, // too many
		{"1", "North"},      // upper case
	} {
		_, err = do(t, pos, protocol.Control{ServiceID: "echo", Op: protocol.OpStart, Args: args})
		wantCode(t, err, protocol.BadRequest)
	}
	_, err = do(t, pos, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStart, Args: []string{"1"}})
	wantCode(t, err, protocol.BadRequest) // accepts no args
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a refused arg reached a process")
	}
	recs, err := n.Store.ListAudit(t.Context(), storage.AuditFilter{Service: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Status == uint8(protocol.OK) {
			t.Fatalf("a refused request was audited OK: %+v", r)
		}
	}
}

// Two concurrent STOPs of a daemon that ignores SIGTERM: one CONFLICT, and
// the other ends with SIGKILL after the grace period. Heartbeats on the
// same connection are answered meanwhile.
func TestConcurrentStopsAndKill(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial(t, "pos-5", "till-a")
	a := mustAck(t, c, protocol.Control{ServiceID: "stubborn", Op: protocol.OpStart})
	if a.State != protocol.StateRunning {
		t.Fatalf("start: %+v", a)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	acks := make([]*protocol.ControlAck, 2)
	start := time.Now()
	for i := range 2 {
		wg.Go(func() { acks[i], errs[i] = do(t, c, protocol.Control{ServiceID: "stubborn", Op: protocol.OpStop}) })
	}
	// Heartbeats flow while the stop waits out its grace period.
	for range 3 {
		hctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if _, err := c.Heartbeat(hctx); err != nil {
			t.Fatalf("heartbeat during a stop: %v", err)
		}
		cancel()
	}
	wg.Wait()
	took := time.Since(start)
	conflicts, stopped := 0, 0
	for i := range 2 {
		switch {
		case protocol.StatusOf(errs[i]) == protocol.Conflict:
			conflicts++
		case errs[i] == nil && acks[i].State == protocol.StateStopped:
			stopped++
		default:
			t.Fatalf("stop %d: %+v %v", i, acks[i], errs[i])
		}
	}
	if conflicts != 1 || stopped != 1 {
		t.Fatalf("%d conflicts, %d stopped; want one each", conflicts, stopped)
	}
	if took < 300*time.Millisecond {
		t.Fatalf("stop took %v, shorter than the 300ms grace: SIGKILL came early", took)
	}
	waitGone(t, a.PID)
}

// A request whose timeout_ms is shorter than the run gets TIMEOUT with
// what is known; the run completes, is audited, and a repeat of its
// request_id gets the final answer without a second run.
func TestTimeoutAndRequestID(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial(t, "pos-6", "till-a")
	req := protocol.Control{ServiceID: "slow", Op: protocol.OpStart, TimeoutMs: 200, RequestID: 77, HasRequestID: true}
	_, err := do(t, c, req)
	var to *protocol.ControlTimeout
	if !errors.As(err, &to) || to.State != protocol.StateRunning || to.PID == 0 {
		t.Fatalf("want TIMEOUT with the running state, got %v", err)
	}
	req.TimeoutMs = 0
	a := mustAck(t, c, req) // waits for the same run
	if a.State != protocol.StateExited || a.PID != to.PID || !strings.Contains(a.Output, "done") {
		t.Fatalf("repeat: %+v (first pid %d)", a, to.PID)
	}
	b := mustAck(t, c, req) // answered from memory
	if b.PID != a.PID {
		t.Fatalf("second repeat ran again: pid %d vs %d", b.PID, a.PID)
	}
	req.Op = protocol.OpStatus
	_, err = do(t, c, req)
	wantCode(t, err, protocol.Conflict) // same request_id, another op

	recs, err := n.Store.ListAudit(t.Context(), storage.AuditFilter{DeviceID: "pos-6", Service: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	var timeouts, late int
	for _, r := range recs {
		if r.Status == uint8(protocol.Timeout) {
			timeouts++
		}
		if strings.Contains(r.Message, "completed after") && r.State == protocol.StateExited {
			late++
		}
	}
	if timeouts != 1 || late != 1 {
		t.Fatalf("audit: %d timeouts, %d late completions in %+v", timeouts, late, recs)
	}
}

// If the terminal disconnects before the answer, the operation completes
// and is audited anyway.
func TestDisconnectStillAudited(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial(t, "pos-7", "till-a")
	go func() {
		_, _ = do(t, c, protocol.Control{ServiceID: "slow", Op: protocol.OpStart})
	}()
	time.Sleep(200 * time.Millisecond)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := n.Store.ListAudit(t.Context(), storage.AuditFilter{DeviceID: "pos-7"})
		if err != nil {
			t.Fatal(err)
		}
		// The record of the run's start, then that of its outcome.
		if len(recs) == 2 && recs[0].State == protocol.StateExited && recs[0].Status == 0 &&
			recs[1].State == protocol.StateRunning && recs[1].PID == recs[0].PID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed audit record after the disconnect: %+v", recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Operators run the same operations, audited with source operator.
func TestOperate(t *testing.T) {
	n := startNode(t, nil)
	res, err := n.ctl.Operate(t.Context(), "spooler", config.OpStart, "127.0.0.1:1")
	if err != nil || res.Service.State != protocol.StateRunning {
		t.Fatalf("operate start: %+v %v", res, err)
	}
	if _, err := n.ctl.Operate(t.Context(), "nope", config.OpStart, ""); !errors.Is(err, control.ErrUnknownService) {
		t.Fatalf("unknown: %v", err)
	}
	res, err = n.ctl.Operate(t.Context(), "spooler", config.OpStop, "127.0.0.1:1")
	if err != nil || res.Service.State != protocol.StateStopped {
		t.Fatalf("operate stop: %+v %v", res, err)
	}
	recs, err := n.ctl.Audit(t.Context(), storage.AuditFilter{Service: "spooler"})
	// The stop, the start, and the record committed before the daemon ran.
	if err != nil || len(recs) != 3 || recs[0].Source != storage.SourceOperator || recs[0].Op != config.OpStop ||
		recs[2].State != protocol.StateRunning || recs[2].PID != recs[1].PID {
		t.Fatalf("audit: %+v %v", recs, err)
	}
	views := n.ctl.Services()
	if len(views) != 5 || views[0].ID != "echo" {
		t.Fatalf("services: %+v", views)
	}
}
