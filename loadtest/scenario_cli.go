package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// CLI defaults.
const (
	defaultTargetTGP   = "127.0.0.1:7000"
	defaultTargetMQTT  = "127.0.0.1:1883"
	defaultMetricsTGP  = "http://127.0.0.1:7080/metrics"
	defaultDataDir     = "./var"
	secretFileName     = "fleet-secret"
	secretEnv          = "TERMD_FLEET_SECRET"
	defaultConcurrency = 512
	defaultPipeline    = 4
	defaultMaxRate     = 40 // per terminal per second: under termd's default frame rate limit of 50/s
	hiddenWorkerFlag   = "worker"
)

// CLI is the termload command: flags in, report out.
type CLI struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv if nil).
	Getenv func(string) string
	// Self is the program -procs runs as workers (os.Args[0] if empty).
	Self string
	// WorkerEnv is added to the workers' environment.
	WorkerEnv []string
}

// cliFlags are the parsed flags.
type cliFlags struct {
	cfg             Config
	secret, data    string
	procs, worker   int
	jsonOut, plot   string
	quiet           bool
	cpuProfile      string
	metrics, target string
}

func (c *CLI) getenv(k string) string {
	if c.Getenv != nil {
		return c.Getenv(k)
	}
	return os.Getenv(k)
}

// flagSet declares every flag.
func (c *CLI) flagSet(f *cliFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("termload", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	cfg := &f.cfg
	fs.StringVar(&cfg.Scenario, "scenario", ScenarioHeartbeat, "connect, idle, heartbeat, mixed, churn, upgrade or campaign")
	fs.StringVar(&cfg.Proto, "proto", "tgp", "protocol: tgp or mqtt")
	fs.StringVar(&f.target, "addr", "", "server address (default "+defaultTargetTGP+" for tgp, "+defaultTargetMQTT+" for mqtt)")
	fs.StringVar(&f.secret, "secret", "", "fleet secret (default: $"+secretEnv+", else DATA/"+secretFileName+")")
	fs.StringVar(&f.data, "data", defaultDataDir, "termd -dev data directory holding "+secretFileName)
	fs.IntVar(&cfg.N, "n", 1000, "terminals (all processes together)")
	fs.IntVar(&cfg.Concurrency, "concurrency", defaultConcurrency, "connects in flight per process (dial + HELLO)")
	fs.Float64Var(&cfg.Rate, "rate", 1, "heartbeat, mixed: requests per terminal per second (the start rate with -saturate); churn: events per second in all")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long the load runs after the ramp (connect: bound on the ramp)")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "connect: how long the terminals stay after the ramp, so the server's deferred work for the connects is measured with them")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "hard limit on the whole run (default -duration + 2m)")
	fs.BoolVar(&cfg.Saturate, "saturate", false, "heartbeat, mixed: raise the rate step by step until achieved/offered < 95%")
	fs.Float64Var(&cfg.StepFactor, "step-factor", 1.3, "-saturate: rate factor between steps")
	fs.DurationVar(&cfg.StepDuration, "step-duration", 10*time.Second, "-saturate: length of a step")
	fs.Float64Var(&cfg.MaxRate, "max-rate", defaultMaxRate, "-saturate: highest rate per terminal per second")
	fs.IntVar(&cfg.Pipeline, "pipeline", defaultPipeline, "-saturate, mixed: outstanding requests per terminal (1..16)")
	fs.StringVar(&cfg.Mix, "mix", DefaultMix, "mixed: request kinds and weights")
	fs.Float64Var(&cfg.TakeoverShare, "takeover-share", 0.2, "churn: share of events that are takeovers (a second login of a connected id)")
	fs.IntVar(&cfg.UpgradeShare, "upgrade-share", 50, "upgrade: percentage of terminals that query and report an upgrade (the others heartbeat)")
	fs.IntVar(&cfg.FailShare, "fail-share", 10, "upgrade: percentage of the upgrading terminals that report FAILED")
	fs.StringVar(&cfg.CampaignBox, "campaign-box", DefaultCampaignBox, "campaign: bounding box of the terminals' coordinates, minLat,minLon,maxLat,maxLon (fixed per device id)")
	fs.StringVar(&cfg.SystemID, "system-id", DefaultSystemID, "campaign: the system id terminals send in SCHEDULE_REQUEST")
	fs.DurationVar(&cfg.CampaignHB, "campaign-hb", 5*time.Second, "campaign: how often a terminal heartbeats while it waits (steps go at its -rate slots)")
	fs.IntVar(&cfg.CampaignShare, "campaign-share", 100, "campaign: percentage of terminals in the campaign (terminal i when i%100 < share); the others heartbeat at every -rate slot")
	fs.BoolVar(&cfg.CampaignDownload, "campaign-download", false, "campaign: GET a PROCEED's url and check sha256 and size")
	fs.IntVar(&f.procs, "procs", 1, "worker processes (each holds -n/procs terminals)")
	fs.IntVar(&f.worker, hiddenWorkerFlag, -1, "internal: run as worker i of -procs")
	fs.StringVar(&cfg.Src, "src", "auto", "source addresses: auto (127.0.0.2-127.0.0.50 for loopback targets), off, or A-B")
	fs.StringVar(&f.metrics, "metrics", "", "server /metrics URL to sample, or off (default "+defaultMetricsTGP+" for tgp)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "sample this process's RSS and CPU from /proc (peers without /metrics)")
	fs.StringVar(&f.jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&f.plot, "plot", "", "write charts into this directory")
	fs.StringVar(&cfg.IDPrefix, "id-prefix", "LOAD-", "device id prefix")
	fs.DurationVar(&cfg.HelloTimeout, "hello-timeout", 10*time.Second, "connect attempts without a session after this are failures")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 30*time.Second, "a request unanswered this long closes its connection")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 5*time.Second, "TCP connect timeout")
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops per process (default one per CPU)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write this process's CPU profile to this file (the generator's own cost)")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "usage: termload [flags]\n\ntermload puts load on a termd node (or, with -proto mqtt, an MQTT broker) and reports what it measured.\n\n")
		fs.VisitAll(func(fl *flag.Flag) {
			if fl.Name == hiddenWorkerFlag {
				return
			}
			name, usage := flag.UnquoteUsage(fl)
			fmt.Fprintf(c.Stderr, "  -%s", fl.Name)
			if name != "" {
				fmt.Fprintf(c.Stderr, " %s", name)
			}
			fmt.Fprintf(c.Stderr, "\n    \t%s", usage)
			switch fl.DefValue {
			case "", "0", "0s", "false":
			default:
				fmt.Fprintf(c.Stderr, " (default %s)", fl.DefValue)
			}
			fmt.Fprintln(c.Stderr)
		})
	}
	return fs
}

