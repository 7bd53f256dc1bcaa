package config

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Service kinds.
const (
	KindDaemon  = "daemon"  // a long-running child process
	KindOneshot = "oneshot" // runs to completion; its exit code and output are the result
)

// Operation names, as in config files, the admin API and the audit.
const (
	OpStart   = "start"
	OpStop    = "stop"
	OpRestart = "restart"
	OpStatus  = "status"
)

// AllOps are the operations in wire order (spec §5: 1 START … 4 STATUS).
var AllOps = []string{OpStart, OpStop, OpRestart, OpStatus}

// Restart policies of daemons.
const (
	RestartNever     = "never"
	RestartOnFailure = "on-failure"
)

// What a daemon becomes when termd stops (OnShutdown) and what termd does
// with a daemon it finds still running at start (OnStart).
const (
	ShutdownStop  = "stop"  // SIGTERM the process group, SIGKILL after stop_grace
	ShutdownLeave = "leave" // leave it running; the next termd re-adopts it
	StartAdopt    = "adopt" // take the running daemon over (never start a second)
	StartStop     = "stop"  // stop the running daemon
)

// Bounds and defaults of [control].
const (
	// MaxRequestIDs is how many request_ids termd remembers in memory at
	// once, over all devices.
	MaxRequestIDs = 100_000
	// DefaultRequestIDsPerDevice is control.request_ids_per_device's
	// default: far more than a terminal sends in request_id_window.
	DefaultRequestIDsPerDevice = 256
	// DefaultAuditMaxRecords and MinAuditMaxRecords bound
	// control.audit_max_records (records).
	DefaultAuditMaxRecords = 10_000_000
	MinAuditMaxRecords     = 1000
)

// Control configures service control (spec §5) for the whole node.
type Control struct {
	// MaxTimeout clamps a request's timeout_ms. Default 300s (the spec's).
	MaxTimeout Duration `toml:"max_timeout" comment:"largest timeout_ms a CONTROL request may ask for"`
	// RequestIDWindow is how long (device_id, request_id) answers are
	// remembered for idempotent repeats. Default and minimum 10m (spec §5).
	RequestIDWindow Duration `toml:"request_id_window" comment:"how long request_id answers are kept (>= 10m)"`
	// RequestIDsPerDevice bounds the request_ids one device has
	// remembered at once (within request_id_window), so one terminal
	// cannot crowd out the others' idempotency; a request with one more is
	// answered UNAVAILABLE and not run. Default 256.
	RequestIDsPerDevice int `toml:"request_ids_per_device" comment:"request_ids one device may have remembered at once"`
	// AuditRetention is how long control audit records are kept.
	// Default 2160h (90 days).
	AuditRetention Duration `toml:"audit_retention" comment:"how long control audit records are kept"`
	// AuditMaxRecords caps the audit: past it the oldest records are
	// deleted (every minute), whatever their age. Default 10,000,000
	// (a few GB).
	AuditMaxRecords int `toml:"audit_max_records" comment:"most control audit records kept; the oldest go first"`
	// RefusalWindow is the period over which refusals of one (device,
	// service, op, status) are counted in one audit record. Default 1m.
	RefusalWindow Duration `toml:"refusal_window" comment:"refusals of one device, service, op and status share one audit record per window"`
	// ServicesDir holds pidfiles and daemon logs. Default storage.dir/services.
	ServicesDir string `toml:"services_dir" comment:"pidfiles and daemon logs; default <storage.dir>/services"`
}

