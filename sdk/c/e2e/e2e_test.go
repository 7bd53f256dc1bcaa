// Package e2e runs the C SDK's example terminal (sdk/c/examples) against a
// real termd node over loopback TCP: login, heartbeats, an upgrade query,
// a CONTROL that runs a real process, the clock challenge of a terminal
// whose clock is an hour off, a takeover by a second terminal with the
// same device id, and a refused login. The example is built with gcc under
// AddressSanitizer and UndefinedBehaviorSanitizer, so any memory error or
// undefined behaviour in the SDK fails the run. gcc is required: CI has
// it, and a missing compiler fails the test rather than skipping it.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/server/servertest"
)

// Bounds of one example run; every run ends far sooner.
const (
	runTimeout = 30 * time.Second
	// hbInterval is what the node announces; the example's -hb-min 1
	// lets it use it instead of clamping to the spec's 10 s floor. The ack
	// deadline is min(interval, 30 s), so 2 s leaves a loaded CI machine
	// room to answer.
	hbInterval = 2 * time.Second
	// exitGoaway is posix_terminal's exit status after GOAWAY.
	exitGoaway = 2
	// startTimeout bounds termd's start; readyPoll is how often /readyz
	// is asked meanwhile.
	startTimeout = 15 * time.Second
	readyPoll    = 50 * time.Millisecond
)

// cflags is how the example is compiled: strict C99 warnings as errors,
// with ASan and UBSan aborting on the first report.
var cflags = []string{
	"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
	"-O1", "-g", "-fno-omit-frame-pointer",
	"-fsanitize=address,undefined", "-fno-sanitize-recover=all",
}

// build compiles examples/posix_terminal.c with the SDK sources.
func build(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is required for the C SDK's end-to-end test: %v", err)
	}
	srcs, err := filepath.Glob("../tgp_*.c")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("SDK sources not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "posix_terminal")
	args := append(append([]string{}, cflags...), "-o", bin, "../examples/posix_terminal.c")
	out, err := exec.Command(gcc, append(args, srcs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	return bin
}

// node builds cmd/termd and runs it as a child process with a 1 s
// heartbeat and a one-shot service "sync" that records its argument in a
// file and exits 3; the process is killed when the test ends.
func node(t *testing.T) (addr, marker string) {
	t.Helper()
	dir := t.TempDir()
	marker = filepath.Join(dir, "synced")
	script := servertest.Script(t, dir, "sync.sh", fmt.Sprintf("echo synced $1\necho $1 > %s\nexit 3\n", marker))
	bin := filepath.Join(dir, "termd")
	// go test puts the go command that runs it first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build termd: %v", err)
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/termd/termd/cmd/termd").CombinedOutput(); err != nil {
		t.Fatalf("building termd: %v\n%s", err, out)
	}
	addr, admin := servertest.FreePort(t), servertest.FreePort(t)
	cfg := fmt.Sprintf(`
[server]
listen = %q
tick_interval = "50ms"
[auth]
fleet_secret = %q
[admin]
listen = %q
token = "e2e-token"
[storage]
dir = %q
[heartbeat]
interval = %q
[log]
level = "warn"
[[services]]
id = "sync"
kind = "oneshot"
command = %q
arg_patterns = ['[0-9]+']
  [[services.acl]]
  devices = ["C-*"]
`, addr, servertest.FleetSecret, admin, filepath.Join(dir, "data"), hbInterval.String(), script)
	cfgPath := filepath.Join(dir, "termd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &servertest.SyncBuffer{}
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, marker
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("termd not ready: %v\n%s", err, out.String())
		}
		time.Sleep(readyPoll)
	}
}

// terminal is one running example process.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	line chan string
	done chan error
}

func start(t *testing.T, bin string, args ...string) *terminal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1", "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // sanitizer reports land in the same transcript
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, cmd: cmd, line: make(chan string, 256), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			tm.mu.Lock()
			tm.out = append(tm.out, sc.Text())
			tm.mu.Unlock()
			select {
			case tm.line <- sc.Text():
			default:
			}
		}
		tm.done <- cmd.Wait()
	}()
	return tm
}

// wait returns the exit status and the whole transcript.
func (tm *terminal) wait() (int, string) {
	tm.t.Helper()
	var err error
	select {
	case err = <-tm.done:
	case <-time.After(runTimeout + 5*time.Second):
		tm.t.Fatalf("terminal did not exit:\n%s", tm.transcript())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		tm.t.Fatalf("terminal: %v", err)
	}
	out := tm.transcript()
	if strings.Contains(out, "Sanitizer") || strings.Contains(out, "runtime error") {
		tm.t.Fatalf("sanitizer report:\n%s", out)
	}
	return code, out
}

