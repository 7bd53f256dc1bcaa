// Package config holds termd's configuration: one TOML file, environment
// overrides and command-line flags, each option documented on its field
// with its default. Defaults() is the source of truth for defaults;
// `termd -print-config` prints it.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, such as \"30s\", \"5m\" or \"1h\"", b)
	}
	d.Duration = v
	return nil
}

// D is shorthand for a Duration.
func D(v time.Duration) Duration { return Duration{v} }

// Config is the whole configuration.
type Config struct {
	Server    Server    `toml:"server" comment:"TGP listener and per-connection limits"`
	Auth      Auth      `toml:"auth" comment:"HELLO authentication"`
	Heartbeat Heartbeat `toml:"heartbeat" comment:"presence timing"`
	Storage   Storage   `toml:"storage" comment:"embedded Badger store"`
	Admin     Admin     `toml:"admin" comment:"operator HTTP API, /metrics, /healthz"`
	Log       Log       `toml:"log" comment:"logging"`
	Control   Control   `toml:"control" comment:"service control (CONTROL requests, see docs/services.md)"`
	Download  Download  `toml:"download" comment:"download node: artifacts served to terminals over signed URLs (docs/upgrades.md)"`
	Notify    Notify    `toml:"notify" comment:"upgrade failure notifications (see docs/upgrades.md)"`
	Upgrade   Upgrade   `toml:"upgrade" comment:"releases, upgrade reports and stuck detection (see docs/upgrades.md)"`
	Schedule  Schedule  `toml:"schedule" comment:"upgrade scheduling: download nodes, clusters and slots (see docs/scheduling.md)"`
	Groups    Groups    `toml:"groups" comment:"device groups (see docs/groups.md)"`
	// Services are the [[services]] tables: processes termd runs on request.
	Services []Service `toml:"services,omitempty" comment:"services terminals and operators may start, stop, restart and query"`
}

