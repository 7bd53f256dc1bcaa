package ui

// The browser-test harness, for every console page's tests: a real termd
// process (built once per test run from ./cmd/termd, with the whole
// feature set wired as in production) on free loopback ports, Debian's
// chromium driven by chromedp, sign-in, waiting for the page's state,
// screenshots, and a check that the page hit no Content-Security-Policy
// violation or script error. A page author writes:
//
//	func TestBrowserDevices(t *testing.T) {
//		p := startTermd(t, "")                  // extra TOML appended to the config
//		p.dial(t, "POS-1", "P400")              // a simulated terminal (protocol/client)
//		b := newBrowser(t)                      // skips without chromium, fails under CI
//		b.signIn(p, opsToken)                   // or readToken
//		b.open(p.url("/ui/devices"))
//		b.waitJS(`document.querySelectorAll("#devices tbody tr").length == 1`, 5*time.Second)
//		n := evalJS[int](b, `document.querySelectorAll("form.action").length`)
//		b.shot("devices")                       // $TERMD_UI_SHOTS or var/ui-shots/
//		b.click(`form.action[action$="/disconnect"] button`) // confirm dialog: b.confirm()
//	}
//
// Chromium: `make test` installs Debian's chromium (scripts/ensure-chromium.sh);
// TERMD_CHROMIUM names another binary. Without one the browser tests skip,
// except under CI (CI set), where they fail.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
)

// browserFleetSecret is the fleet secret of the harness's termd.
const browserFleetSecret = "browser-test-fleet-secret"

var (
	termdOnce sync.Once
	termdBin  string
	termdErr  error
)

// termdBinary builds termd once per test run (with the race detector when
// the tests have it, so the build reuses their compiled packages).
func termdBinary(t testing.TB) string {
	t.Helper()
	termdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "termd-ui-test-")
		if err != nil {
			termdErr = err
			return
		}
		termdBin = filepath.Join(dir, "termd")
		args := []string{"build", "-o", termdBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goCommand(), append(args, "github.com/termd/termd/cmd/termd")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			termdErr = fmt.Errorf("go build termd: %v\n%s", err, out)
		}
	})
	if termdErr != nil {
		t.Fatal(termdErr)
	}
	return termdBin
}

// goCommand is the go tool that runs the tests.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// termdProc is a termd process of a browser test.
type termdProc struct {
	t                    testing.TB
	dir, cfgPath         string
	tgp, admin, download string
	cmd                  *exec.Cmd
	out                  *servertest.SyncBuffer
}

