package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// Simulator bounds and defaults.
const (
	// maxSimTerminals: the process may hold 20000 file descriptors; this
	// leaves room for the rest and never raises the limit.
	maxSimTerminals = 19000
	// defaultSimRate is the default connection attempts per second.
	defaultSimRate = 500
	// spreadAutoMin: with --spread-src=auto, runs of more terminals than
	// this against an IPv4 loopback target spread their source addresses.
	// One source address has ~28k ephemeral ports towards one target, and
	// a few such simulators (plus TIME_WAIT after reconnects) exhaust them.
	spreadAutoMin = 1000
	// spreadFirst..spreadLast is the last octet of the source addresses
	// 127.0.0.2–127.0.0.50 (Linux routes all of 127/8 to lo).
	spreadFirst, spreadLast = 2, 50
	// simFW and simModel are what simulated terminals send in HELLO.
	simFW, simModel = "termctl-sim", "SIM"
	// statusInterval is how often the status line is printed.
	statusInterval = time.Second
)

// simOptions are simulate's flags.
type simOptions struct {
	n          int
	addr       string
	secret     string
	keyHex     string
	prefix     string
	stallAfter time.Duration
	rate       float64
	hbMin      time.Duration
	spread     string
	// app and appVersion: each terminal asks UPGRADE_QUERY for app at
	// appVersion after every HELLO_OK and, offered a release, reports it
	// through to SUCCEEDED — or FAILED (code 42) for the first failN
	// terminals — and then runs the new version.
	app, appVersion string
	failN           int
}