// waitLine blocks until a line matching re was printed.
func (tm *terminal) waitLine(re *regexp.Regexp) {
	tm.t.Helper()
	deadline := time.After(runTimeout)
	for {
		select {
		case l := <-tm.line:
			if re.MatchString(l) {
				return
			}
		case <-deadline:
			tm.t.Fatalf("no line matching %s:\n%s", re, tm.transcript())
		}
	}
}

func (tm *terminal) transcript() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return strings.Join(tm.out, "\n")
}

// must finds re in out and returns its submatches.
func must(t *testing.T, out, re string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line matching %q in:\n%s", re, out)
	}
	return m
}

func TestCTerminal(t *testing.T) {
	bin := build(t)
	addr, marker := node(t)
	base := []string{"-addr", addr, "-secret", servertest.FleetSecret, "-hb-min", "1"}
	run := func(args ...string) (int, string) {
		return start(t, bin, append(append([]string{}, base...), args...)...).wait()
	}

	t.Run("login heartbeat upgrade control", func(t *testing.T) {
		code, out := run("-device", "C-1", "-beats", "2", "-app", "pos", "-version", "1.0.0", "-control", "sync:start:42")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		must(t, out, `^login ok session_id=[1-9][0-9]* hb_interval_ms=2000 `)
		must(t, out, `^upgrade status=0 offer=none$`)
		// The service really ran on the node: its output came back and
		// it left its argument behind.
		must(t, out, `^control status=0 state=(exited|failed) pid=[1-9][0-9]* exit_code=3 output=synced 42\|$`)
		if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "42" {
			t.Fatalf("the service did not run: %q %v", b, err)
		}
		for n := 1; n <= 2; n++ {
			must(t, out, fmt.Sprintf(`^heartbeat ack n=%d status=0 flags=[0-9]+ interval_s=2$`, n))
		}
		must(t, out, `^done heartbeats=2$`)
		if strings.Contains(out, "challenge") {
			t.Fatalf("a terminal with a right clock was challenged:\n%s", out)
		}
	})

	t.Run("clock challenge", func(t *testing.T) {
		// An hour behind: HELLO is refused EXPIRED with a challenge, the
		// retry succeeds, and the offset learnt from HELLO_OK is +1 h.
		code, out := run("-device", "C-2", "-beats", "1", "-skew", "-3600")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		must(t, out, `^challenge clock_off_by_s=-3600 retried$`)
		m := must(t, out, `^login ok .* clock_offset_ms=(-?[0-9]+)$`)
		off, _ := strconv.ParseInt(m[1], 10, 64)
		if d := off - 3600*1000; d < -5000 || d > 5000 {
			t.Fatalf("clock offset %d ms, want about 3600000", off)
		}
		must(t, out, `^heartbeat ack n=1 status=0`)
	})

	t.Run("takeover", func(t *testing.T) {
		first := start(t, bin, append(append([]string{}, base...), "-device", "C-3", "-beats", "1000", "-run-ms", "20000")...)
		first.waitLine(regexp.MustCompile(`^heartbeat ack n=1 `))
		code2, out2 := run("-device", "C-3", "-beats", "1")
		if code2 != 0 {
			t.Fatalf("second terminal exit %d:\n%s", code2, out2)
		}
		code, out := first.wait()
		if code != exitGoaway {
			t.Fatalf("first terminal exit %d, want %d:\n%s", code, exitGoaway, out)
		}
		must(t, out, `^goaway code=5 message=replaced `)
		// §18: after GOAWAY 5 on a live connection wait at least 60 s.
		m := must(t, out, `^backoff wait_ms=([0-9]+)$`)
		if w, _ := strconv.Atoi(m[1]); w < 60000 {
			t.Fatalf("backoff %d ms after replaced, want >= 60000", w)
		}
		s1 := must(t, out, `^login ok session_id=([0-9]+)`)[1]
		s2 := must(t, out2, `^login ok session_id=([0-9]+)`)[1]
		a, _ := strconv.ParseUint(s1, 10, 64)
		b, _ := strconv.ParseUint(s2, 10, 64)
		if b <= a {
			t.Fatalf("session ids %d then %d: the newer login must have the higher id", a, b)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		code, out := start(t, bin, "-addr", addr, "-device", "C-4", "-secret", "not-the-fleet-secret", "-beats", "1").wait()
		if code == 0 {
			t.Fatalf("login with a wrong secret succeeded:\n%s", out)
		}
		must(t, out, `^ended result=-5 code=2 `)
		m := must(t, out, `^backoff wait_ms=([0-9]+)$`)
		if w, _ := strconv.Atoi(m[1]); w < 3600000 {
			t.Fatalf("backoff %d ms after UNAUTHENTICATED, want >= 1 h", w)
		}
	})
}
