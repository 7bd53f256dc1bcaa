package notify

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// Kill -9 plumbing: the child enqueues failures into a Badger outbox and
// is killed before their digest window ends; a restarted notifier on the
// same directory delivers them to both peers.
const (
	killDirEnv   = "TERMD_NOTIFY_HELPER_DIR"
	killHookEnv  = "TERMD_NOTIFY_HELPER_HOOK"
	killSMTPEnv  = "TERMD_NOTIFY_HELPER_SMTP"
	killFailures = 10
	// killWindow is the child's digest window: long, so nothing is sent
	// before the kill.
	killWindow = time.Hour
	// killLinger bounds how long an orphaned child waits to be killed.
	killLinger = 2 * time.Minute
)

// killConfig is the [notify] of both processes.
func killConfig(hook, smtpAddr string) config.Notify {
	c := testConfig()
	c.Events = false
	c.DigestWindow = config.D(killWindow)
	c.Webhooks = []config.Webhook{{Name: "ops", URL: hook, Secret: testSecret}}
	host, p, _ := strings.Cut(smtpAddr, ":")
	port, _ := strconv.Atoi(p)
	c.SMTP = config.SMTP{Host: host, Port: port, From: "termd@example.com", To: []string{"ops@example.com"}, StartTLS: config.StartTLSOpportunistic}
	return c
}

// TestNotifyHelperProcess is the child of TestOutboxDeliveredAfterKill9.
func TestNotifyHelperProcess(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("helper process for TestOutboxDeliveredAfterKill9")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	b, err := storage.OpenBadger(dir, storage.BadgerOptions{})
	if err != nil {
		fail(err)
	}
	n, err := Open(Options{Config: killConfig(os.Getenv(killHookEnv), os.Getenv(killSMTPEnv)), Store: b})
	if err != nil {
		fail(err)
	}
	n.Start()
	for i := range killFailures {
		if err := n.Enqueue(context.Background(), failure("r-k9", i)); err != nil {
			fail(err)
		}
	}
	fmt.Println("ready")
	time.Sleep(killLinger) // killed here, nothing delivered, nothing closed
	os.Exit(0)
}

func TestOutboxDeliveredAfterKill9(t *testing.T) {
	hook := newHookReceiver(t, 0)
	srv := newSMTPServer(t, 0)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killHookEnv+"="+hook.srv.URL, killSMTPEnv+"="+srv.addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("helper exited before ready: %s", stderr.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper not ready: %s", stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	select {
	case c := <-hook.got:
		t.Fatalf("the child delivered before its window ended: %+v", c.payload.Digest)
	default:
	}

	b, err := storage.OpenBadger(dir, storage.BadgerOptions{Logger: testLog(t)})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() }) // after the notifier's Close
	var clk clock
	clk.advance(killWindow + time.Minute) // the window has passed
	openNotifier(t, Options{Config: killConfig(hook.srv.URL, srv.addr), Store: b, Now: clk.now})
	c := hook.next(t, testWait)
	verify(t, c, testSecret)
	if d := c.payload.Digest; d == nil || d.Failures != killFailures || d.ReleaseID != "r-k9" {
		t.Fatalf("webhook digest after kill -9 = %+v", d)
	}
	m := srv.next(t, testWait)
	if !strings.Contains(m.data, fmt.Sprintf("%d upgrade failures", killFailures)) {
		t.Fatalf("mail after kill -9 lacks the digest:\n%s", m.data)
	}
}