// Server configures the TGP listener.
type Server struct {
	// Listen is the TGP address. Default "0.0.0.0:7000" (-dev: 127.0.0.1:7000).
	Listen string `toml:"listen" comment:"TGP listen address"`
	// EventLoops is the number of gnet event loops; 0 = one per CPU.
	EventLoops int `toml:"event_loops" comment:"gnet event loops, 0 = one per CPU"`
	// MaxConnections caps open TCP connections; beyond it accepted sockets
	// are closed at once. 0 = the process's open-file limit minus
	// FDReserve.
	MaxConnections int `toml:"max_connections" comment:"hard cap on open connections, 0 = fd limit - fd_reserve"`
	// FDReserve is what MaxConnections=0 leaves of the fd limit for Badger,
	// the admin API and logs. Default 500.
	FDReserve int `toml:"fd_reserve" comment:"file descriptors kept free when max_connections = 0"`
	// MaxSessions caps authenticated sessions; a HELLO beyond it gets
	// [7, "server full", retry_after_ms]. 0 = MaxConnections - 64, so a
	// full server can still answer HELLOs instead of dropping sockets.
	MaxSessions int `toml:"max_sessions" comment:"cap on authenticated sessions, 0 = max_connections - 64"`
	// MaxPendingHello caps connections that have not completed HELLO.
	// Default 4096.
	MaxPendingHello int `toml:"max_pending_hello" comment:"cap on connections that have not completed HELLO"`
	// HelloTimeout is how long a connection may take to send HELLO.
	// Default 10s.
	HelloTimeout Duration `toml:"hello_timeout" comment:"time allowed for HELLO after connect"`
	// MaxFrame is announced in HELLO_OK; at least 4096. Default 4096.
	MaxFrame int `toml:"max_frame" comment:"largest inbound frame length after HELLO_OK (>= 4096)"`
	// MaxInFlight is the per-connection pipelining limit. Default 16.
	MaxInFlight int `toml:"max_in_flight" comment:"outstanding requests per connection"`
	// FrameRate and FrameBurst form the per-connection token bucket.
	// Defaults 50 frames/s, burst 100.
	FrameRate  float64 `toml:"frame_rate" comment:"per-connection frame rate limit, frames per second"`
	FrameBurst int     `toml:"frame_burst" comment:"per-connection frame burst"`
	// OutboundLimit closes a connection whose unsent bytes exceed it
	// (reason slow_reader). Default 64 KiB.
	OutboundLimit int `toml:"outbound_limit" comment:"unsent bytes after which a slow reader is closed"`
	// Workers is the size of the domain worker pool; 0 = 4 × CPUs.
	Workers int `toml:"workers" comment:"domain worker goroutines, 0 = 4 x CPUs"`
	// WorkQueue bounds queued domain requests; beyond it requests get
	// UNAVAILABLE. Default 4096.
	WorkQueue int `toml:"work_queue" comment:"queued domain requests before UNAVAILABLE"`
	// RouteShare caps the worker-pool share of one request type: at most
	// this percentage of the workers run requests of one type at once,
	// and at most this percentage of work_queue waits for one type, so a
	// slow feature (a sick store, a slow SMTP server) cannot starve the
	// others. Default 50.
	RouteShare int `toml:"route_share" comment:"max % of workers and of work_queue one request type may hold"`
	// PushAckTimeout is how long a push that needs an ack waits for it
	// before it is given up (spec §1.1: 60 s). Default 60s.
	PushAckTimeout Duration `toml:"push_ack_timeout" comment:"a push not acked within this is given up (spec: 60s)"`
	// MaxPendingAcks bounds the unacked pushes per session; past it the
	// oldest is given up at once. Default 64.
	MaxPendingAcks int `toml:"max_pending_acks" comment:"unacked pushes per session before the oldest is given up"`
	// TickInterval is the timer wheel's resolution. Default 100ms.
	TickInterval Duration `toml:"tick_interval" comment:"timer wheel resolution (timeouts fire within this)"`
	// ListenBacklog is the accept queue length. Default 4096.
	ListenBacklog int `toml:"listen_backlog" comment:"TCP accept backlog (also capped by net.core.somaxconn)"`
	// GCPercent is the Go garbage collector's GOGC for termd. A node's
	// heap is mostly long-lived session state and steady traffic allocates
	// almost nothing, so a low value costs little CPU and keeps RSS close
	// to the live heap. Default 25; the GOGC environment variable wins.
	GCPercent int `toml:"gc_percent" comment:"garbage collector target percentage (GOGC) at rest; env GOGC wins"`
	// GCPercentMax is how high termd raises the GC percentage while it
	// is busy: every second the percentage is set to leave headroom for
	// a second of allocations above the live heap (so the collector runs
	// about once a second), between GCPercent and this; it stays at
	// GCPercent while terminals connect, and halves back to it at rest
	// (server/gctune). A value not above GCPercent keeps GCPercent
	// always. Default 200.
	GCPercentMax int `toml:"gc_percent_max" comment:"highest GC percentage while busy (collector kept to ~1 cycle/s); <= gc_percent: fixed"`
	// ShutdownGrace spreads GOAWAY over this period at shutdown. Default 2s.
	ShutdownGrace Duration `toml:"shutdown_grace" comment:"period over which shutdown GOAWAYs are spread"`

	// MaxPendingPerSource caps the connections one source address (an
	// IPv6 source: its /64) may have open before HELLO_OK; a connection
	// beyond it is closed at accept. 0 = no limit. Default 256: one host
	// cannot fill max_pending_hello, and a NAT in front of a whole site
	// still logs in 256 terminals at a time, each for one round trip.
	MaxPendingPerSource int `toml:"max_pending_per_source" comment:"connections in HELLO per source address (IPv6: per /64), 0 = no limit"`
	// HelloRatePerSource and HelloBurstPerSource form a token bucket of
	// HELLOs per source address; a HELLO beyond it is refused with
	// [7, "too many HELLOs from this address", retry_after_ms]. Rate 0 =
	// no limit. Defaults 50/s, burst 500: 2,000 terminals behind one NAT
	// all return within ~30 s after a restart.
	HelloRatePerSource  float64 `toml:"hello_rate_per_source" comment:"HELLOs per second per source address, 0 = no limit"`
	HelloBurstPerSource int     `toml:"hello_burst_per_source" comment:"HELLO burst per source address"`
	// SourceLimitExempt lists CIDRs the per-source limits do not apply
	// to. Default loopback ("127.0.0.0/8", "::1/128"): a local proxy
	// without PROXY protocol, and load tests, come from there.
	SourceLimitExempt []string `toml:"source_limit_exempt" comment:"CIDRs exempt from the per-source limits"`
	// ProxyProtocol expects a PROXY protocol v2 header (HAProxy
	// send-proxy-v2, cloud load balancers) at the start of every
	// connection and uses the address in it as the terminal's. A
	// connection without a valid v2 header is closed. Default false.
	ProxyProtocol bool `toml:"proxy_protocol" comment:"expect a PROXY protocol v2 header on every connection"`
	// ProxyTrusted lists the CIDRs proxies may connect from when
	// ProxyProtocol is on; a connection from elsewhere is closed at
	// accept. Empty (the default) trusts every peer: firewall the port.
	ProxyTrusted []string `toml:"proxy_trusted" comment:"CIDRs allowed to send PROXY headers, empty = any peer"`
}