// Service is one [[services]] table: a process termd runs on request.
type Service struct {
	// ID names the service on the wire (service_id): 1–64 bytes of
	// letters, digits, '.', '_' and '-'.
	ID string `toml:"id" comment:"service_id terminals and operators use"`
	// Kind is "daemon" or "oneshot".
	Kind string `toml:"kind" comment:"daemon (long-running) or oneshot (runs to completion)"`
	// Description is free text for operators.
	Description string `toml:"description,omitempty"`
	// Command is the absolute path of the program, executed directly
	// (never through a shell).
	Command string `toml:"command" comment:"absolute path of the program; executed directly, no shell"`
	// Args are the fixed arguments; a terminal's own args (if allowed)
	// follow them.
	Args []string `toml:"args,omitempty"`
	// Dir is the working directory. Default: the services dir.
	Dir string `toml:"dir,omitempty"`
	// Env is the child's whole environment besides EnvInherit: "NAME=value".
	Env []string `toml:"env,omitempty"`
	// EnvInherit names variables copied from termd's environment.
	EnvInherit []string `toml:"env_inherit,omitempty"`
	// Ops are the operations terminals may ask for at all (the ACL narrows
	// them per device). Default: all four for a daemon, start and status
	// for a oneshot. Operators may always use all of them.
	Ops []string `toml:"ops,omitempty"`
	// ArgPatterns accepts terminal-supplied args on START and RESTART: at
	// most len(ArgPatterns), the i-th matching ArgPatterns[i] as a whole
	// (Go regexp syntax, anchored). None: a request with args is refused.
	ArgPatterns []string `toml:"arg_patterns,omitempty"`
	// StartTimeout bounds START (for a oneshot: the whole run, killed
	// when it passes). StopTimeout bounds STOP, RestartTimeout RESTART.
	// Defaults 30s, 30s, 60s.
	StartTimeout   Duration `toml:"start_timeout,omitempty"`
	StopTimeout    Duration `toml:"stop_timeout,omitempty"`
	RestartTimeout Duration `toml:"restart_timeout,omitempty"`
	// StartWait is how long START watches a new daemon before answering
	// running: a daemon that exits within it is reported exited/failed.
	// Default 500ms.
	StartWait Duration `toml:"start_wait,omitempty"`
	// StopGrace is the time between SIGTERM and SIGKILL of the process
	// group. Default 10s.
	StopGrace Duration `toml:"stop_grace,omitempty"`
	// Restart is the daemon restart policy: "never" (default) or
	// "on-failure" (after a non-zero exit or a signal termd did not send),
	// with a delay doubling from RestartDelay (default 1s) to
	// RestartDelayMax (default 1m), reset once the daemon has run for
	// RestartDelayMax.
	Restart         string   `toml:"restart,omitempty"`
	RestartDelay    Duration `toml:"restart_delay,omitempty"`
	RestartDelayMax Duration `toml:"restart_delay_max,omitempty"`
	// MaxConcurrent bounds a oneshot's simultaneous runs. Default 1.
	MaxConcurrent int `toml:"max_concurrent,omitempty"`
	// OutputMax is how many bytes of a oneshot's output (stdout and stderr
	// interleaved) are kept; the wire carries the last 1024 of them as
	// valid UTF-8. For a daemon it is the size at which its log file
	// (services_dir/ID.log) is rotated to ID.log.1. Default 64 KiB for a
	// oneshot, 1 MiB for a daemon.
	OutputMax int `toml:"output_max,omitempty"`
	// Autostart starts a daemon when termd starts. Default false.
	Autostart bool `toml:"autostart,omitempty"`
	// OnShutdown is "stop" (default) or "leave".
	OnShutdown string `toml:"on_shutdown,omitempty"`
	// OnStart is what termd does with this daemon when it finds it still
	// running from an earlier run (also after kill -9): "adopt" (default)
	// or "stop".
	OnStart string `toml:"on_start,omitempty"`
	// ACL lists which devices may do what. A request is allowed when one
	// rule matches the device and names the op. No rule: no terminal may
	// use the service (operators still can).
	ACL []ACLRule `toml:"acl,omitempty"`
}

// ACLRule is one [[services.acl]] entry. Every field that is set must
// match; an empty field matches anything.
type ACLRule struct {
	// Devices are glob patterns (path.Match syntax) on the device id.
	Devices []string `toml:"devices,omitempty"`
	// Models are glob patterns on the model the device sent in HELLO.
	Models []string `toml:"models,omitempty"`
	// Groups are device group ids: the device must be a member of one,
	// now. Only operator-only groups may be named (a group terminals can
	// join by themselves would let them grant themselves the right):
	// termd refuses to start otherwise (docs/groups.md).
	Groups []string `toml:"groups,omitempty"`
	// Ops are the operations allowed; empty means all of the service's ops.
	Ops []string `toml:"ops,omitempty"`
}

// WireOutputMax is the most output a CONTROL_ACK carries (spec §5).
const WireOutputMax = 1024

// MaxServiceID is the longest service id.
const MaxServiceID = 64

var serviceIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Effective returns s with every unset field at its default.
func (s Service) Effective() Service {
	setD := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	setD(&s.StartTimeout, 30*time.Second)
	setD(&s.StopTimeout, 30*time.Second)
	setD(&s.RestartTimeout, 60*time.Second)
	setD(&s.StartWait, 500*time.Millisecond)
	setD(&s.StopGrace, 10*time.Second)
	setD(&s.RestartDelay, time.Second)
	setD(&s.RestartDelayMax, time.Minute)
	if s.Restart == "" {
		s.Restart = RestartNever
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = 1
	}
	if s.OutputMax == 0 {
		s.OutputMax = 64 << 10
		if s.Kind == KindDaemon {
			s.OutputMax = 1 << 20
		}
	}
	if s.OnShutdown == "" {
		s.OnShutdown = ShutdownStop
	}
	if s.OnStart == "" {
		s.OnStart = StartAdopt
	}
	if s.Ops == nil {
		s.Ops = []string{OpStart, OpStatus}
		if s.Kind == KindDaemon {
			s.Ops = slices.Clone(AllOps)
		}
	}
	return s
}

// Effective returns c with every unset field at its default; dataDir is
// storage.dir.
func (c Control) Effective(dataDir string) Control {
	if c.MaxTimeout.Duration == 0 {
		c.MaxTimeout.Duration = 300 * time.Second
	}
	if c.RequestIDWindow.Duration == 0 {
		c.RequestIDWindow.Duration = 10 * time.Minute
	}
	if c.AuditRetention.Duration == 0 {
		c.AuditRetention.Duration = 90 * 24 * time.Hour
	}
	if c.RequestIDsPerDevice == 0 {
		c.RequestIDsPerDevice = DefaultRequestIDsPerDevice
	}
	if c.AuditMaxRecords == 0 {
		c.AuditMaxRecords = DefaultAuditMaxRecords
	}
	if c.RefusalWindow.Duration == 0 {
		c.RefusalWindow.Duration = time.Minute
	}
	if c.ServicesDir == "" {
		c.ServicesDir = filepath.Join(dataDir, "services")
	}
	return c
}

