package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// smallFS mounts a tmpfs of size MiB for the test. Mounting needs root:
// CI runs as root and must run this test; elsewhere it is skipped.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a %d MiB tmpfs: %v %s", size, err, out)
		}
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file into dir until the filesystem has about leave bytes
// free (leave 0: until it is full).
func fill(t *testing.T, dir, name string, leave uint64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		free, err := storage.FreeBytes(dir)
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			return
		}
		n := uint64(len(chunk))
		if free-leave < n {
			n = free - leave
		}
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// startAlive starts the node and waits for /healthz only: a node on a
// full disk is alive but not ready.
func (n *node) startAlive() { n.t.Helper(); n.startUntil("/healthz") }

func (n *node) probe(path string) int {
	resp, err := http.Get("http://" + n.adminAddr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// metric reads one metric's value from /metrics.
func (n *node) metric(name string) string {
	n.t.Helper()
	resp, err := http.Get("http://" + n.adminAddr + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// alive fails the test if termd has exited (a SIGBUS kills it).
func (n *node) alive(what string) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.Signal(0)); err != nil || n.probe("/healthz") != 200 {
		n.t.Fatalf("%s: termd died: %v\n%s", what, err, n.out.String())
	}
}

// A full disk does not kill termd: below storage.min_free_mb durable
// writes are refused (CONTROL → UNAVAILABLE, /readyz 503, metrics) while
// logins and heartbeats go on; filling the disk to the last byte and
// sending CONTROLs (which killed termd with SIGBUS in Badger's
// memory-mapped log before the guard) leaves it running; after kill -9 it
// starts again on the full disk, serving terminals with writes refused;
// once space is freed, writes resume and nothing acknowledged was lost.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	data := smallFS(t, 48)
	script := servertest.Script(t, t.TempDir(), "noop.sh", "exit 0\n")
	n := newNode(t, fmt.Sprintf(`
[[services]]
id = "noop"
kind = "oneshot"
command = %q
[[services.acl]]
devices = ["*"]
`, script))
	// The data dir is the small filesystem.
	cfg, _ := os.ReadFile(n.cfgPath)
	cfg = []byte(strings.Replace(string(cfg), fmt.Sprintf("dir = %q", filepath.Join(n.dir, "data")),
		fmt.Sprintf("dir = %q\nmin_free_mb = 16\nballast_mb = 4", data), 1))
	if err := os.WriteFile(n.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	if _, err := os.Stat(filepath.Join(data, storage.BallastName)); err != nil {
		t.Fatalf("no ballast: %v", err)
	}

	dial := func(id string) *client.Conn {
		t.Helper()
		c, err := client.Dial(t.Context(), client.Config{Addr: n.tgp, DeviceID: id, FleetSecret: []byte(testSecret),
			FW: "1.0", Model: "M", NoHeartbeat: true})
		if err != nil {
			t.Fatalf("login %s: %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Every CONTROL gets a new request_id; its answer decides whether the
	// audit must hold it (OK) or must not (UNAVAILABLE: refused, not run).
	answered := map[uint64]protocol.Code{}
	var rid uint64
	control := func(c *client.Conn) error {
		rid++
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err := c.Do(ctx, &protocol.Control{ServiceID: "noop", Op: protocol.OpStatus, RequestID: rid, HasRequestID: true}, &protocol.ControlAck{})
		answered[rid] = protocol.StatusOf(err)
		return err
	}
	beat := func(c *client.Conn) error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return c.Do(ctx, &protocol.Heartbeat{}, &protocol.HeartbeatAck{})
	}
	c := dial("T-disk")
	for i := 0; i < 5; i++ {
		if err := control(c); err != nil {
			t.Fatalf("control with room: %v", err)
		}
	}

	// Below the reserve: refused, not run; everything else goes on.
	fill(t, data, "filler-1", 8<<20)
	refused := func(what string) {
		t.Helper()
		var err error
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if err = control(c); protocol.StatusOf(err) == protocol.Unavailable {
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.RetryAfterMs == 0 {
					t.Fatalf("%s: UNAVAILABLE without retry_after_ms: %v", what, err)
				}
				return
			}
		}
		t.Fatalf("%s: CONTROL answered %v, want UNAVAILABLE", what, err)
	}
	refused("below the reserve")
	if err := beat(c); err != nil {
		t.Fatalf("heartbeat below the reserve: %v", err)
	}
	dial("T-disk-2")
	if code := n.probe("/readyz"); code != 503 {
		t.Fatalf("/readyz %d below the reserve, want 503", code)
	}
	if v := n.metric("termd_storage_writable"); v != "0" {
		t.Fatalf("termd_storage_writable = %q", v)
	}

	// To the last byte: what killed termd before the guard.
	fill(t, data, "filler-2", 0)
	for i := 0; i < 20; i++ {
		_ = control(c)
		_ = beat(c)
	}
	time.Sleep(1500 * time.Millisecond) // a write-behind flush and alive marks come due
	n.alive("disk full")
	refused("disk full")

	// kill -9 on the full disk, then start again: alive, not ready,
	// terminals served, writes refused.
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.startAlive()
	if !strings.Contains(n.out.String(), "durable writes are refused") {
		t.Fatalf("no warning at start on a full disk:\n%s", n.out.String())
	}
	if code := n.probe("/readyz"); code != 503 {
		t.Fatalf("/readyz %d after a start on a full disk", code)
	}
	c = dial("T-disk")
	if err := beat(c); err != nil {
		t.Fatalf("heartbeat after a start on a full disk: %v", err)
	}
	refused("after a start on a full disk")
	n.alive("started on a full disk")

	// Space freed: writes resume without a restart.
	for _, f := range []string{"filler-1", "filler-2"} {
		if err := os.Remove(filepath.Join(data, f)); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err = control(c); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("CONTROL after space was freed: %v", err)
	}
	if code := n.probe("/readyz"); code != 200 {
		t.Fatalf("/readyz %d after space was freed", code)
	}
	// Nothing acknowledged was lost, and nothing refused ran: every
	// CONTROL answered OK is in the audit, none answered UNAVAILABLE is.
	var audit struct {
		Records []struct {
			RequestID uint64 `json:"request_id"`
		} `json:"records"`
	}
	n.get("/v1/audit?device=T-disk&limit=1000", &audit)
	got := map[uint64]bool{}
	for _, r := range audit.Records {
		got[r.RequestID] = true
	}
	ok, unavailable := 0, 0
	for id, code := range answered {
		switch code {
		case protocol.OK:
			ok++
			if !got[id] {
				t.Errorf("request %d was answered OK but is not in the audit", id)
			}
		case protocol.Unavailable:
			unavailable++
			if got[id] {
				t.Errorf("request %d was refused UNAVAILABLE but is in the audit", id)
			}
		}
	}
	if ok < 6 || unavailable < 20 {
		t.Fatalf("%d answered OK, %d UNAVAILABLE: %v", ok, unavailable, answered)
	}
}
