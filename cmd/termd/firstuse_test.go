package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/server/servertest"
)

// child runs the test binary as termd with args and returns its exit
// error and output.
func child(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TERMD_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("termd %v still running after %v:\n%s", args, timeout, out.String())
		return "", nil
	}
}

// TestSecondTermdSameDataDir (issue 10 item 13): a second termd on a data
// dir in use says "already running (pid N)" and prints no banner; after
// the first is killed with -9 the lock is free again.
func TestSecondTermdSameDataDir(t *testing.T) {
	first := newNode(t, "")
	first.start()
	data := filepath.Join(first.dir, "data")
	out, err := child(t, 15*time.Second, "-dev", "-data", data,
		"-listen", servertest.FreePort(t), "-admin", servertest.FreePort(t))
	if err == nil {
		t.Fatalf("second termd on the same data dir started:\n%s", out)
	}
	want := "already running on data dir " + data + " (pid " + strconv.Itoa(first.cmd.Process.Pid) + ")"
	if !strings.Contains(out, want) {
		t.Errorf("second termd said %q, want it to contain %q", out, want)
	}
	if strings.Contains(out, "dev mode") || strings.Contains(out, "fleet secret") {
		t.Errorf("second termd printed a banner before refusing:\n%s", out)
	}

	// kill -9 frees the lock: the next start succeeds.
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	_ = first.cmd.Wait()
	first.start()
}

// TestHelpExitsZero: -h prints the usage and exits 0.
func TestHelpExitsZero(t *testing.T) {
	out, err := child(t, 10*time.Second, "-h")
	if err != nil {
		t.Fatalf("termd -h: %v\n%s", err, out)
	}
	if !strings.Contains(out, "-print-config") {
		t.Errorf("termd -h printed no usage:\n%s", out)
	}
}

// TestPrintConfigRedacts (issue 10 defect 9): -print-config shows
// neither the fleet secret nor the admin token.
func TestPrintConfigRedacts(t *testing.T) {
	n := newNode(t, "")
	env := func(k string) string {
		if k == "TERMD_ADMIN_TOKEN" {
			return "token-from-the-environment"
		}
		return ""
	}
	var out bytes.Buffer
	if err := runWith([]string{"-config", n.cfgPath, "-print-config"}, env, nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testSecret, "token-from-the-environment"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("-print-config shows %q", secret)
		}
	}
	if !strings.Contains(out.String(), "fleet_secret = '<redacted>'") {
		t.Errorf("-print-config does not mark the redaction:\n%s", out.String())
	}
}

// TestDevHonoursConfigListen (issue 10 item 13): -dev starts from
// loopback addresses, but a config file's listen addresses win, and
// flags win over both.
func TestDevHonoursConfigListen(t *testing.T) {
	dir := t.TempDir()
	withListen := filepath.Join(dir, "a.toml")
	without := filepath.Join(dir, "b.toml")
	_ = os.WriteFile(withListen, []byte("[server]\nlisten = \"127.0.0.1:7100\"\n[admin]\nlisten = \"127.0.0.1:7180\"\n"), 0o600)
	_ = os.WriteFile(without, []byte("[log]\nlevel = \"debug\"\n"), 0o600)
	none := func(string) string { return "" }
	for _, tt := range []struct {
		f           flags
		tgp, adminL string
	}{
		{flags{dev: true, config: withListen}, "127.0.0.1:7100", "127.0.0.1:7180"},
		{flags{dev: true, config: without}, devListen, devAdminListen},
		{flags{dev: true}, devListen, devAdminListen},
		{flags{dev: true, config: withListen, listen: "127.0.0.1:9000", admin: "127.0.0.1:9001"}, "127.0.0.1:9000", "127.0.0.1:9001"},
	} {
		cfg, err := loadConfig(tt.f, none)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Server.Listen != tt.tgp || cfg.Admin.Listen != tt.adminL {
			t.Errorf("%+v: listen %s admin %s, want %s %s", tt.f, cfg.Server.Listen, cfg.Admin.Listen, tt.tgp, tt.adminL)
		}
	}
}

// TestHashToken: -hash-token prints the sha256 of the token on stdin.
func TestHashToken(t *testing.T) {
	var out bytes.Buffer
	if err := runWith([]string{"-hash-token"}, os.Getenv, strings.NewReader("correct-horse-battery\n"), &out); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("correct-horse-battery"))
	if got := strings.TrimSpace(out.String()); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %q", got)
	}
	if err := runWith([]string{"-hash-token"}, os.Getenv, strings.NewReader("short\n"), &out); err == nil {
		t.Fatal("a 5-byte token was hashed")
	}
}

// TestAdminNonLoopbackWarns (issue 10 defect 9): an admin API on a
// non-loopback address (without TLS, which termd does not terminate) is
// logged as a warning at startup; loopback is not. (Checked on the
// logger: the tests bind nothing but loopback.)
func TestAdminNonLoopbackWarns(t *testing.T) {
	for addr, want := range map[string]bool{"0.0.0.0:7080": true, "10.1.2.3:7080": true, ":7080": true, "127.0.0.1:7080": false} {
		var buf bytes.Buffer
		warnExposedAdmin(slog.New(slog.NewTextHandler(&buf, nil)), addr)
		if got := strings.Contains(buf.String(), "non-loopback address without TLS"); got != want {
			t.Errorf("admin.listen %s: warned %v, want %v (%s)", addr, got, want, buf.String())
		}
	}
}