// startTermd starts termd with the harness's config (operator and read
// tokens, fast digests, a download listener) plus extra TOML, and waits
// until it is ready. It is killed when the test ends.
func startTermd(t testing.TB, extra string) *termdProc {
	t.Helper()
	p := &termdProc{t: t, dir: t.TempDir(), tgp: servertest.FreePort(t), admin: servertest.FreePort(t), download: servertest.FreePort(t)}
	p.cfgPath = filepath.Join(p.dir, "termd.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
tick_interval = "50ms"
[auth]
fleet_secret = %q
[admin]
listen = %q
[[admin.tokens]]
name = "alice"
scope = "operator"
sha256 = %q
[[admin.tokens]]
name = "ci"
scope = "read"
sha256 = %q
[storage]
dir = %q
flush_interval = "100ms"
[download]
listen = %q
[notify]
digest_window = "1s"
[log]
level = "warn"
%s
`, p.tgp, browserFleetSecret, p.admin, hashHex(opsToken), hashHex(readToken), filepath.Join(p.dir, "data"), p.download, extra)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	return p
}

func (p *termdProc) start() {
	p.t.Helper()
	p.cmd = exec.Command(termdBinary(p.t), "-config", p.cfgPath)
	p.out = &servertest.SyncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd := p.cmd
	p.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("termd not ready: %v\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops termd gracefully and starts it again on the same data.
func (p *termdProc) restart() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("termd did not stop\n%s", p.out.String())
	}
	p.start()
}

// url is an address on the admin listener.
func (p *termdProc) url(path string) string { return "http://" + p.admin + path }

// api calls the admin API with the operator token: body is JSON (a
// []byte is sent as is), out receives the JSON answer; it returns the
// status and fails the test on a transport error.
func (p *termdProc) api(method, path string, body, out any, hdr ...string) int {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, p.url(path), rd)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		p.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// dial connects a simulated terminal (no heartbeats: tests end quickly)
// and closes it when the test ends.
func (p *termdProc) dial(id, model string) *client.Conn {
	p.t.Helper()
	c, err := client.Dial(context.Background(), client.Config{Addr: p.tgp, DeviceID: id,
		FleetSecret: []byte(browserFleetSecret), FW: "1.0", Model: model, NoHeartbeat: true})
	if err != nil {
		p.t.Fatalf("dial %s: %v", id, err)
	}
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

// browser is a headless chromium tab of a test.
type browser struct {
	t   testing.TB
	ctx context.Context
	mu  sync.Mutex
	// problems are CSP violations and script errors the page reported.
	problems []string
}

// chromiumPath finds the browser: TERMD_CHROMIUM, then Debian's chromium.
func chromiumPath() string {
	if p := os.Getenv("TERMD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless chromium for the test; without one it skips
// (fails under CI). At the end the test fails if a page reported a
// Content-Security-Policy violation, a script error or a console error
// (failed HTTP requests excepted: tests check statuses themselves).
func newBrowser(t testing.TB) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium (CI is set): install Debian's chromium (scripts/ensure-chromium.sh) or set TERMD_CHROMIUM")
		}
		t.Skip("no chromium: apt-get install chromium, or set TERMD_CHROMIUM")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-background-networking", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// The first Run starts the browser and must have no deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.problem(m.String())
			}
		}
	}()
	// CSP violations are events of the page; report them on the console
	// from the start of every document.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `document.addEventListener("securitypolicyviolation", function (e) {
			console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI); });`}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		<-watched
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("browser: %s", p)
		}
	})
	return b
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// run runs chromedp steps with a time limit, failing the test on error.
// A step that found a node of a document just replaced by a navigation
// ("No node with given id found", before anything was done to it) is run
// again.
func (b *browser) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for try := 0; ; try++ {
		err := chromedp.Do(ctx, steps...)
		if err == nil {
			return
		}
		if try == 2 || !strings.Contains(err.Error(), "No node with given id found") {
			b.t.Fatalf("browser: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// open navigates to url and waits for its body.
func (b *browser) open(url string) {
	b.t.Helper()
	b.run(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

// signIn signs in on p's console with token and waits for the fleet page.
func (b *browser) signIn(p *termdProc, token string) {
	b.t.Helper()
	b.open(p.url("/ui/login"))
	b.run(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#online-count")))
}

// evalJS evaluates a JavaScript expression in b's page (a promise is
// awaited).
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript boolean expression until it holds; on timeout
// the test fails with a screenshot saved.
// minWait is the least waitJS waits before it fails.
const minWait = 15 * time.Second

func (b *browser) waitJS(expr string, timeout time.Duration) {
	b.t.Helper()
	// A wait that holds returns at once, so a longer limit costs nothing
	// but a failing test's time; under CI every package's tests share the
	// two cores, and a stream event or a page load can take seconds.
	timeout = max(timeout, minWait)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot("timeout-" + sanitize(b.t.Name()))
			b.t.Fatalf("browser: %s did not hold within %v (%v)", expr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	// Read in the page by script, not through the DevTools DOM node ids:
	// right after a navigation those may still name the old document's
	// nodes ("No node with given id found").
	q, _ := json.Marshal(sel)
	s := evalJS[*string](b, `(e => e ? e.innerText : null)(document.querySelector(`+string(q)+`))`)
	if s == nil {
		b.t.Fatalf("browser: no element matches %s", sel)
	}
	return *s
}

// click clicks the first element matching the CSS selector.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.Click(chromedp.CSS(sel)))
}

// typeInto types text into the element matching the CSS selector.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.run(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// confirm answers the console's confirmation dialog with OK.
func (b *browser) confirm() {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
}

// shotsDir is where screenshots go: $TERMD_UI_SHOTS, else var/ui-shots
// at the top of the repository (kept after the test, unlike t.TempDir).
func shotsDir() string {
	if d := os.Getenv("TERMD_UI_SHOTS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "var", "ui-shots")
}

// shot saves a full-page PNG screenshot as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := shotsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '-'
		}
		return r
	}, s)
}
