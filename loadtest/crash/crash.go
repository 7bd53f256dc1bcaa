// Package crash is termd's crash test: it runs a real termd under load,
// kills it with SIGKILL at random moments, restarts it each time, and
// checks that every durable acknowledgement a client received survived
// and that no invariant broke. Clients record on their side everything
// termd acknowledged as durable: operator key registrations (204 after a
// committed write), CONTROL answers (every one audited before it is sent)
// and upgrade reports (stored before UPGRADE_REPORT_ACK). termload's mixed scenario runs beside them as background load.
//
// What is checked after the last restart:
//   - every acknowledged CONTROL (device, request_id) is in the audit;
//   - every acknowledged key registration is in the registry;
//   - every acknowledged upgrade report stage is in the device's history;
//   - the daemon service runs at most once (never started twice);
//   - the oneshot with max_concurrent = 1 never ran twice at once.
//
// Reservations and group changes join the list as those features land;
// docs/operations.md says what is covered.
package crash

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/termd/termd/loadtest"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// Options configure a crash test run.
type Options struct {
	// Command starts termd; "-config FILE" is appended. Env is added to
	// its environment.
	Command []string
	Env     []string
	// Kills is how many times termd is killed with SIGKILL.
	Kills int
	// Terminals record durable acknowledgements; Load more terminals run
	// termload's mixed scenario beside them (0: none).
	Terminals, Load int
	// MinUp and MaxUp bound the random time termd runs before a kill.
	MinUp, MaxUp time.Duration
	// Dir holds the configuration, data and scripts.
	Dir string
	// Log receives progress lines; nil: none.
	Log io.Writer
}

// Report is a run's outcome.
type Report struct {
	Kills        int
	Acknowledged int
	// Lost names every acknowledged record missing after the last restart.
	Lost []string
	// Violations names every broken invariant.
	Violations []string
}

// String is the summary line: "N acknowledged, 0 lost" and what broke.
func (r Report) String() string {
	s := fmt.Sprintf("%d acknowledged, %d lost (%d kills)", r.Acknowledged, len(r.Lost), r.Kills)
	for _, l := range r.Lost {
		s += "\n  lost: " + l
	}
	for _, v := range r.Violations {
		s += "\n  violation: " + v
	}
	return s
}

// OK reports whether nothing was lost or broken.
func (r Report) OK() bool { return len(r.Lost) == 0 && len(r.Violations) == 0 }

// Bounds of a run.
const (
	fleetSecret    = "crash-test-fleet-secret"
	readyTimeout   = 30 * time.Second
	requestTimeout = 10 * time.Second
	// redialPause is how long a recorder waits before dialling again
	// while termd is down.
	redialPause = 100 * time.Millisecond
	// daemonService and oneshotService are the services the recorders
	// drive; the daemon's sleep argument is unique to the run, so its
	// processes can be counted in /proc.
	daemonService  = "crash-daemon"
	oneshotService = "crash-oneshot"
)

// run is one crash test's state.
type run struct {
	opt                  Options
	tgp, admin, token    string
	cfgPath, data, marks string
	daemonArg            string
	cmd                  *exec.Cmd
	logf                 func(string, ...any)

	release string // the published release the upgraders report on

	mu     sync.Mutex
	acks   map[string][]uint64 // device → acknowledged request_ids
	keys   map[string]string   // device → hex key acknowledged last
	stages map[string]uint8    // upgrading device → highest stage acknowledged
}