func (a *app) simulateCmd() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "simulate -n N",
		Short: "Run N simulated terminals against a TGP listener until interrupted",
		Long: `simulate connects N terminals (ids PREFIX000001...) with the Go SDK, keeps
them heartbeating, reconnects them with the protocol's backoff, and prints a
status line every second. Ctrl-C or SIGTERM closes every socket without BYE,
as a power cut would. With --stall-after D each terminal goes silent D after
its HELLO_OK (socket open, nothing sent) and never reconnects.

The fleet secret is --secret, else $TERMD_FLEET_SECRET, else DATA/fleet-secret
(written by "termd -dev"); --key KEYHEX signs every terminal's HELLO with that
per-device key instead (use it with -n 1, or for devices given the same key). One process runs at most 19000 terminals (its file
descriptor limit is 20000); run several processes with distinct --prefix
values for more.

With --app APP each terminal asks for upgrades of APP (at --app-version) after
every HELLO_OK, as firmware does at launch; offered a release it reports
DOWNLOADING, INSTALLING and SUCCEEDED and runs the new version from then on,
or, among the first --upgrade-fail N terminals, reports FAILED with code 42
(an operator then sees the failure, its notification and any rollout pause).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.newSimulator(o)
			if err != nil {
				return err
			}
			return s.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.n, "count", "n", 0, fmt.Sprintf("number of terminals, 1..%d", maxSimTerminals))
	f.StringVar(&o.addr, "addr-tgp", "127.0.0.1:7000", "TGP address of the termd node")
	f.StringVar(&o.secret, "secret", "", "fleet secret (default: env TERMD_FLEET_SECRET, else DATA/fleet-secret)")
	f.StringVar(&o.keyHex, "key", "", "per-device key, 64 hex digits (instead of the fleet secret)")
	f.StringVar(&o.prefix, "prefix", "SIM-", "device id prefix")
	f.DurationVar(&o.stallAfter, "stall-after", 0, "each terminal stops sending this long after HELLO_OK and never reconnects (0 = never)")
	f.Float64Var(&o.rate, "rate", defaultSimRate, "connection attempts per second, all terminals together")
	f.DurationVar(&o.hbMin, "hb-min", 0, "lowest heartbeat interval the terminals accept (0 = the protocol's 10s)")
	f.StringVar(&o.spread, "spread-src", "auto", "spread source addresses over 127.0.0.2-50: auto, on or off")
	f.StringVar(&o.app, "app", "", "ask for upgrades of this app after each HELLO_OK (UPGRADE_QUERY) and report offers through to SUCCEEDED")
	f.StringVar(&o.appVersion, "app-version", "1.0.0", "with --app: the version the terminals run at start")
	f.IntVar(&o.failN, "upgrade-fail", 0, "with --app: the first N terminals report FAILED (code 42) instead of installing an offer")
	return cmd
}

// simulator runs the simulated fleet and counts what happens to it.
type simulator struct {
	a      *app
	opt    simOptions
	creds  creds
	spread bool
	pace   *pacer

	versions []string     // with --app: each terminal's running version
	upgraded atomic.Int64 // offers installed
	upFailed atomic.Int64 // offers reported FAILED

	connected  atomic.Int64 // sessions up now
	failed     atomic.Int64 // dials or HELLOs that failed
	reconnects atomic.Int64 // connection attempts after a terminal's first
	stalled    atomic.Int64 // terminals that went silent
	cut        atomic.Int64 // stalled sessions the server then ended

	mu      sync.Mutex
	lastErr string
}

func (a *app) newSimulator(o simOptions) (*simulator, error) {
	switch {
	case o.n < 1:
		return nil, errors.New("-n must be at least 1")
	case o.n > maxSimTerminals:
		return nil, fmt.Errorf("-n %d is more than one process can run: the file descriptor limit is 20000, "+
			"so at most %d terminals per process; run several `termctl simulate` processes with different --prefix values",
			o.n, maxSimTerminals)
	case o.rate <= 0:
		return nil, errors.New("--rate must be positive")
	case o.stallAfter < 0 || o.hbMin < 0:
		return nil, errors.New("--stall-after and --hb-min must not be negative")
	}
	if id := simID(o.prefix, o.n); !protocol.ValidDeviceID(id) {
		return nil, fmt.Errorf("--prefix %q makes invalid device ids like %q: ids are 1-%d bytes of [A-Za-z0-9._:-]", o.prefix, id, protocol.MaxID)
	}
	cr, err := a.terminalCreds(o.secret, o.keyHex)
	if err != nil {
		return nil, err
	}
	loopback := ipv4Loopback(o.addr)
	var spread bool
	switch o.spread {
	case "auto":
		spread = loopback && runtime.GOOS == "linux" && o.n > spreadAutoMin
	case "on":
		if !loopback {
			return nil, fmt.Errorf("--spread-src=on needs an IPv4 loopback target, not %s", o.addr)
		}
		spread = true
	case "off":
	default:
		return nil, fmt.Errorf("--spread-src must be auto, on or off, not %q", o.spread)
	}
	switch {
	case o.failN < 0:
		return nil, errors.New("--upgrade-fail must not be negative")
	case o.failN > 0 && o.app == "":
		return nil, errors.New("--upgrade-fail needs --app")
	}
	sim := &simulator{a: a, opt: o, creds: cr, spread: spread, pace: newPacer(o.rate)}
	if o.app != "" {
		sim.versions = make([]string, o.n+1)
		for i := range sim.versions {
			sim.versions[i] = o.appVersion
		}
	}
	return sim, nil
}

// simID is the id of terminal i (1-based).
func simID(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

// ipv4Loopback reports whether addr's host is an IPv4 loopback literal.
func ipv4Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// run starts the fleet and reports on it until ctx ends, then closes
// every connection and prints the final counts.
func (s *simulator) run(ctx context.Context) error {
	src := "127.0.0.1"
	if s.spread {
		src = fmt.Sprintf("127.0.0.%d-%d", spreadFirst, spreadLast)
	}
	stall := "never"
	if s.opt.stallAfter > 0 {
		stall = s.opt.stallAfter.String() + " after HELLO_OK"
	}
	s.a.printf("simulating %d terminals %s..%s against %s: %g connections/s, stall %s, source %s\n",
		s.opt.n, simID(s.opt.prefix, 1), simID(s.opt.prefix, s.opt.n), s.opt.addr, s.opt.rate, stall, src)

	var wg sync.WaitGroup
	for i := 1; i <= s.opt.n; i++ {
		wg.Go(func() { s.terminal(ctx, i) })
	}
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	var lastFailed int64
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			lastFailed = s.status(time.Now().In(s.a.loc).Format("15:04:05"), lastFailed)
		}
	}
	wg.Wait()
	s.status("stopped", lastFailed)
	return nil
}

// status prints one status line and returns the failure count it showed.
func (s *simulator) status(label string, lastFailed int64) int64 {
	var b strings.Builder
	failed := s.failed.Load()
	fmt.Fprintf(&b, "%s connected=%d/%d failed=%d reconnects=%d", label, s.connected.Load(), s.opt.n, failed, s.reconnects.Load())
	if s.opt.stallAfter > 0 {
		fmt.Fprintf(&b, " stalled=%d stalled_closed_by_server=%d", s.stalled.Load(), s.cut.Load())
	}
	if s.opt.app != "" {
		fmt.Fprintf(&b, " upgraded=%d upgrade_failed=%d", s.upgraded.Load(), s.upFailed.Load())
	}
	if failed != lastFailed {
		s.mu.Lock()
		fmt.Fprintf(&b, " last_error=%q", s.lastErr)
		s.mu.Unlock()
	}
	s.a.printf("%s\n", b.String())
	return failed
}

// terminal runs terminal i until ctx ends (or, with --stall-after, until
// it has stalled): dial, hold the session, back off, dial again.
func (s *simulator) terminal(ctx context.Context, i int) {
	cfg := client.Config{
		Addr: s.opt.addr, DeviceID: simID(s.opt.prefix, i),
		FW: simFW, Model: simModel, HBMin: s.opt.hbMin,
	}
	s.creds.apply(&cfg)
	if s.spread {
		cfg.Dial = spreadDial(i)
	}
	var backoff client.Backoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.reconnects.Add(1)
		}
		if s.pace.wait(ctx) != nil {
			return
		}
		c, err := client.Dial(ctx, cfg)
		var lasted time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failed.Add(1)
			s.mu.Lock()
			s.lastErr = s.creds.explain(err).Error()
			s.mu.Unlock()
		} else {
			start := time.Now()
			if s.session(ctx, c, i) {
				return
			}
			err, lasted = c.Err(), max(time.Since(start), time.Nanosecond)
		}
		wait := time.NewTimer(backoff.Next(err, lasted))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
}

// session holds one established session. It returns true when the
// terminal is finished: ctx ended (the socket is closed without BYE), or
// it stalled (it then keeps the socket until ctx ends and never returns
// to the fleet).
func (s *simulator) session(ctx context.Context, c *client.Conn, i int) bool {
	s.connected.Add(1)
	if s.opt.app != "" {
		s.upgrade(ctx, c, i)
	}
	var stall <-chan time.Time
	if s.opt.stallAfter > 0 {
		t := time.NewTimer(s.opt.stallAfter)
		defer t.Stop()
		stall = t.C
	}
	select {
	case <-ctx.Done():
		s.connected.Add(-1)
		c.Close()
		return true
	case <-c.Done():
		s.connected.Add(-1)
		return false
	case <-stall:
	}
	c.Stall()
	s.stalled.Add(1)
	select {
	case <-ctx.Done():
	case <-c.Done(): // the server gave up on it; it stays away
		s.cut.Add(1)
		s.connected.Add(-1)
		<-ctx.Done()
		return true
	}
	s.connected.Add(-1)
	c.Close()
	return true
}

// upgrade asks for an upgrade of the app as a terminal does at launch
// and carries an offer through to SUCCEEDED, or reports FAILED for the
// first --upgrade-fail terminals. A refused or lost request is left:
// the next session asks again.
func (s *simulator) upgrade(ctx context.Context, c *client.Conn, i int) {
	s.mu.Lock()
	version := s.versions[i]
	s.mu.Unlock()
	var ack protocol.UpgradeQueryAck
	if err := c.Do(ctx, &protocol.UpgradeQuery{AppID: s.opt.app, Version: version, Launch: true}, &ack); err != nil || ack.Offer == nil {
		return
	}
	o := ack.Offer
	report := func(stage, progress uint8, code uint64, msg string) error {
		return c.Do(ctx, &protocol.UpgradeReport{ReleaseID: o.ReleaseID, Attempt: 1, Stage: stage, Progress: progress, Code: code, Message: msg},
			&protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)})
	}
	if i <= s.opt.failN { // terminals are numbered from 1
		if report(protocol.StageFailed, 100, 42, "simulated: flash write failed") == nil {
			s.upFailed.Add(1)
		}
		return
	}
	for _, st := range []struct{ stage, progress uint8 }{{protocol.StageDownloading, 50}, {protocol.StageInstalling, 100}, {protocol.StageSucceeded, 100}} {
		if report(st.stage, st.progress, 0, "") != nil {
			return
		}
	}
	s.upgraded.Add(1)
	s.mu.Lock()
	s.versions[i] = o.Version
	s.mu.Unlock()
}

// spreadDial dials from one of 127.0.0.2–127.0.0.50, picked by terminal
// number, so the fleet does not exhaust one address's ephemeral ports.
func spreadDial(i int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(spreadFirst+i%(spreadLast-spreadFirst+1)))}}
	return d.DialContext
}

// pacer spaces connection attempts of the whole fleet at a fixed rate,
// without bursts after a quiet spell.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(perSecond float64) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller's slot comes, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
