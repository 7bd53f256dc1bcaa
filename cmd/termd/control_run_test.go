package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
)

// A oneshot run in progress when termd is killed with kill -9: the audit
// holds the record committed before it ran (with its pid), the next
// termd adopts the run (STATUS shows it, a START is CONFLICT with
// max_concurrent 1, a repeat of its request_id gets it), and only after
// it ended does a new run start. Also: a service never sees a descriptor
// termd inherited.
func TestControlKillNineMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	scripts := t.TempDir()
	runs := filepath.Join(scripts, "runs")
	slow := servertest.Script(t, scripts, "slow.sh", "echo run >> '"+runs+"'\nsleep 3\n")
	fds := servertest.Script(t, scripts, "fds.sh", "for f in /proc/$$/fd/*; do echo \"${f##*/} $(readlink \"$f\")\"; done\n")
	n := newNode(t, fmt.Sprintf(`
[[services]]
id = "slow"
kind = "oneshot"
command = %q
  [[services.acl]]
  devices = ["K9-*"]

[[services]]
id = "fds"
kind = "oneshot"
command = %q
  [[services.acl]]
  devices = ["K9-*"]
`, slow, fds))
	marker, err := os.Create(filepath.Join(scripts, "inherited-marker"))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	n.files = []*os.File{marker}
	n.start()
	dial := func() *client.Conn {
		c, err := client.Dial(t.Context(), client.Config{
			Addr: n.tgp, DeviceID: "K9-run", FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctrl := func(c *client.Conn, req protocol.Control) (*protocol.ControlAck, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var ack protocol.ControlAck
		err := c.Do(ctx, &req, &ack)
		return &ack, err
	}
	c := dial()
	a, err := ctrl(c, protocol.Control{ServiceID: "fds", Op: protocol.OpStart})
	if err != nil || !strings.Contains(a.Output, "0 ") || strings.Contains(a.Output, "inherited-marker") {
		t.Fatalf("the service's descriptors (%v):\n%s", err, a.Output)
	}

	req := protocol.Control{ServiceID: "slow", Op: protocol.OpStart, TimeoutMs: 300, RequestID: 9, HasRequestID: true}
	_, err = ctrl(c, req)
	var to *protocol.ControlTimeout
	if !errors.As(err, &to) || to.State != protocol.StateRunning || to.PID == 0 {
		t.Fatalf("want TIMEOUT with the running run, got %v", err)
	}
	pid := int(to.PID)
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	c.Close()
	if !running(pid) {
		t.Fatal("the run died with termd")
	}
	n.start()

	var audit auditJSON
	n.get("/v1/audit?device=K9-run&service=slow", &audit)
	if len(audit.Records) == 0 || audit.Records[len(audit.Records)-1].PID != pid ||
		audit.Records[len(audit.Records)-1].State != protocol.StateRunning ||
		!strings.Contains(audit.Records[len(audit.Records)-1].Message, "started") {
		t.Fatalf("no record of the run %d in the audit after kill -9: %+v", pid, audit.Records)
	}
	c = dial()
	defer c.Close()
	st, err := ctrl(c, protocol.Control{ServiceID: "slow", Op: protocol.OpStatus})
	if err != nil || st.State != protocol.StateRunning || int(st.PID) != pid {
		t.Fatalf("after the restart: %+v %v, want the run %d", st, err, pid)
	}
	if _, err := ctrl(c, protocol.Control{ServiceID: "slow", Op: protocol.OpStart}); protocol.StatusOf(err) != protocol.Conflict {
		t.Fatalf("a second run beside the adopted one: %v", err)
	}
	req.TimeoutMs = 0
	// The audit's last word on it: TIMEOUT with the run, as first answered.
	_, err = ctrl(c, req)
	if !errors.As(err, &to) || int(to.PID) != pid {
		t.Fatalf("repeat of the request_id after the restart: %v, want the run %d", err, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("run %d still alive", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(runs)
	if got := strings.Count(string(b), "\n"); got != 1 {
		t.Fatalf("%d runs before the adopted one ended, want 1", got)
	}
	waitNotRunning := time.Now().Add(5 * time.Second)
	for {
		st, err = ctrl(c, protocol.Control{ServiceID: "slow", Op: protocol.OpStatus})
		if err == nil && st.State != protocol.StateRunning {
			break
		}
		if time.Now().After(waitNotRunning) {
			t.Fatalf("status after the adopted run ended: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := ctrl(c, protocol.Control{ServiceID: "slow", Op: protocol.OpStart, TimeoutMs: 100}); protocol.StatusOf(err) != protocol.Timeout {
		t.Fatalf("a new run once the adopted one ended: %v", err)
	}
}