// Run runs the crash test.
func Run(ctx context.Context, opt Options) (Report, error) {
	if opt.Kills <= 0 || opt.Terminals <= 0 || len(opt.Command) == 0 || opt.Dir == "" {
		return Report{}, errors.New("crash: Command, Dir, Kills and Terminals are required")
	}
	if opt.MaxUp < opt.MinUp {
		opt.MaxUp = opt.MinUp
	}
	r := &run{opt: opt, acks: map[string][]uint64{}, keys: map[string]string{}, stages: map[string]uint8{}, logf: func(string, ...any) {}}
	if opt.Log != nil {
		r.logf = func(f string, a ...any) { fmt.Fprintf(opt.Log, f+"\n", a...) }
	}
	if err := r.setup(); err != nil {
		return Report{}, err
	}
	defer r.cleanup()
	rep := Report{}
	for epoch := 0; epoch <= opt.Kills; epoch++ {
		if err := r.start(ctx); err != nil {
			return rep, fmt.Errorf("start %d: %w", epoch, err)
		}
		if epoch == 0 {
			if err := r.publishRelease(ctx); err != nil {
				return rep, err
			}
		}
		if epoch == opt.Kills {
			break
		}
		up := opt.MinUp + time.Duration(rand.Int64N(int64(opt.MaxUp-opt.MinUp)+1))
		r.load(ctx, up)
		if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return rep, err
		}
		_ = r.cmd.Wait()
		rep.Kills++
		r.logf("kill %d after %v: %d acknowledged so far", rep.Kills, up.Round(time.Millisecond), r.acknowledged())
	}
	rep.Acknowledged = r.acknowledged()
	var err error
	rep.Lost, err = r.verifyRecords(ctx)
	if err != nil {
		return rep, err
	}
	rep.Violations = r.verifyInvariants()
	return rep, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// setup writes the configuration and the services' scripts.
