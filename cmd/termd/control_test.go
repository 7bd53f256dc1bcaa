package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
)

// Service control across kill -9: every request a terminal got an answer
// for is in the audit after the restart, and the daemon that was running
// is re-adopted (same pid), not started a second time; a STOP after the
// restart ends it.
func TestControlKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	scripts := t.TempDir()
	daemon := servertest.Script(t, scripts, "daemon.sh", "exec sleep 600\n")
	oneshot := servertest.Script(t, scripts, "oneshot.sh", "echo hello from $1\nexit 3\n")
	n := newNode(t, fmt.Sprintf(`
[[services]]
id = "spooler"
kind = "daemon"
command = %q
start_wait = "100ms"
stop_grace = "1s"
  [[services.acl]]
  devices = ["K9-*"]

[[services]]
id = "price-sync"
kind = "oneshot"
command = %q
arg_patterns = ['[0-9]+']
  [[services.acl]]
  devices = ["K9-*"]
`, daemon, oneshot))
	n.start()
	dial := func() *client.Conn {
		c, err := client.Dial(t.Context(), client.Config{
			Addr: n.tgp, DeviceID: "K9-ctl", FleetSecret: []byte(testSecret), FW: "1", Model: "M", NoHeartbeat: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	ctrl := func(c *client.Conn, req protocol.Control) *protocol.ControlAck {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var ack protocol.ControlAck
		if err := c.Do(ctx, &req, &ack); err != nil {
			t.Fatalf("%s: %v", req.ServiceID, err)
		}
		return &ack
	}
	started := ctrl(c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	ran := ctrl(c, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStart, Args: []string{"42"}})
	if started.State != protocol.StateRunning || ran.ExitCode != 3 || !strings.Contains(ran.Output, "hello from 42") {
		t.Fatalf("before the kill: %+v %+v", started, ran)
	}
	pid := int(started.PID)
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })

	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	c.Close()
	if !running(pid) {
		t.Fatal("the daemon died with termd")
	}
	n.start()

	var audit auditJSON
	n.get("/v1/audit?device=K9-ctl", &audit)
	// Each run: the record committed before it ran, then its answer.
	if len(audit.Records) != 4 || audit.Records[0].Service != "price-sync" || audit.Records[2].Service != "spooler" ||
		audit.Records[2].PID != pid || audit.Records[3].PID != pid || audit.Records[0].Status != 0 {
		t.Fatalf("audit after kill -9: %+v", audit.Records)
	}
	c = dial()
	defer c.Close()
	st := ctrl(c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus})
	if st.State != protocol.StateRunning || int(st.PID) != pid {
		t.Fatalf("after restart the daemon is %+v, want running as pid %d (adopted)", st, pid)
	}
	again := ctrl(c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	if int(again.PID) != pid {
		t.Fatalf("START after the restart spawned pid %d next to the adopted %d", again.PID, pid)
	}
	stopped := ctrl(c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStop})
	if stopped.State != protocol.StateStopped {
		t.Fatalf("stop: %+v", stopped)
	}
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("adopted daemon %d still alive after STOP", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auditJSON is the part of GET /v1/audit the tests read.
type auditJSON struct {
	Records []struct {
		Service string `json:"service"`
		Op      string `json:"op"`
		Status  int    `json:"status"`
		State   string `json:"state"`
		PID     int    `json:"pid"`
		Message string `json:"message"`
		Args    []string
	} `json:"records"`
}

// running reports whether pid is a live process. A zombie is not: once
// termd was killed, the daemon's parent is whatever reaps orphans here.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