// validateControl appends the problems of the control section and the
// service definitions.
func (c *Config) validateControl(add func(string, ...any)) {
	ctl := c.Control.Effective(c.Storage.Dir)
	if ctl.MaxTimeout.Duration < time.Second {
		add("control.max_timeout = %q must be at least 1s", ctl.MaxTimeout.String())
	}
	if ctl.RequestIDWindow.Duration < 10*time.Minute {
		add("control.request_id_window = %q must be at least 10m (spec §5)", ctl.RequestIDWindow.String())
	}
	if ctl.AuditRetention.Duration < time.Hour {
		add("control.audit_retention = %q must be at least 1h", ctl.AuditRetention.String())
	}
	if ctl.RequestIDsPerDevice < 1 || ctl.RequestIDsPerDevice > MaxRequestIDs {
		add("control.request_ids_per_device must be 1-%d, not %d", MaxRequestIDs, ctl.RequestIDsPerDevice)
	}
	if ctl.AuditMaxRecords < MinAuditMaxRecords {
		add("control.audit_max_records must be at least %d, not %d", MinAuditMaxRecords, ctl.AuditMaxRecords)
	}
	if ctl.RefusalWindow.Duration < time.Second || ctl.RefusalWindow.Duration > time.Hour {
		add("control.refusal_window must be 1s-1h, not %s", ctl.RefusalWindow.Duration)
	}
	seen := map[string]bool{}
	for i, raw := range c.Services {
		s := raw.Effective()
		at := fmt.Sprintf("services[%d]", i)
		if s.ID != "" {
			at = fmt.Sprintf("service %q", s.ID)
		}
		if !serviceIDRe.MatchString(s.ID) {
			add("%s: id %q must be 1-64 letters, digits, '.', '_' or '-'", at, s.ID)
		}
		if seen[s.ID] {
			add("%s: id is used twice", at)
		}
		seen[s.ID] = true
		if s.Kind != KindDaemon && s.Kind != KindOneshot {
			add("%s: kind = %q must be %q or %q", at, s.Kind, KindDaemon, KindOneshot)
		}
		if !filepath.IsAbs(s.Command) {
			add("%s: command = %q must be an absolute path, or in a config file relative to it (it is executed directly, never through a shell)", at, s.Command)
		}
		if s.Dir != "" && !filepath.IsAbs(s.Dir) {
			add("%s: dir = %q must be an absolute path", at, s.Dir)
		}
		for _, e := range s.Env {
			name, _, ok := strings.Cut(e, "=")
			if !ok || !envNameRe.MatchString(name) {
				add("%s: env entry %q is not NAME=value", at, e)
			}
		}
		for _, n := range s.EnvInherit {
			if !envNameRe.MatchString(n) {
				add("%s: env_inherit name %q is not a variable name", at, n)
			}
		}
		checkOps := func(what string, ops []string) {
			for _, op := range ops {
				if !slices.Contains(AllOps, op) {
					add("%s: %s: unknown operation %q (start, stop, restart, status)", at, what, op)
				}
			}
		}
		checkOps("ops", s.Ops)
		if len(s.ArgPatterns) > 8 {
			add("%s: arg_patterns has %d patterns; at most 8 args are allowed (spec §5)", at, len(s.ArgPatterns))
		}
		for _, p := range s.ArgPatterns {
			if _, err := CompileArgPattern(p); err != nil {
				add("%s: arg_patterns: %v", at, err)
			}
		}
		for _, d := range []struct {
			name string
			v    Duration
		}{{"start_timeout", s.StartTimeout}, {"stop_timeout", s.StopTimeout}, {"restart_timeout", s.RestartTimeout},
			{"start_wait", s.StartWait}, {"stop_grace", s.StopGrace}, {"restart_delay", s.RestartDelay}, {"restart_delay_max", s.RestartDelayMax}} {
			if d.v.Duration <= 0 {
				add("%s: %s = %q must be a positive duration", at, d.name, d.v.String())
			}
		}
		if s.StartWait.Duration >= s.StartTimeout.Duration && s.Kind == KindDaemon {
			add("%s: start_wait = %q must be shorter than start_timeout = %q", at, s.StartWait.String(), s.StartTimeout.String())
		}
		if s.Restart != RestartNever && s.Restart != RestartOnFailure {
			add("%s: restart = %q must be %q or %q", at, s.Restart, RestartNever, RestartOnFailure)
		}
		if s.Restart == RestartOnFailure && s.Kind != KindDaemon {
			add("%s: restart applies to daemons only", at)
		}
		if s.MaxConcurrent < 1 || (s.Kind == KindDaemon && s.MaxConcurrent != 1) {
			add("%s: max_concurrent = %d must be at least 1 (and 1 for a daemon)", at, s.MaxConcurrent)
		}
		if s.OutputMax < WireOutputMax {
			add("%s: output_max = %d must be at least %d bytes", at, s.OutputMax, WireOutputMax)
		}
		if s.OnShutdown != ShutdownStop && s.OnShutdown != ShutdownLeave {
			add("%s: on_shutdown = %q must be %q or %q", at, s.OnShutdown, ShutdownStop, ShutdownLeave)
		}
		if s.OnStart != StartAdopt && s.OnStart != StartStop {
			add("%s: on_start = %q must be %q or %q", at, s.OnStart, StartAdopt, StartStop)
		}
		if s.Autostart && s.Kind != KindDaemon {
			add("%s: autostart applies to daemons only", at)
		}
		for j, r := range s.ACL {
			for _, p := range append(slices.Clone(r.Devices), r.Models...) {
				if _, err := path.Match(p, ""); err != nil {
					add("%s: acl[%d]: bad pattern %q", at, j, p)
				}
			}
			for _, g := range r.Groups {
				if g == "" || len(g) > 64 {
					add("%s: acl[%d]: group id %q must be 1..64 bytes", at, j, g)
				}
			}
			checkOps(fmt.Sprintf("acl[%d].ops", j), r.Ops)
		}
	}
}

// CompileArgPattern compiles an arg pattern anchored at both ends, so it
// must match a whole argument.
func CompileArgPattern(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	return re, nil
}

// resolvePaths makes the services' relative command and dir paths
// absolute against dir, the config file's directory: a config file and
// the scripts next to it can move together. (A relative path that
// reaches Validate, from a config built in code, is refused.)
func (c *Config) resolvePaths(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	for i := range c.Services {
		s := &c.Services[i]
		if s.Command != "" && !filepath.IsAbs(s.Command) {
			s.Command = filepath.Join(abs, s.Command)
		}
		if s.Dir != "" && !filepath.IsAbs(s.Dir) {
			s.Dir = filepath.Join(abs, s.Dir)
		}
	}
}