func (r *run) setup() error {
	var err error
	if r.tgp, err = freePort(); err != nil {
		return err
	}
	if r.admin, err = freePort(); err != nil {
		return err
	}
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	r.token = hex.EncodeToString(b)
	r.data = filepath.Join(r.opt.Dir, "data")
	r.marks = filepath.Join(r.opt.Dir, "marks")
	if err := os.MkdirAll(r.marks, 0o700); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(r.admin)
	r.daemonArg = "600." + port
	daemon := filepath.Join(r.opt.Dir, "daemon.sh")
	oneshot := filepath.Join(r.opt.Dir, "oneshot.sh")
	// The oneshot holds a lock for its run; a second run that finds it
	// held leaves a mark: max_concurrent = 1 was broken.
	scripts := map[string]string{
		daemon: "#!/bin/sh\nexec sleep " + r.daemonArg + "\n",
		oneshot: fmt.Sprintf("#!/bin/sh\n/usr/bin/flock -n %q sh -c 'sleep 2' || echo overlap >> %q\n",
			filepath.Join(r.marks, "oneshot.lock"), filepath.Join(r.marks, "overlap")),
	}
	for path, body := range scripts {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
tick_interval = "50ms"
[heartbeat]
interval = "2s"
[auth]
fleet_secret = %q
[admin]
listen = %q
token = %q
[storage]
dir = %q
[log]
level = "warn"

[[services]]
id = %q
kind = "daemon"
command = %q
start_wait = "100ms"
[[services.acl]]
devices = ["*"]

[[services]]
id = %q
kind = "oneshot"
command = %q
max_concurrent = 1
[[services.acl]]
devices = ["*"]
`, r.tgp, fleetSecret, r.admin, r.token, r.data, daemonService, daemon, oneshotService, oneshot)
	r.cfgPath = filepath.Join(r.opt.Dir, "termd.toml")
	return os.WriteFile(r.cfgPath, []byte(cfg), 0o600)
}

// start starts termd and waits until it is ready.
func (r *run) start(ctx context.Context) error {
	args := append(append([]string(nil), r.opt.Command[1:]...), "-config", r.cfgPath)
	r.cmd = exec.Command(r.opt.Command[0], args...)
	r.cmd.Env = append(os.Environ(), r.opt.Env...)
	out, err := os.OpenFile(filepath.Join(r.opt.Dir, "termd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := http.Get("http://" + r.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("termd not ready within %v (log: %s)", readyTimeout, filepath.Join(r.opt.Dir, "termd.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load runs the recorders, the operator and the background load for d.
func (r *run) load(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < r.opt.Terminals; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); r.recorder(ctx, fmt.Sprintf("CRASH-%04d", i)) }()
		go func() { defer wg.Done(); r.upgrader(ctx, fmt.Sprintf("UPG-%04d", i)) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.operator(ctx) }()
	if r.opt.Load > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = loadtest.Run(ctx, loadtest.Config{
				Scenario: "mixed", Proto: "tgp", Target: r.tgp, Secret: []byte(fleetSecret),
				N: r.opt.Load, Rate: 2, Duration: d, Timeout: d, Mix: loadtest.DefaultMix,
				IDPrefix: "LOAD-", Src: "off", Concurrency: 64, Pipeline: 1,
				HelloTimeout: 5 * time.Second, AckTimeout: requestTimeout, DialTimeout: 5 * time.Second,
			}, nil)
		}()
	}
	wg.Wait()
}

// recorder is one terminal sending CONTROL with request_ids; the ones
// answered OK or TIMEOUT (both audited before they are sent) are recorded.
func (r *run) recorder(ctx context.Context, device string) {
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, client.Config{Addr: r.tgp, DeviceID: device, FleetSecret: []byte(fleetSecret),
			FW: "1.0", Model: "crash", NoHeartbeat: true})
		if err != nil {
			sleep(ctx, redialPause)
			continue
		}
		for ctx.Err() == nil {
			rid := r.nextRID(device)
			req := &protocol.Control{ServiceID: daemonService, Op: protocol.OpStatus, RequestID: rid, HasRequestID: true}
			switch n := rand.IntN(20); {
			case n == 0:
				req.Op = protocol.OpStart
			case n < 4:
				req.ServiceID, req.Op = oneshotService, protocol.OpStart
			}
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			var ack protocol.ControlAck
			err := c.Do(rctx, req, &ack)
			cancel()
			if code := protocol.StatusOf(err); code == protocol.OK || code == protocol.Timeout {
				r.record(device, rid)
			} else if err != nil && !errors.As(err, new(*protocol.Error)) {
				break // the connection is gone: dial again
			}
		}
		c.Close()
	}
}

// ridBase keeps request_ids unique across restarts and recorders.
var ridBase atomic.Uint64

func (r *run) nextRID(string) uint64 { return ridBase.Add(1) }

func (r *run) record(device string, rid uint64) {
	r.mu.Lock()
	r.acks[device] = append(r.acks[device], rid)
	r.mu.Unlock()
}

func (r *run) acknowledged() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.keys)
	for _, ids := range r.acks {
		n += len(ids)
	}
	for _, st := range r.stages {
		n += int(st)
	}
	return n
}

// upgradeApp is the application the crash test's release upgrades.
const upgradeApp = "crash-app"

// publishRelease creates and publishes a release for every model (an
// external artifact: no download happens).
func (r *run) publishRelease(ctx context.Context) error {
	body := fmt.Sprintf(`{"app_id":%q,"version":"2.0.0","url":"https://dl.example/crash.bin","sha256":"%s","size":1048576}`,
		upgradeApp, strings.Repeat("ab", 32))
	var rel struct {
		ID string `json:"id"`
	}
	if err := r.send(ctx, "POST", "/v1/releases", body, http.StatusCreated, &rel); err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	r.release = rel.ID
	return r.send(ctx, "POST", "/v1/releases/"+rel.ID+"/publish", "", http.StatusOK, nil)
}

// send does one admin request and wants status; v, if set, gets the body.
func (r *run) send(ctx context.Context, method, path, body string, status int, v any) error {
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+r.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if v != nil {
		return json.Unmarshal(b, v)
	}
	return nil
}

// upgrader is one terminal taking the release: a launch query, then the
// stages DOWNLOADING to SUCCEEDED, one at a time, across the kills; each
// acknowledged stage is recorded.
func (r *run) upgrader(ctx context.Context, device string) {
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, client.Config{Addr: r.tgp, DeviceID: device, FleetSecret: []byte(fleetSecret),
			FW: "1.0", Model: "crash", NoHeartbeat: true})
		if err != nil {
			sleep(ctx, redialPause)
			continue
		}
		r.upgrade(ctx, c, device)
		c.Close()
	}
}

// upgrade runs the device's next steps on one session, until the session
// fails or the device has SUCCEEDED.
func (r *run) upgrade(ctx context.Context, c *client.Conn, device string) {
	r.mu.Lock()
	stage := r.stages[device]
	r.mu.Unlock()
	if stage == 0 {
		var ack protocol.UpgradeQueryAck
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.Do(rctx, &protocol.UpgradeQuery{AppID: upgradeApp, Version: "1.0.0", Launch: true}, &ack)
		cancel()
		if err != nil || ack.Offer == nil {
			sleep(ctx, redialPause)
			return
		}
	}
	for next := stage + 1; next <= protocol.StageSucceeded && ctx.Err() == nil; next++ {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.Do(rctx, &protocol.UpgradeReport{ReleaseID: r.release, Attempt: 1, Stage: next, Progress: 100},
			&protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)})
		cancel()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.stages[device] = next
		r.mu.Unlock()
		sleep(ctx, 50*time.Millisecond)
	}
	<-ctx.Done() // SUCCEEDED, or the epoch ended
}

// operator provisions per-device keys through the admin API; a 204 is a
// committed write.
func (r *run) operator(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		device := fmt.Sprintf("REG-%06d", rand.IntN(1_000_000))
		key := make([]byte, 32)
		_, _ = crand.Read(key)
		body := fmt.Sprintf(`{"key":%q}`, hex.EncodeToString(key))
		req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+r.admin+"/v1/devices/"+device+"/key", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			sleep(ctx, redialPause)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			r.mu.Lock()
			r.keys[device] = hex.EncodeToString(key)
			r.mu.Unlock()
		}
		sleep(ctx, 5*time.Millisecond)
	}
}

// get decodes GET path from the admin API into v.
func (r *run) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// verifyRecords lists every acknowledged record missing from termd.
func (r *run) verifyRecords(ctx context.Context) ([]string, error) {
	var lost []string
	r.mu.Lock()
	defer r.mu.Unlock()
	devices := make([]string, 0, len(r.acks))
	for d := range r.acks {
		devices = append(devices, d)
	}
	sort.Strings(devices)
	for _, d := range devices {
		have := map[uint64]bool{}
		before := ""
		for {
			var page struct {
				Records []struct {
					RequestID uint64 `json:"request_id"`
					Seq       uint64 `json:"seq"`
				} `json:"records"`
				NextBefore uint64 `json:"next_before"`
			}
			if err := r.get(ctx, "/v1/audit?limit=1000&device="+d+before, &page); err != nil {
				return nil, err
			}
			for _, rec := range page.Records {
				have[rec.RequestID] = true
			}
			if page.NextBefore == 0 {
				break
			}
			before = fmt.Sprintf("&before=%d", page.NextBefore)
		}
		for _, rid := range r.acks[d] {
			if !have[rid] {
				lost = append(lost, fmt.Sprintf("CONTROL %s request_id %d (answered, not in the audit)", d, rid))
			}
		}
	}
	stageNames := map[uint8]string{protocol.StageDownloading: "downloading", protocol.StageDownloaded: "downloaded",
		protocol.StageInstalling: "installing", protocol.StageSucceeded: "succeeded"}
	for d, top := range r.stages {
		var h struct {
			Attempts []struct {
				ReleaseID string           `json:"release_id"`
				StageMs   map[string]int64 `json:"stage_ms"`
			} `json:"attempts"`
		}
		if err := r.get(ctx, "/v1/devices/"+d+"/upgrades", &h); err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, a := range h.Attempts {
			if a.ReleaseID == r.release {
				for name := range a.StageMs {
					have[name] = true
				}
			}
		}
		for st := protocol.StageDownloading; st <= top; st++ {
			if !have[stageNames[st]] {
				lost = append(lost, fmt.Sprintf("upgrade report %s stage %s (acknowledged, not in the history)", d, stageNames[st]))
			}
		}
	}
	for d := range r.keys {
		var dev struct {
			HasKey bool `json:"has_key"`
		}
		if err := r.get(ctx, "/v1/devices/"+d, &dev); err != nil || !dev.HasKey {
			lost = append(lost, fmt.Sprintf("key of %s (204, not in the registry: %v)", d, err))
		}
	}
	sort.Strings(lost)
	return lost, nil
}

// verifyInvariants lists broken invariants.
func (r *run) verifyInvariants() []string {
	var v []string
	if n := r.daemons(); n > 1 {
		v = append(v, fmt.Sprintf("service %s runs %d times", daemonService, n))
	}
	if b, err := os.ReadFile(filepath.Join(r.marks, "overlap")); err == nil {
		v = append(v, fmt.Sprintf("service %s (max_concurrent 1) ran twice at once %d times", oneshotService, strings.Count(string(b), "overlap")))
	}
	return v
}

// daemons counts the daemon's processes (its sleep argument is unique to
// the run).
func (r *run) daemons() int {
	want := "sleep\x00" + r.daemonArg + "\x00"
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == want {
			n++
		}
	}
	return n
}

// cleanup stops termd (which stops its daemon) and any daemon left over.
func (r *run) cleanup() {
	if r.cmd != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = r.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = r.cmd.Process.Kill()
			<-done
		}
	}
	want := "sleep\x00" + r.daemonArg + "\x00"
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == want {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