// Auth configures HELLO.
type Auth struct {
	// FleetSecret is the raw bytes of this string (≥16 bytes). Required
	// outside -dev; env TERMD_FLEET_SECRET overrides it.
	FleetSecret string `toml:"fleet_secret" comment:"fleet secret (raw string bytes, >= 16); env TERMD_FLEET_SECRET"`
	// ClockWindow is the accepted |ts - server time|. Default 300s.
	ClockWindow Duration `toml:"clock_window" comment:"accepted HELLO clock skew"`
	// NonceRetention is how long a (device, nonce) pair is remembered.
	// Default 610s (the spec's minimum).
	NonceRetention Duration `toml:"nonce_retention" comment:"how long HELLO nonces are remembered"`
	// NonceCapacity bounds the nonce cache; when full, HELLOs get
	// UNAVAILABLE (never an early eviction). Default 500000 (~40 MB).
	NonceCapacity int `toml:"nonce_capacity" comment:"remembered nonces; when full HELLO is answered UNAVAILABLE"`
	// ReplaceLimit replacements of a device's session within
	// ReplaceWindow start a cool-down of DuplicateCooldown. Defaults 5,
	// 10m, 10m.
	ReplaceLimit      int      `toml:"replace_limit" comment:"session replacements allowed per replace_window"`
	ReplaceWindow     Duration `toml:"replace_window" comment:"window for replace_limit"`
	DuplicateCooldown Duration `toml:"duplicate_cooldown" comment:"HELLO refusal period for a duplicated device id"`
}

// Heartbeat configures presence timing.
type Heartbeat struct {
	// Interval is hb_interval_s sent to terminals, whole seconds in
	// 10s–600s on the wire (tests may go lower). Default 30s.
	Interval Duration `toml:"interval" comment:"heartbeat interval announced to terminals"`
	// MissFactor × Interval without a valid frame ends a session
	// (reason timeout). Default 3.
	MissFactor int `toml:"miss_factor" comment:"intervals without a frame before a session times out"`
}

// Storage configures the embedded store.
type Storage struct {
	// Dir is the data directory (Badger under Dir/db). Default "./var".
	Dir string `toml:"dir" comment:"data directory; Badger lives in dir/db"`
	// SyncWrites fsyncs every durable write (power-loss safety); without
	// it acknowledged records survive kill -9 but not power loss.
	SyncWrites bool `toml:"sync_writes" comment:"fsync durable writes (power-loss safety)"`
	// FlushInterval is the presence write-behind period. Default 1s.
	FlushInterval Duration `toml:"flush_interval" comment:"presence write-behind flush period"`
	// SeenInterval is how often a device's last_seen is persisted while
	// nothing else about it changes (a new status is written at once, and
	// the exact last_seen is written at offline). Default 60s: one record
	// write per device per minute instead of one per heartbeat.
	SeenInterval Duration `toml:"seen_interval" comment:"persist last_seen at most this often unless the status changed"`
	// AliveInterval is how often the node-alive mark is written. Default 1s.
	AliveInterval Duration `toml:"alive_interval" comment:"node-alive mark period"`
	// GCInterval runs Badger's value-log GC. Default 5m.
	GCInterval Duration `toml:"gc_interval" comment:"value-log GC period"`
	// MinFreeMB is the free space, in MiB, below which termd refuses
	// durable writes (UNAVAILABLE to terminals, 503 to operators, /readyz
	// 503) instead of letting Badger write into a full filesystem, which
	// kills the process (SIGBUS). It must cover what Badger has already
	// accepted: memtable flushes, compactions and a value-log GC rewrite
	// (up to 64 MiB). Default 128.
	MinFreeMB int `toml:"min_free_mb" comment:"refuse durable writes below this much free disk space (MiB)"`
	// BallastMB is a file of this size kept in the data directory and
	// released when termd starts on a full disk, so it can open its store
	// and serve with writes refused. 0 disables it. Default 16.
	BallastMB int `toml:"ballast_mb" comment:"space kept in dir/ballast, released when starting on a full disk (MiB)"`
}