// parse reads args into flags and a Config for this process.
func (c *CLI) parse(args []string) (*cliFlags, error) {
	f := &cliFlags{}
	fs := c.flagSet(f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := &f.cfg
	if f.target == "" {
		f.target = defaultTargetTGP
		if cfg.Proto == "mqtt" {
			f.target = defaultTargetMQTT
		}
	}
	cfg.Target = f.target
	switch f.metrics {
	case "off":
	case "":
		if cfg.Proto == "tgp" {
			cfg.Metrics = defaultMetricsTGP
		}
	default:
		cfg.Metrics = f.metrics
	}
	if cfg.Proto == "tgp" {
		secret, err := c.secret(f)
		if err != nil {
			return nil, err
		}
		cfg.Secret = []byte(secret)
	}
	if f.procs < 1 {
		return nil, errors.New("-procs must be at least 1")
	}
	if f.procs > cfg.N {
		return nil, fmt.Errorf("-procs %d is more than -n %d", f.procs, cfg.N)
	}
	if f.worker >= f.procs {
		return nil, fmt.Errorf("-worker %d of -procs %d", f.worker, f.procs)
	}
	return f, nil
}

// secret finds the fleet secret: -secret, the environment, the dev file.
func (c *CLI) secret(f *cliFlags) (string, error) {
	if f.secret != "" {
		return f.secret, nil
	}
	if s := c.getenv(secretEnv); s != "" {
		return s, nil
	}
	b, err := os.ReadFile(filepath.Join(f.data, secretFileName))
	if err != nil {
		return "", fmt.Errorf("no fleet secret: pass -secret, set $%s, or run `termd -dev` (which writes %s): %w",
			secretEnv, filepath.Join(f.data, secretFileName), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// share is worker i's part of the run: its terminals, their first index,
// and (churn) its share of the rate.
func share(cfg Config, procs, i int) Config {
	q, rem := cfg.N/procs, cfg.N%procs
	cfg.IDOffset += i*q + min(i, rem)
	cfg.N = q
	if i < rem {
		cfg.N++
	}
	if cfg.Scenario == ScenarioChurn {
		cfg.Rate /= float64(procs)
	}
	return cfg
}

// workerLine is one line a worker prints on stdout: a progress report
// each second, then its result.
type workerLine struct {
	Progress *Progress `json:"progress,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Run runs termload with args (without the program name). `report
// FILE...` prints the table of results saved with -json instead.
func (c *CLI) Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "report" {
		return c.report(args[1:])
	}
	if len(args) > 0 && args[0] == "floor" {
		return c.floor(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "peer-table" {
		return c.peerTable(args[1:])
	}
	f, err := c.parse(args)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if f.worker >= 0 {
		return c.runWorker(ctx, f)
	}
	var res *Result
	if f.procs > 1 {
		res, err = c.runParent(ctx, f, args)
	} else {
		var progress func(Progress)
		if !f.quiet {
			start := time.Now()
			progress = func(p Progress) { c.printProgress(start, p) }
		}
		res, err = Run(ctx, f.cfg, progress)
	}
	if res == nil {
		return err
	}
	if len(res.Server) == 0 && (f.cfg.Metrics != "" || f.cfg.ServerPID > 0) {
		fmt.Fprintf(c.Stderr, "termload: no server samples (from %s): the server figures are empty; -metrics off to skip sampling\n",
			cmp.Or(f.cfg.Metrics, fmt.Sprintf("pid %d", f.cfg.ServerPID)))
	}
	WriteTable(c.Stdout, res)
	if res.Counts["connect_ok"] == 0 && err == nil {
		err = errors.New("no terminal connected (see the errors above)")
	}
	if f.jsonOut != "" {
		if werr := res.WriteJSON(f.jsonOut); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if f.plot != "" {
		if perr := Plot(f.plot, res); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	return err
}

// floor runs the bare gnet reference server (see Floor) until ctx ends.
func (c *CLI) floor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("termload floor", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	listen := fs.String("listen", "127.0.0.1:1884", "address to serve MQTT 3.1.1 CONNECT/PINGREQ on (loopback only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(c.Stderr, "termload floor: bare gnet MQTT responder on %s (pid %d)\n", *listen, os.Getpid())
	return (&Floor{}).Run(ctx, *listen)
}

// report prints saved results side by side.
func (c *CLI) report(files []string) error {
	if len(files) == 0 {
		return errors.New("usage: termload report FILE.json...")
	}
	var rs []*Result
	for _, f := range files {
		r, err := ReadResult(f)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	WriteTable(c.Stdout, rs...)
	return nil
}

// runWorker runs this process's share and reports in JSON lines.
func (c *CLI) runWorker(ctx context.Context, f *cliFlags) error {
	cfg := share(f.cfg, f.procs, f.worker)
	cfg.NoSampler = true
	enc := json.NewEncoder(c.Stdout)
	res, err := Run(ctx, cfg, func(p Progress) { _ = enc.Encode(workerLine{Progress: &p}) })
	line := workerLine{Result: res}
	if err != nil {
		line.Error = err.Error()
	}
	if res != nil || err != nil {
		if eerr := enc.Encode(line); eerr != nil {
			return eerr
		}
	}
	return err
}

// startCPUProfile profiles this process until the returned function runs.
func startCPUProfile(path string) (stop func(), err error) {
	fh, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		fh.Close()
	}, nil
}

// printProgress writes the live line.
func (c *CLI) printProgress(start time.Time, p Progress) {
	fmt.Fprintf(c.Stderr, "%5.0fs %-14s connected %6d  sent/s %7d  answered/s %7d  errors %5d  skipped %5d  p99 %s\n",
		p.At.Sub(start).Seconds(), p.Phase, p.Connected, p.Sent, p.Answered, p.Errors, p.Skipped, fmtUs(p.P99us))
}

// fmtUs formats a latency in µs for the progress line.
func fmtUs(us int64) string {
	switch {
	case us <= 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.1fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%.2fs", float64(us)/1e6)
}