// MinFreeMB is the smallest storage.min_free_mb accepted: two memtables
// (4 MiB each) and an SSTable flush must always fit.
const MinFreeMB = 16

// Admin configures the operator HTTP listener.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:7080".
	Listen string `toml:"listen" comment:"admin HTTP listen address"`
	// Token is a bearer token with operator scope, named "admin" in logs
	// and the audit. Required outside -dev unless Tokens has an entry;
	// env TERMD_ADMIN_TOKEN overrides it. Default empty.
	Token string `toml:"token" comment:"operator-scope bearer token named admin; env TERMD_ADMIN_TOKEN"`
	// Tokens are named bearer tokens with a scope, stored as the SHA-256
	// of the token (`termd -hash-token` prints it), never the token
	// itself. Default none.
	Tokens []AdminToken `toml:"tokens,omitempty" comment:"named, scoped tokens stored hashed ([[admin.tokens]])"`
	// OpenProbes serves /healthz, /readyz and /metrics without a token
	// when Listen is a loopback address. Default true.
	OpenProbes bool `toml:"open_probes" comment:"serve /healthz, /readyz, /metrics without token on loopback"`
	// EventBuffer is each event-stream subscriber's queue; a slower
	// subscriber loses events (counted). Default 1024.
	EventBuffer int `toml:"event_buffer" comment:"per-subscriber event queue before events are dropped"`
}

// Token scopes (docs/admin-api.md, "Tokens and scopes").
const (
	// ScopeRead may use every GET endpoint except /v1/backup and
	// /debug/pprof (a backup holds every device key).
	ScopeRead = "read"
	// ScopeOperator may do everything.
	ScopeOperator = "operator"
	// ScopeNode may only report its download node's live load
	// (POST /v1/nodes/{node}/load): the token an external node holds.
	ScopeNode = "node"
)

// Token name bounds.
const (
	// MaxTokenName is the longest admin.tokens name, in bytes.
	MaxTokenName = 64
	// LegacyTokenName is the name admin.token goes by in logs and audit.
	LegacyTokenName = "admin"
)

// AdminToken is one [[admin.tokens]] entry.
type AdminToken struct {
	// Name identifies the token in logs and the audit: letters, digits,
	// '.', '_', '-', at most 64 bytes, unique. Required.
	Name string `toml:"name" comment:"who holds the token; appears in logs and the audit"`
	// Scope is "read", "operator" or "node". Required.
	Scope string `toml:"scope" comment:"read, operator, or node (a download node reporting its load)"`
	// Node is the download node a "node" token speaks for.
	Node string `toml:"node,omitempty" comment:"scope node: the [[schedule.nodes]] id"`
	// SHA256 is the lowercase or uppercase hex SHA-256 of the token
	// (64 digits). Required.
	SHA256 string `toml:"sha256" comment:"hex SHA-256 of the token (termd -hash-token)"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `toml:"level" comment:"debug, info, warn, error"`
	// Format is text or json. Default text.
	Format string `toml:"format" comment:"text or json"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Server: Server{
			Listen: "0.0.0.0:7000", FDReserve: 500, MaxPendingHello: 4096,
			HelloTimeout: D(10 * time.Second), MaxFrame: 4096, MaxInFlight: 16,
			FrameRate: 50, FrameBurst: 100, OutboundLimit: 64 << 10,
			WorkQueue: 4096, RouteShare: 50, TickInterval: D(100 * time.Millisecond),
			PushAckTimeout: D(60 * time.Second), MaxPendingAcks: 64,
			ListenBacklog: 4096, ShutdownGrace: D(2 * time.Second), GCPercent: 25, GCPercentMax: 200,
			MaxPendingPerSource: 256, HelloRatePerSource: 50, HelloBurstPerSource: 500,
			SourceLimitExempt: []string{"127.0.0.0/8", "::1/128"},
		},
		Auth: Auth{
			ClockWindow: D(300 * time.Second), NonceRetention: D(610 * time.Second),
			NonceCapacity: 500000, ReplaceLimit: 5, ReplaceWindow: D(10 * time.Minute),
			DuplicateCooldown: D(10 * time.Minute),
		},
		Heartbeat: Heartbeat{Interval: D(30 * time.Second), MissFactor: 3},
		Storage: Storage{
			Dir: "./var", FlushInterval: D(time.Second), SeenInterval: D(time.Minute), AliveInterval: D(time.Second),
			GCInterval: D(5 * time.Minute), MinFreeMB: 128, BallastMB: 16,
		},
		Admin: Admin{Listen: "127.0.0.1:7080", OpenProbes: true, EventBuffer: 1024},
		Log:   Log{Level: "info", Format: "text"},
		Control: Control{
			MaxTimeout: D(300 * time.Second), RequestIDWindow: D(10 * time.Minute), AuditRetention: D(90 * 24 * time.Hour),
			RequestIDsPerDevice: DefaultRequestIDsPerDevice, AuditMaxRecords: DefaultAuditMaxRecords,
			RefusalWindow: D(time.Minute),
		},
		Download: DownloadDefaults(),
		Notify:   defaultNotify(),
		Upgrade:  DefaultUpgrade(),
		Schedule: DefaultSchedule(),
	}
}

// Load reads a TOML file over the defaults. Unknown keys are an error, so
// a typo does not silently leave a default in force.
func Load(path string) (Config, error) {
	return LoadOnto(Defaults(), path)
}

// LoadOnto reads a TOML file over c: keys the file sets replace c's
// values, the others stay (termd -dev starts from loopback addresses, so
// a dev config file may still choose its own). Errors name the file, the
// position and the key.
func LoadOnto(c Config, path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return c, fmt.Errorf("%s: %s", path, sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			if k := de.Key(); len(k) > 0 {
				return c, fmt.Errorf("%s:%d:%d: %s: %w", path, row, col, strings.Join(k, "."), err)
			}
			return c, fmt.Errorf("%s:%d:%d: %w", path, row, col, err)
		}
		var doc map[string]any
		if toml.Unmarshal(b, &doc) == nil {
			if k, v := durationKey(doc, reflect.TypeOf(c), ""); k != "" {
				return c, fmt.Errorf("%s: %s = %v: a duration is a string with a unit, such as \"%vs\"", path, k, v, v)
			}
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Admin.Tokens) == 0 {
		c.Admin.Tokens = nil // `tokens = []` as -print-config writes it
	}
	c.resolvePaths(filepath.Dir(path))
	c.Upgrade.resolveUpgradePaths(filepath.Dir(path))
	if len(c.Upgrade.ReleasePublicKeys) == 0 {
		c.Upgrade.ReleasePublicKeys = nil // an empty TOML list reads back as the default
	}
	c.normalizeLists()
	c.normalizeNotify()
	return c, nil
}

// ApplyEnv applies the environment overrides.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv("TERMD_FLEET_SECRET"); v != "" {
		c.Auth.FleetSecret = v
	}
	if v := getenv("TERMD_ADMIN_TOKEN"); v != "" {
		c.Admin.Token = v
	}
	c.applyNotifyEnv(getenv)
}

// MinFleetSecret is the shortest accepted fleet secret, in bytes.
const MinFleetSecret = 16

// Validate checks the configuration and says exactly what is wrong.
func (c *Config) Validate() error {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if c.Auth.FleetSecret == "" {
		add("auth.fleet_secret is not set (set it in the config file or TERMD_FLEET_SECRET, or run with -dev)")
	} else if len(c.Auth.FleetSecret) < MinFleetSecret {
		add("auth.fleet_secret is %d bytes; at least %d are required", len(c.Auth.FleetSecret), MinFleetSecret)
	}
	if c.Admin.Token == "" && len(c.Admin.Tokens) == 0 {
		add("admin.token is not set and admin.tokens is empty (set one in the config file or TERMD_ADMIN_TOKEN, or run with -dev)")
	}
	c.validateTokens(add)
	if c.Server.MaxFrame < 4096 || c.Server.MaxFrame > 0xFFFF {
		add("server.max_frame = %d must be in 4096..65535", c.Server.MaxFrame)
	}
	if c.Server.MaxInFlight < 1 || c.Server.MaxInFlight > 16 {
		add("server.max_in_flight = %d must be in 1..16", c.Server.MaxInFlight)
	}
	if c.Server.RouteShare < 1 || c.Server.RouteShare > 100 {
		add("server.route_share = %d must be in 1..100 (percent)", c.Server.RouteShare)
	}
	positive := func(key string, d Duration) {
		if d.Duration <= 0 {
			add("%s = %q must be a positive duration", key, d.String())
		}
	}
	atLeast1 := func(key string, v int) {
		if v < 1 {
			add("%s = %d must be at least 1", key, v)
		}
	}
	if c.Storage.MinFreeMB < MinFreeMB {
		add("storage.min_free_mb = %d must be at least %d (Badger's own writes need room)", c.Storage.MinFreeMB, MinFreeMB)
	}
	if c.Storage.BallastMB < 0 {
		add("storage.ballast_mb = %d must not be negative", c.Storage.BallastMB)
	}
	positive("server.push_ack_timeout", c.Server.PushAckTimeout)
	atLeast1("server.max_pending_acks", c.Server.MaxPendingAcks)
	if c.Server.FrameRate <= 0 {
		add("server.frame_rate = %v must be positive", c.Server.FrameRate)
	}
	atLeast1("server.frame_burst", c.Server.FrameBurst)
	positive("heartbeat.interval", c.Heartbeat.Interval)
	atLeast1("heartbeat.miss_factor", c.Heartbeat.MissFactor)
	positive("server.hello_timeout", c.Server.HelloTimeout)
	positive("server.tick_interval", c.Server.TickInterval)
	atLeast1("auth.nonce_capacity", c.Auth.NonceCapacity)
	positive("auth.nonce_retention", c.Auth.NonceRetention)
	positive("storage.alive_interval", c.Storage.AliveInterval)
	positive("storage.flush_interval", c.Storage.FlushInterval)
	positive("auth.clock_window", c.Auth.ClockWindow)
	atLeast1("auth.replace_limit", c.Auth.ReplaceLimit)
	c.validateValues(add)
	if c.Admin.Listen == "" {
		add("admin.listen is empty (a host:port such as 127.0.0.1:7080)")
	}
	c.validateControl(add)
	c.validateFrontEnd(add)
	c.validateDownload(add)
	c.validateNotify(add)
	c.validateUpgrade(add)
	c.Schedule.validate(add)
	c.validateGroups(add)
	if len(errs) > 0 {
		return errors.New("invalid configuration:\n  " + strings.Join(errs, "\n  "))
	}
	return nil
}

// validateTokens checks [[admin.tokens]].
func (c *Config) validateTokens(add func(string, ...any)) {
	seen := map[string]bool{}
	if c.Admin.Token != "" {
		seen[LegacyTokenName] = true
	}
	for i, t := range c.Admin.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		switch {
		case !validTokenName(t.Name):
			add("%s.name %q must be 1..%d letters, digits, '.', '_' or '-'", key, t.Name, MaxTokenName)
		case seen[t.Name]:
			add("%s.name %q is used twice (%q is admin.token's name when it is set)", key, t.Name, LegacyTokenName)
		}
		seen[t.Name] = true
		switch {
		case t.Scope != ScopeRead && t.Scope != ScopeOperator && t.Scope != ScopeNode:
			add("%s.scope %q must be %q, %q or %q", key, t.Scope, ScopeRead, ScopeOperator, ScopeNode)
		case t.Scope == ScopeNode && t.Node == "":
			add("%s: scope %q needs node (the [[schedule.nodes]] id it reports for)", key, ScopeNode)
		case t.Scope != ScopeNode && t.Node != "":
			add("%s: node is only for scope %q", key, ScopeNode)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			add("%s.sha256 %q must be %d hex digits (termd -hash-token prints it)", key, t.SHA256, 2*sha256.Size)
		}
	}
}

func validTokenName(s string) bool {
	if s == "" || len(s) > MaxTokenName {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Marshal renders c as commented TOML.
func (c Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
